package runc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// Interactive sessions (runtime.Terminals).
//
// ExecTerminal runs `runc exec` in the foreground with a process config
// whose terminal is set, and with a pty of ours as runc's standard input,
// output and error and controlling terminal. runc makes the container's
// own pty, puts ours in raw mode and copies between the two (as it does
// for `runc exec -t` typed in a terminal); it stays the parent of the
// process, so its exit status is the process's, and nothing is left to
// reap. A resize of our pty is a SIGWINCH to runc (the foreground of its
// terminal), which gives the container's pty the same size; closing our
// side is a hang-up: runc gets SIGHUP and passes it on to the process.
// (A detached `runc exec --console-socket` would hand over the
// container's pty itself, but leave the process to the host's init to
// reap, its exit status lost.) Newlines are translated by our pty, runc
// having turned the container's pty's translation off; a shell that read
// its terminal's settings before runc did so puts it back, and its lines
// end in "\r\r\n" (shown as "\r\n"), as with `runc exec -t` typed in a
// terminal.
//
// AttachTerminal connects to the shim of a container whose init has a
// terminal (Spec.Process.Terminal), over DIR/attach.sock: see package
// shim.

// defaultWindow is the size of a terminal no one has sized yet.
var defaultWindow = runtime.WindowSize{Rows: 24, Cols: 80}

// hangupGrace is how long a hung-up exec process has to exit before it is
// killed.
const hangupGrace = 10 * time.Second

// ExecTerminal starts spec in the running container id on a new terminal
// of size (24x80 when zero).
func (r *Runtime) ExecTerminal(ctx context.Context, id string, spec runtime.ExecSpec, size runtime.WindowSize) (runtime.Terminal, error) {
	if size.Rows == 0 || size.Cols == 0 {
		size = defaultWindow
	}
	execDir, err := r.prepareExec(ctx, id, spec, &size)
	if err != nil {
		return nil, err
	}
	master, slave, err := openPTY()
	if err != nil {
		os.RemoveAll(execDir)
		return nil, err
	}
	if err := setWinsize(master, size); err != nil {
		master.Close()
		slave.Close()
		os.RemoveAll(execDir)
		return nil, err
	}
	t := &execTerminal{master: master, dir: execDir, done: make(chan struct{})}
	logPath := filepath.Join(execDir, "runc.log")
	t.cmd = exec.Command(r.runc, "--root", r.runcRoot, "--log", logPath, "--log-format", "json",
		"exec", "--process", filepath.Join(execDir, "process.json"), "--pid-file", filepath.Join(execDir, "pid"), id)
	t.cmd.Stdin, t.cmd.Stdout, t.cmd.Stderr = slave, slave, slave
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = t.cmd.Start()
	slave.Close() // runc holds it now
	if err != nil {
		master.Close()
		os.RemoveAll(execDir)
		return nil, fmt.Errorf("runc exec: %w", err)
	}
	go t.wait(logPath)
	return t, nil
}

type execTerminal struct {
	master *os.File
	cmd    *exec.Cmd
	dir    string

	done chan struct{} // runc has exited: code, err
	code int
	err  error

	closeOnce sync.Once
}

func (t *execTerminal) wait(logPath string) {
	err := t.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		t.code = ee.ExitCode()
		if msg := shim.LastRuncError(logPath); msg != "" {
			t.err = fmt.Errorf("%w: %s", runtime.ErrExec, msg)
		}
	case errors.As(err, &ee):
		// runc itself was killed (by a signal): the process is its
		// child's, in the container; see that it goes.
		t.code = -1
		t.killProcess()
	default:
		t.code, t.err = -1, err
	}
	os.RemoveAll(t.dir)
	close(t.done)
}

// killProcess kills the exec'd process itself (runc passes signals on,
// but cannot pass SIGKILL).
func (t *execTerminal) killProcess() {
	b, err := os.ReadFile(filepath.Join(t.dir, "pid"))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		unix.Kill(pid, unix.SIGKILL)
	}
}

