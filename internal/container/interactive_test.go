package container

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/monostack/monostack/internal/agent"
	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runc/runctest"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

// The test binary is its own shim, as monostack is (`monostack shim`), for
// the real host of the interactive tests.
const shimCommand = "__container_shim"

func TestMain(m *testing.M) {
	runctest.ShimMain(shimCommand)
	os.Exit(m.Run())
}

// terminalHosts are the harness's hosts, whose containers' terminals are
// those of containers of the same ids on a real host: a host agent on the
// runc runtime, reached over the bus as internal/app does.
type terminalHosts struct {
	*fakeHosts
	client *agent.ComputeClient
	host   string
}

func (h terminalHosts) OpenTerminal(ctx context.Context, host, project, id string, args []string) (string, string, error) {
	tk, err := h.client.OpenTerminal(ctx, h.host, agent.TerminalOpen{ID: id, Project: project, Args: args, Attach: args == nil})
	return tk.Session, tk.Token, err
}

func (h terminalHosts) StartTerminal(ctx context.Context, host, id, session, token string) (io.ReadWriteCloser, error) {
	return h.client.StartTerminal(ctx, h.host, agent.TerminalStart{ID: id, Session: session, Token: token})
}

func (h terminalHosts) RefuseTerminal(ctx context.Context, host, id, session, token string) error {
	return h.client.RefuseTerminal(ctx, h.host, agent.TerminalStart{ID: id, Session: session, Token: token})
}

func (h terminalHosts) ResizeTerminal(ctx context.Context, host, id, session string, rows, cols int) error {
	return h.client.ResizeTerminal(ctx, h.host, agent.TerminalResize{ID: id, Session: session,
		Size: runtime.WindowSize{Rows: uint16(rows), Cols: uint16(cols)}})
}

type busyboxImages struct{ tar []byte }

func (b busyboxImages) OpenImage(ctx context.Context, id string) (io.ReadCloser, runtime.ImageFormat, error) {
	return io.NopCloser(bytes.NewReader(b.tar)), runtime.ImageFormat{Kind: runtime.KindRootfsTar}, nil
}

