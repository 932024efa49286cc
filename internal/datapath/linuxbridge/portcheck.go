package linuxbridge

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/datapath"
)

// Checking a port that is already as it should be is the common case of
// an Apply (most of its ports did not change), so it is done on a snapshot
// of each namespace: one dump of its links, addresses and routes, shared by
// all the ports there, instead of several requests per port. A port the
// snapshot shows to be current needs nothing; any other goes through
// ensurePort's live path, which reads again and repairs. The snapshot holds
// only while this datapath has made no change since it was taken (a change
// anywhere makes the next port take a fresh one), so it never hides a repair
// this Apply made.

// nsSnapshot is one namespace as one set of dumps saw it.
type nsSnapshot struct {
	changes int64 // d.changes when taken
	err     error
	byName  map[string]netlink.Link
	addrs   map[int][]netip.Prefix // link index → (IPv6 link-local aside)
	routes  map[int][]string       // link index → our routes' keys
}

// nsSnapshots caches snapshots for one Apply.
type nsSnapshots map[string]*nsSnapshot

func (d *Datapath) snapshot(c nsSnapshots, path string) *nsSnapshot {
	if s := c[path]; s != nil && s.changes == d.changes.Load() {
		return s
	}
	s := &nsSnapshot{changes: d.changes.Load()}
	c[path] = s
	ns, err := netns.GetFromPath(path)
	if err != nil {
		s.err = err
		return s
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		s.err = err
		return s
	}
	defer h.Close()
	links, err := linkList(h)
	if err != nil {
		s.err = err
		return s
	}
	s.byName = make(map[string]netlink.Link, len(links))
	for _, l := range links {
		s.byName[l.Attrs().Name] = l
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		s.err = err
		return s
	}
	s.addrs = map[int][]netip.Prefix{}
	for _, a := range addrs {
		p := toPrefix(a.IPNet)
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			continue
		}
		s.addrs[a.LinkIndex] = append(s.addrs[a.LinkIndex], p)
	}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routeProto, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		s.err = err
		return s
	}
	s.routes = map[int][]string{}
	for _, r := range routes {
		s.routes[r.LinkIndex] = append(s.routes[r.LinkIndex], routeKeyOf(r))
	}
	return s
}

// portCurrent reports whether the snapshot shows port p exactly as
// ensurePort would leave it (so that ensurePort would change nothing).
func (d *Datapath) portCurrent(v *hostView, snaps nsSnapshots, br netlink.Link, mtu int, p datapath.Port) bool {
	tap := v.byName[datapath.TapName(p.ID)]
	alias := d.alias("port", p.ID)
	if tap == nil || !d.tapCurrent(tap, br, mtu, p) {
		return false
	}
	s := d.snapshot(snaps, p.Netns)
	if s.err != nil {
		return false
	}
	peer, lo := s.byName[p.IfName], s.byName["lo"]
	if peer == nil || lo == nil || lo.Attrs().Flags&net.FlagUp == 0 {
		return false
	}
	a := peer.Attrs()
	if peer.Type() != "veth" || a.Alias != alias || a.ParentIndex != tap.Attrs().Index || tap.Attrs().ParentIndex != a.Index ||
		!slices.Equal(a.HardwareAddr, p.MAC) || a.MTU != mtu || a.Flags&net.FlagUp == 0 {
		return false
	}
	want := map[netip.Prefix]bool{}
	for _, w := range p.Addresses {
		want[netip.PrefixFrom(w.Addr().Unmap(), w.Bits())] = true
	}
	if !sameSet(s.addrs[a.Index], want) {
		return false
	}
	wantRoutes := map[string]bool{}
	for _, r := range portRoutes(p, a.Index) {
		wantRoutes[routeKey(r.dst, r.gw, r.metric)] = true
	}
	return sameSet(s.routes[a.Index], wantRoutes)
}

// tapCurrent reports whether the host end of port p is as ensurePort
// leaves it: marked, on its bridge, with its MTU, up.
func (d *Datapath) tapCurrent(tap, br netlink.Link, mtu int, p datapath.Port) bool {
	a := tap.Attrs()
	return a.Alias == d.alias("port", p.ID) && a.MasterIndex == br.Attrs().Index && a.MTU == mtu && a.Flags&net.FlagUp != 0
}

// portSpec is the desired state of port p (its MTU resolved) but its rules,
// in one string: when it is the same as last applied, so is what the port
// needs.
func portSpec(p datapath.Port, mtu int) string {
	b := make([]byte, 0, 160)
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	pfx := func(p netip.Prefix) { str(string(p.Addr().AsSlice())); b = binary.AppendVarint(b, int64(p.Bits())) }
	str(p.NetworkID)
	str(p.Netns)
	str(p.IfName)
	str(string(p.MAC))
	b = binary.AppendUvarint(b, uint64(mtu))
	b = binary.AppendUvarint(b, uint64(len(p.Addresses)))
	for _, a := range p.Addresses {
		pfx(a)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Gateways)))
	for _, g := range p.Gateways {
		str(string(g.AsSlice()))
	}
	b = binary.AppendUvarint(b, uint64(len(p.Routes)))
	for _, r := range p.Routes {
		pfx(r.Dst)
		str(string(r.NextHop.AsSlice()))
	}
	// Not what ensurePort applies, but the port's own desired state: a
	// change to it has the port examined too. (Its rules are left out: they
	// are its groups', and a rule change on a group must not examine every
	// member.)
	b = binary.AppendUvarint(b, uint64(len(p.AllowedAddressPairs)))
	for _, ap := range p.AllowedAddressPairs {
		str(string(ap.MAC))
		pfx(ap.Prefix)
	}
	if p.PortSecurity {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return string(b)
}

// sameSet reports whether have, without duplicates, is exactly want.
func sameSet[K comparable](have []K, want map[K]bool) bool {
	if len(have) != len(want) {
		return false
	}
	seen := make(map[K]bool, len(have))
	for _, k := range have {
		if !want[k] || seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}
