package datapath

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"
)

// A HostState crosses the bus as JSON. Its wire form names each distinct
// list of rule remotes once, in RemoteSets, and a rule points at its list
// by number (RemotesRef, from 1). A rule "from group G" resolves to G's
// member addresses in every port of G, so with the lists inline the state
// would grow with the square of the ports: 500 ports in one group made
// 5 MB, and a few more went past the bus's 8 MiB limit, after which the
// host was never synced again. Decoding gives every rule that named a list
// the same slice, which Apply only reads. An inline Remotes (the form
// before RemoteSets) is still read.

type hostStateWire struct {
	Networks   []Network
	Ports      []portWire
	Routers    []Router
	RemoteSets [][]netip.Prefix `json:",omitempty"`
}

type portWire struct {
	Port
	Rules []ruleWire // shadows Port.Rules
}

type ruleWire struct {
	Rule
	Remotes    []netip.Prefix // shadows Rule.Remotes: set when not in RemoteSets
	RemotesRef int            `json:",omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (s HostState) MarshalJSON() ([]byte, error) {
	w := hostStateWire{Networks: s.Networks, Routers: s.Routers}
	if s.Ports != nil {
		w.Ports = make([]portWire, len(s.Ports))
	}
	// Lists are found again by their backing array first (ListKey), then
	// by content.
	byArray := map[ListKey]int{}
	byContent := map[string]int{}
	var key strings.Builder
	for i, p := range s.Ports {
		pw := portWire{Port: p}
		pw.Port.Rules = nil
		if p.Rules != nil {
			pw.Rules = make([]ruleWire, len(p.Rules))
		}
		for j, r := range p.Rules {
			rw := ruleWire{Rule: r}
			rw.Rule.Remotes = nil
			if len(r.Remotes) == 0 {
				rw.Remotes = r.Remotes
				pw.Rules[j] = rw
				continue
			}
			a := KeyOf(r.Remotes)
			n, ok := byArray[a]
			if !ok {
				key.Reset()
				for _, pr := range r.Remotes {
					b, _ := pr.MarshalBinary()
					key.Write(b)
				}
				k := key.String()
				if n, ok = byContent[k]; !ok {
					w.RemoteSets = append(w.RemoteSets, r.Remotes)
					n = len(w.RemoteSets)
					byContent[k] = n
				}
				byArray[a] = n
			}
			rw.RemotesRef = n
			pw.Rules[j] = rw
		}
		w.Ports[i] = pw
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *HostState) UnmarshalJSON(b []byte) error {
	var w hostStateWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	out := HostState{Networks: w.Networks, Routers: w.Routers}
	if w.Ports != nil {
		out.Ports = make([]Port, len(w.Ports))
	}
	for i, pw := range w.Ports {
		p := pw.Port
		p.Rules = nil
		if pw.Rules != nil {
			p.Rules = make([]Rule, len(pw.Rules))
		}
		for j, rw := range pw.Rules {
			r := rw.Rule
			r.Remotes = rw.Remotes
			if rw.RemotesRef != 0 {
				if rw.RemotesRef < 0 || rw.RemotesRef > len(w.RemoteSets) {
					return fmt.Errorf("datapath: port %s: rule names remote set %d of %d", p.ID, rw.RemotesRef, len(w.RemoteSets))
				}
				r.Remotes = w.RemoteSets[rw.RemotesRef-1]
			}
			p.Rules[j] = r
		}
		out.Ports[i] = p
	}
	*s = out
	return nil
}

// ListKey names a list of prefixes by its backing array and length. The
// network service shares one list per remote group and family among all
// the rules that name the group, so the same list comes back in every
// port of the group: with the key, a list met again is known without
// reading it (what made the wire form and the firewall's chain names cost
// the square of the ports before).
type ListKey struct {
	p *netip.Prefix
	n int
}

// KeyOf is ps's ListKey.
func KeyOf(ps []netip.Prefix) ListKey { return ListKey{unsafe.SliceData(ps), len(ps)} }
