package linuxbridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/datapath/datapathtest"
)

var (
	newID  = datapathtest.NewID
	newMAC = datapathtest.NewMAC
)

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ma(s string) netip.Addr   { return netip.MustParseAddr(s) }

func egressAll() []datapath.Rule {
	return []datapath.Rule{{Direction: "egress", EtherType: "IPv4"}, {Direction: "egress", EtherType: "IPv6"}}
}

func ingress(proto string, min, max int, remotes ...string) datapath.Rule {
	r := datapath.Rule{Direction: "ingress", EtherType: "IPv4", Protocol: proto, PortMin: min, PortMax: max}
	for _, s := range remotes {
		r.Remotes = append(r.Remotes, mp(s))
	}
	return r
}

// port is a secured port in ns on network, with one address and an
// optional gateway.
func port(network, ns, addr, gw string, rules ...datapath.Rule) datapath.Port {
	p := datapath.Port{ID: newID(), NetworkID: network, MAC: newMAC(), Addresses: []netip.Prefix{mp(addr)},
		Netns: ns, IfName: "eth0", PortSecurity: true, Rules: rules}
	if gw != "" {
		p.Gateways = []netip.Addr{ma(gw)}
	}
	return p
}

func applyOK(t testing.TB, d *Datapath, s datapath.HostState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Apply(ctx, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func addrOf(p datapath.Port) netip.Addr { return p.Addresses[0].Addr() }

// indexes records the ifindex of every link of the state, in the host and
// in the namespaces: unchanged indexes mean nothing was remade.
func indexes(t *testing.T, s datapath.HostState) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range s.Networks {
		l, err := netlink.LinkByName(datapath.BridgeName(n.ID))
		if err != nil {
			t.Fatal(err)
		}
		out[l.Attrs().Name] = l.Attrs().Index
	}
	for _, p := range s.Ports {
		l, err := netlink.LinkByName(datapath.TapName(p.ID))
		if err != nil {
			t.Fatal(err)
		}
		out[l.Attrs().Name] = l.Attrs().Index
		ns, err := netns.GetFromPath(p.Netns)
		if err != nil {
			t.Fatal(err)
		}
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			t.Fatal(err)
		}
		pl, err := h.LinkByName(p.IfName)
		if err != nil {
			t.Fatal(err)
		}
		out[p.Netns+"/"+p.IfName] = pl.Attrs().Index
		h.Close()
		ns.Close()
	}
	return out
}

