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
// monostack-<owner>. Each is rebuilt whole when what it holds changes (and
// left alone when it does not: a marker chain fp-<hash> carries the
// fingerprint of what was installed); when both change, both are rebuilt in
// the one transaction.
//
//   - bridge family, on the taps themselves (works with or without
//     br_netfilter): anti-spoofing. Frames a port sends must come from its
//     MACs and addresses (ARP included); it may not act as a DHCP server or
//     an IPv6 router; other ethertypes are dropped. One chain (antispoof)
//     serves every secured port: what is a port's own is in the sets as-mac
//     (tap . MAC), as-v4 and as-v6 (tap . address range), so a port costs a
//     few set elements, not a chain of rules. Ports of the state that are
//     invalid are quarantined (dropped both ways).
//   - inet family, stateful, on bridged traffic as br_netfilter hands it to
//     the IP hooks (the kernel here has no nf_conntrack_bridge, so conntrack
//     in the bridge family is not possible): the input/forward chains find
//     the port by (bridge, source or destination MAC) and jump to its egress
//     (o-<hash>) and ingress (i-<hash>) chains, which the ports with the
//     same rules share. Established and related traffic is accepted; new
//     traffic must match a rule, else it is dropped. Each network gets its
//     own conntrack zone so that overlapping tenant addresses on different
//     bridges never share connection state.
//
// So a security-group rule change rebuilds only the inet table, whose size
// grows with the number of distinct rule sets (and a map element per MAC),
// not with the number of rules times ports.

const fwVersion = "3"

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
	// OChain and IChain name the port's egress and ingress chains: a hash
	// of its rules in that direction (see chainNamer).
	OChain, IChain string
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

// bridgeFingerprint covers what the bridge (anti-spoofing) table is made
// of, inetFingerprint what the inet (stateful rules) table is made of.
func (m *fwModel) bridgeFingerprint() string {
	type asPort struct {
		ID, Tap string
		MACs    []string
		V4, V6  []netip.Prefix
	}
	ps := make([]asPort, len(m.Ports))
	for i, p := range m.Ports {
		ps[i] = asPort{p.ID, p.Tap, p.MACs, p.V4, p.V6}
	}
	return fingerprint(struct {
		Version, Table string
		Ports          []asPort
		Quarantine     []string
	}{m.Version, "bridge", ps, m.Quarantine})
}

func (m *fwModel) inetFingerprint() string {
	// A port's rules are in its chain names, which hash them: the rules
	// themselves (a rule "from group G" lists all of G's members, in every
	// port of G) are not encoded again here.
	type sgPort struct {
		ID, NetworkID  string
		MACs           []string
		OChain, IChain string
	}
	ps := make([]sgPort, len(m.Ports))
	for i, p := range m.Ports {
		ps[i] = sgPort{p.ID, p.NetworkID, p.MACs, p.OChain, p.IChain}
	}
	return fingerprint(struct {
		Version, Table string
		Nets           []fwNet
		Ports          []sgPort
	}{m.Version, "inet", m.Nets, ps})
}

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

// chainNamer names the chain of a port's rules in one direction by a hash
// of those rules, so that the ports with the same rules (the members of one
// group) share it. A rule "from group G" carries all of G's member
// addresses, in every port of G: hashing them per port made each Apply cost
// the square of the ports (411 ms at 800 ports in one group). Each distinct
// list is hashed once per Apply instead, found again by its backing array
// (the decoded HostState shares one per group and family), and a rule
// contributes that digest.
type chainNamer struct {
	lists map[datapath.ListKey][sha256.Size]byte
	buf   []byte
}

func newChainNamer() *chainNamer { return &chainNamer{lists: map[datapath.ListKey][sha256.Size]byte{}} }

func (c *chainNamer) list(ps []netip.Prefix) [sha256.Size]byte {
	k := datapath.KeyOf(ps)
	if d, ok := c.lists[k]; ok {
		return d
	}
	b := make([]byte, 0, len(ps)*18)
	for _, p := range ps {
		a := p.Addr()
		b = append(b, byte(a.BitLen()), byte(p.Bits()))
		b = append(b, a.AsSlice()...)
	}
	d := sha256.Sum256(b)
	c.lists[k] = d
	return d
}

