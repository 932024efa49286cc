package linuxbridge

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/datapath"
)

// The security-group firewall is two nftables tables named
// monostack-<owner>, rebuilt whole in one transaction whenever the desired
// rules change (and left alone when they do not: a marker chain fp-<hash>
// carries the fingerprint of what was installed):
//
//   - bridge family, on the taps themselves (works with or without
//     br_netfilter): anti-spoofing. Frames a port sends must come from its
//     MACs and addresses (ARP included); it may not act as a DHCP server or
//     an IPv6 router; other ethertypes are dropped. Ports of the state that
//     are invalid are quarantined (dropped both ways).
//   - inet family, stateful, on bridged traffic as br_netfilter hands it to
//     the IP hooks (the kernel here has no nf_conntrack_bridge, so conntrack
//     in the bridge family is not possible): the input/forward chains find
//     the port by (bridge, source or destination MAC) and jump to its egress
//     (o-<port>) and ingress (i-<port>) chains. Established and related
//     traffic is accepted; new traffic must match a rule, else it is
//     dropped. Each network gets its own conntrack zone so that overlapping
//     tenant addresses on different bridges never share connection state.

const fwVersion = "1"

type fwNet struct {
	ID, Bridge string
	Zone       uint16
	Secured    bool
}

type fwPort struct {
	ID, Tap, Bridge, NetworkID string
	MACs                       []string
	V4, V6                     []netip.Prefix
	Rules                      []datapath.Rule
}

type fwModel struct {
	Version    string
	Nets       []fwNet
	Ports      []fwPort
	Quarantine []string
}

func (m *fwModel) empty() bool {
	return len(m.Nets) == 0 && len(m.Ports) == 0 && len(m.Quarantine) == 0
}

func (m *fwModel) fingerprint() string { return fingerprint(m) }

// fingerprint is a short hash of a ruleset's model: what marks a table as
// current.
func fingerprint(m any) string {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// zoneFor gives each network a conntrack zone derived from its owner and id
// (stable across restarts and Applies), probing on the rare collision.
func zones(owner string, nets []string) map[string]uint16 {
	sort.Strings(nets)
	used := map[uint16]bool{}
	out := map[string]uint16{}
	for _, id := range nets {
		h := fnv.New32a()
		h.Write([]byte(owner + "/" + id))
		z := uint16(1 + h.Sum32()%65000)
		for used[z] {
			z = z%65000 + 1
		}
		used[z] = true
		out[id] = z
	}
	return out
}

func (d *Datapath) firewallModel(s datapath.HostState, inv datapath.Invalid) fwModel {
	m := fwModel{Version: fwVersion}
	var ids []string
	for _, n := range s.Networks {
		if _, bad := inv.Networks[n.ID]; !bad {
			ids = append(ids, n.ID)
		}
	}
	zs := zones(d.owner, slices.Clone(ids))
	secured := map[string]bool{}
	for _, p := range s.Ports {
		if _, bad := inv.Ports[p.ID]; bad {
			if p.ID != "" {
				m.Quarantine = append(m.Quarantine, datapath.TapName(p.ID))
			}
			continue
		}
		if !p.PortSecurity {
			continue
		}
		secured[p.NetworkID] = true
		fp := fwPort{ID: p.ID, Tap: datapath.TapName(p.ID), Bridge: datapath.BridgeName(p.NetworkID), NetworkID: p.NetworkID, Rules: p.Rules}
		macs := []net.HardwareAddr{p.MAC}
		for _, ap := range p.AllowedAddressPairs {
			if ap.MAC != nil {
				macs = append(macs, ap.MAC)
			}
		}
		for _, mac := range macs {
			if s := mac.String(); !slices.Contains(fp.MACs, s) {
				fp.MACs = append(fp.MACs, s)
				fp.V6 = append(fp.V6, netip.PrefixFrom(linkLocal(mac), 128))
			}
		}
		srcs := slices.Clone(p.Addresses)
		for i := range srcs {
			srcs[i] = netip.PrefixFrom(srcs[i].Addr(), srcs[i].Addr().BitLen())
		}
		for _, ap := range p.AllowedAddressPairs {
			srcs = append(srcs, ap.Prefix)
		}
		for _, a := range srcs {
			if a.Addr().Unmap().Is4() {
				fp.V4 = append(fp.V4, a)
			} else {
				fp.V6 = append(fp.V6, a)
			}
		}
		m.Ports = append(m.Ports, fp)
	}
	for _, id := range ids {
		m.Nets = append(m.Nets, fwNet{ID: id, Bridge: datapath.BridgeName(id), Zone: zs[id], Secured: secured[id]})
	}
	slices.SortFunc(m.Ports, func(a, b fwPort) int { return strings.Compare(a.ID, b.ID) })
	slices.Sort(m.Quarantine)
	m.Quarantine = slices.Compact(m.Quarantine)
	return m
}

// linkLocal is the EUI-64 IPv6 link-local address of mac.
func linkLocal(mac net.HardwareAddr) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}

