package container

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

// Interactive sessions: `openstack appcontainer exec --interactive` and
// `openstack appcontainer attach`.
//
// As in Zun, the API hands out a websocket URL carrying a one-time token,
// and the client connects to it: POST execute with run=false answers
// {"output": null, "exit_code": null, "exec_id": ID, "proxy_url": URL}
// with URL ws://HOST/container/websocket?token=T&uuid=C&exec_id=ID, and
// GET attach answers the URL (ws://…?token=T&uuid=C) as a JSON string.
// Zun serves the websocket from a proxy of its own (zun-wsproxy, port
// 6784); here the API's own port serves it, under the service's prefix,
// so the URL is built from the request as the service's links are (the
// scheme and host the client used; wss behind a proxy that says
// X-Forwarded-Proto: https).
//
// The client sends no token header on the websocket: the URL's token is
// the credential. It is random, bound to the container and the exec id,
// good once and for a minute (agent.TicketTTL), and kept by the agent of
// the container's host, which checks it when the websocket connects
// (Terminals.StartTerminal); a wrong, used or late token is a 403 before
// the websocket is accepted, the same 403 whether the container exists
// or not and whatever its state (only a good token learns that the
// container is not running: Zun's 409). The Origin header, when a
// browser sends one, must name the host the client reached, as Zun's
// proxy checks.
//
// On the websocket, the client's binary (or, with the "base64"
// subprotocol, base64 text) messages are typed into the terminal, and
// what the terminal shows comes back as binary messages; the websocket
// is closed when the session ends (the exec'd process exited, the
// container stopped) and the session is hung up on when the client goes.
// execute_resize (exec) and resize (attach) set the terminal's size, as
// the client does at connect and on SIGWINCH.
//
// Unlike Docker's, an exec made with run=false always has a terminal,
// interactive or not (zunclient only asks for one with --interactive).

// Terminals runs interactive sessions on hosts; Hosts that are one serve
// them (internal/app's, through the agents).
type Terminals interface {
	// OpenTerminal opens a session in container id of project on host:
	// an exec of args on a terminal of its own, or, when args is nil,
	// attaching to the container's terminal. It returns the session's id
	// (the exec id) and its one-time token.
	OpenTerminal(ctx context.Context, host, project, id string, args []string) (session, token string, err error)
	// StartTerminal starts the session the token opened (session may be
	// empty for an attach): what is read is what the terminal shows
	// (io.EOF when the session ends), what is written is typed in, Close
	// hangs up. The token is checked before anything about the container:
	// a token that does not start a session is runtime.ErrNotFound,
	// whatever the container's state; a good one for a container that is
	// not running is runtime.ErrState.
	StartTerminal(ctx context.Context, host, id, session, token string) (io.ReadWriteCloser, error)
	// RefuseTerminal takes the token and starts nothing, for a container
	// the cloud says is not running: runtime.ErrState for a good token,
	// runtime.ErrNotFound for a bad one.
	RefuseTerminal(ctx context.Context, host, id, session, token string) error
	// ResizeTerminal sets the size of an exec's terminal (session), or of
	// the container's own (session ""). An unknown session is
	// runtime.ErrNotFound.
	ResizeTerminal(ctx context.Context, host, id, session string, rows, cols int) error
}

// websocketPath is where the websocket is served, under /container.
const websocketPath = "/websocket"

func (s *Service) terminals() (Terminals, error) {
	ts, ok := s.hosts.(Terminals)
	if !ok {
		return nil, api.BadRequest("Interactive sessions (a websocket console) are not available on this cloud; run the command without --interactive.").WithType("invalid-value")
	}
	return ts, nil
}

// websocketURL is the URL of the websocket with query q, as the client
// reached us.
func websocketURL(r *http.Request, q url.Values) string {
	base := api.BaseURL(r)
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		base = "wss://" + rest
	} else {
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	// The order Zun writes them in: token, uuid, exec_id.
	parts := []string{"token=" + url.QueryEscape(q.Get("token")), "uuid=" + url.QueryEscape(q.Get("uuid"))}
	if id := q.Get("exec_id"); id != "" {
		parts = append(parts, "exec_id="+url.QueryEscape(id))
	}
	return base + "/container" + websocketPath + "?" + strings.Join(parts, "&")
}

