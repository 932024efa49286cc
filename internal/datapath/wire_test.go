package datapath

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"testing"
)

// groupState is n ports in one security group whose rules allow what
// comes from the group's members, as the network service resolves them:
// every port's rule holds all n addresses.
func groupState(n int, shared bool) HostState {
	members := make([]netip.Prefix, n)
	for i := range members {
		members[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(64 + i/256), byte(i)}), 32)
	}
	s := HostState{Networks: []Network{{ID: "n1", MTU: 1500}}, Ports: []Port{}, Routers: []Router{}}
	for i := range n {
		remotes := members
		if !shared {
			remotes = append([]netip.Prefix(nil), members...)
		}
		s.Ports = append(s.Ports, Port{
			ID: fmt.Sprintf("port-%04d", i), NetworkID: "n1", MAC: net.HardwareAddr{0xfa, 0x16, 0x3e, 0, byte(i >> 8), byte(i)},
			Addresses: []netip.Prefix{netip.PrefixFrom(members[i].Addr(), 21)}, Netns: fmt.Sprintf("/var/run/netns/ns%d", i), IfName: "eth0",
			PortSecurity: true,
			Rules: []Rule{
				{Direction: "egress", EtherType: "IPv4"},
				{Direction: "ingress", EtherType: "IPv4", Remotes: remotes},
				{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: 22, PortMax: 22, Remotes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
				{Direction: "ingress", EtherType: "IPv6", Remotes: []netip.Prefix{}},
			},
		})
	}
	return s
}

func TestHostStateWireRoundTrip(t *testing.T) {
	for _, shared := range []bool{true, false} {
		in := groupState(300, shared)
		in.Ports = append(in.Ports, Port{ID: "bare", NetworkID: "n1"}) // nil rules
		in.Routers = append(in.Routers, Router{ID: "r1", Interfaces: []RouterLeg{{PortID: "rp", NetworkID: "n1"}}})
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out HostState
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("shared %v: the state changed on the way", shared)
		}
		// One list of members and one of the /24, whatever the arrays.
		var w hostStateWire
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		if len(w.RemoteSets) != 2 {
			t.Fatalf("shared %v: %d remote sets, want 2", shared, len(w.RemoteSets))
		}
	}
	var empty HostState
	b, _ := json.Marshal(HostState{})
	if err := json.Unmarshal(b, &empty); err != nil || !reflect.DeepEqual(empty, HostState{}) {
		t.Fatalf("empty state: %s → %+v, %v", b, empty, err)
	}
}

// TestHostStateWireSize: 1,000 ports in one group stay well under the
// bus's 8 MiB (inline, the same state is ~20 MB).
func TestHostStateWireSize(t *testing.T) {
	b, err := json.Marshal(groupState(1000, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 1<<20 {
		t.Fatalf("1,000 ports in one group: %d bytes on the wire", len(b))
	}
	t.Logf("1,000 ports in one group: %d bytes", len(b))
}

// TestHostStateWireInline: a state with the remotes inline (what the
// default encoding wrote) is still read.
func TestHostStateWireInline(t *testing.T) {
	in := groupState(3, false)
	type plain HostState // no MarshalJSON: remotes inline
	b, err := json.Marshal(plain(in))
	if err != nil {
		t.Fatal(err)
	}
	var out HostState
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("inline state read as %+v", out)
	}
	if err := json.Unmarshal([]byte(`{"Ports":[{"ID":"p","Rules":[{"RemotesRef":2}]}],"RemoteSets":[["198.18.0.1/32"]]}`), &out); err == nil {
		t.Fatal("a reference past RemoteSets was accepted")
	}
}
