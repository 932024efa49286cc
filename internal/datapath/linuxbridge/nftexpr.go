package linuxbridge

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftBatch accumulates one nftables transaction: everything added to it is
// sent by a single Flush, which the kernel applies atomically.
type nftBatch struct {
	c     *nftables.Conn
	err   error
	setID uint32
}

func (b *nftBatch) rule(t *nftables.Table, ch *nftables.Chain, exprs ...expr.Any) {
	b.c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
}

// set adds a set (or verdict map) for one rule to use: anonymous and
// constant when small; named "s<n>" when large, because a netlink attribute's
// length is 16 bits, so elements past a few hundred must go in several
// messages, which the library allows only for named sets.
func (b *nftBatch) set(t *nftables.Table, s *nftables.Set, elems []nftables.SetElement) *nftables.Set {
	const chunk = 256
	s.Table = t
	// Ids are ours, per batch: the library's own allocator is a global
	// that is not safe for concurrent use.
	b.setID++
	s.ID = b.setID
	if len(elems) <= chunk {
		s.Anonymous = true
		s.Constant = true
		s.Name = "__set%d"
		if s.IsMap {
			s.Name = "__map%d"
		}
	} else {
		s.Name = fmt.Sprintf("s%d", s.ID)
	}
	first := elems[:min(chunk, len(elems))]
	if err := b.c.AddSet(s, first); err != nil && b.err == nil {
		b.err = err
	}
	for rest := elems[len(first):]; len(rest) > 0; {
		n := min(chunk, len(rest))
		if err := b.c.SetAddElements(s, rest[:n]); err != nil && b.err == nil {
			b.err = err
		}
		rest = rest[n:]
	}
	return s
}

// namedSet adds a named set, filled in chunks (see set); it may be empty.
func (b *nftBatch) namedSet(t *nftables.Table, name string, s *nftables.Set, elems []nftables.SetElement) *nftables.Set {
	const chunk = 256
	s.Table, s.Name = t, name
	b.setID++
	s.ID = b.setID
	first := elems[:min(chunk, len(elems))]
	if err := b.c.AddSet(s, first); err != nil && b.err == nil {
		b.err = err
	}
	for rest := elems[len(first):]; len(rest) > 0; {
		n := min(chunk, len(rest))
		if err := b.c.SetAddElements(s, rest[:n]); err != nil && b.err == nil {
			b.err = err
		}
		rest = rest[n:]
	}
	return s
}

// Expression builders. Everything loads into register 1 (16 bytes).

func meta(k expr.MetaKey) expr.Any { return &expr.Meta{Key: k, Register: 1} }

func eq(data []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }

func neq(data []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: data} }

func load(base expr.PayloadBase, off, n uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}
}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func goTo(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain} }

func lookup(s *nftables.Set, invert bool) expr.Any {
	return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: invert}
}

func vmapLookup(s *nftables.Set) expr.Any {
	return &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: s.Name, SetID: s.ID}
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
		neq(make([]byte, 4)),
	}
}

const (
	ethTypeIP   = 0x0800
	ethTypeARP  = 0x0806
	ethTypeIPv6 = 0x86dd
)

func etherType(t uint16) []expr.Any {
	return []expr.Any{load(expr.PayloadBaseLLHeader, 12, 2), eq(be16(t))}
}

func nfproto(v4 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV6)
	if v4 {
		p = unix.NFPROTO_IPV4
	}
	return []expr.Any{meta(expr.MetaKeyNFPROTO), eq([]byte{p})}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{meta(expr.MetaKeyL4PROTO), eq([]byte{p})}
}

// portRange matches the transport header's port at off (0 source, 2
// destination) against [lo, hi].
func portRange(off uint32, lo, hi uint16) []expr.Any {
	ld := load(expr.PayloadBaseTransportHeader, off, 2)
	if lo == hi {
		return []expr.Any{ld, eq(be16(lo))}
	}
	return []expr.Any{ld, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be16(lo), ToData: be16(hi)}}
}

func udpPorts(sport, dport uint16) []expr.Any {
	return slices.Concat(l4proto(unix.IPPROTO_UDP), portRange(0, sport, sport), portRange(2, dport, dport))
}

// icmpTypes matches an ICMP/ICMPv6 type among types.
func (b *nftBatch) icmpTypes(t *nftables.Table, proto byte, types ...byte) []expr.Any {
	out := l4proto(proto)
	out = append(out, load(expr.PayloadBaseTransportHeader, 0, 1))
	if len(types) == 1 {
		return append(out, eq([]byte{types[0]}))
	}
	dt := nftables.TypeICMPType
	if proto == unix.IPPROTO_ICMPV6 {
		dt = nftables.TypeICMP6Type
	}
	var elems []nftables.SetElement
	for _, ty := range types {
		elems = append(elems, nftables.SetElement{Key: []byte{ty}})
	}
	s := b.set(t, &nftables.Set{KeyType: dt}, elems)
	return append(out, lookup(s, false))
}

func padMAC(m net.HardwareAddr) []byte { return slices.Clone([]byte(m)) }

// addrIn matches the address loaded at (base, off) against prefixes of one
// family. ok is false when nothing can match (no prefixes); a /0 among them
// yields no expression at all (everything matches).
func (b *nftBatch) addrIn(t *nftables.Table, base expr.PayloadBase, off uint32, v4 bool, prefixes []netip.Prefix, invert bool) (out []expr.Any, ok bool) {
	var ps []netip.Prefix
	for _, p := range prefixes {
		if p.Addr().Unmap().Is4() == v4 {
			ps = append(ps, p.Masked())
		}
	}
	if len(ps) == 0 {
		return nil, false
	}
	for _, p := range ps {
		if p.Bits() == 0 {
			return nil, true
		}
	}
	n := uint32(16)
	if v4 {
		n = 4
	}
	out = []expr.Any{load(base, off, n)}
	if len(ps) == 1 {
		p := ps[0]
		if p.Bits() < int(n*8) {
			out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: maskBytes(p.Bits(), int(n)), Xor: make([]byte, n)})
		}
		if invert {
			return append(out, neq(p.Addr().AsSlice())), true
		}
		return append(out, eq(p.Addr().AsSlice())), true
	}
	kt := nftables.TypeIP6Addr
	if v4 {
		kt = nftables.TypeIPAddr
	}
	s := b.set(t, &nftables.Set{KeyType: kt, Interval: true}, intervalElems(ps))
	return append(out, lookup(s, invert)), true
}

func maskBytes(bits, n int) []byte {
	m := make([]byte, n)
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// intervalElems turns prefixes of one family into the start/end elements
// of an interval set, merging overlaps (the kernel refuses them).
func intervalElems(ps []netip.Prefix) []nftables.SetElement {
	var elems []nftables.SetElement
	for _, s := range mergeSpans(ps) {
		elems = append(elems, nftables.SetElement{Key: s.lo.AsSlice()})
		if end := s.hi.Next(); end.IsValid() {
			elems = append(elems, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return elems
}

// span is a range of addresses, both ends included.
type span struct{ lo, hi netip.Addr }

// mergeSpans turns prefixes of one family into sorted, disjoint and
// non-adjacent ranges.
func mergeSpans(ps []netip.Prefix) []span {
	var spans []span
	for _, p := range ps {
		p = p.Masked()
		spans = append(spans, span{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.lo.Compare(b.lo) })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			if next := last.hi.Next(); !next.IsValid() || s.lo.Compare(next) <= 0 {
				if s.hi.Compare(last.hi) > 0 {
					last.hi = s.hi
				}
				continue
			}
		}
		merged = append(merged, s)
	}
	return merged
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