// withTerminals restarts tc's service on hosts whose terminals are real
// (see terminalHosts), and returns the real host's agent client and name.
func withTerminals(t *testing.T, tc *testCloud) (*agent.ComputeClient, string) {
	t.Helper()
	rt := runctest.New(t, shimCommand)
	b, err := bus.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	host := "real-" + runtimetest.NewID()[:8]
	a := agent.NewCompute(host, b, rt, busyboxImages{runtimetest.DefaultImage(t)}, t.TempDir())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	client := &agent.ComputeClient{Bus: b}

	tc.svc.Close()
	svc, err := New(context.Background(), tc.DB, tc.cfg, tc.images, tc.nets, terminalHosts{tc.hosts, client, host}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	tc.svc = svc
	tc.Mount("/container", svc.Router(tc.Identity, tc.Identity.URL(), nil))
	return client, host
}

// wsDial connects to a session's websocket as zunclient does (its Origin
// is the URL's host).
func wsDial(t *testing.T, rawURL string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(protocols) == 0 {
		protocols = []string{"binary", "base64"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, rawURL, &websocket.DialOptions{Subprotocols: protocols,
		HTTPHeader: http.Header{"Origin": {"http://" + u.Host}}})
}

// wsScreen reads a websocket's messages, in the background, into what
// the terminal shows, until the server closes it.
type wsScreen struct {
	ws   *websocket.Conn
	b64  bool
	mu   sync.Mutex
	buf  []byte
	at   int // what expect has consumed
	err  error
	done chan struct{}
}

func watchWS(t *testing.T, ws *websocket.Conn, b64 bool) *wsScreen {
	s := &wsScreen{ws: ws, b64: b64, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			typ, data, err := ws.Read(context.Background())
			if err == nil && (typ == websocket.MessageText) != b64 {
				err = fmt.Errorf("a %v message", typ)
			}
			if err == nil && b64 {
				data, err = base64.StdEncoding.DecodeString(string(data))
			}
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			// See the runc runtime's test: "\r\r\n" is "\r\n" on a terminal.
			s.buf = bytes.ReplaceAll(append(s.buf, data...), []byte("\r\r\n"), []byte("\r\n"))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	return s
}

// find looks for want after what expect consumed, within d.
func (s *wsScreen) find(want string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		j := bytes.Index(s.buf[s.at:], []byte(want))
		if j >= 0 {
			s.at += j + len(want)
		}
		s.mu.Unlock()
		if j >= 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func (s *wsScreen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf)
}

// expect waits until the terminal shows want.
func (s *wsScreen) expect(t *testing.T, want string) {
	t.Helper()
	if !s.find(want, 20*time.Second) {
		t.Fatalf("the terminal never showed %q; it shows:\n%q", want, s.String())
	}
}

// sized types "stty size" until the terminal shows the size rows x cols
// (a resize of a running terminal reaches it a moment later).
func (s *wsScreen) sized(t *testing.T, rows, cols int) {
	t.Helper()
	for i := 0; i < 40; i++ {
		s.send(t, "stty size\r")
		if s.find(fmt.Sprintf("\r\n%d %d\r\n", rows, cols), 500*time.Millisecond) {
			return
		}
	}
	t.Fatalf("the terminal never had the size %d x %d; it shows:\n%q", rows, cols, s.String())
}

// ended waits until the server closes the websocket, normally.
func (s *wsScreen) ended(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the websocket did not end; the terminal shows:\n%q", s.String())
	}
	if websocket.CloseStatus(s.err) != websocket.StatusNormalClosure {
		t.Fatalf("the websocket ended with %v", s.err)
	}
}

func (s *wsScreen) send(t *testing.T, text string) {
	t.Helper()
	typ, data := websocket.MessageBinary, []byte(text)
	if s.b64 {
		typ, data = websocket.MessageText, []byte(base64.StdEncoding.EncodeToString(data))
	}
	if err := s.ws.Write(context.Background(), typ, data); err != nil {
		t.Fatal(err)
	}
}

// TestInteractive: `appcontainer exec --interactive` and `appcontainer
// attach` against a real host: the answers zunclient reads, the websocket
// it opens, execute_resize and resize, a token good once, origins, a
// client that goes away.
func TestInteractive(t *testing.T) {
	tc := newTestCloud(t)
	client, host := withTerminals(t, tc)
	ctx := context.Background()
	ct := tc.create(t, tc.Demo, true, map[string]any{"name": "box", "command": []string{"sh"}, "interactive": true})
	id := ct["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	t.Cleanup(func() { tc.remove(t, tc.Demo, id) })
	// The same container on the real host, its init a shell on a terminal.
	if _, err := client.Ensure(ctx, host, agent.ServerRequest{Spec: runtime.Spec{ID: id, Image: "busybox",
		Process: runtime.Process{Args: []string{"sh"}, Env: []string{"PS1=# "}, Terminal: true}}, Running: true}); err != nil {
		t.Fatal(err)
	}

	// exec --interactive: run=False, interactive=True.
	res := must(t, 200, tc.do(t, "POST", "/v1/containers/box/execute?command=%2Fbin%2Fsh&interactive=True&run=False", tc.Demo, nil)).JSON(t)
	execID, _ := res["exec_id"].(string)
	proxy, _ := res["proxy_url"].(string)
	if len(execID) != 64 || res["output"] != nil || res["exit_code"] != nil || len(res) != 4 {
		t.Fatalf("execute answered %v", res)
	}
	u, err := url.Parse(proxy)
	if err != nil || u.Scheme != "ws" || "http://"+u.Host != tc.URL() || u.Path != "/container/websocket" ||
		u.Query().Get("uuid") != id || u.Query().Get("exec_id") != execID || u.Query().Get("token") == "" {
		t.Fatalf("proxy_url %q", proxy)
	}
	// The client sizes the terminal right after it connects; it may come
	// first.
	must(t, 200, tc.do(t, "POST", "/v1/containers/box/execute_resize?exec_id="+execID+"&w=100&h=30", tc.Demo, nil))
	ws, _, err := wsDial(t, proxy)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Subprotocol() != "binary" {
		t.Errorf("subprotocol %q", ws.Subprotocol())
	}
	scr := watchWS(t, ws, false)
	scr.send(t, "stty size; echo $((6*7))\r")
	scr.expect(t, "30 100\r\n42\r\n")
	must(t, 200, tc.do(t, "POST", "/v1/containers/box/execute_resize?exec_id="+execID+"&w=120&h=40", tc.Demo, nil))
	scr.sized(t, 40, 120)
	scr.send(t, "exit 3\r")
	scr.ended(t)
	// The token was good once.
	if _, resp, err := wsDial(t, proxy); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("a used token: %v %v", resp, err)
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/box/execute_resize?exec_id="+execID+"&w=1&h=1", tc.Demo, nil), 400,
		"container.invalid", "no such exec instance: "+execID)

	// Another origin is refused (and does not use the token); a client
	// that goes away hangs the shell up.
	res = must(t, 200, tc.do(t, "POST", "/v1/containers/box/execute?command=sh&interactive=true&run=false", tc.Demo, nil)).JSON(t)
	proxy = res["proxy_url"].(string)
	ctxDial, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, resp, err := websocket.Dial(ctxDial, proxy, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example:80"}}})
	cancel()
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("another origin: %v %v", resp, err)
	}
	ws, _, err = wsDial(t, proxy)
	if err != nil {
		t.Fatal(err)
	}
	scr = watchWS(t, ws, false)
	scr.send(t, "echo $$ > /tmp/shell.pid; echo started\r")
	scr.expect(t, "started\r\n")
	ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the hung-up shell to go", func() bool {
		r, err := client.Exec(ctx, host, agent.ExecRequest{ID: id, Args: []string{"sh", "-c", "kill -0 $(cat /tmp/shell.pid)"}})
		return err == nil && r.ExitCode != 0
	})

	// attach: a URL without exec_id; the base64 subprotocol; resize.
	attach := must(t, 200, tc.do(t, "GET", "/v1/containers/box/attach", tc.Demo, nil))
	var aurl string
	if err := json.Unmarshal(attach.Body, &aurl); err != nil {
		t.Fatalf("attach answered %s", attach.Body)
	}
	u, _ = url.Parse(aurl)
	if u.Path != "/container/websocket" || u.Query().Get("uuid") != id || u.Query().Has("exec_id") || u.Query().Get("token") == "" {
		t.Fatalf("attach URL %q", aurl)
	}
	ws, _, err = wsDial(t, aurl, "base64")
	if err != nil {
		t.Fatal(err)
	}
	scr = watchWS(t, ws, true)
	must(t, 200, tc.do(t, "POST", "/v1/containers/box/resize?h=20&w=60", tc.Demo, nil))
	scr.sized(t, 20, 60)
	ws.Close(websocket.StatusNormalClosure, "")
	// Detached, it runs on; attached again, its exit ends the session.
	attach = must(t, 200, tc.do(t, "GET", "/v1/containers/box/attach", tc.Demo, nil))
	json.Unmarshal(attach.Body, &aurl)
	ws, _, err = wsDial(t, aurl)
	if err != nil {
		t.Fatal(err)
	}
	scr = watchWS(t, ws, false)
	scr.send(t, "echo still-$((1+1))\r")
	scr.expect(t, "still-2\r\n")
	scr.send(t, "exit\r")
	scr.ended(t)

	// Someone else's container is not found; a bad token is refused.
	other, _, _ := tc.AddUser("other-"+newUUID()[:8], "other-project-"+newUUID()[:8], "member")
	zunError(t, tc.do(t, "GET", "/v1/containers/box/attach", other, nil), 404, "", "")
	bad := strings.Replace(aurl, "token=", "token=x", 1)
	if _, resp, err := wsDial(t, bad); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("a bad token: %v %v", resp, err)
	}
}

