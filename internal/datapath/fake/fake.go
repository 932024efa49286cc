// Package fake is an in-memory datapath.Datapath for tests of the code that
// drives a datapath (the agent, the network service). It keeps the last
// state applied, counts the calls, and models a host's names and their
// owners (bridges, taps, router namespaces) so that it behaves like the real
// datapath where tests can see it: it passes the same conformance suite
// (datapathtest).
package fake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"

	"github.com/monostack/monostack/internal/datapath"
)

// Host is an in-memory host that several fake datapaths (owners) share.
type Host struct {
	mu      sync.Mutex
	bridges map[string]object // by bridge name
	taps    map[string]object // by tap name
	routers map[string]object // by owner + "/" + router id
}

type object struct {
	owner, kind, id string
}

// NewHost returns an empty host.
func NewHost() *Host {
	return &Host{bridges: map[string]object{}, taps: map[string]object{}, routers: map[string]object{}}
}

// Datapath is a fake datapath owned by one owner on a Host.
type Datapath struct {
	host  *Host
	owner string

	mu      sync.Mutex
	last    datapath.HostState
	applies int
	err     error
	closed  bool
}

var _ datapath.Datapath = (*Datapath)(nil)

// New returns a datapath on a host of its own.
func New(owner string) *Datapath { return NewHost().Datapath(owner) }

// Datapath returns a datapath for owner on h.
func (h *Host) Datapath(owner string) *Datapath { return &Datapath{host: h, owner: owner} }

// SetErr makes every following Apply fail with err (nil restores).
func (d *Datapath) SetErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// Last returns a copy of the last state applied (whole or in part).
func (d *Datapath) Last() datapath.HostState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return copyState(d.last)
}

// Applies counts the calls of Apply that reached the host.
func (d *Datapath) Applies() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applies
}

