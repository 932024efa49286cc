// Package datapathtest is the conformance suite every datapath.Datapath
// runs, the fake and the real ones alike (in the manner of containerd's
// snapshots testsuite): Run drives a datapath through the interface only —
// apply, idempotence, updates, removal, Observed, ownership between two
// owners on one host, restart, invalid input — and checks what Observed
// reports.
//
// Ids are random so that runs against a real host (in parallel with other
// test binaries) never collide, and every test applies an empty state at
// cleanup so that it leaves nothing behind.
package datapathtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/datapath"
)

// Host is one host as the suite sees it.
type Host interface {
	// Open returns a datapath owned by owner on this host. The suite closes
	// it; cleaning up what it applied is the suite's job, not Open's.
	Open(t *testing.T, owner string) datapath.Datapath
	// Netns returns the path of a fresh network namespace for ports,
	// removed when t ends.
	Netns(t *testing.T) string
}

// Run runs the suite; newHost is called once per test.
func Run(t *testing.T, newHost func(t *testing.T) Host) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Host)
	}{
		{"Empty", testEmpty},
		{"ApplyObserved", testApplyObserved},
		{"Idempotent", testIdempotent},
		{"Update", testUpdate},
		{"Remove", testRemove},
		{"Ownership", testOwnership},
		{"Conflict", testConflict},
		{"Restart", testRestart},
		{"Invalid", testInvalid},
		{"InvalidLeftAlone", testInvalidLeftAlone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newHost(t))
		})
	}
}

// NewID returns a random 32-hex-digit id (its first 11 digits make the
// host names, so they are random too).
func NewID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// NewOwner returns a short random owner id.
func NewOwner() string { return "t" + NewID()[:7] }

// NewMAC returns a random locally administered unicast MAC.
func NewMAC() net.HardwareAddr {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[0] = b[0]&0xfc | 0x02
	return b
}

// open opens a datapath for owner and arranges, at cleanup, an empty Apply
// (so nothing is left behind) and Close.
func open(t *testing.T, h Host, owner string) datapath.Datapath {
	t.Helper()
	dp := h.Open(t, owner)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dp.Apply(ctx, datapath.HostState{}); err != nil {
			t.Errorf("cleanup Apply(empty): %v", err)
		}
		if o, err := dp.Observed(ctx); err != nil || !empty(o) {
			t.Errorf("after cleanup Observed = %+v, %v; want nothing", o, err)
		}
		if err := dp.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return dp
}

func empty(o datapath.Observed) bool {
	return len(o.Networks) == 0 && len(o.Ports) == 0 && len(o.Routers) == 0
}

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ma(s string) netip.Addr   { return netip.MustParseAddr(s) }

// sample is a small but complete state: an internal and an external
// network, two ports with security groups, a router with a gateway, an
// interface and a floating IP.
func sample(t *testing.T, h Host) datapath.HostState {
	internal, external := NewID(), NewID()
	ns1, ns2 := h.Netns(t), h.Netns(t)
	rules := []datapath.Rule{
		{Direction: "egress", EtherType: "IPv4"},
		{Direction: "egress", EtherType: "IPv6"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: 22, PortMax: 22, Remotes: []netip.Prefix{mp("198.51.100.0/24")}},
	}
	return datapath.HostState{
		Networks: []datapath.Network{
			{ID: internal, MTU: 1450},
			{ID: external, MTU: 1500, External: true},
		},
		Ports: []datapath.Port{
			{ID: NewID(), NetworkID: internal, MAC: NewMAC(), MTU: 1450,
				Addresses: []netip.Prefix{mp("198.51.100.10/24"), mp("2001:db8:1::10/64")},
				Gateways:  []netip.Addr{ma("198.51.100.1")},
				Netns:     ns1, IfName: "eth0", PortSecurity: true, Rules: rules},
			{ID: NewID(), NetworkID: internal, MAC: NewMAC(), MTU: 1450,
				Addresses: []netip.Prefix{mp("198.51.100.11/24")},
				Gateways:  []netip.Addr{ma("198.51.100.1")},
				Routes:    []datapath.Route{{Dst: mp("192.0.2.0/24"), NextHop: ma("198.51.100.1")}},
				Netns:     ns2, IfName: "eth0", PortSecurity: true, Rules: rules,
				AllowedAddressPairs: []datapath.AddressPair{{Prefix: mp("198.51.100.100/32")}}},
		},
		Routers: []datapath.Router{{
			ID:      NewID(),
			Gateway: &datapath.RouterLeg{PortID: NewID(), NetworkID: external, MAC: NewMAC(), Addresses: []netip.Prefix{mp("203.0.113.5/24")}, Gateway: ma("203.0.113.1")},
			Interfaces: []datapath.RouterLeg{
				{PortID: NewID(), NetworkID: internal, MAC: NewMAC(), Addresses: []netip.Prefix{mp("198.51.100.1/24")}, MTU: 1450},
			},
			SNAT:        true,
			FloatingIPs: []datapath.FloatingIP{{ID: NewID(), FloatingIP: ma("203.0.113.20"), FixedIP: ma("198.51.100.10")}},
		}},
	}
}

