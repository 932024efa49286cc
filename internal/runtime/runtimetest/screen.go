package runtimetest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// Screen collects what a terminal session shows, read in the background
// until it ends, for tests that type into a shell and wait for answers.
type Screen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	err  error
	done chan struct{}
}

// Watch reads r into a new Screen until r ends.
func Watch(r io.Reader) *Screen {
	s := &Screen{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			if err != nil && err != io.EOF {
				s.err = err
			}
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// String is what the session showed so far.
func (s *Screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	// runc clears the container's pty's ONLCR, the newline translation
	// our side of the terminal does, but a shell that saved its terminal's
	// settings a moment before may set it again: "\r\r\n" then, which a
	// terminal shows as "\r\n".
	return strings.ReplaceAll(s.buf.String(), "\r\r\n", "\r\n")
}

// Err is how the reading ended, if not at EOF (a pty master reads EIO
// once its other side is gone).
func (s *Screen) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Expect waits until the screen shows want after offset from and returns
// the offset past it.
func (s *Screen) Expect(t testing.TB, from int, want string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := s.String()
		if i := strings.Index(out[min(from, len(out)):], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session never showed %q; it shows:\n%q", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Sized types "stty size" into w until the screen shows the size rows x
// cols after from, and returns the offset past it: a terminal resized
// while it runs gets its size a moment later.
func (s *Screen) Sized(t testing.TB, w io.Writer, from int, rows, cols int) int {
	t.Helper()
	want := fmt.Sprintf("\r\n%d %d\r\n", rows, cols)
	for i := 0; i < 40; i++ {
		io.WriteString(w, "stty size\r")
		for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			out := s.String()
			if j := strings.Index(out[min(from, len(out)):], want); j >= 0 {
				return from + j + len(want)
			}
		}
	}
	t.Fatalf("the terminal never had the size %d x %d; it shows:\n%q", rows, cols, s.String())
	return 0
}

// Ended waits until the session ends.
func (s *Screen) Ended(t testing.TB) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the session did not end; it shows:\n%q", s.String())
	}
}