func TestPingOnOneNetwork(t *testing.T) {
	needRoot(t)
	t.Parallel()
	d := newDatapath(t, datapathtest.NewOwner())
	net1 := datapath.Network{ID: newID(), MTU: 1500}
	rules := append(egressAll(), ingress("icmp", 0, 0))
	p1 := port(net1.ID, newNetns(t), "198.51.100.11/24", "", rules...)
	p2 := port(net1.ID, newNetns(t), "198.51.100.12/24", "", rules...)
	p2.Addresses = append(p2.Addresses, mp("2001:db8:5::12/64"))
	p2.MTU = 1400
	p2.Routes = []datapath.Route{{Dst: mp("192.0.2.0/24"), NextHop: ma("198.51.100.1")}}
	s := datapath.HostState{Networks: []datapath.Network{net1}, Ports: []datapath.Port{p1, p2}}
	applyOK(t, d, s)

	eventually(t, 5*time.Second, "p1 pings p2", func() error { return ping(t, p1.Netns, addrOf(p2), 300*time.Millisecond) })
	eventually(t, 5*time.Second, "p2 pings p1", func() error { return ping(t, p2.Netns, addrOf(p1), 300*time.Millisecond) })

	// What the port's namespace looks like.
	checkPortLink(t, p2)
	// IPv6 is off where no IPv6 address needs it: every tap, and p1's
	// end; p2 has an IPv6 address.
	for _, c := range []struct {
		nsPath, ifName, want string
	}{{p1.Netns, "eth0", "1"}, {p2.Netns, "eth0", "0"}, {"", datapath.TapName(p1.ID), "1"}, {"", datapath.TapName(p2.ID), "1"}} {
		ns := d.home
		if c.nsPath != "" {
			h, err := netns.GetFromPath(c.nsPath)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			ns = h
		}
		var got []byte
		err := inNetns(ns, d.home, func() (err error) {
			got, err = os.ReadFile("/proc/sys/net/ipv6/conf/" + c.ifName + "/disable_ipv6")
			return err
		})
		if err != nil || strings.TrimSpace(string(got)) != c.want {
			t.Errorf("%s %s: disable_ipv6 %q (%v), want %s", c.nsPath, c.ifName, got, err, c.want)
		}
	}

	// Idempotence: a second Apply changes nothing, not even an ifindex.
	before, changes := indexes(t, s), d.changes.Load()
	applyOK(t, d, s)
	if after := indexes(t, s); !mapsEqual(before, after) {
		t.Errorf("indexes changed by a second Apply:\n%v\n%v", before, after)
	}
	if n := d.changes.Load() - changes; n != 0 {
		t.Errorf("second Apply made %d changes, want 0", n)
	}

	// Convergence after partial destruction: a veth, an address, a route,
	// the firewall tables, the bridge's MTU.
	tap, _ := netlink.LinkByName(datapath.TapName(p2.ID))
	if err := netlink.LinkDel(tap); err != nil {
		t.Fatal(err)
	}
	br, _ := netlink.LinkByName(datapath.BridgeName(net1.ID))
	netlink.LinkSetMTU(br, 1280)
	withPortLink(t, p1, func(h *netlink.Handle, l netlink.Link) {
		addrs, _ := h.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			h.AddrDel(l, &a)
		}
	})
	c, _ := nftables.New()
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: d.tableName()})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if o, _ := d.Observed(context.Background()); slices.Contains(o.Ports, p2.ID) {
		t.Fatalf("Observed %v still has the destroyed port", o.Ports)
	}
	applyOK(t, d, s)
	checkPortLink(t, p2)
	// Between full checks a port whose spec did not change and whose tap
	// is as applied is not examined in its namespace: p1's lost address
	// comes back at the next full check (the first Apply after a start,
	// then once every fullEvery).
	withPortLink(t, p1, func(h *netlink.Handle, l netlink.Link) {
		if addrs, _ := h.AddrList(l, netlink.FAMILY_V4); len(addrs) != 0 {
			t.Errorf("p1 has %v before the full check; the test expects the quick path", addrs)
		}
	})
	d.mu.Lock()
	d.lastFull = time.Time{}
	d.mu.Unlock()
	applyOK(t, d, s)
	eventually(t, 5*time.Second, "p1 pings p2 after repair", func() error { return ping(t, p1.Netns, addrOf(p2), 300*time.Millisecond) })
	checkPortLink(t, p1)
	checkPortLink(t, p2)
	if br, _ := netlink.LinkByName(datapath.BridgeName(net1.ID)); br.Attrs().MTU != 1500 {
		t.Errorf("bridge MTU %d after repair, want 1500", br.Attrs().MTU)
	}
	changes = d.changes.Load()
	applyOK(t, d, s)
	if n := d.changes.Load() - changes; n != 0 {
		t.Errorf("Apply after repair made %d changes, want 0", n)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func withPortLink(t *testing.T, p datapath.Port, fn func(*netlink.Handle, netlink.Link)) {
	t.Helper()
	ns, err := netns.GetFromPath(p.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(p.IfName)
	if err != nil {
		t.Fatal(err)
	}
	fn(h, l)
}

// checkPortLink checks the namespace end of a port: name, MAC, MTU, up,
// addresses and routes.
func checkPortLink(t *testing.T, p datapath.Port) {
	t.Helper()
	withPortLink(t, p, func(h *netlink.Handle, l netlink.Link) {
		a := l.Attrs()
		if a.HardwareAddr.String() != p.MAC.String() || a.Flags&net.FlagUp == 0 {
			t.Errorf("%s: MAC %s up %v; want %s, up", p.IfName, a.HardwareAddr, a.Flags&net.FlagUp != 0, p.MAC)
		}
		if p.MTU != 0 && a.MTU != p.MTU {
			t.Errorf("%s: MTU %d, want %d", p.IfName, a.MTU, p.MTU)
		}
		addrs, _ := h.AddrList(l, netlink.FAMILY_ALL)
		var got []netip.Prefix
		for _, ad := range addrs {
			if pf := toPrefix(ad.IPNet); !pf.Addr().IsLinkLocalUnicast() {
				got = append(got, pf)
			}
		}
		for _, want := range p.Addresses {
			if !slices.Contains(got, want) {
				t.Errorf("%s: addresses %v lack %v", p.IfName, got, want)
			}
		}
		if len(got) != len(p.Addresses) {
			t.Errorf("%s: addresses %v, want %v", p.IfName, got, p.Addresses)
		}
		routes, _ := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routeProto}, netlink.RT_FILTER_PROTOCOL)
		if len(routes) != len(p.Routes)+len(p.Gateways) {
			t.Errorf("%s: routes %v, want %d", p.IfName, routes, len(p.Routes)+len(p.Gateways))
		}
	})
}

