package linuxbridge

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/datapath"
)

// A router is a namespace qrouter-<owner>_<id> with a veth leg on each of
// its networks' bridges (qr-<port[:11]> inside, tap<port[:11]> on the
// bridge; the gateway leg is qg-<port[:11]>), forwarding on, its routes,
// and an "ip" nftables table doing its NAT.

func allLegs(r datapath.Router) []datapath.RouterLeg {
	legs := slices.Clone(r.Interfaces)
	if r.Gateway != nil {
		legs = append(legs, *r.Gateway)
	}
	return legs
}

func short(id string) string {
	if len(id) > 11 {
		return id[:11]
	}
	return id
}

// routers lists this owner's router namespaces: id → namespace name.
func (d *Datapath) routers() (map[string]string, error) {
	names, err := namedNetns(d.routerPrefix())
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	out := map[string]string{}
	for _, n := range names {
		out[strings.TrimPrefix(n, d.routerPrefix())] = n
	}
	return out, nil
}

func (d *Datapath) deleteRouter(id, name string) error {
	path := filepath.Join(netnsDir, name)
	if ns, err := netns.GetFromPath(path); err == nil {
		if nh, err := netlink.NewHandleAt(ns); err == nil {
			if links, err := linkList(nh); err == nil {
				for _, l := range links {
					if kind, _, ok := d.ownAlias(l.Attrs().Alias); ok && kind == "rleg" {
						_ = nh.LinkDel(l) // its host end goes with it
					}
				}
			}
			nh.Close()
		}
		ns.Close()
	}
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("router %s: delete namespace: %w", id, err)
	}
	d.changed("deleted router", "router", id)
	return nil
}

