package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/runtime"
)

// Interactive sessions: a shell exec'd in a container on a terminal
// (`openstack appcontainer exec --interactive`) and attaching to the
// terminal of a container's init (`openstack appcontainer attach`).
//
// A session is opened, then started, as Zun's exec_create and exec_start
// are. Opening (TerminalOpen) only makes a one-time ticket: a session id
// (the exec id the API returns), a random token, and how long it may wait
// to start (TicketTTL); it is kept by the agent of the container's host,
// so that any API server can start it. Starting it (TerminalStart, when
// the client's websocket connects) takes the ticket, runs the process on
// a terminal (runtime.Terminals) and relays the terminal's bytes over
// the bus, on two subjects of the session ("agent.<host>.terminal.<stream>.in"
// and ".out") that the caller named and subscribed to first.
//
// The bus is request/reply, so the byte stream is made of frames on those
// subjects (stream): numbered, so that a lost frame breaks the session
// instead of corrupting it; acknowledged, so that neither end sends more
// than streamWindow bytes ahead of what the other has consumed (a
// terminal printing fast is slowed down to what the websocket takes,
// never buffered without bound); and kept alive by pings, so that a
// session whose other end died (an API server restarted) ends within
// streamTimeout. The bus carries it whether the API and the agent share a
// process (`monostack up`) or not (`monostack server` and `monostack
// agent` on other hosts), which a unix socket between them would not.

// TicketTTL is how long an opened session may wait to be started.
const TicketTTL = time.Minute

// TerminalOpen asks for a session in a running container: an exec of
// Args on a new terminal, or, with Attach, the container's own terminal.
type TerminalOpen struct {
	ID string `json:"id"`
	// Project owns the container: each project may have only so many
	// sessions waiting on a host (maxPendingPerProject).
	Project string   `json:"project,omitempty"`
	Args    []string `json:"args,omitempty"`
	Env     []string `json:"env,omitempty"`
	Cwd     string   `json:"cwd,omitempty"`
	User    string   `json:"user,omitempty"`
	Attach  bool     `json:"attach,omitempty"`
}

// TerminalTicket is what starting a session takes.
type TerminalTicket struct {
	// Session is the session's id: 64 hex digits, as a Docker exec id.
	Session string `json:"session"`
	// Token is the one-time secret that starts it.
	Token string `json:"token"`
}

// TerminalStart starts an opened session of container ID. Session may be
// left empty for an attach (the token names it).
type TerminalStart struct {
	ID      string `json:"id"`
	Session string `json:"session,omitempty"`
	Token   string `json:"token"`
	// Stream names the session's subjects; StartTerminal chooses it.
	Stream string `json:"stream"`
	// Refuse takes the token and starts nothing (RefuseTerminal): the
	// cloud says the container is not running.
	Refuse bool `json:"refuse,omitempty"`
}

// TerminalResize sets the size of a session's terminal: an exec's
// (Session), or the container's own (no Session).
type TerminalResize struct {
	ID      string             `json:"id"`
	Session string             `json:"session,omitempty"`
	Size    runtime.WindowSize `json:"size"`
}

// errNoSession: no such session, or a token that does not start it.
var errNoSession = fmt.Errorf("%w: no such terminal session, or a token that has been used or has expired", runtime.ErrNotFound)

func terminalSubject(host, stream, dir string) string {
	return "agent." + host + ".terminal." + stream + "." + dir
}

// terminals are the sessions of one agent.
type terminals struct {
	a *ComputeAgent

	mu      sync.Mutex
	pending map[string]*ticket  // by session id
	live    map[string]*session // by session id
}

type ticket struct {
	TerminalOpen
	token   string
	expires time.Time
	size    runtime.WindowSize
}

type session struct {
	id        string
	container string
	term      runtime.Terminal
	st        *stream
}