func (d *Datapath) tableName() string { return "monostack-" + d.owner }

// nftConn opens an nftables connection (in the namespace fd, or the host's
// when fd is -1) whose socket buffers fit large batches.
func nftConn(fd int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(s uintptr) {
			serr = errors.Join(
				unix.SetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20),
				unix.SetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20))
		}); err != nil {
			return err
		}
		return serr
	})}
	if fd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	return nftables.New(opts...)
}

// applyFirewall converges the two tables; an error means the state's
// security groups are not (all) in force.
func (d *Datapath) applyFirewall(s datapath.HostState, inv datapath.Invalid) error {
	m := d.firewallModel(s, inv)
	c, err := nftConn(int(d.home))
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	bt := &nftables.Table{Family: nftables.TableFamilyBridge, Name: d.tableName()}
	it := &nftables.Table{Family: nftables.TableFamilyINet, Name: d.tableName()}
	if m.empty() {
		n := 0
		for _, t := range []*nftables.Table{bt, it} {
			exists, _, err := tableUse(c, t)
			if err != nil {
				return fmt.Errorf("firewall: %w", err)
			}
			if exists {
				c.DelTable(t)
				n++
			}
		}
		if n == 0 {
			return nil
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("firewall: remove tables: %w", err)
		}
		d.fw = fwInstalled{}
		d.changed("firewall tables removed")
		return nil
	}
	if len(m.Ports) > 0 {
		if err := d.ensureBrNetfilter(); err != nil {
			return err
		}
	}
	fp := m.fingerprint()
	if d.fw.fingerprint == fp {
		current, err := d.fw.current(c, bt, it)
		if err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
		if current {
			return nil
		}
	}
	b := &nftBatch{c: c}
	for _, t := range []*nftables.Table{bt, it} {
		c.AddTable(t)
		c.DelTable(t)
		c.AddTable(t)
	}
	b.bridgeTable(bt, &m, fp)
	b.inetTable(it, &m, fp)
	if b.err != nil {
		return fmt.Errorf("firewall: build: %w", b.err)
	}
	d.fw = fwInstalled{}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	_, useB, errB := tableUse(c, bt)
	_, useI, errI := tableUse(c, it)
	if errB == nil && errI == nil {
		d.fw = fwInstalled{fingerprint: fp, use: [2]uint32{useB, useI}}
	}
	d.changed("firewall applied", "ports", len(m.Ports), "fingerprint", fp)
	return nil
}

// fwInstalled is what this datapath last installed: the fingerprint of the
// rules and the number of objects (chains and sets) each table then held.
// After a restart it is empty, and the first Apply rebuilds the tables.
type fwInstalled struct {
	fingerprint string
	use         [2]uint32
}

// current reports whether the host still has the tables as installed: each
// table there with its object count and marker chain. (These are single
// GETs, not dumps, which other writers make inconsistent.)
func (f fwInstalled) current(c *nftables.Conn, bt, it *nftables.Table) (bool, error) {
	for i, t := range []*nftables.Table{bt, it} {
		exists, use, err := tableUse(c, t)
		if err != nil || !exists || use != f.use[i] {
			return false, err
		}
		if _, err := c.ListChain(t, "fp-"+f.fingerprint); err != nil {
			return false, nil
		}
	}
	return true, nil
}