func (d *Datapath) ensureRouter(v *hostView, bridges map[string]netlink.Link, netMTU map[string]int, r datapath.Router) error {
	name := d.routerNetns(r.ID)
	ns, err := netns.GetFromPath(filepath.Join(netnsDir, name))
	if err != nil {
		if ns, err = newNamedNetns(name, d.home); err != nil {
			return err
		}
		d.changed("created router namespace", "router", r.ID, "netns", name)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	defer nh.Close()

	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	if alias := d.alias("router", r.ID); lo.Attrs().Alias != alias {
		if err := nh.LinkSetAlias(lo, alias); err != nil {
			return err
		}
		d.changed("set alias", "link", "lo")
	}
	if err := d.ensureUp(nh, lo); err != nil {
		return err
	}
	for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv6.conf.all.forwarding", "1"}} {
		wrote, err := writeSysctl(ns, d.home, kv[0], kv[1])
		if err != nil {
			return err
		}
		if wrote {
			d.changed("set sysctl", "key", kv[0], "value", kv[1])
		}
	}

	var errs []error
	var addrs []netip.Prefix
	gwIf, gwIndex := "", 0
	for _, leg := range allLegs(r) {
		br := bridges[leg.NetworkID]
		if br == nil {
			errs = append(errs, fmt.Errorf("leg %s: network %s not applied", leg.PortID, leg.NetworkID))
			continue
		}
		ifName, legAddrs := "qr-"+short(leg.PortID), slices.Clone(leg.Addresses)
		isGw := r.Gateway != nil && leg.PortID == r.Gateway.PortID
		if isGw {
			ifName = "qg-" + short(leg.PortID)
			for _, f := range r.FloatingIPs {
				legAddrs = append(legAddrs, netip.PrefixFrom(f.FloatingIP, f.FloatingIP.BitLen()))
			}
		}
		peer, err := d.ensureVeth(v, veth{
			tap: datapath.TapName(leg.PortID), alias: d.alias("rleg", r.ID+"/"+leg.PortID), bridge: br,
			mtu: orDefault(leg.MTU, netMTU[leg.NetworkID]), nsPath: filepath.Join(netnsDir, name), ns: ns, nh: nh, ifName: ifName, mac: leg.MAC, addrs: legAddrs,
		}, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("leg %s: %w", leg.PortID, err))
			continue
		}
		addrs = append(addrs, leg.Addresses...)
		if isGw {
			gwIf, gwIndex = ifName, peer.Attrs().Index
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	var want []route
	if r.Gateway != nil && r.Gateway.Gateway.IsValid() {
		want = append(want, route{dst: defaultPrefix(r.Gateway.Gateway), gw: r.Gateway.Gateway, link: gwIndex})
	}
	for _, rt := range r.Routes {
		want = append(want, route{dst: rt.Dst.Masked(), gw: rt.NextHop})
	}
	if err := d.ensureRoutes(nh, 0, addrs, want); err != nil {
		return err
	}
	return d.ensureNAT(ns, r, gwIf)
}

// natModel is what a router's NAT table holds.
type natModel struct {
	GwIf     string
	SNATAddr netip.Addr
	Internal []netip.Prefix
	FIPs     []datapath.FloatingIP
}

func (d *Datapath) ensureNAT(ns netns.NsHandle, r datapath.Router, gwIf string) error {
	var m natModel
	if r.Gateway != nil && gwIf != "" {
		m.GwIf = gwIf
		m.FIPs = slices.Clone(r.FloatingIPs)
		sort.Slice(m.FIPs, func(i, j int) bool { return m.FIPs[i].FloatingIP.Less(m.FIPs[j].FloatingIP) })
		for i := range m.FIPs {
			m.FIPs[i].ID = "" // not part of the ruleset
		}
		if r.SNAT {
			for _, a := range r.Gateway.Addresses {
				if a.Addr().Is4() {
					m.SNATAddr = a.Addr()
					break
				}
			}
			for _, l := range r.Interfaces {
				for _, a := range l.Addresses {
					if a.Addr().Is4() {
						m.Internal = append(m.Internal, a.Masked())
					}
				}
			}
			if len(m.Internal) == 0 {
				m.SNATAddr = netip.Addr{}
			}
		}
	}
	c, err := nftConn(int(ns))
	if err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: d.tableName()}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	var have []string
	for _, ch := range chains {
		if ch.Table.Name == t.Name {
			have = append(have, ch.Name)
		}
	}
	sort.Strings(have)

	if len(m.FIPs) == 0 && !m.SNATAddr.IsValid() {
		if len(have) == 0 {
			return nil
		}
		c.DelTable(t)
		if err := c.Flush(); err != nil {
			return fmt.Errorf("nat: remove table: %w", err)
		}
		d.changed("nat table removed", "router", r.ID)
		return nil
	}
	fp := fingerprint(m)
	want := []string{"fp-" + fp, "output", "postrouting", "prerouting"}
	if slices.Equal(have, want) {
		return nil
	}

	b := &nftBatch{c: c}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	natChain := func(name string, hook *nftables.ChainHook, prio nftables.ChainPriority) *nftables.Chain {
		policy := nftables.ChainPolicyAccept
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: &prio, Policy: &policy})
	}
	pre := natChain("prerouting", nftables.ChainHookPrerouting, -100)
	out := natChain("output", nftables.ChainHookOutput, -100)
	post := natChain("postrouting", nftables.ChainHookPostrouting, 100)
	c.AddChain(&nftables.Chain{Name: "fp-" + fp, Table: t})
	nh := expr.PayloadBaseNetworkHeader
	nat := func(typ expr.NATType, to netip.Addr) []expr.Any {
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: to.AsSlice()},
			&expr.NAT{Type: typ, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		}
	}
	oif := []expr.Any{meta(expr.MetaKeyOIFNAME), eq(ifname(m.GwIf))}
	for _, f := range m.FIPs {
		dnat := slices.Concat([]expr.Any{load(nh, 16, 4), eq(f.FloatingIP.AsSlice())}, nat(expr.NATTypeDestNAT, f.FixedIP))
		b.rule(t, pre, dnat...)
		b.rule(t, out, dnat...)
		b.rule(t, post, slices.Concat(oif, []expr.Any{load(nh, 12, 4), eq(f.FixedIP.AsSlice())}, nat(expr.NATTypeSourceNAT, f.FloatingIP))...)
	}
	if m.SNATAddr.IsValid() {
		src, _ := b.addrIn(t, nh, 12, true, m.Internal, false)
		b.rule(t, post, slices.Concat(oif, src, nat(expr.NATTypeSourceNAT, m.SNATAddr))...)
	}
	if b.err != nil {
		return fmt.Errorf("nat: build: %w", b.err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	d.changed("nat applied", "router", r.ID)
	return nil
}