// terminalSubs serves the sessions' commands, side by side (a session
// starting does not wait for another); stopping them ends every session.
func (a *ComputeAgent) terminalSubs() []func() (func(), error) {
	t := &terminals{a: a, pending: map[string]*ticket{}, live: map[string]*session{}}
	return []func() (func(), error){
		func() (func(), error) {
			stop, err := bus.ServeBy(a.b, computeSubject(a.host, "terminal_open"), unkeyed[TerminalOpen], t.open)
			if err != nil {
				return nil, err
			}
			return func() { stop(); t.closeAll() }, nil
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "terminal_start"), unkeyed[TerminalStart], t.start)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "terminal_resize"), unkeyed[TerminalResize], t.resize)
		},
	}
}

func (t *terminals) runtime() (runtime.Terminals, error) {
	rt, ok := t.a.rt.(runtime.Terminals)
	if !ok {
		return nil, fmt.Errorf("%w: this host's runtime has no terminals", runtime.ErrInvalid)
	}
	return rt, nil
}

func (t *terminals) open(ctx context.Context, req TerminalOpen) (TerminalTicket, error) {
	rt, err := t.runtime()
	if err != nil {
		return TerminalTicket{}, err
	}
	if req.Attach {
		// Find out now whether it can be attached to, rather than when the
		// websocket connects.
		term, err := rt.AttachTerminal(ctx, req.ID)
		if err != nil {
			return TerminalTicket{}, err
		}
		term.Close()
	} else {
		if len(req.Args) == 0 {
			return TerminalTicket{}, fmt.Errorf("%w: no command", runtime.ErrInvalid)
		}
		st, err := t.a.rt.State(ctx, req.ID)
		if err != nil {
			return TerminalTicket{}, err
		}
		if st.Status != runtime.Running {
			return TerminalTicket{}, fmt.Errorf("%w: container %s is %s", runtime.ErrState, req.ID, st.Status)
		}
	}
	tk := &ticket{TerminalOpen: req, token: uuid.NewString(), expires: time.Now().Add(TicketTTL)}
	id, err := t.add(tk)
	if err != nil {
		return TerminalTicket{}, err
	}
	return TerminalTicket{Session: id, Token: tk.token}, nil
}

// maxPending bounds the sessions opened and not yet started on a host.
// Each waits a minute (TicketTTL) for its websocket, so a member opening
// execs in a loop would otherwise grow the agent without bound; and
// maxPendingPerProject keeps one project's loop from taking all of them
// from the others.
const (
	maxPending           = 1024
	maxPendingPerProject = 64
)

// add keeps tk until it is started or expires, under a new session id.
// Past maxPending waiting sessions it is runtime.ErrInUse (Zun's API says
// 409).
func (t *terminals) add(tk *ticket) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for k, p := range t.pending {
		if now.After(p.expires) {
			delete(t.pending, k)
		}
	}
	if len(t.pending) >= maxPending {
		return "", fmt.Errorf("%w: %d terminal sessions are waiting for their websocket on this host; try again in a minute",
			runtime.ErrInUse, maxPending)
	}
	mine := 0
	for _, p := range t.pending {
		if p.Project == tk.Project {
			mine++
		}
	}
	if mine >= maxPendingPerProject {
		return "", fmt.Errorf("%w: %d terminal sessions of this project are waiting for their websocket on this host; try again in a minute",
			runtime.ErrInUse, maxPendingPerProject)
	}
	t.pending[id] = tk
	return id, nil
}

// take removes and returns the ticket req names, if its token is right
// and it has not expired.
func (t *terminals) take(req TerminalStart) (string, *ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, tk := range t.pending {
		// An exec's by its id, an attach's by the token alone.
		if tk.ID != req.ID || (req.Session != "" && id != req.Session) || (req.Session == "" && !tk.Attach) {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(tk.token), []byte(req.Token)) != 1 {
			continue
		}
		delete(t.pending, id)
		if time.Now().After(tk.expires) {
			return "", nil
		}
		return id, tk
	}
	return "", nil
}

