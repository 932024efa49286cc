// Package bus is how the control plane talks to host agents: NATS, embedded
// in-process for `monostack up` (no port is opened) or an external cluster
// for a scaled-out cloud. Messages are JSON; Call and Serve give typed
// request/reply on top of subjects.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/monostack/monostack/internal/lockmap"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Bus is a connection to the message bus, and the embedded server when there
// is one.
type Bus struct {
	srv *server.Server
	nc  *nats.Conn
	log *slog.Logger
}

// Embedded starts a NATS server inside this process that listens on no port
// and connects to it in-process.
func Embedded(log *slog.Logger) (*Bus, error) {
	srv, err := server.NewServer(&server.Options{DontListen: true, NoLog: true, NoSigs: true, MaxPayload: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("bus: embedded server did not start")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("monostack"))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: %w", err)
	}
	return &Bus{srv: srv, nc: nc, log: log}, nil
}

// Connect joins an external NATS cluster at url.
func Connect(url string, log *slog.Logger) (*Bus, error) {
	nc, err := nats.Connect(url, nats.Name("monostack"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	return &Bus{nc: nc, log: log}, nil
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() error {
	err := b.nc.Drain()
	b.nc.Close()
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	return err
}

// reply is the envelope of every answer: the value or an error text, with
// the kind of the error when it is one registered with RegisterKind.
type reply struct {
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
	Kind  string          `json:"kind,omitempty"`
}

// RemoteError is an error returned by the handler at the other end. It
// unwraps to the registered error of its kind, so that errors.Is works
// across the bus as in one process (runtime.ErrState stays ErrState).
type RemoteError struct {
	Msg  string
	kind error
}

func (e *RemoteError) Error() string { return e.Msg }
func (e *RemoteError) Unwrap() error { return e.kind }

var (
	kindsMu sync.RWMutex
	kinds   = map[string]error{}
)

// RegisterKind names a sentinel error so that a handler's error wrapping
// it is one wrapping it again at the caller's end.
func RegisterKind(name string, sentinel error) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	kinds[name] = sentinel
}

func kindOf(err error) string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	for name, sentinel := range kinds {
		if errors.Is(err, sentinel) {
			return name
		}
	}
	return ""
}

func kindNamed(name string) error {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	return kinds[name]
}

// Call sends req to subject and decodes the reply into a Resp. It fails with
// ctx's error on timeout and with a *RemoteError when the handler failed.
func Call[Req, Resp any](ctx context.Context, b *Bus, subject string, req Req) (Resp, error) {
	var zero Resp
	data, err := json.Marshal(req)
	if err != nil {
		return zero, err
	}
	msg, err := b.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return zero, fmt.Errorf("bus: %s: %w", subject, err)
	}
	var rep reply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return zero, fmt.Errorf("bus: %s: bad reply: %w", subject, err)
	}
	if rep.Error != "" {
		return zero, &RemoteError{Msg: rep.Error, kind: kindNamed(rep.Kind)}
	}
	var out Resp
	if len(rep.Value) > 0 {
		if err := json.Unmarshal(rep.Value, &out); err != nil {
			return zero, fmt.Errorf("bus: %s: bad reply: %w", subject, err)
		}
	}
	return out, nil
}

// Serve answers requests on subject with fn, one at a time (handlers are
// desired-state reconcilers; running them in order keeps them simple). The
// returned function unsubscribes.
func Serve[Req, Resp any](b *Bus, subject string, fn func(ctx context.Context, req Req) (Resp, error)) (func(), error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) {
		var req Req
		err := json.Unmarshal(m.Data, &req)
		respond(b, subject, m, req, err, fn)
	})
	if err != nil {
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

// MaxConcurrent bounds how many requests of one subject ServeBy runs at once.
const MaxConcurrent = 32

// ServeBy answers requests on subject with fn, concurrently, but one at a
// time per key(req) (a server's id: work on one resource never overlaps
// while 200 containers start at once, and a long exec does not hold up the
// rest of the host). An empty key is not serialized at all. Requests for
// one key that arrive together may run in either order: callers (Call)
// wait for each answer before they send the next.
func ServeBy[Req, Resp any](b *Bus, subject string, key func(Req) string, fn func(ctx context.Context, req Req) (Resp, error)) (func(), error) {
	var locks lockmap.Map
	slots := make(chan struct{}, MaxConcurrent)
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) {
		var req Req
		err := json.Unmarshal(m.Data, &req)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			if k := key(req); err == nil && k != "" {
				defer locks.Lock(k)()
			}
			respond(b, subject, m, req, err, fn)
		}()
	})
	if err != nil {
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

// respond runs fn on a decoded request (or reports why it could not be
// decoded) and sends the reply.
func respond[Req, Resp any](b *Bus, subject string, m *nats.Msg, req Req, decodeErr error, fn func(ctx context.Context, req Req) (Resp, error)) {
	var rep reply
	if decodeErr != nil {
		rep.Error = "bad request: " + decodeErr.Error()
	} else if out, err := fn(context.Background(), req); err != nil {
		rep.Error, rep.Kind = err.Error(), kindOf(err)
	} else if rep.Value, err = json.Marshal(out); err != nil {
		rep.Error = err.Error()
	}
	data, _ := json.Marshal(rep)
	if err := m.Respond(data); err != nil && b.log != nil {
		b.log.Warn("bus: reply failed", "subject", subject, "err", err)
	}
}

// Publish sends v on subject to whoever listens.
func Publish[T any](b *Bus, subject string, v T) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.nc.Publish(subject, data)
}

// Subscribe calls fn with each message on subject.
func Subscribe[T any](b *Bus, subject string, fn func(T)) (func(), error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) {
		var v T
		if err := json.Unmarshal(m.Data, &v); err != nil {
			if b.log != nil {
				b.log.Warn("bus: bad message", "subject", subject, "err", err)
			}
			return
		}
		fn(v)
	})
	if err != nil {
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}
