package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runc"
	"github.com/monostack/monostack/internal/runtime/runc/runctest"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

// The test binary is its own shim, as monostack is (`monostack shim`).
const shimCommand = "__agent_shim"

func TestMain(m *testing.M) {
	runctest.ShimMain(shimCommand)
	os.Exit(m.Run())
}

// realHost starts an agent of host on the bus with the runc runtime
// (runctest); what its containers leave is removed at the end of t.
func realHost(t *testing.T, b *bus.Bus, host string) (*ComputeAgent, *runc.Runtime) {
	t.Helper()
	rt := runctest.New(t, shimCommand)
	a := NewCompute(host, b, rt, tarImages{runtimetest.DefaultImage(t)}, t.TempDir())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, rt
}

// TestTerminalsOverBus: interactive sessions through the agent on a real
// host: an exec'd shell sized before and after it starts, typed into, its
// exit status, a lot of output through the stream's window; one-time
// tokens; attaching to a container's terminal, detaching, resizing it;
// and a live session ended by the agent stopping.
func TestTerminalsOverBus(t *testing.T) {
	b, err := bus.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	host := "host-" + runtimetest.NewID()[:8]
	a, _ := realHost(t, b, host)
	c := &ComputeClient{Bus: b}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	plain := "c-" + runtimetest.NewID()
	if _, err := c.Ensure(ctx, host, ServerRequest{Spec: runtime.Spec{ID: plain, Image: "img",
		Process: runtime.Process{Args: []string{"sleep", "3600"}}}, Running: true}); err != nil {
		t.Fatal(err)
	}
	tty := "c-" + runtimetest.NewID()
	if _, err := c.Ensure(ctx, host, ServerRequest{Spec: runtime.Spec{ID: tty, Image: "img",
		Process: runtime.Process{Args: []string{"sh"}, Env: []string{"PS1=# "}, Terminal: true}}, Running: true}); err != nil {
		t.Fatal(err)
	}

	// Refused (the cloud says the container is not running): a bad token
	// is ErrNotFound; a good one is ErrState and used up, nothing started.
	refused, err := c.OpenTerminal(ctx, host, TerminalOpen{ID: plain, Args: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RefuseTerminal(ctx, host, TerminalStart{ID: plain, Session: refused.Session, Token: "not-" + refused.Token}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("refuse with a wrong token: %v", err)
	}
	if err := c.RefuseTerminal(ctx, host, TerminalStart{ID: plain, Session: refused.Session, Token: refused.Token}); !errors.Is(err, runtime.ErrState) {
		t.Fatalf("refuse with the good token: %v", err)
	}
	if _, err := c.StartTerminal(ctx, host, TerminalStart{ID: plain, Session: refused.Session, Token: refused.Token}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("start with a refused token: %v", err)
	}

	// An exec'd shell.
	tk, err := c.OpenTerminal(ctx, host, TerminalOpen{ID: plain, Args: []string{"sh"}, Env: []string{"PS1=$ "}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.Session) != 64 || tk.Token == "" {
		t.Fatalf("ticket %+v", tk)
	}
	if err := c.ResizeTerminal(ctx, host, TerminalResize{ID: plain, Session: tk.Session, Size: runtime.WindowSize{Rows: 40, Cols: 120}}); err != nil {
		t.Fatalf("resize before the start: %v", err)
	}
	if _, err := c.StartTerminal(ctx, host, TerminalStart{ID: plain, Session: tk.Session, Token: "not-" + tk.Token}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("start with a wrong token: %v", err)
	}
	if _, err := c.StartTerminal(ctx, host, TerminalStart{ID: tty, Session: tk.Session, Token: tk.Token}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("start with another container's ticket: %v", err)
	}
	conn, err := c.StartTerminal(ctx, host, TerminalStart{ID: plain, Session: tk.Session, Token: tk.Token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartTerminal(ctx, host, TerminalStart{ID: plain, Session: tk.Session, Token: tk.Token}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("a token used twice: %v", err)
	}
	scr := runtimetest.Watch(conn)
	at := scr.Expect(t, 0, "$ ")
	io.WriteString(conn, "stty size\r")
	at = scr.Expect(t, at, "40 120\r\n")
	if err := c.ResizeTerminal(ctx, host, TerminalResize{ID: plain, Session: tk.Session, Size: runtime.WindowSize{Rows: 50, Cols: 100}}); err != nil {
		t.Fatal(err)
	}
	at = scr.Sized(t, conn, at, 50, 100)
	// More output than the stream's window, whole and in order.
	const n = 3 * streamWindow
	io.WriteString(conn, "head -c "+strconv.Itoa(n)+" /dev/zero | tr '\\0' x; echo; echo END; exit 4\r")
	scr.Ended(t)
	if err := scr.Err(); err != nil {
		t.Fatalf("the session ended with %v", err)
	}
	out := scr.String()[at:]
	if got := strings.Count(out, "x"); got < n || !strings.HasSuffix(out, "END\r\n") {
		t.Fatalf("%d x of %d, ending %q", got, n, out[max(0, len(out)-40):])
	}
	if code, err := conn.Exit(); code != 4 || err != nil {
		t.Fatalf("exit %d %v", code, err)
	}
	conn.Close()
	if err := c.ResizeTerminal(ctx, host, TerminalResize{ID: plain, Session: tk.Session, Size: runtime.WindowSize{Rows: 5, Cols: 5}}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("resize of an ended session: %v", err)
	}

	// Attaching.
	if _, err := c.OpenTerminal(ctx, host, TerminalOpen{ID: plain, Attach: true}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("attach to a container without a terminal: %v", err)
	}
	if _, err := c.OpenTerminal(ctx, host, TerminalOpen{ID: "nosuch", Args: []string{"sh"}}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("exec in no container: %v", err)
	}
	tk, err = c.OpenTerminal(ctx, host, TerminalOpen{ID: tty, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	conn, err = c.StartTerminal(ctx, host, TerminalStart{ID: tty, Token: tk.Token})
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(conn)
	if err := c.ResizeTerminal(ctx, host, TerminalResize{ID: tty, Size: runtime.WindowSize{Rows: 33, Cols: 77}}); err != nil {
		t.Fatal(err)
	}
	at = scr.Sized(t, conn, 0, 33, 77)
	io.WriteString(conn, "echo hi-$((3*3))\r")
	scr.Expect(t, at, "hi-9\r\n")
	conn.Close()
	scr.Ended(t)
	if err := scr.Err(); err != nil {
		t.Fatalf("the session ended with %v", err)
	}
	if list, _ := c.List(ctx, host); !running(list, tty) {
		t.Fatalf("the container stopped when detached from: %+v", list)
	}
	tk, _ = c.OpenTerminal(ctx, host, TerminalOpen{ID: tty, Attach: true})
	conn, err = c.StartTerminal(ctx, host, TerminalStart{ID: tty, Token: tk.Token})
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(conn)
	io.WriteString(conn, "exit 2\r")
	scr.Ended(t)
	if err := scr.Err(); err != nil {
		t.Fatalf("the session ended with %v", err)
	}

	// A live session ends when the agent stops.
	tk, _ = c.OpenTerminal(ctx, host, TerminalOpen{ID: plain, Args: []string{"sh"}, Env: []string{"PS1=$ "}})
	conn, err = c.StartTerminal(ctx, host, TerminalStart{ID: plain, Session: tk.Session, Token: tk.Token})
	if err != nil {
		t.Fatal(err)
	}
	scr = runtimetest.Watch(conn)
	scr.Expect(t, 0, "$ ")
	a.Close()
	scr.Ended(t)
	if err := scr.Err(); err != nil {
		t.Fatalf("the session ended with %v", err)
	}
	if code, _ := conn.Exit(); code != 128+1 {
		t.Errorf("a shell hung up on exited %d", code)
	}
}

func running(list []runtime.State, id string) bool {
	for _, st := range list {
		if st.ID == id {
			return st.Status == runtime.Running
		}
	}
	return false
}

// TestPendingTerminalsBounded: past maxPending sessions waiting for their
// websocket, opening one more is ErrInUse; expired ones make room again.
func TestPendingTerminalsBounded(t *testing.T) {
	ts := &terminals{pending: map[string]*ticket{}, live: map[string]*session{}}
	projects := maxPending/maxPendingPerProject + 1 // none at its own bound
	of := func(i int) *ticket {
		return &ticket{TerminalOpen: TerminalOpen{Project: fmt.Sprint("p", i%projects)}, token: "t", expires: time.Now().Add(TicketTTL)}
	}
	for i := range maxPending {
		if _, err := ts.add(of(i)); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if _, err := ts.add(of(maxPending)); !errors.Is(err, runtime.ErrInUse) {
		t.Fatalf("one past the bound: %v", err)
	}
	for _, tk := range ts.pending {
		tk.expires = time.Now().Add(-time.Second)
		break
	}
	if _, err := ts.add(of(0)); err != nil {
		t.Fatalf("after one expired: %v", err)
	}
}

// TestPendingTerminalsPerProject: one project's waiting sessions stop at
// maxPendingPerProject; another project still gets one.
func TestPendingTerminalsPerProject(t *testing.T) {
	ts := &terminals{pending: map[string]*ticket{}, live: map[string]*session{}}
	of := func(project string) *ticket {
		return &ticket{TerminalOpen: TerminalOpen{Project: project}, token: "t", expires: time.Now().Add(TicketTTL)}
	}
	for i := range maxPendingPerProject {
		if _, err := ts.add(of("greedy")); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if _, err := ts.add(of("greedy")); !errors.Is(err, runtime.ErrInUse) {
		t.Fatalf("one past the project's bound: %v", err)
	}
	if _, err := ts.add(of("other")); err != nil {
		t.Fatalf("another project: %v", err)
	}
}