func (t *terminals) start(ctx context.Context, req TerminalStart) (struct{}, error) {
	rt, err := t.runtime()
	if err != nil {
		return struct{}{}, err
	}
	if req.Stream == "" && !req.Refuse {
		return struct{}{}, fmt.Errorf("%w: no stream", runtime.ErrInvalid)
	}
	id, tk := t.take(req)
	if tk == nil {
		return struct{}{}, errNoSession
	}
	if req.Refuse {
		return struct{}{}, fmt.Errorf("%w: the container is not running", runtime.ErrState)
	}
	var term runtime.Terminal
	if tk.Attach {
		term, err = rt.AttachTerminal(ctx, req.ID)
	} else {
		term, err = rt.ExecTerminal(ctx, req.ID, runtime.ExecSpec{Args: tk.Args, Env: tk.Env, Cwd: tk.Cwd, User: tk.User}, tk.size)
	}
	if err != nil {
		return struct{}{}, err
	}
	st, err := newStream(t.a.b, terminalSubject(t.a.host, req.Stream, "out"), terminalSubject(t.a.host, req.Stream, "in"))
	if err != nil {
		term.Close()
		return struct{}{}, err
	}
	s := &session{id: id, container: req.ID, term: term, st: st}
	t.mu.Lock()
	t.live[id] = s
	t.mu.Unlock()
	go t.relay(s)
	return struct{}{}, nil
}

// relay copies between the terminal and the stream until the terminal
// ends (its process exited, the container stopped) or the other end goes.
func (t *terminals) relay(s *session) {
	go func() {
		io.Copy(s.term, s.st)
		// The other end hung up, or went away: so do we.
		s.term.Close()
	}()
	buf := make([]byte, 16<<10)
	for {
		n, err := s.term.Read(buf)
		if n > 0 {
			if _, werr := s.st.Write(buf[:n]); werr != nil {
				s.term.Close()
			}
		}
		if err != nil {
			break
		}
	}
	code, err := s.term.Wait()
	s.term.Close()
	s.st.CloseWith(code, err)
	t.mu.Lock()
	delete(t.live, s.id)
	t.mu.Unlock()
}

func (t *terminals) resize(ctx context.Context, req TerminalResize) (struct{}, error) {
	if req.Session == "" {
		rt, err := t.runtime()
		if err != nil {
			return struct{}{}, err
		}
		term, err := rt.AttachTerminal(ctx, req.ID)
		if err != nil {
			return struct{}{}, err
		}
		defer term.Close()
		return struct{}{}, term.Resize(req.Size)
	}
	t.mu.Lock()
	if tk, ok := t.pending[req.Session]; ok && tk.ID == req.ID {
		// Not started yet: the terminal is made with this size.
		tk.size = req.Size
		t.mu.Unlock()
		return struct{}{}, nil
	}
	s, ok := t.live[req.Session]
	t.mu.Unlock()
	if !ok || s.container != req.ID {
		return struct{}{}, fmt.Errorf("%w: no such exec instance: %s", runtime.ErrNotFound, req.Session)
	}
	return struct{}{}, s.term.Resize(req.Size)
}

// closeAll ends every session: the agent stops.
func (t *terminals) closeAll() {
	t.mu.Lock()
	live := make([]*session, 0, len(t.live))
	for _, s := range t.live {
		live = append(live, s)
	}
	clear(t.pending)
	t.mu.Unlock()
	for _, s := range live {
		s.term.Close()
	}
}

// OpenTerminal opens a session on host (see TerminalOpen).
func (c *ComputeClient) OpenTerminal(ctx context.Context, host string, req TerminalOpen) (TerminalTicket, error) {
	return bus.Call[TerminalOpen, TerminalTicket](ctx, c.Bus, computeSubject(host, "terminal_open"), req)
}