func TestRouterBetweenNetworks(t *testing.T) {
	needRoot(t)
	t.Parallel()
	d := newDatapath(t, datapathtest.NewOwner())
	netA, netB := datapath.Network{ID: newID()}, datapath.Network{ID: newID()}
	rules := append(egressAll(), ingress("icmp", 0, 0))
	pa := port(netA.ID, newNetns(t), "198.51.100.10/25", "198.51.100.1", rules...)
	pb := port(netB.ID, newNetns(t), "198.51.100.140/25", "198.51.100.129", rules...)
	s := datapath.HostState{Networks: []datapath.Network{netA, netB}, Ports: []datapath.Port{pa, pb}}
	applyOK(t, d, s)
	if canPing(t, pa.Netns, addrOf(pb)) {
		t.Fatal("ports on two networks reach each other without a router")
	}

	s.Routers = []datapath.Router{{ID: newID(), Interfaces: []datapath.RouterLeg{
		{PortID: newID(), NetworkID: netA.ID, MAC: newMAC(), Addresses: []netip.Prefix{mp("198.51.100.1/25")}},
		{PortID: newID(), NetworkID: netB.ID, MAC: newMAC(), Addresses: []netip.Prefix{mp("198.51.100.129/25")}},
	}}}
	applyOK(t, d, s)
	eventually(t, 5*time.Second, "pa pings pb through the router", func() error { return ping(t, pa.Netns, addrOf(pb), 300*time.Millisecond) })
	eventually(t, 5*time.Second, "pb pings pa through the router", func() error { return ping(t, pb.Netns, addrOf(pa), 300*time.Millisecond) })

	changes := d.changes.Load()
	applyOK(t, d, s)
	if n := d.changes.Load() - changes; n != 0 {
		t.Errorf("second Apply made %d changes, want 0", n)
	}

	// Without its leg on B, the router no longer joins them.
	s.Routers[0].Interfaces = s.Routers[0].Interfaces[:1]
	applyOK(t, d, s)
	if canPing(t, pa.Netns, addrOf(pb)) {
		t.Fatal("pa still reaches pb with the router's leg on B gone")
	}
}

func TestSecurityGroups(t *testing.T) {
	needRoot(t)
	t.Parallel()
	d := newDatapath(t, datapathtest.NewOwner())
	net1 := datapath.Network{ID: newID()}
	client := port(net1.ID, newNetns(t), "198.51.100.11/24", "", egressAll()...)
	other := port(net1.ID, newNetns(t), "198.51.100.13/24", "", egressAll()...)
	server := port(net1.ID, newNetns(t), "198.51.100.12/24", "", egressAll()...)
	s := datapath.HostState{Networks: []datapath.Network{net1}, Ports: []datapath.Port{client, other, server}}
	applyOK(t, d, s)
	srv := addrOf(server)
	listenTCP(t, server.Netns, netip.AddrPortFrom(srv, 8080))
	listenTCP(t, server.Netns, netip.AddrPortFrom(srv, 8081))

	if canPing(t, client.Netns, srv) {
		t.Fatal("ping reaches a port whose groups allow no ICMP")
	}
	if c, err := dialTCP(t, client.Netns, netip.AddrPortFrom(srv, 8080), 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("TCP reaches a port whose groups allow no TCP")
	}

	// Allow ICMP from anywhere and TCP 8080 from the client only.
	s.Ports[2].Rules = append(egressAll(), ingress("icmp", 8, -1), ingress("tcp", 8080, 8080, "198.51.100.11/32"))
	applyOK(t, d, s)
	took := eventually(t, 5*time.Second, "ping once ICMP is allowed", func() error { return ping(t, client.Netns, srv, 200*time.Millisecond) })
	t.Logf("ICMP allowed: first echo reply %v after Apply returned", took)
	conn, err := dialTCP(t, client.Netns, netip.AddrPortFrom(srv, 8080), time.Second)
	if err != nil {
		t.Fatalf("TCP 8080 from the client once allowed: %v", err)
	}
	defer conn.Close()
	if c, err := dialTCP(t, client.Netns, netip.AddrPortFrom(srv, 8081), 300*time.Millisecond); err == nil {
		c.Close()
		t.Error("TCP 8081 reaches the server; only 8080 is allowed")
	}
	if c, err := dialTCP(t, other.Netns, netip.AddrPortFrom(srv, 8080), 300*time.Millisecond); err == nil {
		c.Close()
		t.Error("TCP 8080 from another address reaches the server; only the client's is allowed")
	}
	if !canPing(t, other.Netns, srv) {
		t.Error("ICMP from anywhere is allowed, yet the other port cannot ping")
	}

	// Stateful: the open connection outlives the rule; a new one does not.
	s.Ports[2].Rules = append(egressAll(), ingress("icmp", 8, -1))
	applyOK(t, d, s)
	if err := echo(conn); err != nil {
		t.Errorf("established connection broken by a rule change: %v", err)
	}
	if c, err := dialTCP(t, client.Netns, netip.AddrPortFrom(srv, 8080), 300*time.Millisecond); err == nil {
		c.Close()
		t.Error("new TCP connection after the rule was removed")
	}

	// Egress is filtered too: a client without egress rules sends nothing
	// new.
	s.Ports[0].Rules = nil
	applyOK(t, d, s)
	if canPing(t, client.Netns, srv) {
		t.Error("a port without egress rules can still ping")
	}
	s.Ports[0].PortSecurity = false
	applyOK(t, d, s)
	eventually(t, 5*time.Second, "ping once port security is off", func() error { return ping(t, client.Netns, srv, 200*time.Millisecond) })
}