// TestInteractiveErrors: what execute, attach and the resizes refuse, as
// Zun does, on any host.
func TestInteractiveErrors(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "plain")
	defer tc.remove(t, tc.Demo, id)
	zunError(t, tc.do(t, "GET", "/v1/containers/plain/attach", tc.Demo, nil), 400, "container.no-interactive-flag",
		"Container doesn't support to be attached, please check the interactive set properly")
	for _, q := range []string{"exec_id=abc&h=1&w=1", "h=1&w=1", "exec_id=" + strings.Repeat("A", 64), "exec_id=" + strings.Repeat("a", 65),
		"exec_id=" + strings.Repeat("a", 64) + "&h=x", "exec_id=" + strings.Repeat("a", 64) + "&w=-1", "exec_id=" + strings.Repeat("a", 64) + "&other=1"} {
		zunError(t, tc.do(t, "POST", "/v1/containers/plain/execute_resize?"+q, tc.Demo, nil), 400, "container.schema-validation-error", "")
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/plain/resize?h=1&w=1&exec_id=x", tc.Demo, nil), 400, "container.schema-validation-error", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/plain/resize?h=1.5", tc.Demo, nil), 400, "container.schema-validation-error", "")
	// The harness's host has no terminals.
	zunError(t, tc.do(t, "POST", "/v1/containers/plain/execute?command=sh&interactive=true&run=false", tc.Demo, nil), 400, "container.invalid-value", "")
	// Not running: 409, as a plain exec.
	tc.action(t, tc.Demo, id, "stop")
	tc.waitStatus(t, tc.Demo, id, stStopped)
	zunError(t, tc.do(t, "POST", "/v1/containers/plain/execute?command=sh&interactive=true&run=false", tc.Demo, nil), 409, "container.invalid-state-exception", "")
	zunError(t, tc.do(t, "GET", "/v1/containers/plain/attach", tc.Demo, nil), 409, "container.invalid-state-exception",
		"Cannot attach container "+id+" in Stopped state")
	zunError(t, tc.do(t, "POST", "/v1/containers/plain/resize?h=1&w=1", tc.Demo, nil), 409, "container.invalid-state-exception", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/plain/execute_resize?exec_id="+strings.Repeat("a", 64), tc.Demo, nil), 409,
		"container.invalid-state-exception", "")
	// The websocket without a token, or of no container.
	for _, q := range []string{"", "?uuid=" + id, "?token=x&uuid=" + newUUID()} {
		res := tc.do(t, "GET", "/websocket"+q, "", nil)
		zunError(t, res, 403, "container.invalid-websocket-token", "Websocket token is invalid")
	}
}