// tableUse looks a table up: whether it exists and how many objects it
// holds.
func tableUse(c *nftables.Conn, t *nftables.Table) (bool, uint32, error) {
	got, err := c.ListTableOfFamily(t.Name, t.Family)
	if errors.Is(err, unix.ENOENT) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("look up table %s: %w", t.Name, err)
	}
	return true, got.Use, nil
}

func baseChain(t *nftables.Table, name string, hook *nftables.ChainHook, prio nftables.ChainPriority) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: &prio, Policy: &policy}
}

func (b *nftBatch) bridgeTable(t *nftables.Table, m *fwModel, fp string) {
	c := b.c
	pre := c.AddChain(baseChain(t, "prerouting", nftables.ChainHookPrerouting, -200))
	fwd := c.AddChain(baseChain(t, "forward", nftables.ChainHookForward, -200))
	c.AddChain(&nftables.Chain{Name: "fp-" + fp, Table: t})

	var in, out []nftables.SetElement
	for _, q := range m.Quarantine {
		v := &expr.Verdict{Kind: expr.VerdictDrop}
		in = append(in, nftables.SetElement{Key: ifname(q), VerdictData: v})
		out = append(out, nftables.SetElement{Key: ifname(q), VerdictData: v})
	}
	for _, p := range m.Ports {
		if slices.Contains(m.Quarantine, p.Tap) {
			continue
		}
		in = append(in, nftables.SetElement{Key: ifname(p.Tap), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "as-" + p.ID}})
		b.antiSpoof(t, c.AddChain(&nftables.Chain{Name: "as-" + p.ID, Table: t}), p)
	}
	if len(in) > 0 {
		s := b.set(t, &nftables.Set{IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict}, in)
		b.rule(t, pre, meta(expr.MetaKeyIIFNAME), vmapLookup(s))
	}
	if len(out) > 0 {
		s := b.set(t, &nftables.Set{IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict}, out)
		b.rule(t, fwd, meta(expr.MetaKeyOIFNAME), vmapLookup(s))
	}
}

func macs(ss []string) []net.HardwareAddr {
	out := make([]net.HardwareAddr, 0, len(ss))
	for _, s := range ss {
		m, _ := net.ParseMAC(s)
		out = append(out, m)
	}
	return out
}

// antiSpoof fills a port's bridge-family chain, entered for every frame the
// port sends.
func (b *nftBatch) antiSpoof(t *nftables.Table, ch *nftables.Chain, p fwPort) {
	drop, accept := verdict(expr.VerdictDrop), verdict(expr.VerdictAccept)
	ms := macs(p.MACs)
	nh := expr.PayloadBaseNetworkHeader
	r := func(parts ...[]expr.Any) { b.rule(t, ch, slices.Concat(parts...)...) }
	one := func(e expr.Any) []expr.Any { return []expr.Any{e} }

	r(b.macIn(t, expr.PayloadBaseLLHeader, 6, ms, true), one(drop))

	// ARP: Ethernet/IPv4 only, from the port's MACs and addresses (or
	// 0.0.0.0, a probe).
	arp := etherType(ethTypeARP)
	r(arp, []expr.Any{load(nh, 4, 2), neq(be16(0x0604))}, one(drop))
	r(arp, b.macIn(t, nh, 8, ms, true), one(drop))
	r(arp, []expr.Any{load(nh, 14, 4), eq(make([]byte, 4))}, one(accept))
	if spa, ok := b.addrIn(t, nh, 14, true, p.V4, true); !ok {
		r(arp, one(drop))
	} else if spa != nil {
		r(arp, spa, one(drop))
	}
	r(arp, one(accept))

	ip := etherType(ethTypeIP)
	r(ip, udpPorts(67, 68), one(drop)) // no DHCP server
	r(ip, []expr.Any{load(nh, 12, 4), eq(make([]byte, 4))}, udpPorts(68, 67), one(accept))
	if src, ok := b.addrIn(t, nh, 12, true, p.V4, true); ok {
		if src != nil {
			r(ip, src, one(drop))
		}
		r(ip, one(accept))
	}

	ip6 := etherType(ethTypeIPv6)
	r(ip6, b.icmpTypes(t, unix.IPPROTO_ICMPV6, 134), one(drop)) // no router advertisements
	r(ip6, udpPorts(547, 546), one(drop))                       // no DHCPv6 server
	for _, typ := range []byte{135, 143} {                      // DAD, MLD reports: from ::
		r(ip6, []expr.Any{load(nh, 8, 16), eq(make([]byte, 16))}, b.icmpTypes(t, unix.IPPROTO_ICMPV6, typ), one(accept))
	}
	if src, ok := b.addrIn(t, nh, 8, false, p.V6, true); ok {
		if src != nil {
			r(ip6, src, one(drop))
		}
		r(ip6, one(accept))
	}
	r(one(drop))
}