// StartTerminal starts an opened session and returns its terminal: what
// is read from it is what the terminal shows, what is written is typed
// in; Close hangs up. req.Stream is chosen here.
func (c *ComputeClient) StartTerminal(ctx context.Context, host string, req TerminalStart) (*TerminalConn, error) {
	b := make([]byte, 16)
	rand.Read(b)
	req.Stream = hex.EncodeToString(b)
	st, err := newStream(c.Bus, terminalSubject(host, req.Stream, "in"), terminalSubject(host, req.Stream, "out"))
	if err != nil {
		return nil, err
	}
	if _, err := bus.Call[TerminalStart, struct{}](ctx, c.Bus, computeSubject(host, "terminal_start"), req); err != nil {
		st.abort()
		return nil, err
	}
	return &TerminalConn{st}, nil
}

// RefuseTerminal takes an opened session's token and starts nothing: for
// a container the cloud says is not running, whose answer (Zun's 409) is
// for the token's holder alone. A good token is runtime.ErrState (and
// used up), a bad one runtime.ErrNotFound, as StartTerminal would say.
func (c *ComputeClient) RefuseTerminal(ctx context.Context, host string, req TerminalStart) error {
	req.Refuse, req.Stream = true, ""
	_, err := bus.Call[TerminalStart, struct{}](ctx, c.Bus, computeSubject(host, "terminal_start"), req)
	return err
}

// ResizeTerminal sets the size of a session's terminal.
func (c *ComputeClient) ResizeTerminal(ctx context.Context, host string, req TerminalResize) error {
	_, err := bus.Call[TerminalResize, struct{}](ctx, c.Bus, computeSubject(host, "terminal_resize"), req)
	return err
}

// TerminalConn is the caller's end of a started session.
type TerminalConn struct{ st *stream }

// Read returns what the terminal shows; io.EOF once the session ended.
func (c *TerminalConn) Read(p []byte) (int, error) { return c.st.Read(p) }

// Write types p into the terminal.
func (c *TerminalConn) Write(p []byte) (int, error) { return c.st.Write(p) }

// Close hangs up.
func (c *TerminalConn) Close() error { return c.st.Close() }

// Exit is how the session ended, once Read returned io.EOF: the exec'd
// process's exit status (-1 for an attach), and why it could not run.
func (c *TerminalConn) Exit() (int, error) { return c.st.exit() }

// Stream tuning.
const (
	streamWindow  = 256 << 10 // bytes sent ahead of the other end's acknowledgement
	streamChunk   = 16 << 10  // bytes of data in a frame at most
	streamPing    = 10 * time.Second
	streamTimeout = 35 * time.Second // nothing heard: the other end is gone
)