func TestAntiSpoofing(t *testing.T) {
	needRoot(t)
	t.Parallel()
	d := newDatapath(t, datapathtest.NewOwner())
	net1 := datapath.Network{ID: newID()}
	attacker := port(net1.ID, newNetns(t), "198.51.100.11/24", "", egressAll()...)
	target := port(net1.ID, newNetns(t), "198.51.100.12/24", "", append(egressAll(), ingress("udp", 0, 0))...)
	s := datapath.HostState{Networks: []datapath.Network{net1}, Ports: []datapath.Port{attacker, target}}
	applyOK(t, d, s)
	dst := netip.AddrPortFrom(addrOf(target), 9999)
	got := listenUDP(t, target.Netns, dst)
	foreign := ma("198.51.100.99")
	addForeign := func() {
		withPortLink(t, attacker, func(h *netlink.Handle, l netlink.Link) {
			if err := h.AddrAdd(l, &netlink.Addr{IPNet: toIPNet(netip.PrefixFrom(foreign, 32))}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// send sends from src until a datagram arrives or a second passes.
	send := func(src netip.Addr) (netip.Addr, bool) {
		drain(got)
		for range 5 {
			if err := sendUDP(t, attacker.Netns, src, dst); err != nil {
				t.Fatal(err)
			}
			if a, ok := received(got, 200*time.Millisecond); ok {
				return a, true
			}
		}
		return netip.Addr{}, false
	}

	// From its own address (which also fills the neighbour caches), then
	// from a foreign one.
	if a, ok := send(addrOf(attacker)); !ok || a != addrOf(attacker) {
		t.Fatalf("datagram from the port's own address: got %v %v", a, ok)
	}
	addForeign()
	if a, ok := send(foreign); ok {
		t.Fatalf("datagram from a foreign source address %v went through", a)
	}

	// A foreign MAC is dropped too.
	withPortLink(t, attacker, func(h *netlink.Handle, l netlink.Link) {
		if err := h.LinkSetHardwareAddr(l, newMAC()); err != nil {
			t.Fatal(err)
		}
	})
	if a, ok := send(addrOf(attacker)); ok {
		t.Fatalf("datagram from a foreign MAC went through (from %v)", a)
	}

	// An allowed address pair makes the foreign address the port's.
	s.Ports[0].AllowedAddressPairs = []datapath.AddressPair{{Prefix: mp("198.51.100.96/29")}}
	applyOK(t, d, s) // restores the MAC, removes the foreign address
	addForeign()
	if a, ok := send(foreign); !ok || a != foreign {
		t.Fatalf("datagram from an allowed address pair: got %v %v", a, ok)
	}

	// Without port security anything goes.
	s.Ports[0].AllowedAddressPairs = nil
	s.Ports[0].PortSecurity = false
	applyOK(t, d, s)
	addForeign()
	if a, ok := send(foreign); !ok || a != foreign {
		t.Fatalf("datagram from a foreign address without port security: got %v %v", a, ok)
	}
}

// externalSubnet picks a /28 of 203.0.113.0/24 that no host address or
// route touches, for the host side of an external network.
func externalSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range rand.Perm(16) {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i * 16)}), 28)
		free := true
		for _, r := range routes {
			if r.Dst != nil && toPrefix(r.Dst).Overlaps(p) {
				free = false
			}
		}
		if free {
			return p
		}
	}
	t.Skip("no free /28 in 203.0.113.0/24 on this host")
	return netip.Prefix{}
}