func (b *nftBatch) inetTable(t *nftables.Table, m *fwModel, fp string) {
	c := b.c
	rawPre := c.AddChain(baseChain(t, "raw-prerouting", nftables.ChainHookPrerouting, nftables.ChainPriority(-300)))
	rawOut := c.AddChain(baseChain(t, "raw-output", nftables.ChainHookOutput, nftables.ChainPriority(-300)))
	fwd := c.AddChain(baseChain(t, "forward", nftables.ChainHookForward, 0))
	input := c.AddChain(baseChain(t, "input", nftables.ChainHookInput, 0))
	c.AddChain(&nftables.Chain{Name: "fp-" + fp, Table: t})

	established := append(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	b.rule(t, fwd, established...)
	b.rule(t, input, established...)
	for _, n := range m.Nets {
		zone := []expr.Any{
			&expr.Immediate{Register: 1, Data: nativeU16(n.Zone)},
			&expr.Ct{Register: 1, SourceRegister: true, Key: expr.CtKeyZONE},
		}
		b.rule(t, rawPre, slices.Concat([]expr.Any{meta(expr.MetaKeyIIFNAME), eq(ifname(n.Bridge))}, zone)...)
		b.rule(t, rawOut, slices.Concat([]expr.Any{meta(expr.MetaKeyOIFNAME), eq(ifname(n.Bridge))}, zone)...)
	}
	// What a port may always send (DHCP, neighbour discovery, MLD) and
	// always receive (their answers), after its own rules.
	ret, accept, drop := verdict(expr.VerdictReturn), verdict(expr.VerdictAccept), verdict(expr.VerdictDrop)
	otail := c.AddChain(&nftables.Chain{Name: "o-tail", Table: t})
	b.rule(t, otail, slices.Concat(nfproto(true), udpPorts(68, 67), []expr.Any{ret})...)
	b.rule(t, otail, slices.Concat(nfproto(false), udpPorts(546, 547), []expr.Any{ret})...)
	b.rule(t, otail, append(b.icmpTypes(t, unix.IPPROTO_ICMPV6, 130, 131, 132, 133, 135, 136, 143), ret)...)
	b.rule(t, otail, drop)
	itail := c.AddChain(&nftables.Chain{Name: "i-tail", Table: t})
	b.rule(t, itail, slices.Concat(nfproto(true), udpPorts(67, 68), []expr.Any{accept})...)
	b.rule(t, itail, slices.Concat(nfproto(false), udpPorts(547, 546), []expr.Any{accept})...)
	b.rule(t, itail, append(b.icmpTypes(t, unix.IPPROTO_ICMPV6, 130, 131, 132, 134, 135, 136, 143), accept)...)
	b.rule(t, itail, drop)

	invalid := append(ctState(expr.CtStateBitINVALID), drop)
	for _, p := range m.Ports {
		o := c.AddChain(&nftables.Chain{Name: "o-" + p.ID, Table: t})
		i := c.AddChain(&nftables.Chain{Name: "i-" + p.ID, Table: t})
		for _, r := range p.Rules {
			e, ok := b.ruleExprs(t, r)
			if !ok {
				continue
			}
			if r.Direction == "egress" {
				b.rule(t, o, append(e, ret)...)
			} else {
				b.rule(t, i, append(e, accept)...)
			}
		}
		b.rule(t, o, goTo(otail.Name))
		b.rule(t, i, goTo(itail.Name))
	}

	byNet := map[string][]fwPort{}
	for _, p := range m.Ports {
		byNet[p.NetworkID] = append(byNet[p.NetworkID], p)
	}
	for _, n := range m.Nets {
		if !n.Secured {
			continue
		}
		eg := c.AddChain(&nftables.Chain{Name: "eg-" + n.ID, Table: t})
		in := c.AddChain(&nftables.Chain{Name: "in-" + n.ID, Table: t})
		b.rule(t, fwd, meta(expr.MetaKeyIIFNAME), eq(ifname(n.Bridge)), jump(eg.Name))
		b.rule(t, fwd, meta(expr.MetaKeyOIFNAME), eq(ifname(n.Bridge)), jump(in.Name))
		b.rule(t, input, meta(expr.MetaKeyIIFNAME), eq(ifname(n.Bridge)), jump(eg.Name))
		var egm, inm []nftables.SetElement
		for _, p := range byNet[n.ID] {
			for _, mac := range macs(p.MACs) {
				egm = append(egm, nftables.SetElement{Key: padMAC(mac), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "o-" + p.ID}})
				inm = append(inm, nftables.SetElement{Key: padMAC(mac), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "i-" + p.ID}})
			}
		}
		b.rule(t, eg, invalid...)
		b.rule(t, in, invalid...)
		se := b.set(t, &nftables.Set{IsMap: true, KeyType: nftables.TypeEtherAddr, DataType: nftables.TypeVerdict}, egm)
		b.rule(t, eg, load(expr.PayloadBaseLLHeader, 6, 6), vmapLookup(se))
		si := b.set(t, &nftables.Set{IsMap: true, KeyType: nftables.TypeEtherAddr, DataType: nftables.TypeVerdict}, inm)
		b.rule(t, in, load(expr.PayloadBaseLLHeader, 0, 6), vmapLookup(si))
	}
}