// Apply implements datapath.Datapath.
func (d *Datapath) Apply(ctx context.Context, s datapath.HostState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("fake datapath: closed")
	}
	if d.err != nil {
		return d.err
	}
	d.applies++
	d.last = copyState(s)

	inv := datapath.Check(s)
	errs := []error{inv.Err()}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()

	// Remove what this owner has and the state no longer names.
	nets, ports, legs, routers := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, n := range s.Networks {
		nets[n.ID] = true
	}
	for _, p := range s.Ports {
		ports[p.ID] = true
	}
	for _, r := range s.Routers {
		routers[r.ID] = true
		for _, l := range routerLegs(r) {
			legs[r.ID+"/"+l.PortID] = true
		}
		if _, bad := inv.Routers[r.ID]; bad {
			legs[r.ID+"/*"] = true
		}
	}
	for name, o := range h.taps {
		if o.owner != d.owner {
			continue
		}
		switch o.kind {
		case "port":
			if !ports[o.id] {
				delete(h.taps, name)
			}
		case "rleg":
			if !legs[o.id] && !legs[routerOf(o.id)+"/*"] {
				delete(h.taps, name)
			}
		}
	}
	for k, o := range h.routers {
		if o.owner == d.owner && !routers[o.id] {
			delete(h.routers, k)
		}
	}
	for name, o := range h.bridges {
		if o.owner == d.owner && !nets[o.id] {
			delete(h.bridges, name)
		}
	}

	// Make what the state names.
	bridgeOK := map[string]bool{}
	for _, n := range s.Networks {
		if _, bad := inv.Networks[n.ID]; bad {
			continue
		}
		if err := h.claim(h.bridges, datapath.BridgeName(n.ID), object{d.owner, "network", n.ID}); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", n.ID, err))
			continue
		}
		bridgeOK[n.ID] = true
	}
	for _, p := range s.Ports {
		if _, bad := inv.Ports[p.ID]; bad {
			continue
		}
		if !bridgeOK[p.NetworkID] {
			errs = append(errs, fmt.Errorf("port %s: network %s not applied", p.ID, p.NetworkID))
			continue
		}
		if err := h.claim(h.taps, datapath.TapName(p.ID), object{d.owner, "port", p.ID}); err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", p.ID, err))
		}
	}
	for _, r := range s.Routers {
		if _, bad := inv.Routers[r.ID]; bad {
			continue
		}
		h.routers[d.owner+"/"+r.ID] = object{d.owner, "router", r.ID}
		for _, l := range routerLegs(r) {
			if !bridgeOK[l.NetworkID] {
				errs = append(errs, fmt.Errorf("router %s leg %s: network %s not applied", r.ID, l.PortID, l.NetworkID))
				continue
			}
			if err := h.claim(h.taps, datapath.TapName(l.PortID), object{d.owner, "rleg", r.ID + "/" + l.PortID}); err != nil {
				errs = append(errs, fmt.Errorf("router %s leg %s: %w", r.ID, l.PortID, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (h *Host) claim(m map[string]object, name string, o object) error {
	if cur, ok := m[name]; ok && (cur.owner != o.owner || cur.kind != o.kind || cur.id != o.id) {
		if cur.owner != o.owner {
			return fmt.Errorf("%s: %w", name, datapath.ErrConflict)
		}
		return fmt.Errorf("%s already holds %s %s", name, cur.kind, cur.id)
	}
	m[name] = o
	return nil
}

// Observed implements datapath.Datapath.
func (d *Datapath) Observed(ctx context.Context) (datapath.Observed, error) {
	if err := ctx.Err(); err != nil {
		return datapath.Observed{}, err
	}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()
	var o datapath.Observed
	for _, b := range h.bridges {
		if b.owner == d.owner {
			o.Networks = append(o.Networks, b.id)
		}
	}
	for _, t := range h.taps {
		if t.owner == d.owner && t.kind == "port" {
			o.Ports = append(o.Ports, t.id)
		}
	}
	for _, r := range h.routers {
		if r.owner == d.owner {
			o.Routers = append(o.Routers, r.id)
		}
	}
	sort.Strings(o.Networks)
	sort.Strings(o.Ports)
	sort.Strings(o.Routers)
	return o, nil
}

// Close implements datapath.Datapath; the host keeps what was applied.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func routerLegs(r datapath.Router) []datapath.RouterLeg {
	legs := slices.Clone(r.Interfaces)
	if r.Gateway != nil {
		legs = append(legs, *r.Gateway)
	}
	return legs
}

func routerOf(legID string) string {
	for i := range legID {
		if legID[i] == '/' {
			return legID[:i]
		}
	}
	return legID
}

func copyState(s datapath.HostState) datapath.HostState {
	var c datapath.HostState
	for _, n := range s.Networks {
		n.HostCIDRs = slices.Clone(n.HostCIDRs)
		c.Networks = append(c.Networks, n)
	}
	for _, p := range s.Ports {
		p.MAC = cloneMAC(p.MAC)
		p.Addresses = slices.Clone(p.Addresses)
		p.Gateways = slices.Clone(p.Gateways)
		p.Routes = slices.Clone(p.Routes)
		pairs := make([]datapath.AddressPair, 0, len(p.AllowedAddressPairs))
		for _, ap := range p.AllowedAddressPairs {
			ap.MAC = cloneMAC(ap.MAC)
			pairs = append(pairs, ap)
		}
		if p.AllowedAddressPairs == nil {
			pairs = nil
		}
		p.AllowedAddressPairs = pairs
		rules := make([]datapath.Rule, 0, len(p.Rules))
		for _, r := range p.Rules {
			r.Remotes = slices.Clone(r.Remotes)
			rules = append(rules, r)
		}
		if p.Rules == nil {
			rules = nil
		}
		p.Rules = rules
		c.Ports = append(c.Ports, p)
	}
	for _, r := range s.Routers {
		if r.Gateway != nil {
			g := copyLeg(*r.Gateway)
			r.Gateway = &g
		}
		legs := make([]datapath.RouterLeg, 0, len(r.Interfaces))
		for _, l := range r.Interfaces {
			legs = append(legs, copyLeg(l))
		}
		if r.Interfaces == nil {
			legs = nil
		}
		r.Interfaces = legs
		r.FloatingIPs = slices.Clone(r.FloatingIPs)
		r.Routes = slices.Clone(r.Routes)
		c.Routers = append(c.Routers, r)
	}
	return c
}

func copyLeg(l datapath.RouterLeg) datapath.RouterLeg {
	l.MAC = cloneMAC(l.MAC)
	l.Addresses = slices.Clone(l.Addresses)
	return l
}

func cloneMAC(m net.HardwareAddr) net.HardwareAddr {
	if m == nil {
		return nil
	}
	return slices.Clone(m)
}