// name is dir ("o" egress, "i" ingress) + "-" + the hash of the rules of
// that direction, in order.
func (c *chainNamer) name(dir string, rules []datapath.Rule) string {
	b := append(c.buf[:0], "chain/"+fwVersion+"/"...)
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	for _, r := range rules {
		if (r.Direction == "egress") != (dir == "o") {
			continue
		}
		b = append(b, 'r')
		str(r.Direction)
		str(r.EtherType)
		str(r.Protocol)
		b = binary.AppendVarint(b, int64(r.PortMin))
		b = binary.AppendVarint(b, int64(r.PortMax))
		if len(r.Remotes) == 0 {
			b = append(b, 0)
		} else {
			d := c.list(r.Remotes)
			b = append(b, 1)
			b = append(b, d[:]...)
		}
	}
	c.buf = b
	sum := sha256.Sum256(b)
	return dir + "-" + hex.EncodeToString(sum[:8])
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
	names := newChainNamer()
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
		fp := fwPort{ID: p.ID, Tap: datapath.TapName(p.ID), Bridge: datapath.BridgeName(p.NetworkID), NetworkID: p.NetworkID, Rules: p.Rules,
			OChain: names.name("o", p.Rules), IChain: names.name("i", p.Rules)}
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
		d.fw = [2]fwInstalled{}
		d.changed("firewall tables removed")
		return nil
	}
	if len(m.Ports) > 0 {
		if err := d.ensureBrNetfilter(); err != nil {
			return err
		}
	}
	// Each table is rebuilt only when its own contents change: a rule
	// change leaves the anti-spoofing table alone, and vice versa. Those
	// rebuilt go in one transaction.
	fps := [2]string{m.bridgeFingerprint(), m.inetFingerprint()}
	tables := [2]*nftables.Table{bt, it}
	var rebuild [2]bool
	for i, t := range tables {
		if d.fw[i].fingerprint == fps[i] {
			current, err := d.fw[i].current(c, t)
			if err != nil {
				return fmt.Errorf("firewall: %w", err)
			}
			if current {
				continue
			}
		}
		rebuild[i] = true
	}
	if !rebuild[0] && !rebuild[1] {
		return nil
	}
	b := &nftBatch{c: c}
	for i, t := range tables {
		if !rebuild[i] {
			continue
		}
		c.AddTable(t)
		c.DelTable(t)
		c.AddTable(t)
		if i == 0 {
			b.bridgeTable(t, &m, fps[i])
		} else {
			b.inetTable(t, &m, fps[i])
		}
	}
	if b.err != nil {
		return fmt.Errorf("firewall: build: %w", b.err)
	}
	for i := range tables {
		if rebuild[i] {
			d.fw[i] = fwInstalled{}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	for i, t := range tables {
		if !rebuild[i] {
			continue
		}
		if _, use, err := tableUse(c, t); err == nil {
			d.fw[i] = fwInstalled{fingerprint: fps[i], use: use}
		}
	}
	d.changed("firewall applied", "ports", len(m.Ports), "bridge", rebuild[0], "inet", rebuild[1])
	return nil
}

// fwInstalled is what this datapath last installed in one table: the
// fingerprint of its rules and the number of objects (chains and sets) it
// then held. After a restart it is empty, and the first Apply rebuilds the
// table.
type fwInstalled struct {
	fingerprint string
	use         uint32
}

// current reports whether the host still has the table as installed: there
// with its object count and marker chain. (These are single GETs, not
// dumps, which other writers make inconsistent.)
func (f fwInstalled) current(c *nftables.Conn, t *nftables.Table) (bool, error) {
	exists, use, err := tableUse(c, t)
	if err != nil || !exists || use != f.use {
		return false, err
	}
	if _, err := c.ListChain(t, "fp-"+f.fingerprint); err != nil {
		return false, nil
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
	var secured []fwPort
	for _, p := range m.Ports {
		if slices.Contains(m.Quarantine, p.Tap) {
			continue
		}
		in = append(in, nftables.SetElement{Key: ifname(p.Tap), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "antispoof"}})
		secured = append(secured, p)
	}
	if len(secured) > 0 {
		b.antiSpoof(t, c.AddChain(&nftables.Chain{Name: "antispoof", Table: t}), secured)
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

// antiSpoof fills the bridge-family chain every frame a secured port sends
// goes through. The chain is the same for all ports: what is port-specific
// (its MACs, its IPv4 and IPv6 sources) is in three sets keyed by the tap's
// name and the MAC or address, so that a port is a few set elements rather
// than a chain of its own.
func (b *nftBatch) antiSpoof(t *nftables.Table, ch *nftables.Chain, ports []fwPort) {
	var macEl, v4El, v6El []nftables.SetElement
	for _, p := range ports {
		tap := ifname(p.Tap)
		for _, m := range macs(p.MACs) {
			macEl = append(macEl, nftables.SetElement{Key: slices.Concat(tap, m, []byte{0, 0})})
		}
		v4El = append(v4El, tapIntervals(tap, p.V4, true)...)
		v6El = append(v6El, tapIntervals(tap, p.V6, false)...)
	}
	macSet := b.namedSet(t, "as-mac", &nftables.Set{Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeEtherAddr)}, macEl)
	v4Set := b.namedSet(t, "as-v4", &nftables.Set{Concatenation: true, Interval: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)}, v4El)
	v6Set := b.namedSet(t, "as-v6", &nftables.Set{Concatenation: true, Interval: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIP6Addr)}, v6El)
	// notIn matches when (iifname, the n bytes at (base, off)) is not in s.
	notIn := func(s *nftables.Set, base expr.PayloadBase, off, n uint32) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg32(0)},
			&expr.Payload{DestRegister: reg32(4), Base: base, Offset: off, Len: n},
			&expr.Lookup{SourceRegister: reg32(0), SetName: s.Name, SetID: s.ID, Invert: true},
		}
	}

	drop, accept := verdict(expr.VerdictDrop), verdict(expr.VerdictAccept)
	nh := expr.PayloadBaseNetworkHeader
	r := func(parts ...[]expr.Any) { b.rule(t, ch, slices.Concat(parts...)...) }
	one := func(e expr.Any) []expr.Any { return []expr.Any{e} }

	r(notIn(macSet, expr.PayloadBaseLLHeader, 6, 6), one(drop))

	// ARP: Ethernet/IPv4 only, from the port's MACs and addresses (or
	// 0.0.0.0, a probe).
	arp := etherType(ethTypeARP)
	r(arp, []expr.Any{load(nh, 4, 2), neq(be16(0x0604))}, one(drop))
	r(arp, notIn(macSet, nh, 8, 6), one(drop))
	r(arp, []expr.Any{load(nh, 14, 4), eq(make([]byte, 4))}, one(accept))
	r(arp, notIn(v4Set, nh, 14, 4), one(drop))
	r(arp, one(accept))

	ip := etherType(ethTypeIP)
	r(ip, udpPorts(67, 68), one(drop)) // no DHCP server
	r(ip, []expr.Any{load(nh, 12, 4), eq(make([]byte, 4))}, udpPorts(68, 67), one(accept))
	r(ip, notIn(v4Set, nh, 12, 4), one(drop))
	r(ip, one(accept))

	ip6 := etherType(ethTypeIPv6)
	r(ip6, b.icmpTypes(t, unix.IPPROTO_ICMPV6, 134), one(drop)) // no router advertisements
	r(ip6, udpPorts(547, 546), one(drop))                       // no DHCPv6 server
	for _, typ := range []byte{135, 143} {                      // DAD, MLD reports: from ::
		r(ip6, []expr.Any{load(nh, 8, 16), eq(make([]byte, 16))}, b.icmpTypes(t, unix.IPPROTO_ICMPV6, typ), one(accept))
	}
	r(ip6, notIn(v6Set, nh, 8, 16), one(drop))
	r(ip6, one(accept))
	r(one(drop))
}