func nativeU16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }

// ruleExprs matches a security-group rule; ok is false when the rule can
// match nothing (remotes, but none of its family).
func (b *nftBatch) ruleExprs(t *nftables.Table, r datapath.Rule) ([]expr.Any, bool) {
	v4 := r.EtherType == "IPv4"
	out := nfproto(v4)
	proto, _ := datapath.ProtocolNumber(r.Protocol, r.EtherType)
	if proto >= 0 {
		out = append(out, l4proto(byte(proto))...)
		switch proto {
		case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_UDPLITE, unix.IPPROTO_DCCP:
			if r.PortMin > 0 || r.PortMax > 0 {
				lo, hi := r.PortMin, r.PortMax
				if hi == 0 {
					hi = lo
				}
				out = append(out, portRange(2, uint16(lo), uint16(hi))...)
			}
		case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
			if r.PortMin > 0 {
				out = append(out, load(expr.PayloadBaseTransportHeader, 0, 1), eq([]byte{byte(r.PortMin)}))
				if r.PortMax > 0 {
					out = append(out, load(expr.PayloadBaseTransportHeader, 1, 1), eq([]byte{byte(r.PortMax)}))
				}
			}
		}
	}
	if len(r.Remotes) > 0 {
		var off uint32
		switch {
		case r.Direction == "ingress" && v4:
			off = 12
		case r.Direction == "ingress":
			off = 8
		case v4:
			off = 16
		default:
			off = 24
		}
		e, ok := b.addrIn(t, expr.PayloadBaseNetworkHeader, off, v4, r.Remotes, false)
		if !ok {
			return nil, false
		}
		out = append(out, e...)
	}
	return out, true
}

// ensureBrNetfilter makes bridged IPv4/IPv6 traffic visible to the inet
// hooks, which the stateful rules need. It fails (and so do new secured
// ports) when the kernel has no br_netfilter.
func (d *Datapath) ensureBrNetfilter() error {
	for _, name := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		p := "/proc/sys/net/bridge/" + name
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("firewall: br_netfilter is not loaded (no %s): security groups cannot be enforced", p)
		}
		if err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
		if strings.TrimSpace(string(b)) == "1" {
			continue
		}
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("firewall: enable %s: %w", name, err)
		}
		d.log.Info("enabled br_netfilter for security groups", "sysctl", name)
	}
	return nil
}
