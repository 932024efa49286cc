package network

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/monostack/monostack/internal/datapath"
)

// HostState computes what a host must have: the ports bound to it
// (binding:host_id) that name a namespace (binding:profile "netns"), with
// their security-group rules resolved; the networks those ports are on;
// and, on the host that runs routers (Config.Host), every router with its
// legs, SNAT and floating IPs, and the networks of those legs.
func (s *Service) HostState(ctx context.Context, host string) (datapath.HostState, error) {
	st := datapath.HostState{Networks: []datapath.Network{}, Ports: []datapath.Port{}, Routers: []datapath.Router{}}
	hs := &hostStateBuilder{s: s, ctx: ctx, q: s.db, nets: map[string]*Network{}, subnets: map[string][]*Subnet{},
		members: map[string][]netip.Prefix{}, remotes: map[string][]netip.Prefix{}, groups: map[string]*SecurityGroup{}}
	ports, err := s.loadPorts(ctx, s.db, `p.host_id=? AND p.admin_state_up AND p.device_owner NOT IN (?,?,?)`,
		host, ownerRouterInterface, ownerRouterGateway, ownerFloatingIP)
	if err != nil {
		return st, err
	}
	netIDs := map[string]bool{}
	// Interface names in each namespace: those the profiles ask for, then
	// eth0, eth1… in the order the ports were made.
	ifNames := map[string]map[string]bool{}
	for _, p := range ports {
		if name, _ := p.Profile["ifname"].(string); name != "" && p.Netns() != "" {
			if ifNames[p.Netns()] == nil {
				ifNames[p.Netns()] = map[string]bool{}
			}
			ifNames[p.Netns()][name] = true
		}
	}
	var dps []datapath.Port
	for _, p := range ports {
		if p.Netns() == "" {
			continue // nothing to plug it into yet
		}
		dp, err := hs.port(p, ifNames)
		if err != nil {
			return st, err
		}
		dps = append(dps, dp)
		netIDs[p.NetworkID] = true
	}
	// A namespace has one default route per address family: through its
	// first interface (eth0, then eth1…; among equals the port made first)
	// that has a gateway, so a port attached later never takes it.
	slices.SortStableFunc(dps, func(a, b datapath.Port) int {
		return cmp.Or(cmp.Compare(a.Netns, b.Netns), cmp.Compare(datapath.IfNumber(a.IfName), datapath.IfNumber(b.IfName)))
	})
	gateways := map[string]map[bool]bool{} // netns → is IPv4 → taken
	for _, dp := range dps {
		if gateways[dp.Netns] == nil {
			gateways[dp.Netns] = map[bool]bool{}
		}
		taken := gateways[dp.Netns]
		dp.Gateways = slices.DeleteFunc(dp.Gateways, func(g netip.Addr) bool { return taken[g.Is4()] })
		for _, g := range dp.Gateways {
			taken[g.Is4()] = true
		}
		st.Ports = append(st.Ports, dp)
	}
	if host == s.cfg.Host {
		routers, err := s.loadRouters(ctx, s.db, `admin_state_up`)
		if err != nil {
			return st, err
		}
		for _, rt := range routers {
			dr, nets, err := hs.router(rt)
			if err != nil {
				return st, err
			}
			if dr.Gateway == nil && len(dr.Interfaces) == 0 {
				continue
			}
			st.Routers = append(st.Routers, dr)
			for _, n := range nets {
				netIDs[n] = true
			}
		}
	}
	for id := range netIDs {
		n, err := hs.network(id)
		if err != nil {
			return st, err
		}
		dn := datapath.Network{ID: n.ID, MTU: n.MTU, External: n.External}
		if n.External && host == s.cfg.Host {
			sns, err := hs.subnetsOf(n.ID)
			if err != nil {
				return st, err
			}
			for _, sn := range sns {
				if sn.Gateway.IsValid() {
					dn.HostCIDRs = append(dn.HostCIDRs, netip.PrefixFrom(sn.Gateway, sn.CIDR.Bits()))
				}
			}
		}
		st.Networks = append(st.Networks, dn)
	}
	slices.SortFunc(st.Networks, func(a, b datapath.Network) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Ports, func(a, b datapath.Port) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Routers, func(a, b datapath.Router) int { return cmp.Compare(a.ID, b.ID) })
	return st, nil
}