// reg32 is the nth 32-bit register (NFT_REG32_00 + n): concatenations are
// laid out in those.
func reg32(n uint32) uint32 { return 8 + n }

// tapIntervals are the elements (tap, first address)–(tap, last address)
// of a concatenated interval set for a port's prefixes of one family,
// overlaps merged.
func tapIntervals(tap []byte, prefixes []netip.Prefix, v4 bool) []nftables.SetElement {
	var ps []netip.Prefix
	for _, p := range prefixes {
		if p.Addr().Unmap().Is4() == v4 {
			ps = append(ps, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked())
		}
	}
	var out []nftables.SetElement
	for _, s := range mergeSpans(ps) {
		out = append(out, nftables.SetElement{Key: slices.Concat(tap, s.lo.AsSlice()), KeyEnd: slices.Concat(tap, s.hi.AsSlice())})
	}
	return out
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

	// A port's egress (o-…) and ingress (i-…) chains hold its rules. Ports
	// with the same rules in one direction — the members of one security
	// group — share one chain, named by the hash of those rules: a rule
	// change on a group's thousand ports is then one chain rebuilt, not a
	// thousand.
	invalid := append(ctState(expr.CtStateBitINVALID), drop)
	built := map[string]bool{}
	chainFor := func(dir, name string, rules []datapath.Rule) string {
		if built[name] {
			return name
		}
		built[name] = true
		ch := c.AddChain(&nftables.Chain{Name: name, Table: t})
		for _, r := range rules {
			if (r.Direction == "egress") != (dir == "o") {
				continue
			}
			e, ok := b.ruleExprs(t, r)
			if !ok {
				continue
			}
			if dir == "o" {
				b.rule(t, ch, append(e, ret)...)
			} else {
				b.rule(t, ch, append(e, accept)...)
			}
		}
		if dir == "o" {
			b.rule(t, ch, goTo(otail.Name))
		} else {
			b.rule(t, ch, goTo(itail.Name))
		}
		return name
	}
	ochain, ichain := map[string]string{}, map[string]string{}
	for _, p := range m.Ports {
		ochain[p.ID] = chainFor("o", p.OChain, p.Rules)
		ichain[p.ID] = chainFor("i", p.IChain, p.Rules)
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
				egm = append(egm, nftables.SetElement{Key: padMAC(mac), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: ochain[p.ID]}})
				inm = append(inm, nftables.SetElement{Key: padMAC(mac), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: ichain[p.ID]}})
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
