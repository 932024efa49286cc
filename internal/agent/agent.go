// Package agent is the host agent: one per host, it takes desired-state
// commands from the control plane over the bus, drives this host's drivers
// (today the datapath; compute's runtime and the block devices later) and
// answers with what is there. It holds no database credentials.
//
// Commands carry a host's complete desired state, so the agent is
// level-triggered: a lost or repeated message, a crash or a restart is
// mended by the next command, and the control plane resends periodically.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/runtime"
)

// NetworkSyncSubject is where a host's agent takes its network state.
func NetworkSyncSubject(host string) string { return "agent." + host + ".network.sync" }

// NetworkReply is the agent's answer to a network sync: what it observed
// after applying, and the apply error if any.
type NetworkReply struct {
	Observed datapath.Observed `json:"observed"`
	Error    string            `json:"error,omitempty"`
}

// Agent serves one host.
type Agent struct {
	host string
	b    *bus.Bus
	dp   datapath.Datapath
	log  *slog.Logger

	mu    sync.Mutex // one Apply at a time
	stops []func()
}

// New makes the agent of host, driving dp.
func New(host string, b *bus.Bus, dp datapath.Datapath, log *slog.Logger) *Agent {
	return &Agent{host: host, b: b, dp: dp, log: log}
}

// Start subscribes to the host's commands.
func (a *Agent) Start() error {
	stop, err := bus.Serve(a.b, NetworkSyncSubject(a.host), a.syncNetwork)
	if err != nil {
		return err
	}
	a.stops = append(a.stops, stop)
	return nil
}

func (a *Agent) syncNetwork(ctx context.Context, st datapath.HostState) (NetworkReply, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var rep NetworkReply
	if err := a.dp.Apply(ctx, st); err != nil {
		a.log.Error("applying network state", "err", err)
		rep.Error = err.Error()
	}
	obs, err := a.dp.Observed(ctx)
	if err != nil {
		return rep, err
	}
	rep.Observed = obs
	return rep, nil
}

// Close stops taking commands. The host is left as it is: what runs keeps
// running, and the next agent to start reconciles it.
func (a *Agent) Close() error {
	for _, s := range a.stops {
		s()
	}
	return a.dp.Close()
}

// NetworkClient sends hosts their network state over the bus; it is the
// network service's Syncer.
type NetworkClient struct {
	Bus *bus.Bus
	// OnObserved is told what the host has after each sync.
	OnObserved func(ctx context.Context, host string, obs datapath.Observed)
}

// Sync delivers state to host's agent and waits for it to be applied.
func (c *NetworkClient) Sync(ctx context.Context, host string, state datapath.HostState) error {
	rep, err := bus.Call[datapath.HostState, NetworkReply](ctx, c.Bus, NetworkSyncSubject(host), state)
	if err != nil {
		return err
	}
	if c.OnObserved != nil {
		c.OnObserved(ctx, host, rep.Observed)
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// The runtime's errors keep their kind across the bus: a caller can tell
// a container in the wrong state (ErrState) from a host failure.
func init() {
	bus.RegisterKind("runtime.not-found", runtime.ErrNotFound)
	bus.RegisterKind("runtime.state", runtime.ErrState)
	bus.RegisterKind("runtime.invalid", runtime.ErrInvalid)
	bus.RegisterKind("runtime.exec", runtime.ErrExec)
	bus.RegisterKind("runtime.in-use", runtime.ErrInUse)
	bus.RegisterKind("runtime.image-not-found", runtime.ErrImageNotFound)
}
