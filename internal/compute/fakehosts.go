package compute

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// FakeHosts is a Hosts for tests: servers "run" in memory after Delay,
// their console is a line per event. It is safe for concurrent use.
type FakeHosts struct {
	Delay time.Duration
	// Fail, if set, is asked before each EnsureServer; an error fails the build.
	Fail func(host string, spec ServerSpec) error

	mu      sync.Mutex
	servers map[string]*fakeServer
}

type fakeServer struct {
	host    string
	spec    ServerSpec
	power   int
	console []string
	volumes []HostVolume
}

// NewFakeHosts returns a FakeHosts whose servers start after delay.
func NewFakeHosts(delay time.Duration) *FakeHosts {
	return &FakeHosts{Delay: delay, servers: map[string]*fakeServer{}}
}

// EnsureServer implements Hosts.
func (f *FakeHosts) EnsureServer(ctx context.Context, host string, spec ServerSpec) error {
	if f.Fail != nil {
		if err := f.Fail(host, spec); err != nil {
			return err
		}
	}
	select {
	case <-time.After(f.Delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sv := f.servers[spec.ID]
	if sv == nil || sv.spec.Generation != spec.Generation {
		sv = &fakeServer{host: host}
		f.servers[spec.ID] = sv
		sv.console = append(sv.console, "booting "+spec.Hostname)
		if len(spec.UserData) > 0 {
			sv.console = append(sv.console, fmt.Sprintf("running user data (%d bytes)", len(spec.UserData)))
		}
	}
	sv.spec, sv.power = spec, PowerRunning
	return nil
}

// DeleteServer implements Hosts.
func (f *FakeHosts) DeleteServer(ctx context.Context, host, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.servers, id)
	return nil
}

// Action implements Hosts.
func (f *FakeHosts) Action(ctx context.Context, host, id, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sv := f.servers[id]
	if sv == nil {
		return fmt.Errorf("server %s is not on host %s", id, host)
	}
	switch action {
	case ActionStop:
		sv.power = PowerShutdown
	case ActionStart, ActionRebootSoft, ActionRebootHard, ActionUnpause, ActionResume:
		sv.power = PowerRunning
	case ActionPause:
		sv.power = PowerPaused
	case ActionSuspend:
		sv.power = PowerSuspended
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	sv.console = append(sv.console, action)
	return nil
}

// ConsoleLog implements Hosts.
func (f *FakeHosts) ConsoleLog(ctx context.Context, host, id string, length int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sv := f.servers[id]
	if sv == nil {
		return "", fmt.Errorf("server %s is not on host %s", id, host)
	}
	lines := sv.console
	if length >= 0 && len(lines) > length {
		lines = lines[len(lines)-length:]
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out, nil
}

// Snapshot implements Hosts.
func (f *FakeHosts) Snapshot(ctx context.Context, host, id string, w SnapshotWriter) error {
	_, err := io.WriteString(w, "fake rootfs of "+id)
	return err
}

// Kill makes a server's container die, as if it crashed.
func (f *FakeHosts) Kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sv := f.servers[id]; sv != nil {
		sv.power = PowerShutdown
	}
}

// States is what runs on host, for Service.ReportServers.
func (f *FakeHosts) States(host string) []ServerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ServerState
	for id, sv := range f.servers {
		if sv.host == host {
			out = append(out, ServerState{ID: id, Power: sv.power})
		}
	}
	return out
}

// Spec returns the last spec a server was ensured with.
func (f *FakeHosts) Spec(id string) (ServerSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sv, ok := f.servers[id]
	if !ok {
		return ServerSpec{}, false
	}
	return sv.spec, true
}

// SetVolumes implements VolumeHosts: the server's volumes are recorded.
func (f *FakeHosts) SetVolumes(ctx context.Context, host, id string, attach []HostVolume, detach []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sv := f.servers[id]
	if sv == nil {
		if len(attach) > 0 {
			return fmt.Errorf("server %s is not on host %s", id, host)
		}
		return nil
	}
	sv.volumes = append([]HostVolume(nil), attach...)
	return nil
}

// Volumes returns the volumes a server was last given.
func (f *FakeHosts) Volumes(id string) []HostVolume {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sv := f.servers[id]; sv != nil {
		return append([]HostVolume(nil), sv.volumes...)
	}
	return nil
}
