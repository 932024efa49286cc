package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
)

// Error classes of Apply, for errors.Is.
var (
	// ErrInvalid: an object of the state cannot be applied as given
	// (a missing id, a port on a network the state does not name, a bad
	// rule…). Apply leaves such an object as it is on the host: it neither
	// creates, updates nor removes it.
	ErrInvalid = errors.New("invalid datapath state")
	// ErrConflict: the host already has an object of that name that another
	// owner (or no monostack at all) made; Apply leaves it alone.
	ErrConflict = errors.New("host object owned by someone else")
)

// Invalid is what Check found wrong in a HostState, by kind and id. Apply
// skips these objects and leaves what the host has for them untouched.
type Invalid struct {
	Networks map[string]error
	Ports    map[string]error
	Routers  map[string]error
}

// Empty reports whether nothing was found wrong.
func (in Invalid) Empty() bool {
	return len(in.Networks) == 0 && len(in.Ports) == 0 && len(in.Routers) == 0
}

// Err joins the problems, each wrapping ErrInvalid, in a stable order.
func (in Invalid) Err() error {
	var errs []error
	for _, kind := range []struct {
		name string
		m    map[string]error
	}{{"network", in.Networks}, {"port", in.Ports}, {"router", in.Routers}} {
		ids := make([]string, 0, len(kind.m))
		for id := range kind.m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind.name, id, kind.m[id]))
		}
	}
	return errors.Join(errs...)
}