func TestIncompleteTail(t *testing.T) {
	for _, c := range []struct {
		s    string
		want int
	}{
		{"", 0}, {"abc", 0}, {"é", 0}, {"a\xc3", 1}, {"€", 0}, {"a\xe2\x82", 2}, {"a\xe2", 1},
		{"😀", 0}, {"\xf0\x9f\x98", 3}, {"\xf0\x9f", 2}, {"x\x80", 0}, {"\xff", 0},
	} {
		if got := incompleteTail([]byte(c.s)); got != c.want {
			t.Errorf("incompleteTail(%q) = %d, want %d", c.s, got, c.want)
		}
	}
}

// TestInteractiveTTYSpec: as Zun asks Docker, tty gives the init a
// terminal and interactive keeps its stdin open; before microversion 1.36
// (no tty field) an interactive container gets a terminal too.
func TestInteractiveTTYSpec(t *testing.T) {
	tc := newTestCloud(t)
	for _, c := range []struct {
		version          string
		interactive, tty bool
		terminal, openIn bool
	}{
		{latest, true, true, true, true},
		{latest, true, false, false, true}, // docker run -i
		{latest, false, true, true, false}, // docker run -t
		{latest, false, false, false, false},
		{"container 1.35", true, false, true, true},
	} {
		body := map[string]any{"image": "busybox", "command": []string{"sh"}, "interactive": c.interactive}
		if c.version == latest {
			body["tty"] = c.tty
		}
		ct := must(t, 202, tc.doV(t, c.version, "POST", "/v1/containers", tc.Demo, body)).JSON(t)
		id := ct["uuid"].(string)
		tc.waitStatus(t, tc.Demo, id, stCreated)
		p := tc.hosts.spec(id).Process
		if p.Terminal != c.terminal || p.OpenStdin != c.openIn {
			t.Errorf("%s interactive=%v tty=%v: terminal %v, open stdin %v; want %v, %v",
				c.version, c.interactive, c.tty, p.Terminal, p.OpenStdin, c.terminal, c.openIn)
		}
		tc.remove(t, tc.Demo, id)
	}
}