func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

func TestFloatingIPAndSNAT(t *testing.T) {
	needRoot(t)
	t.Parallel()
	d := newDatapath(t, datapathtest.NewOwner())
	sub := externalSubnet(t)
	hostAddr, upstream, gwAddr, fip := nth(sub, 1), nth(sub, 2), nth(sub, 3), nth(sub, 4)
	ext := datapath.Network{ID: newID(), External: true, HostCIDRs: []netip.Prefix{netip.PrefixFrom(hostAddr, 28)}}
	internal := datapath.Network{ID: newID(), MTU: 1450}
	// The "upstream" of the external network: a namespace that answers but
	// forwards nothing, so no test packet can leave this host.
	up := datapath.Port{ID: newID(), NetworkID: ext.ID, MAC: newMAC(), Addresses: []netip.Prefix{netip.PrefixFrom(upstream, 28)},
		Netns: newNetns(t), IfName: "eth0"}
	pa := port(internal.ID, newNetns(t), "198.51.100.10/24", "198.51.100.1", append(egressAll(), ingress("icmp", 0, 0), ingress("tcp", 8080, 8080))...)
	pb := port(internal.ID, newNetns(t), "198.51.100.20/24", "198.51.100.1", egressAll()...)
	router := datapath.Router{
		ID:          newID(),
		Gateway:     &datapath.RouterLeg{PortID: newID(), NetworkID: ext.ID, MAC: newMAC(), Addresses: []netip.Prefix{netip.PrefixFrom(gwAddr, 28)}, Gateway: upstream},
		Interfaces:  []datapath.RouterLeg{{PortID: newID(), NetworkID: internal.ID, MAC: newMAC(), Addresses: []netip.Prefix{mp("198.51.100.1/24")}}},
		SNAT:        true,
		FloatingIPs: []datapath.FloatingIP{{ID: newID(), FloatingIP: fip, FixedIP: addrOf(pa)}},
	}
	s := datapath.HostState{Networks: []datapath.Network{ext, internal}, Ports: []datapath.Port{up, pa, pb}, Routers: []datapath.Router{router}}
	applyOK(t, d, s)

	// The host reaches the floating IP (and the server sees the host, not
	// the router).
	eventually(t, 5*time.Second, "host pings the floating IP", func() error { return ping(t, hostNetns, fip, 300*time.Millisecond) })
	peers := listenTCP(t, pa.Netns, netip.AddrPortFrom(addrOf(pa), 8080))
	c, err := dialTCP(t, hostNetns, netip.AddrPortFrom(fip, 8080), 2*time.Second)
	if err != nil {
		t.Fatalf("host → floating IP :8080: %v", err)
	}
	if err := echo(c); err != nil {
		t.Errorf("echo through the floating IP: %v", err)
	}
	c.Close()
	if p := <-peers; p.Addr() != hostAddr {
		t.Errorf("server saw the connection from %v, want the host's %v", p.Addr(), hostAddr)
	}

	// Outbound: SNAT to the gateway address, or to the floating IP for its
	// port.
	got := listenUDP(t, up.Netns, netip.AddrPortFrom(upstream, 9999))
	from := func(p datapath.Port) netip.Addr {
		t.Helper()
		drain(got)
		for range 10 {
			if err := sendUDP(t, p.Netns, netip.Addr{}, netip.AddrPortFrom(upstream, 9999)); err != nil {
				t.Fatal(err)
			}
			if a, ok := received(got, 200*time.Millisecond); ok {
				return a
			}
		}
		t.Fatalf("nothing from port %s reached the external network", p.Addresses[0])
		return netip.Addr{}
	}
	if a := from(pb); a != gwAddr {
		t.Errorf("pb reached the external network as %v, want the router's gateway address %v", a, gwAddr)
	}
	if a := from(pa); a != fip {
		t.Errorf("pa reached the external network as %v, want its floating IP %v", a, fip)
	}

	// Without SNAT, pb's own address shows.
	s.Routers[0].SNAT = false
	applyOK(t, d, s)
	if a := from(pb); a != addrOf(pb) {
		t.Errorf("without SNAT pb reached the external network as %v, want %v", a, addrOf(pb))
	}

	// The floating IP gone, the host no longer reaches pa.
	s.Routers[0].FloatingIPs = nil
	applyOK(t, d, s)
	if canPing(t, hostNetns, fip) {
		t.Error("the host still reaches a removed floating IP")
	}
	changes := d.changes.Load()
	applyOK(t, d, s)
	if n := d.changes.Load() - changes; n != 0 {
		t.Errorf("second Apply made %d changes, want 0", n)
	}
}

