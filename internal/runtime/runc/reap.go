package runc

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// reapLater reaps the child p once it exits, without holding an OS thread
// meanwhile. A goroutine blocked in cmd.Wait sits in waitid, a blocking
// system call, so the runtime gives it a thread of its own: one per shim,
// that is one per running server or container (500 threads for 500
// servers). Instead the child's pidfd, which becomes readable when the
// child exits, is polled by Go's netpoller, and waitid runs only then,
// with WNOHANG. Where non-blocking pidfds are missing (Linux before
// 5.10), or the poller will not take one, it falls back to p.Wait. p is
// the reaper's from then on: the caller must not use it (Release, at the
// end, writes it).
func reapLater(p *os.Process) {
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		go p.Wait()
		return
	}
	// A non-blocking fd given to os.NewFile is registered with the
	// netpoller (epoll takes pidfds).
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		go p.Wait()
		return
	}
	go func() {
		defer f.Close()
		err := rc.Read(func(fd uintptr) bool {
			var info unix.Siginfo
			var err error = unix.EINTR
			for errors.Is(err, unix.EINTR) {
				err = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, nil)
			}
			// Reaped (Linux sets si_signo to SIGCHLD then, 0 when
			// WNOHANG found nothing), or nothing left to wait for (an
			// error): done. Otherwise it still runs: wait for the pidfd
			// to turn readable.
			return err != nil || info.Signo != 0
		})
		if err != nil {
			// The poller would not wait on this fd: wait the old way.
			p.Wait()
			return
		}
		// Reaped through our pidfd: the Process's own handle (a pidfd of
		// its own since Go 1.23) goes now, not at its finalizer.
		p.Release()
	}()
}