// frame is one message of a stream. Every frame has the next Seq of its
// sender (from 1).
type frame struct {
	Seq  uint64 `json:"seq"`
	Data []byte `json:"data,omitempty"`
	// Ack: this many bytes of data have been consumed.
	Ack  uint64 `json:"ack,omitempty"`
	Ping bool   `json:"ping,omitempty"`
	// Close: the sender sends no more; from the agent, with how the
	// session ended.
	Close bool   `json:"close,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

var errStreamBroken = errors.New("terminal stream broken")

// stream is one end of a byte stream over two subjects of the bus: it
// sends frames on tx and takes the other end's from rx.
type stream struct {
	b     *bus.Bus
	tx    string
	unsub func()

	smu    sync.Mutex // frames go out in Seq order
	outSeq uint64

	mu        sync.Mutex
	cond      *sync.Cond
	in        [][]byte
	inSeq     uint64
	consumed  uint64 // bytes Read returned
	acked     uint64 // consumed bytes we acknowledged
	sent      uint64 // bytes of data sent
	peerAcked uint64 // bytes the other end consumed
	heard     time.Time
	said      time.Time
	peerDone  bool  // the other end closed
	code      int   // its exit status (-1 unknown)
	peerErr   error // why its process could not run
	closed    bool  // we closed
	broken    error // a frame lost, or the other end silent
	stop      chan struct{}
}

func newStream(b *bus.Bus, tx, rx string) (*stream, error) {
	s := &stream{b: b, tx: tx, code: -1, heard: time.Now(), said: time.Now(), stop: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	unsub, err := bus.Subscribe(b, rx, s.receive)
	if err != nil {
		return nil, err
	}
	s.unsub = unsub
	go s.keepAlive()
	return s, nil
}

func (s *stream) receive(f frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cond.Broadcast()
	if s.closed || s.broken != nil || s.peerDone {
		return
	}
	if f.Seq != s.inSeq+1 {
		s.broken = fmt.Errorf("%w: frame %d after %d", errStreamBroken, f.Seq, s.inSeq)
		return
	}
	s.inSeq = f.Seq
	s.heard = time.Now()
	if len(f.Data) > 0 {
		s.in = append(s.in, f.Data)
	}
	if f.Ack > s.peerAcked {
		s.peerAcked = f.Ack
	}
	if f.Close {
		s.peerDone = true
		if f.Exit != nil {
			s.code = *f.Exit
		}
		if f.Error != "" {
			s.peerErr = fmt.Errorf("%w: %s", runtime.ErrExec, f.Error)
		}
	}
}

// send sends f with the next Seq.
func (s *stream) send(f frame) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.outSeq++
	f.Seq = s.outSeq
	s.mu.Lock()
	s.said = time.Now()
	s.mu.Unlock()
	return bus.Publish(s.b, s.tx, f)
}

// Read returns data the other end sent.
func (s *stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	for len(s.in) == 0 && !s.peerDone && !s.closed && s.broken == nil {
		s.cond.Wait()
	}
	if len(s.in) == 0 {
		defer s.mu.Unlock()
		if s.broken != nil && !s.closed {
			return 0, s.broken
		}
		return 0, io.EOF // the other end is done, or we are
	}
	n := copy(p, s.in[0])
	if n == len(s.in[0]) {
		s.in = s.in[1:]
	} else {
		s.in[0] = s.in[0][n:]
	}
	s.consumed += uint64(n)
	var ack uint64
	if s.consumed-s.acked >= streamWindow/4 || len(s.in) == 0 {
		ack, s.acked = s.consumed, s.consumed
	}
	s.mu.Unlock()
	if ack > 0 {
		s.send(frame{Ack: ack})
	}
	return n, nil
}

// Write sends p, waiting while the other end is a window behind.
func (s *stream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), streamChunk)]
		s.mu.Lock()
		for s.sent+uint64(len(chunk))-s.peerAcked > streamWindow && !s.closed && !s.peerDone && s.broken == nil {
			s.cond.Wait()
		}
		err := s.broken
		switch {
		case err != nil:
		case s.closed:
			err = io.ErrClosedPipe
		case s.peerDone:
			err = io.EOF
		}
		s.sent += uint64(len(chunk))
		s.mu.Unlock()
		if err != nil {
			return written, err
		}
		if err := s.send(frame{Data: chunk}); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// Close says we are done and stops listening.
func (s *stream) Close() error { return s.close(frame{Close: true}) }

// CloseWith is Close with how the session ended.
func (s *stream) CloseWith(code int, err error) error {
	f := frame{Close: true, Exit: &code}
	if err != nil {
		f.Error = err.Error()
	}
	return s.close(f)
}

func (s *stream) close(f frame) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	quiet := s.broken != nil
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.stop)
	var err error
	if !quiet {
		err = s.send(f)
	}
	s.unsub()
	return err
}

// abort stops listening without a word (the other end never started).
func (s *stream) abort() {
	s.mu.Lock()
	s.closed = true
	s.broken = errStreamBroken
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.stop)
	s.unsub()
}

func (s *stream) exit() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code, s.peerErr
}

// keepAlive pings the other end when we have been quiet, and breaks the
// stream when it has been.
func (s *stream) keepAlive() {
	tick := time.NewTicker(streamPing / 2)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		if s.peerDone {
			s.mu.Unlock()
			return
		}
		silent, quiet := time.Since(s.heard), time.Since(s.said)
		if silent > streamTimeout {
			s.broken = fmt.Errorf("%w: nothing heard for %v", errStreamBroken, silent.Round(time.Second))
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if quiet >= streamPing {
			s.send(frame{Ping: true})
		}
	}
}