// TestLeavesOthersAlone: objects of another owner, and ones no monostack
// made, survive this owner's Apply, even of an empty state.
func TestLeavesOthersAlone(t *testing.T) {
	needRoot(t)
	t.Parallel()
	a := newDatapath(t, datapathtest.NewOwner())
	b := newDatapath(t, datapathtest.NewOwner())
	na := datapath.Network{ID: newID()}
	pa := port(na.ID, newNetns(t), "198.51.100.11/24", "", egressAll()...)
	applyOK(t, a, datapath.HostState{Networks: []datapath.Network{na}, Ports: []datapath.Port{pa}})

	// A bridge by hand, named like one of ours.
	foreignID := newID()
	foreign := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: datapath.BridgeName(foreignID)}}
	if err := netlink.LinkAdd(foreign); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(foreign) })

	nb := datapath.Network{ID: newID()}
	applyOK(t, b, datapath.HostState{Networks: []datapath.Network{nb}})
	applyOK(t, b, datapath.HostState{})
	if err := b.Apply(context.Background(), datapath.HostState{Networks: []datapath.Network{{ID: foreignID}}}); !errors.Is(err, datapath.ErrConflict) {
		t.Errorf("Apply of a network whose bridge name is taken: %v, want ErrConflict", err)
	}
	applyOK(t, b, datapath.HostState{})
	if _, err := netlink.LinkByName(foreign.Name); err != nil {
		t.Errorf("hand-made bridge gone: %v", err)
	}
	o, err := a.Observed(context.Background())
	if err != nil || !slices.Equal(o.Networks, []string{na.ID}) || !slices.Equal(o.Ports, []string{pa.ID}) {
		t.Errorf("owner a after owner b's Applies: %+v, %v", o, err)
	}
	if left := leftovers(b.owner); left != "" {
		t.Errorf("owner b left %s", left)
	}
}

func TestNewRejectsBadOwner(t *testing.T) {
	for _, o := range []string{"", "a:b", "a_b", "a/b", fmt.Sprint(make([]byte, 40))} {
		if _, err := New(o, nil); err == nil {
			t.Errorf("New(%q) accepted", o)
		}
	}
}

// TestPortWithoutNamespace: a port whose namespace is gone (its server is
// being deleted, which unbinds its ports afterwards) is no error for
// Apply, and the port beside it is plugged; once a namespace is there, the
// next Apply plugs the port.
func TestPortWithoutNamespace(t *testing.T) {
	needRoot(t)
	t.Parallel()
	d := newDatapath(t, datapathtest.NewOwner())
	net1 := datapath.Network{ID: newID(), MTU: 1500}
	path := newNetns(t)
	name := filepath.Base(path)
	if err := netns.DeleteNamed(name); err != nil {
		t.Fatal(err)
	}
	gone := port(net1.ID, path, "198.51.100.21/24", "", egressAll()...)
	other := port(net1.ID, newNetns(t), "198.51.100.22/24", "", egressAll()...)
	s := datapath.HostState{Networks: []datapath.Network{net1}, Ports: []datapath.Port{gone, other}}
	applyOK(t, d, s)
	checkPortLink(t, other)

	home, err := currentNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	h, err := newNamedNetns(name, home) // deleted by newNetns's clean-up
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	applyOK(t, d, s)
	checkPortLink(t, gone)
}