// ValidID reports whether id can name a host object: 1–64 characters of
// letters, digits, '-', '_' and '.', and not "." or "..".
func ValidID(id string) bool {
	if id == "" || len(id) > 64 || id == "." || id == ".." {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// Check validates a HostState as any Datapath must before touching a host.
// Objects that cannot be applied are returned by kind and id; an object that
// depends on an invalid one (a port on an invalid network) is invalid too.
func Check(s HostState) Invalid {
	in := Invalid{Networks: map[string]error{}, Ports: map[string]error{}, Routers: map[string]error{}}
	bad := func(m map[string]error, id, format string, args ...any) {
		if _, dup := m[id]; !dup {
			m[id] = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
		}
	}

	networks := map[string]bool{}
	bridges := map[string]string{}
	for _, n := range s.Networks {
		switch {
		case !ValidID(n.ID):
			bad(in.Networks, n.ID, "bad id")
		case networks[n.ID]:
			bad(in.Networks, n.ID, "listed twice")
		case bridges[BridgeName(n.ID)] != "":
			bad(in.Networks, n.ID, "bridge name %s also that of network %s", BridgeName(n.ID), bridges[BridgeName(n.ID)])
		case n.MTU < 0 || n.MTU > 65535:
			bad(in.Networks, n.ID, "bad MTU %d", n.MTU)
		}
		for _, p := range n.HostCIDRs {
			if !p.IsValid() {
				bad(in.Networks, n.ID, "bad host CIDR")
			}
		}
		networks[n.ID] = true
		bridges[BridgeName(n.ID)] = n.ID
	}
	netOK := func(id string) bool { _, bad := in.Networks[id]; return networks[id] && !bad }

	taps := map[string]string{}
	claimTap := func(portID, owner string) error {
		if other, ok := taps[TapName(portID)]; ok {
			return fmt.Errorf("tap name %s also that of %s", TapName(portID), other)
		}
		taps[TapName(portID)] = owner
		return nil
	}
	ports := map[string]bool{}
	ifnames := map[[2]string]string{}
	macs := map[[2]string]string{} // network, mac → port
	for _, p := range s.Ports {
		if !ValidID(p.ID) {
			bad(in.Ports, p.ID, "bad id")
			continue
		}
		if ports[p.ID] {
			bad(in.Ports, p.ID, "listed twice")
			continue
		}
		ports[p.ID] = true
		if err := claimTap(p.ID, "port "+p.ID); err != nil {
			bad(in.Ports, p.ID, "%v", err)
		}
		if !netOK(p.NetworkID) {
			bad(in.Ports, p.ID, "network %q not in the state or invalid", p.NetworkID)
		}
		if p.Netns == "" {
			bad(in.Ports, p.ID, "no netns")
		}
		if !validIfName(p.IfName) {
			bad(in.Ports, p.ID, "bad interface name %q", p.IfName)
		} else if other, dup := ifnames[[2]string{p.Netns, p.IfName}]; dup {
			bad(in.Ports, p.ID, "interface %s in %s also that of port %s", p.IfName, p.Netns, other)
		} else {
			ifnames[[2]string{p.Netns, p.IfName}] = p.ID
		}
		if err := checkMAC(p.MAC); err != nil {
			bad(in.Ports, p.ID, "%v", err)
		}
		if p.MTU < 0 || p.MTU > 65535 {
			bad(in.Ports, p.ID, "bad MTU %d", p.MTU)
		}
		if err := checkAddrs(p.Addresses, p.Gateways, p.Routes); err != nil {
			bad(in.Ports, p.ID, "%v", err)
		}
		for _, ap := range p.AllowedAddressPairs {
			if !ap.Prefix.IsValid() {
				bad(in.Ports, p.ID, "allowed address pair without a valid prefix")
			}
			if ap.MAC != nil {
				if err := checkMAC(ap.MAC); err != nil {
					bad(in.Ports, p.ID, "allowed address pair: %v", err)
				}
			}
		}
		for i, r := range p.Rules {
			if err := checkRule(r); err != nil {
				bad(in.Ports, p.ID, "rule %d: %v", i, err)
			}
		}
		if p.PortSecurity && p.MAC != nil {
			// The firewall finds a port by its MACs on its network.
			seen := map[string]bool{}
			for _, m := range append([]string{p.MAC.String()}, pairMACs(p)...) {
				if seen[m] {
					continue
				}
				seen[m] = true
				k := [2]string{p.NetworkID, m}
				if other, dup := macs[k]; dup {
					bad(in.Ports, p.ID, "MAC %s also that of port %s on network %s", m, other, p.NetworkID)
				}
				macs[k] = p.ID
			}
		}
	}

	routers := map[string]bool{}
	for _, r := range s.Routers {
		if !ValidID(r.ID) {
			bad(in.Routers, r.ID, "bad id")
			continue
		}
		if routers[r.ID] {
			bad(in.Routers, r.ID, "listed twice")
			continue
		}
		routers[r.ID] = true
		legs := append([]RouterLeg(nil), r.Interfaces...)
		if r.Gateway != nil {
			legs = append(legs, *r.Gateway)
			if r.Gateway.Gateway.IsValid() && !r.Gateway.Gateway.Is4() && !r.Gateway.Gateway.Is6() {
				bad(in.Routers, r.ID, "bad gateway")
			}
		}
		legNets := map[string]bool{}
		for _, l := range legs {
			if !ValidID(l.PortID) {
				bad(in.Routers, r.ID, "leg with bad port id %q", l.PortID)
				continue
			}
			if err := claimTap(l.PortID, "router "+r.ID); err != nil {
				bad(in.Routers, r.ID, "leg %s: %v", l.PortID, err)
			}
			if !netOK(l.NetworkID) {
				bad(in.Routers, r.ID, "leg %s: network %q not in the state or invalid", l.PortID, l.NetworkID)
			}
			if legNets[l.NetworkID] {
				bad(in.Routers, r.ID, "two legs on network %s", l.NetworkID)
			}
			legNets[l.NetworkID] = true
			if err := checkMAC(l.MAC); err != nil {
				bad(in.Routers, r.ID, "leg %s: %v", l.PortID, err)
			}
			if err := checkAddrs(l.Addresses, nil, nil); err != nil {
				bad(in.Routers, r.ID, "leg %s: %v", l.PortID, err)
			}
			if l.MTU < 0 || l.MTU > 65535 {
				bad(in.Routers, r.ID, "leg %s: bad MTU %d", l.PortID, l.MTU)
			}
		}
		for _, f := range r.FloatingIPs {
			switch {
			case r.Gateway == nil:
				bad(in.Routers, r.ID, "floating IP %s without a gateway", f.FloatingIP)
			case !f.FloatingIP.Is4() || !f.FixedIP.Is4():
				bad(in.Routers, r.ID, "floating IP %s → %s: IPv4 only", f.FloatingIP, f.FixedIP)
			}
		}
		for _, rt := range r.Routes {
			if !rt.Dst.IsValid() || !rt.NextHop.IsValid() || rt.Dst.Addr().Is4() != rt.NextHop.Is4() {
				bad(in.Routers, r.ID, "bad route %v via %v", rt.Dst, rt.NextHop)
			}
		}
	}
	return in
}

func pairMACs(p Port) []string {
	var out []string
	for _, ap := range p.AllowedAddressPairs {
		if ap.MAC != nil {
			out = append(out, ap.MAC.String())
		}
	}
	return out
}

func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if c == '/' || c == ':' || c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func checkMAC(m []byte) error {
	if len(m) != 6 {
		return fmt.Errorf("MAC %v: want 6 bytes", m)
	}
	if m[0]&1 != 0 {
		return fmt.Errorf("MAC %v is multicast", m)
	}
	return nil
}

func checkAddrs(addrs []netip.Prefix, gws []netip.Addr, routes []Route) error {
	for _, a := range addrs {
		if !a.IsValid() || a.Addr().Zone() != "" {
			return fmt.Errorf("bad address %v", a)
		}
	}
	fams := map[bool]bool{}
	for _, g := range gws {
		if !g.IsValid() {
			return fmt.Errorf("bad gateway %v", g)
		}
		if fams[g.Is4()] {
			return fmt.Errorf("two gateways of one family")
		}
		fams[g.Is4()] = true
	}
	for _, r := range routes {
		if !r.Dst.IsValid() || !r.NextHop.IsValid() || r.Dst.Addr().Is4() != r.NextHop.Is4() {
			return fmt.Errorf("bad route %v via %v", r.Dst, r.NextHop)
		}
	}
	return nil
}

func checkRule(r Rule) error {
	if r.Direction != "ingress" && r.Direction != "egress" {
		return fmt.Errorf("bad direction %q", r.Direction)
	}
	if r.EtherType != "IPv4" && r.EtherType != "IPv6" {
		return fmt.Errorf("bad ethertype %q", r.EtherType)
	}
	proto, ok := ProtocolNumber(r.Protocol, r.EtherType)
	if !ok {
		return fmt.Errorf("unknown protocol %q", r.Protocol)
	}
	switch proto {
	case 1, 58:
		if r.PortMin < 0 || r.PortMin > 255 || r.PortMax < -1 || r.PortMax > 255 {
			return fmt.Errorf("bad ICMP type/code %d/%d", r.PortMin, r.PortMax)
		}
	default:
		if r.PortMin < 0 || r.PortMax < 0 || r.PortMin > 65535 || r.PortMax > 65535 ||
			(r.PortMax != 0 && r.PortMin > r.PortMax) {
			return fmt.Errorf("bad port range %d-%d", r.PortMin, r.PortMax)
		}
	}
	for _, p := range r.Remotes {
		if !p.IsValid() {
			return fmt.Errorf("bad remote prefix")
		}
	}
	return nil
}

var protocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58,
	"igmp": 2, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
	"ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113,
	"rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// ProtocolNumber resolves a Rule's Protocol (a Neutron protocol name or a
// number) to an IP protocol number; -1 means any. "icmp" on IPv6 is ICMPv6,
// as in Neutron.
func ProtocolNumber(proto, etherType string) (int, bool) {
	if proto == "" || proto == "any" {
		return -1, true
	}
	n, ok := protocols[proto]
	if !ok {
		v, err := strconv.Atoi(proto)
		if err != nil || v < 0 || v > 255 {
			return 0, false
		}
		n = v
	}
	if etherType == "IPv6" && n == 1 {
		n = 58
	}
	return n, true
}
