package runc

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// TestExecTerminal: a shell on a terminal of its own in a running
// container, typed into, resized, exiting with its status; another hung
// up on.
func TestExecTerminal(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Process = runtime.Process{Args: []string{"sleep", "3600"}}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ExecTerminal(ctx, spec.ID, runtime.ExecSpec{Args: []string{"sh"}}, runtime.WindowSize{}); !errors.Is(err, runtime.ErrState) {
		t.Fatalf("ExecTerminal in a created container: %v", err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	term, err := r.ExecTerminal(ctx, spec.ID, runtime.ExecSpec{Args: []string{"sh"}, Env: []string{"PS1=$ "}}, runtime.WindowSize{Rows: 30, Cols: 90})
	if err != nil {
		t.Fatal(err)
	}
	scr := runtimetest.Watch(term)
	at := scr.Expect(t, 0, "$ ")
	io.WriteString(term, "stty size; tty; echo $TERM\r")
	at = scr.Expect(t, at, "30 90\r\n/dev/pts/0\r\nxterm\r\n")
	if err := term.Resize(runtime.WindowSize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	at = scr.Sized(t, term, at, 50, 132)
	io.WriteString(term, "echo $((6*7)); exit 3\r")
	scr.Expect(t, at, "42\r\n")
	scr.Ended(t)
	if code, err := term.Wait(); code != 3 || err != nil {
		t.Fatalf("Wait = %d, %v", code, err)
	}
	term.Close()

	// Typed in at once, before the shell is ready: the terminal has its
	// size from the start, and nothing is echoed twice.
	term, err = r.ExecTerminal(ctx, spec.ID, runtime.ExecSpec{Args: []string{"sh"}}, runtime.WindowSize{Rows: 31, Cols: 91})
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(term)
	io.WriteString(term, "stty size; exit\r")
	scr.Expect(t, 0, "31 91\r\n")
	scr.Ended(t)
	if n := strings.Count(scr.String(), "stty size; exit"); n > 2 { // the terminal's echo and the shell's
		t.Errorf("the input was echoed %d times: %q", n, scr.String())
	}

	// Hung up: the shell goes.
	term, err = r.ExecTerminal(ctx, spec.ID, runtime.ExecSpec{Args: []string{"sh"}, Env: []string{"PS1=$ "}}, runtime.WindowSize{})
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(term)
	scr.Expect(t, 0, "$ ")
	term.Close()
	done := make(chan int)
	go func() { code, _ := term.Wait(); done <- code }()
	select {
	case code := <-done:
		if code != 128+1 { // SIGHUP
			t.Errorf("a hung-up shell exited %d", code)
		}
	case <-time.After(hangupGrace + 5*time.Second):
		t.Fatal("the hung-up shell did not exit")
	}
	if out := run(t, r, spec.ID, "ps"); strings.Contains(out, " sh") {
		t.Errorf("a shell is left in the container:\n%s", out)
	}
	entries, _ := filepath.Glob(filepath.Join(r.containerDir(spec.ID), ".exec-*"))
	if len(entries) != 0 {
		t.Errorf("exec directories left: %v", entries)
	}

	// A command that cannot run.
	term, err = r.ExecTerminal(ctx, spec.ID, runtime.ExecSpec{Args: []string{"/nonexistent"}}, runtime.WindowSize{})
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(term)
	scr.Ended(t)
	if code, err := term.Wait(); code == 0 || !errors.Is(err, runtime.ErrExec) {
		t.Errorf("Wait of a command that cannot run = %d, %v", code, err)
	}
}

// TestAttachTerminal: a container whose init is a shell on a terminal:
// attached to, typed into (the log keeps what it shows), resized,
// detached from while it runs, attached to again by two at once; its exit
// ends the attached terminals.
func TestAttachTerminal(t *testing.T) {
	h, r, owner := newRuntime(t)
	ctx := context.Background()
	img := defaultImage(t, r)
	plain := runtimetest.MachineSpec(img)
	plain.Process = runtime.Process{Args: []string{"sleep", "3600"}}
	if _, err := r.Create(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, plain.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AttachTerminal(ctx, plain.ID); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("AttachTerminal to a container without a terminal: %v", err)
	}

	spec := runtimetest.MachineSpec(img)
	spec.Process = runtime.Process{Args: []string{"sh"}, Env: []string{"PS1=$ "}, Terminal: true}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AttachTerminal(ctx, spec.ID); !errors.Is(err, runtime.ErrState) {
		t.Fatalf("AttachTerminal to a created container: %v", err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	term, err := r.AttachTerminal(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	scr := runtimetest.Watch(term)
	io.WriteString(term, "stty size\r")
	at := scr.Expect(t, 0, "24 80\r\n") // not sized by anyone yet
	if err := term.Resize(runtime.WindowSize{Rows: 33, Cols: 101}); err != nil {
		t.Fatal(err)
	}
	at = scr.Sized(t, term, at, 33, 101)
	io.WriteString(term, "echo $TERM; echo marker-$((2*21))\r")
	scr.Expect(t, at, "xterm\r\nmarker-42\r\n")
	waitConsole(t, r, spec.ID, "marker-42\r\n")
	if got := run(t, r, spec.ID, "echo", "plain exec"); got != "plain exec\n" {
		t.Errorf("a plain exec in a terminal container: %q", got)
	}
	term.Close()
	if code, _ := term.Wait(); code != -1 {
		t.Errorf("Wait after detaching = %d", code)
	}
	if st, _ := r.State(ctx, spec.ID); st.Status != runtime.Running {
		t.Fatalf("after detaching: %+v", st)
	}

	// Two at once see the same output, one of them through a runtime
	// opened anew (a daemon restarted: the shim serves the terminal); the
	// shell's exit ends both.
	a, err := h.open(t, owner).AttachTerminal(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.AttachTerminal(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := runtimetest.Watch(a), runtimetest.Watch(b)
	io.WriteString(a, "echo both-$((1+1))\r")
	sa.Expect(t, 0, "both-2\r\n")
	sb.Expect(t, 0, "both-2\r\n")
	io.WriteString(b, "exit 7\r")
	sa.Ended(t)
	sb.Ended(t)
	waitExited(t, r, spec.ID, 7)
	if _, err := r.AttachTerminal(ctx, spec.ID); !errors.Is(err, runtime.ErrState) {
		t.Errorf("AttachTerminal to a stopped container: %v", err)
	}

	// It boots again with a terminal.
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	term, err = r.AttachTerminal(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(term)
	io.WriteString(term, "echo again\r")
	scr.Expect(t, 0, "again\r\n")
	term.Close()
}

// TestAttachOpenStdin: a container whose init keeps its stdin open with no
// terminal (`docker run -i`): a shell that waits on its input until
// attached to, then reads what is typed, with no terminal (no echo, "\n"
// line ends), its stdout and stderr sent to the attached and logged; it
// lives on after a detach and ends with what is typed next.
func TestAttachOpenStdin(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Process = runtime.Process{Args: []string{"sh"}, OpenStdin: true}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	// On /dev/null a shell would be gone at once.
	time.Sleep(300 * time.Millisecond)
	if st, _ := r.State(ctx, spec.ID); st.Status != runtime.Running {
		t.Fatalf("a shell on an open stdin: %+v", st)
	}
	term, err := r.AttachTerminal(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	scr := runtimetest.Watch(term)
	if err := term.Resize(runtime.WindowSize{Rows: 30, Cols: 90}); err != nil {
		t.Errorf("Resize without a terminal: %v", err)
	}
	io.WriteString(term, "[ -t 0 ] || echo no-tty; echo out-$((6*7)); echo err-1 >&2\n")
	// Two pipes: stderr's line may come before stdout's.
	scr.Expect(t, scr.Expect(t, 0, "no-tty\n"), "out-42\n")
	scr.Expect(t, 0, "err-1\n")
	if out := scr.String(); strings.Contains(out, "\r") || strings.Contains(out, "echo") {
		t.Errorf("a terminal's echo or line ends: %q", out)
	}
	waitConsole(t, r, spec.ID, "out-42\n")
	term.Close()
	if code, _ := term.Wait(); code != -1 {
		t.Errorf("Wait after detaching = %d", code)
	}
	time.Sleep(100 * time.Millisecond)
	if st, _ := r.State(ctx, spec.ID); st.Status != runtime.Running {
		t.Fatalf("after detaching: %+v", st)
	}

	again, err := r.AttachTerminal(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(again)
	io.WriteString(again, "echo back; exit 5\n")
	scr.Expect(t, 0, "back\n")
	scr.Ended(t)
	waitExited(t, r, spec.ID, 5)
}

// waitExited waits until container id has stopped, checks its exit code
// and that its shim took its attach socket away.
func waitExited(t *testing.T, r *Runtime, id string, code int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := r.State(context.Background(), id)
		if st.Status == runtime.Stopped {
			if st.ExitCode != code {
				t.Errorf("exit code %d, want %d", st.ExitCode, code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not stop: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(r.containerDir(id), shim.AttachSocket)); !os.IsNotExist(err) {
		t.Errorf("the attach socket is left: %v", err)
	}
}