// hostStateBuilder caches what one HostState computation reads.
type hostStateBuilder struct {
	s   *Service
	ctx context.Context
	// q reads: the database, or the transaction of the caller that
	// wrote what is being read.
	q       queryer
	nets    map[string]*Network
	subnets map[string][]*Subnet
	groups  map[string]*SecurityGroup
	// members: a group's member addresses (of every port in it, on any
	// host, with their allowed address pairs).
	members map[string][]netip.Prefix
	// remotes: a group's members of one family ("<group>/IPv4"), as rules
	// from that group match them.
	remotes map[string][]netip.Prefix
}

func (hs *hostStateBuilder) network(id string) (*Network, error) {
	if n := hs.nets[id]; n != nil {
		return n, nil
	}
	n, err := hs.s.getNetwork(hs.ctx, hs.q, id)
	if err != nil {
		return nil, err
	}
	hs.nets[id] = n
	return n, nil
}

func (hs *hostStateBuilder) subnetsOf(networkID string) ([]*Subnet, error) {
	if l, ok := hs.subnets[networkID]; ok {
		return l, nil
	}
	l, err := hs.s.subnetsOf(hs.ctx, hs.q, networkID)
	if err != nil {
		return nil, err
	}
	hs.subnets[networkID] = l
	return l, nil
}

func (hs *hostStateBuilder) subnet(networkID, id string) (*Subnet, error) {
	l, err := hs.subnetsOf(networkID)
	if err != nil {
		return nil, err
	}
	for _, sn := range l {
		if sn.ID == id {
			return sn, nil
		}
	}
	return nil, fmt.Errorf("subnet %s of network %s vanished", id, networkID)
}

// addresses turns fixed IPs into prefixes with their subnets' lengths, and
// returns each family's first gateway and the subnets' host routes.
func (hs *hostStateBuilder) addresses(networkID string, ips []FixedIP) ([]netip.Prefix, []netip.Addr, []datapath.Route, error) {
	var addrs []netip.Prefix
	var gws []netip.Addr
	var routes []datapath.Route
	for _, f := range ips {
		sn, err := hs.subnet(networkID, f.SubnetID)
		if err != nil {
			return nil, nil, nil, err
		}
		addrs = append(addrs, netip.PrefixFrom(f.IP, sn.CIDR.Bits()))
		if sn.Gateway.IsValid() && !slices.ContainsFunc(gws, func(g netip.Addr) bool { return g.Is4() == sn.Gateway.Is4() }) {
			gws = append(gws, sn.Gateway)
		}
		for _, r := range sn.HostRoutes {
			routes = append(routes, datapath.Route{Dst: r.Destination, NextHop: r.NextHop})
		}
	}
	return addrs, gws, routes, nil
}

func (hs *hostStateBuilder) port(p *Port, ifNames map[string]map[string]bool) (datapath.Port, error) {
	n, err := hs.network(p.NetworkID)
	if err != nil {
		return datapath.Port{}, err
	}
	mac, _ := net.ParseMAC(p.MAC)
	addrs, gws, routes, err := hs.addresses(p.NetworkID, p.FixedIPs)
	if err != nil {
		return datapath.Port{}, err
	}
	ifName, _ := p.Profile["ifname"].(string)
	if ifName == "" {
		used := ifNames[p.Netns()]
		if used == nil {
			used = map[string]bool{}
			ifNames[p.Netns()] = used
		}
		for i := 0; ; i++ {
			if name := "eth" + strconv.Itoa(i); !used[name] {
				ifName, used[name] = name, true
				break
			}
		}
	}
	dp := datapath.Port{ID: p.ID, NetworkID: p.NetworkID, MAC: mac, Addresses: addrs, Gateways: gws, Routes: routes,
		MTU: n.MTU, Netns: p.Netns(), IfName: ifName, PortSecurity: p.PortSecurity}
	if !p.PortSecurity {
		return dp, nil
	}
	for _, ap := range p.AddressPairs {
		pr, ok := pairPrefix(ap.IP)
		if !ok {
			continue
		}
		var hw net.HardwareAddr
		if ap.MAC != "" && ap.MAC != p.MAC {
			hw, _ = net.ParseMAC(ap.MAC)
		}
		dp.AllowedAddressPairs = append(dp.AllowedAddressPairs, datapath.AddressPair{MAC: hw, Prefix: pr})
	}
	for _, gid := range p.SecurityGroups {
		g, err := hs.group(gid)
		if err != nil {
			return dp, err
		}
		for _, r := range g.Rules {
			rule, ok, err := hs.rule(r)
			if err != nil {
				return dp, err
			}
			if ok && !slices.ContainsFunc(dp.Rules, func(x datapath.Rule) bool { return rulesEqual(x, rule) }) {
				dp.Rules = append(dp.Rules, rule)
			}
		}
	}
	return dp, nil
}

func pairPrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func rulesEqual(a, b datapath.Rule) bool {
	return a.Direction == b.Direction && a.EtherType == b.EtherType && a.Protocol == b.Protocol &&
		a.PortMin == b.PortMin && a.PortMax == b.PortMax && slices.Equal(a.Remotes, b.Remotes)
}

func (hs *hostStateBuilder) group(id string) (*SecurityGroup, error) {
	if g := hs.groups[id]; g != nil {
		return g, nil
	}
	g, err := hs.s.getSG(hs.ctx, hs.q, id)
	if err != nil {
		return nil, err
	}
	hs.groups[id] = g
	return g, nil
}

// groupMembers returns the addresses of a group's ports.
func (hs *hostStateBuilder) groupMembers(id string) ([]netip.Prefix, error) {
	if m, ok := hs.members[id]; ok {
		return m, nil
	}
	ports, err := hs.s.loadPorts(hs.ctx, hs.q, `p.id IN (SELECT port_id FROM port_security_groups WHERE security_group_id=?)`, id)
	if err != nil {
		return nil, err
	}
	out := []netip.Prefix{}
	add := func(p netip.Prefix) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, p := range ports {
		for _, f := range p.FixedIPs {
			add(netip.PrefixFrom(f.IP, f.IP.BitLen()))
		}
		for _, ap := range p.AddressPairs {
			if pr, ok := pairPrefix(ap.IP); ok {
				add(pr)
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	hs.members[id] = out
	return out, nil
}

// rule resolves a security-group rule for the datapath; ok is false for a
// rule that can match nothing (a remote group without members).
func (hs *hostStateBuilder) rule(r *SGRule) (datapath.Rule, bool, error) {
	v6 := r.EtherType == "IPv6"
	dr := datapath.Rule{Direction: r.Direction, EtherType: r.EtherType}
	num := protoNumber(r.Protocol)
	switch {
	case r.Protocol == nil:
	case num == 6:
		dr.Protocol = "tcp"
	case num == 17:
		dr.Protocol = "udp"
	case num == 1 || num == 58:
		dr.Protocol = "icmp"
		if v6 {
			dr.Protocol = "icmpv6"
		}
	default:
		dr.Protocol = strconv.Itoa(num)
	}
	switch {
	case num == 1 || num == 58:
		if r.PortMin != nil {
			dr.PortMin, dr.PortMax = *r.PortMin, -1
			if r.PortMax != nil {
				dr.PortMax = *r.PortMax
			}
		}
	case r.PortMin != nil || r.PortMax != nil:
		if r.PortMin != nil {
			dr.PortMin = *r.PortMin
		}
		dr.PortMax = dr.PortMin
		if r.PortMax != nil {
			dr.PortMax = *r.PortMax
		}
		if r.PortMin == nil {
			dr.PortMin = 1
		}
	}
	switch {
	case r.RemoteIPPrefix != nil:
		p, err := netip.ParsePrefix(*r.RemoteIPPrefix)
		if err != nil {
			return dr, false, nil
		}
		if p.Bits() > 0 {
			dr.Remotes = []netip.Prefix{p.Masked()}
		}
	case r.RemoteGroupID != nil:
		// One slice per group and family, shared by every rule that names
		// them: the state's wire form then lists it once (see
		// datapath.HostState.MarshalJSON).
		key := *r.RemoteGroupID + "/" + r.EtherType
		remotes, ok := hs.remotes[key]
		if !ok {
			members, err := hs.groupMembers(*r.RemoteGroupID)
			if err != nil {
				return dr, false, err
			}
			for _, m := range members {
				if m.Addr().Is6() == v6 {
					remotes = append(remotes, m)
				}
			}
			hs.remotes[key] = remotes
		}
		if len(remotes) == 0 {
			return dr, false, nil
		}
		dr.Remotes = remotes
	}
	return dr, true, nil
}

// router builds a router's desired state and returns the networks its legs
// are on.
func (hs *hostStateBuilder) router(rt *Router) (datapath.Router, []string, error) {
	dr := datapath.Router{ID: rt.ID, SNAT: false, Interfaces: []datapath.RouterLeg{}, FloatingIPs: []datapath.FloatingIP{}}
	var nets []string
	if rt.GWPort != nil {
		leg, err := hs.leg(rt.GWPort)
		if err != nil {
			return dr, nil, err
		}
		sns, err := hs.subnetsOf(rt.GWPort.NetworkID)
		if err != nil {
			return dr, nil, err
		}
		for _, f := range rt.GWPort.FixedIPs {
			for _, sn := range sns {
				if sn.ID == f.SubnetID && sn.Gateway.IsValid() && f.IP.Is4() {
					leg.Gateway = sn.Gateway
				}
			}
		}
		dr.Gateway = &leg
		dr.SNAT = rt.EnableSNAT
		nets = append(nets, rt.GWPort.NetworkID)
	}
	ifaces, err := hs.s.routerInterfaces(hs.ctx, hs.q, rt.ID)
	if err != nil {
		return dr, nil, err
	}
	for _, p := range ifaces {
		if !p.AdminStateUp {
			continue
		}
		leg, err := hs.leg(p)
		if err != nil {
			return dr, nil, err
		}
		// A router has one leg per network: the addresses of a second
		// interface port on a network (another subnet) join the first.
		if i := slices.IndexFunc(dr.Interfaces, func(l datapath.RouterLeg) bool { return l.NetworkID == p.NetworkID }); i >= 0 {
			dr.Interfaces[i].Addresses = append(dr.Interfaces[i].Addresses, leg.Addresses...)
			continue
		}
		if dr.Gateway != nil && dr.Gateway.NetworkID == p.NetworkID {
			continue
		}
		dr.Interfaces = append(dr.Interfaces, leg)
		nets = append(nets, p.NetworkID)
	}
	slices.SortFunc(dr.Interfaces, func(a, b datapath.RouterLeg) int { return cmp.Compare(a.PortID, b.PortID) })
	if dr.Gateway != nil {
		fips, err := hs.s.loadFIPs(hs.ctx, hs.q, `router_id=? AND fixed_ip_address IS NOT NULL`, rt.ID)
		if err != nil {
			return dr, nil, err
		}
		for _, f := range fips {
			fixed, err := netip.ParseAddr(f.FixedIP)
			if err != nil {
				continue
			}
			dr.FloatingIPs = append(dr.FloatingIPs, datapath.FloatingIP{ID: f.ID, FloatingIP: f.Address, FixedIP: fixed})
		}
		slices.SortFunc(dr.FloatingIPs, func(a, b datapath.FloatingIP) int { return cmp.Compare(a.ID, b.ID) })
	}
	for _, r := range rt.Routes {
		dr.Routes = append(dr.Routes, datapath.Route{Dst: r.Destination, NextHop: r.NextHop})
	}
	return dr, nets, nil
}

func (hs *hostStateBuilder) leg(p *Port) (datapath.RouterLeg, error) {
	n, err := hs.network(p.NetworkID)
	if err != nil {
		return datapath.RouterLeg{}, err
	}
	mac, _ := net.ParseMAC(p.MAC)
	addrs, _, _, err := hs.addresses(p.NetworkID, p.FixedIPs)
	if err != nil {
		return datapath.RouterLeg{}, err
	}
	return datapath.RouterLeg{PortID: p.ID, NetworkID: p.NetworkID, MAC: mac, Addresses: addrs, MTU: n.MTU}, nil
}
