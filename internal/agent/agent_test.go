package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/datapath"
)

// recorder is a minimal Datapath for the agent's own test: it keeps what was
// applied. (The datapath packages have their own conformance suite.)
type recorder struct {
	mu    sync.Mutex
	state datapath.HostState
}

func (r *recorder) Apply(ctx context.Context, s datapath.HostState) error {
	r.mu.Lock()
	r.state = s
	r.mu.Unlock()
	return nil
}
func (r *recorder) Observed(ctx context.Context) (datapath.Observed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var o datapath.Observed
	for _, p := range r.state.Ports {
		o.Ports = append(o.Ports, p.ID)
	}
	return o, nil
}
func (r *recorder) Close() error { return nil }

func TestNetworkSyncOverBus(t *testing.T) {
	b, err := bus.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec := &recorder{}
	a := New("host1", b, rec, slog.New(slog.DiscardHandler))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var seen []string
	c := &NetworkClient{Bus: b, OnObserved: func(ctx context.Context, host string, obs datapath.Observed) {
		seen = append(seen, host)
		seen = append(seen, obs.Ports...)
	}}
	st := datapath.HostState{Ports: []datapath.Port{{ID: "p1", NetworkID: "n1",
		Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.5/24")}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Sync(ctx, "host1", st); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"host1", "p1"}) {
		t.Fatalf("observed %v", seen)
	}
	if got := rec.state.Ports[0].Addresses[0].String(); got != "198.51.100.5/24" {
		t.Fatalf("applied %v", got)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := c.Sync(short, "nohost", st); err == nil {
		t.Fatal("sync to a host with no agent succeeded")
	}
}
