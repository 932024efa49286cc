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
// with WNOHANG. Where pidfds are missing (Linux before 5.3), it falls
// back to p.Wait.
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
		rc.Read(func(fd uintptr) bool {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				return false
			}
			// Reaped (Linux sets si_signo to SIGCHLD then, 0 when
			// WNOHANG found nothing), or nothing left to wait for (an
			// error): done. Otherwise it still runs: wait for the pidfd
			// to turn readable.
			return err != nil || info.Signo != 0
		})
	}()
}