func (t *execTerminal) Read(p []byte) (int, error) {
	n, err := t.master.Read(p)
	if err != nil && n == 0 {
		// EIO: every process on the terminal is gone.
		return 0, io.EOF
	}
	return n, nil
}

func (t *execTerminal) Write(p []byte) (int, error) { return t.master.Write(p) }

func (t *execTerminal) Resize(size runtime.WindowSize) error {
	if size.Rows == 0 || size.Cols == 0 {
		return nil
	}
	return setWinsize(t.master, size)
}

func (t *execTerminal) Wait() (int, error) {
	<-t.done
	return t.code, t.err
}

// Close hangs up: runc gets SIGHUP and passes it to the process; one that
// does not exit within hangupGrace is killed.
func (t *execTerminal) Close() error {
	t.closeOnce.Do(func() {
		t.master.Close()
		go func() {
			select {
			case <-t.done:
			case <-time.After(hangupGrace):
				t.killProcess()
				t.cmd.Process.Kill()
			}
		}()
	})
	return nil
}

// AttachTerminal connects to the terminal (or the open stdin) of running
// container id's init.
func (r *Runtime) AttachTerminal(ctx context.Context, id string) (runtime.Terminal, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	if !rec.Spec.Process.Terminal && !rec.Spec.Process.OpenStdin {
		return nil, fmt.Errorf("%w: container %s has no terminal and no open stdin", runtime.ErrInvalid, id)
	}
	st, err := r.state(ctx, rec, nil)
	if err != nil {
		return nil, err
	}
	if st.Status != runtime.Running {
		return nil, stateErr(id, st.Status, "attach to")
	}
	conn, err := shim.DialAttach(r.containerDir(id))
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", id, err)
	}
	pr, pw := io.Pipe()
	a := &attachedTerminal{conn: conn, out: pr, done: make(chan struct{})}
	go a.receive(pw)
	return a, nil
}

type attachedTerminal struct {
	conn *net.UnixConn
	out  *io.PipeReader
	wmu  sync.Mutex
	done chan struct{}
}

// receive passes what the shim sends on to Read until the shim closes the
// connection (the container's terminal ended) or Close does.
func (a *attachedTerminal) receive(pw *io.PipeWriter) {
	defer close(a.done)
	br := bufio.NewReader(a.conn)
	for {
		kind, p, err := shim.ReadFrame(br)
		if err != nil {
			pw.Close()
			return
		}
		if kind != shim.FrameData {
			continue
		}
		if _, err := pw.Write(p); err != nil {
			return
		}
	}
}

func (a *attachedTerminal) Read(p []byte) (int, error) { return a.out.Read(p) }

func (a *attachedTerminal) Write(p []byte) (int, error) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	for off := 0; off < len(p); off += shim.MaxFrame {
		end := min(off+shim.MaxFrame, len(p))
		if err := shim.WriteFrame(a.conn, shim.FrameData, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

func (a *attachedTerminal) Resize(size runtime.WindowSize) error {
	if size.Rows == 0 || size.Cols == 0 {
		return nil
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return shim.WriteFrame(a.conn, shim.FrameResize, shim.ResizePayload(size.Rows, size.Cols))
}

func (a *attachedTerminal) Wait() (int, error) {
	<-a.done
	return -1, nil
}

func (a *attachedTerminal) Close() error {
	a.out.Close()
	return a.conn.Close()
}

// openPTY makes a pty: its master (non-blocking, so that Close interrupts
// a Read) and its slave.
func openPTY() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	// Raw from the start, as runc makes it once it runs (cfmakeraw, output
	// processing kept): what is typed before is not echoed twice.
	if err := makeRaw(s); err != nil {
		unix.Close(m)
		unix.Close(s)
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	return os.NewFile(uintptr(m), "/dev/ptmx"), os.NewFile(uintptr(s), name), nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

func setWinsize(f *os.File, size runtime.WindowSize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Rows, Col: size.Cols})
	}); err != nil {
		return err
	}
	return ierr
}

var _ runtime.Terminals = (*Runtime)(nil)