// want is what Observed must report for s.
func want(s datapath.HostState) datapath.Observed {
	var o datapath.Observed
	for _, n := range s.Networks {
		o.Networks = append(o.Networks, n.ID)
	}
	for _, p := range s.Ports {
		o.Ports = append(o.Ports, p.ID)
	}
	for _, r := range s.Routers {
		o.Routers = append(o.Routers, r.ID)
	}
	slices.Sort(o.Networks)
	slices.Sort(o.Ports)
	slices.Sort(o.Routers)
	return o
}

func apply(t *testing.T, dp datapath.Datapath, s datapath.HostState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dp.Apply(ctx, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func observe(t *testing.T, dp datapath.Datapath, want datapath.Observed) {
	t.Helper()
	got, err := dp.Observed(context.Background())
	if err != nil {
		t.Fatalf("Observed: %v", err)
	}
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	if !slices.Equal(norm(got.Networks), norm(want.Networks)) || !slices.Equal(norm(got.Ports), norm(want.Ports)) || !slices.Equal(norm(got.Routers), norm(want.Routers)) {
		t.Fatalf("Observed = %+v\nwant       %+v", got, want)
	}
}

func testEmpty(t *testing.T, h Host) {
	dp := open(t, h, NewOwner())
	observe(t, dp, datapath.Observed{})
	apply(t, dp, datapath.HostState{})
	apply(t, dp, datapath.HostState{})
	observe(t, dp, datapath.Observed{})
}

func testApplyObserved(t *testing.T, h Host) {
	dp := open(t, h, NewOwner())
	s := sample(t, h)
	apply(t, dp, s)
	observe(t, dp, want(s))
}

func testIdempotent(t *testing.T, h Host) {
	dp := open(t, h, NewOwner())
	s := sample(t, h)
	for range 3 {
		apply(t, dp, s)
		observe(t, dp, want(s))
	}
}

func testUpdate(t *testing.T, h Host) {
	dp := open(t, h, NewOwner())
	s := sample(t, h)
	apply(t, dp, s)

	p := &s.Ports[0]
	p.Addresses = []netip.Prefix{mp("198.51.100.12/24")}
	p.MTU = 1400
	p.Rules = append(p.Rules, datapath.Rule{Direction: "ingress", EtherType: "IPv6", Protocol: "udp", PortMin: 53, PortMax: 53})
	p.Routes = []datapath.Route{{Dst: mp("192.0.2.128/25"), NextHop: ma("198.51.100.1")}}
	s.Ports[1].PortSecurity = false
	s.Networks[0].MTU = 1400
	r := &s.Routers[0]
	r.FloatingIPs = append(r.FloatingIPs, datapath.FloatingIP{ID: NewID(), FloatingIP: ma("203.0.113.21"), FixedIP: ma("198.51.100.11")})
	r.SNAT = false
	r.Routes = []datapath.Route{{Dst: mp("192.0.2.0/24"), NextHop: ma("203.0.113.1")}}
	apply(t, dp, s)
	observe(t, dp, want(s))

	// A new leg, then none but the gateway.
	other := datapath.Network{ID: NewID()}
	s.Networks = append(s.Networks, other)
	r.Interfaces = append(r.Interfaces, datapath.RouterLeg{PortID: NewID(), NetworkID: other.ID, MAC: NewMAC(), Addresses: []netip.Prefix{mp("100.64.7.1/24")}})
	apply(t, dp, s)
	observe(t, dp, want(s))
	r.Interfaces = nil
	r.FloatingIPs = nil
	apply(t, dp, s)
	observe(t, dp, want(s))
}

func testRemove(t *testing.T, h Host) {
	dp := open(t, h, NewOwner())
	s := sample(t, h)
	apply(t, dp, s)

	s.Ports = s.Ports[:1]
	apply(t, dp, s)
	observe(t, dp, want(s))

	s.Routers = nil
	apply(t, dp, s)
	observe(t, dp, want(s))

	s.Ports = nil
	s.Networks = s.Networks[1:]
	apply(t, dp, s)
	observe(t, dp, want(s))

	apply(t, dp, datapath.HostState{})
	observe(t, dp, datapath.Observed{})
}

func testOwnership(t *testing.T, h Host) {
	a := open(t, h, NewOwner())
	b := open(t, h, NewOwner())
	sa, sb := sample(t, h), sample(t, h)
	apply(t, a, sa)
	apply(t, b, sb)
	observe(t, a, want(sa))
	observe(t, b, want(sb))

	apply(t, a, datapath.HostState{})
	observe(t, a, datapath.Observed{})
	observe(t, b, want(sb))
	apply(t, b, sb)
	observe(t, b, want(sb))
}

func testConflict(t *testing.T, h Host) {
	a := open(t, h, NewOwner())
	b := open(t, h, NewOwner())
	sa := sample(t, h)
	apply(t, a, sa)

	// b names a's internal network (same id, so the same bridge name) and a
	// network of its own.
	mine := datapath.Network{ID: NewID()}
	sb := datapath.HostState{Networks: []datapath.Network{sa.Networks[0], mine}}
	err := b.Apply(context.Background(), sb)
	if !errors.Is(err, datapath.ErrConflict) {
		t.Fatalf("Apply of another owner's network: %v, want ErrConflict", err)
	}
	observe(t, b, datapath.Observed{Networks: []string{mine.ID}})
	observe(t, a, want(sa))

	// Nor may b take a's port's tap.
	sb = datapath.HostState{Networks: []datapath.Network{mine}, Ports: []datapath.Port{sa.Ports[0]}}
	sb.Ports[0].NetworkID = mine.ID
	sb.Ports[0].Netns = h.Netns(t)
	err = b.Apply(context.Background(), sb)
	if !errors.Is(err, datapath.ErrConflict) {
		t.Fatalf("Apply of another owner's port: %v, want ErrConflict", err)
	}
	observe(t, b, datapath.Observed{Networks: []string{mine.ID}})
	observe(t, a, want(sa))
	apply(t, a, sa)
}

func testRestart(t *testing.T, h Host) {
	owner := NewOwner()
	t.Cleanup(func() {
		if t.Failed() { // before the second open took over: clean up here
			dp := h.Open(t, owner)
			_ = dp.Apply(context.Background(), datapath.HostState{})
			_ = dp.Close()
		}
	})
	dp := h.Open(t, owner)
	s := sample(t, h)
	apply(t, dp, s)
	if err := dp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	dp = open(t, h, owner)
	observe(t, dp, want(s))
	apply(t, dp, s)
	observe(t, dp, want(s))
}

func testInvalid(t *testing.T, h Host) {
	dp := open(t, h, NewOwner())
	s := sample(t, h)
	good := s
	bad := []struct {
		name string
		edit func(s *datapath.HostState)
	}{
		{"port on unknown network", func(s *datapath.HostState) { s.Ports[0].NetworkID = NewID() }},
		{"port without netns", func(s *datapath.HostState) { s.Ports[0].Netns = "" }},
		{"port with long ifname", func(s *datapath.HostState) { s.Ports[0].IfName = "eth0123456789012" }},
		{"port without MAC", func(s *datapath.HostState) { s.Ports[0].MAC = nil }},
		{"bad rule", func(s *datapath.HostState) {
			s.Ports[0].Rules = []datapath.Rule{{Direction: "sideways", EtherType: "IPv4"}}
		}},
		{"unknown protocol", func(s *datapath.HostState) {
			s.Ports[0].Rules = []datapath.Rule{{Direction: "ingress", EtherType: "IPv4", Protocol: "carrier-pigeon"}}
		}},
		{"bad id", func(s *datapath.HostState) { s.Ports[0].ID = "../etc" }},
		{"duplicate port", func(s *datapath.HostState) { s.Ports = append(s.Ports, s.Ports[0]) }},
		{"floating IP without gateway", func(s *datapath.HostState) { s.Routers[0].Gateway = nil }},
		{"router leg on unknown network", func(s *datapath.HostState) { s.Routers[0].Interfaces[0].NetworkID = NewID() }},
	}
	for _, tc := range bad {
		s := copyState(good)
		tc.edit(&s)
		err := dp.Apply(context.Background(), s)
		if !errors.Is(err, datapath.ErrInvalid) {
			t.Errorf("%s: Apply = %v, want ErrInvalid", tc.name, err)
		}
		// The valid rest is applied: the networks at least.
		o, err := dp.Observed(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(o.Networks, want(good).Networks) {
			t.Errorf("%s: networks observed %v, want %v", tc.name, o.Networks, want(good).Networks)
		}
		apply(t, dp, datapath.HostState{})
	}
}

func testInvalidLeftAlone(t *testing.T, h Host) {
	dp := open(t, h, NewOwner())
	s := sample(t, h)
	apply(t, dp, s)
	// The state still names the port, but in a form that cannot be applied:
	// the port stays as it is rather than being removed.
	bad := copyState(s)
	bad.Ports[0].IfName = ""
	bad.Routers[0].Interfaces[0].NetworkID = NewID()
	if err := dp.Apply(context.Background(), bad); !errors.Is(err, datapath.ErrInvalid) {
		t.Fatalf("Apply = %v, want ErrInvalid", err)
	}
	observe(t, dp, want(s))
	apply(t, dp, s)
	observe(t, dp, want(s))
}

func copyState(s datapath.HostState) datapath.HostState {
	c := datapath.HostState{
		Networks: slices.Clone(s.Networks),
		Ports:    slices.Clone(s.Ports),
	}
	for _, r := range s.Routers {
		if r.Gateway != nil {
			g := *r.Gateway
			r.Gateway = &g
		}
		r.Interfaces = slices.Clone(r.Interfaces)
		r.FloatingIPs = slices.Clone(r.FloatingIPs)
		c.Routers = append(c.Routers, r)
	}
	return c
}