// executeInteractive is execute with run=false: a session opened for the
// websocket.
func (s *Service) executeInteractive(w http.ResponseWriter, r *http.Request, ct Container, args []string) error {
	ts, err := s.terminals()
	if err != nil {
		return err
	}
	session, token, err := ts.OpenTerminal(r.Context(), ct.Host, ct.ProjectID, ct.UUID, args)
	if err != nil {
		return hostError(err, ct, "execute")
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"output": nil, "exit_code": nil, "exec_id": session,
		"proxy_url": websocketURL(r, url.Values{"token": {token}, "uuid": {ct.UUID}, "exec_id": {session}})})
	return nil
}

// handleAttach answers the websocket URL of the container's terminal.
func (s *Service) handleAttach(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	if ct.Status != stRunning {
		return invalidState(ct.UUID, "attach", ct.Status)
	}
	if !ct.Interactive {
		return api.BadRequest("Container doesn't support to be attached, please check the interactive set properly").WithType("no-interactive-flag")
	}
	ts, err := s.terminals()
	if err != nil {
		return err
	}
	_, token, err := ts.OpenTerminal(ctx, ct.Host, ct.ProjectID, ct.UUID, nil)
	if err != nil {
		return hostError(err, ct, "attach")
	}
	api.WriteJSON(w, http.StatusOK, websocketURL(r, url.Values{"token": {token}, "uuid": {ct.UUID}}))
	return nil
}

var execIDPattern = regexp.MustCompile(`^[a-f0-9]*$`)

