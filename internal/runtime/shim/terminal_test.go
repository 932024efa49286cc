package shim

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syncBuffer is a log written by the terminal's reader and read by the
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTerminalServer: the terminal of a container as the shim serves it,
// on a real pty (the container's side is the slave): attached clients
// type into it, resize it, all get its output, which the log keeps too;
// its end ends them.
func TestTerminalServer(t *testing.T) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skip("no ptys here:", err)
	}
	n, _ := unix.IoctlGetInt(m, unix.TIOCGPTN)
	unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0)
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	// Raw, so that bytes go through as they are.
	tio, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG
	tio.Oflag &^= unix.OPOST
	unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio)

	dir := t.TempDir()
	t.Chdir(dir) // the shim's working directory is the container's
	log := &syncBuffer{}
	term := &ttyServer{master: os.NewFile(uintptr(m), "/dev/ptmx"), log: log, clients: map[*attached]struct{}{}}
	done := make(chan struct{})
	if err := term.serve(done); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(AttachSocket); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("attach socket: %v %v", st, err)
	}

	a, err := DialAttach(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DialAttach(dir)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // both accepted
	if err := WriteFrame(a, FrameData, []byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	slave.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(slave, got); err != nil || string(got) != "typed\n" {
		t.Fatalf("the container read %q %v", got, err)
	}
	if err := WriteFrame(b, FrameResize, ResizePayload(42, 117)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, err := unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ)
		if err == nil && ws.Row == 42 && ws.Col == 117 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("window size %+v %v", ws, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	slave.WriteString("output\n")
	for _, c := range []io.Reader{bufio.NewReader(a), bufio.NewReader(b)} {
		var seen []byte
		for !bytes.Contains(seen, []byte("output\n")) {
			kind, p, err := ReadFrame(c)
			if err != nil || kind != FrameData {
				t.Fatalf("a client read %c %q %v", kind, p, err)
			}
			seen = append(seen, p...)
		}
	}
	if l := log.String(); l != "output\n" {
		t.Errorf("log %q", l)
	}
	// A frame too long is refused.
	if err := WriteFrame(io.Discard, FrameData, make([]byte, MaxFrame+1)); err == nil {
		t.Error("a frame over MaxFrame was written")
	}

	// The container's side goes: the output ends, the clients are let go.
	slave.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal's end was not seen")
	}
	term.close()
	for _, c := range []io.Reader{a, b} {
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("a client's end: %v", err)
		}
	}
	if _, err := os.Stat(AttachSocket); !os.IsNotExist(err) {
		t.Errorf("the socket is left: %v", err)
	}
	if _, err := DialAttach(dir); err == nil {
		t.Error("attached after the end")
	}
}