// sizeQuery reads h and w (and exec_id when execID) as Zun's query
// schemas have them: positive integers, a 64-hex exec id, nothing else.
func sizeQuery(r *http.Request, execID bool) (rows, cols int, id string, err error) {
	q := r.URL.Query()
	for k := range q {
		if k != "h" && k != "w" && !(execID && k == "exec_id") {
			return 0, 0, "", schemaError("Invalid input for query parameters. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if execID {
		id = q.Get("exec_id")
		switch {
		case !q.Has("exec_id"):
			return 0, 0, "", schemaError("Invalid input for query parameters 'exec_id'. 'exec_id' is a required property")
		case len(id) < 64:
			return 0, 0, "", schemaError("Invalid input for query parameters 'exec_id'. Value: '%s'. '%s' is too short", id, id)
		case len(id) > 64:
			return 0, 0, "", schemaError("Invalid input for query parameters 'exec_id'. Value: '%s'. '%s' is too long", id, id)
		case !execIDPattern.MatchString(id):
			return 0, 0, "", schemaError("Invalid input for query parameters 'exec_id'. Value: '%s'. '%s' does not match '^[a-f0-9]*$'", id, id)
		}
	}
	var n [2]int
	for i, k := range []string{"h", "w"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		x, perr := strconv.Atoi(v)
		if perr != nil || x < 0 || strings.TrimLeft(v, "0123456789") != "" {
			return 0, 0, "", schemaError("Invalid input for query parameters '%s'. Value: '%s'. '%s' does not match '^[0-9]*$'", k, v, v)
		}
		n[i] = min(x, 1<<16-1)
	}
	return n[0], n[1], id, nil
}

// handleExecuteResize sets the size of an interactive exec's terminal.
func (s *Service) handleExecuteResize(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return s.resizeTerminal(w, r, true)
}

// handleResize sets the size of the container's terminal.
func (s *Service) handleResize(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return s.resizeTerminal(w, r, false)
}

func (s *Service) resizeTerminal(w http.ResponseWriter, r *http.Request, exec bool) error {
	ctx := r.Context()
	rows, cols, id, err := sizeQuery(r, exec)
	if err != nil {
		return err
	}
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	action := "resize"
	if exec {
		action = "execute_resize"
	}
	if ct.Status != stRunning {
		return invalidState(ct.UUID, action, ct.Status)
	}
	ts, err := s.terminals()
	if err != nil {
		return err
	}
	err = ts.ResizeTerminal(ctx, ct.Host, ct.UUID, id, rows, cols)
	if exec && errors.Is(err, runtime.ErrNotFound) {
		return api.BadRequest("no such exec instance: %s", id).WithType("invalid")
	}
	if err != nil {
		return hostError(err, ct, action)
	}
	api.WriteJSON(w, http.StatusOK, nil)
	return nil
}

// errBadWebsocketToken is the one answer to a websocket whose token does
// not start a session: missing, wrong, used or late, for a container
// that exists or not, whatever its state.
func errBadWebsocketToken() error {
	return api.Forbidden("Websocket token is invalid").WithType("invalid-websocket-token")
}

// handleWebsocket connects a client to the session its URL's token
// opened, and relays until either side ends.
//
// The token is the caller's only credential, so nothing about the
// container (whether it exists, its state) is told before the token has
// been accepted: it is checked by the agent of the container's host
// (StartTerminal), before the host looks at the container. Only then does
// a container that is not running get Zun's 409.
func (s *Service) handleWebsocket(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	token, uuid, execID := q.Get("token"), q.Get("uuid"), q.Get("exec_id")
	if token == "" || uuid == "" {
		return errBadWebsocketToken()
	}
	if err := checkOrigin(r); err != nil {
		return err
	}
	// A cloud without terminals, and a container that does not exist or
	// has no host, have no session a token could start.
	ts, err := s.terminals()
	if err != nil {
		return errBadWebsocketToken()
	}
	ct, err := s.loadContainer(ctx, s.db, uuid)
	if err != nil {
		if api.IsNotFound(err) {
			return errBadWebsocketToken()
		}
		return err
	}
	if ct.Host == "" {
		return errBadWebsocketToken()
	}
	action := "attach"
	if execID != "" {
		action = "execute"
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ct.Status != stRunning {
		// Not running, says the cloud: only the token's holder may hear
		// it, and nothing is started in the container meanwhile.
		err := ts.RefuseTerminal(sctx, ct.Host, ct.UUID, execID, token)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			return errBadWebsocketToken()
		case err == nil || errors.Is(err, runtime.ErrState):
			return invalidState(ct.UUID, action, ct.Status)
		}
		return hostError(err, ct, action)
	}
	term, err := ts.StartTerminal(sctx, ct.Host, ct.UUID, execID, token)
	if errors.Is(err, runtime.ErrNotFound) {
		return errBadWebsocketToken()
	}
	// The host took the token: a container that is not running there
	// (runtime.ErrState) is Zun's 409. (A host that cannot be reached
	// could not check it: a server error, as any call to it.)
	if err != nil {
		return hostError(err, ct, action)
	}
	defer term.Close()
	// The origin is checked above, by host name as Zun does (the client
	// sends "http://HOST:PORT" whatever it reached).
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary", "base64"}, InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept answered the client
	}
	ws.SetReadLimit(1 << 20)
	relay(context.WithoutCancel(ctx), ws, term, ws.Subprotocol() == "base64")
	return nil
}

// relay copies the terminal's output to the websocket and the websocket's
// messages to the terminal until the session ends (the websocket is then
// closed) or the client goes (the session is then hung up on).
func relay(ctx context.Context, ws *websocket.Conn, term io.ReadWriteCloser, b64 bool) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer term.Close()
		for {
			typ, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if b64 && typ == websocket.MessageText {
				if data, err = base64.StdEncoding.DecodeString(string(data)); err != nil {
					continue
				}
			}
			if _, err := term.Write(data); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	var held int // bytes of an incomplete UTF-8 sequence kept for the next message
	for {
		n, err := term.Read(buf[held:])
		n += held
		// zunclient decodes each message as UTF-8: a character is never
		// split across two.
		held = incompleteTail(buf[:n])
		if err != nil {
			held = 0
		}
		if out := buf[:n-held]; len(out) > 0 {
			typ := websocket.MessageBinary
			if b64 {
				typ, out = websocket.MessageText, []byte(base64.StdEncoding.EncodeToString(out))
			}
			if werr := ws.Write(ctx, typ, out); werr != nil {
				break
			}
		}
		copy(buf, buf[n-held:n])
		if err != nil {
			break
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
	term.Close()
	wg.Wait()
}

// incompleteTail is how many bytes at the end of b begin a UTF-8
// character that is not complete (0 to 3).
func incompleteTail(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0 // ASCII: complete
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return i
			}
			return 0
		}
	}
	return 0
}

// checkOrigin refuses a websocket whose Origin (browsers send one) names
// another host than the one the client reached.
func checkOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Hostname() == "" || u.Scheme == "" {
		return api.Forbidden("Origin header not valid.").WithType("validation-error")
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !strings.EqualFold(u.Hostname(), strings.Trim(host, "[]")) {
		return api.Forbidden("Origin header does not match this host.").WithType("validation-error")
	}
	return nil
}
