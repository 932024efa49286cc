package linuxbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/datapath"
)

// routeProto marks the routes this datapath adds (rtnetlink protocol
// number, unassigned upstream), so that it removes only its own.
const routeProto = netlink.RouteProtocol(109)

const defaultMTU = 1500

var ownerRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)

// Datapath is the Linux bridge datapath of one owner on this host.
type Datapath struct {
	owner string
	log   *slog.Logger
	home  netns.NsHandle  // the host's network namespace
	nl    *netlink.Handle // netlink in home

	mu      sync.Mutex
	closed  bool
	fw      [2]fwInstalled // bridge, inet
	fresh   []liveCheck    // veths this Apply made or changed
	changes atomic.Int64   // host mutations made, for tests of idempotence

	// applied is what the last Apply left in place per port: the spec it
	// applied and the tap it checked. A port whose spec is unchanged and
	// whose tap the host still has as then is not examined again in its
	// namespace, except on a full check: at the first Apply (after a start
	// or a crash) and then once fullCheckEvery.
	applied   map[string]appliedPort
	lastFull  time.Time
	fullEvery time.Duration
}

// fullCheckEvery is how often an Apply checks every port against the
// kernel, namespace side included. The network service resends every
// host's state every 30 s (network.Config.ResyncInterval) even unchanged:
// with a shorter period here, each of those resyncs is a full check.
const fullCheckEvery = 20 * time.Second

// appliedPort is one port as the last Apply left it.
type appliedPort struct {
	spec string // portSpec
	tap  int    // the tap's ifindex
}

var _ datapath.Datapath = (*Datapath)(nil)

// New returns the datapath of ownerID (1–32 letters, digits or '-') on this
// host. It needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces).
func New(ownerID string, log *slog.Logger) (*Datapath, error) {
	if !ownerRE.MatchString(ownerID) {
		return nil, fmt.Errorf("linuxbridge: bad owner id %q (1-32 letters, digits, '-')", ownerID)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	home, err := currentNetns()
	if err != nil {
		return nil, fmt.Errorf("linuxbridge: host netns: %w", err)
	}
	h, err := netlink.NewHandleAt(home)
	if err != nil {
		home.Close()
		return nil, fmt.Errorf("linuxbridge: netlink: %w", err)
	}
	return &Datapath{owner: ownerID, log: log.With("owner", ownerID), home: home, nl: h,
		applied: map[string]appliedPort{}, fullEvery: fullCheckEvery}, nil
}

// Close implements datapath.Datapath.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.nl.Close()
	return d.home.Close()
}

// changed counts (and logs at debug level) one change made to the host.
func (d *Datapath) changed(what string, args ...any) {
	d.changes.Add(1)
	d.log.Debug(what, args...)
}

// Aliases: every link this datapath makes carries
// "monostack:<owner>:<kind>:<id>". Kinds: network (bridge), port (both ends
// of a port's veth), rleg (both ends of a router leg, id router/port),
// router (the loopback of a router's namespace).
func (d *Datapath) alias(kind, id string) string {
	return "monostack:" + d.owner + ":" + kind + ":" + id
}

func (d *Datapath) ownAlias(alias string) (kind, id string, ok bool) {
	rest, ok := strings.CutPrefix(alias, "monostack:"+d.owner+":")
	if !ok {
		return "", "", false
	}
	kind, id, ok = strings.Cut(rest, ":")
	return kind, id, ok
}

func isMonostack(alias string) bool { return strings.HasPrefix(alias, "monostack:") }

// routerNetns is the namespace of a router: qrouter-<owner>_<id> ('_' is
// not in owner ids, so the prefix qrouter-<owner>_ is this owner's alone).
func (d *Datapath) routerNetns(id string) string { return d.routerPrefix() + id }
func (d *Datapath) routerPrefix() string         { return "qrouter-" + d.owner + "_" }

// hostView is what this owner has in the host namespace.
type hostView struct {
	byName  map[string]netlink.Link
	bridges map[string]netlink.Link // network id →
	taps    map[string]netlink.Link // port id →
	legs    map[string]netlink.Link // router id/port id →
}

func linkList(h *netlink.Handle) ([]netlink.Link, error) {
	return retryDump(h.LinkList)
}

// retryDump runs a netlink dump again (a few times) when the kernel reports
// it interrupted by a concurrent change: on a busy host (links being made,
// IPv6 addresses coming and going) that happens.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var (
		out T
		err error
	)
	for range 5 {
		out, err = dump()
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

func (d *Datapath) scan() (*hostView, error) {
	links, err := linkList(d.nl)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	v := &hostView{byName: map[string]netlink.Link{}, bridges: map[string]netlink.Link{}, taps: map[string]netlink.Link{}, legs: map[string]netlink.Link{}}
	for _, l := range links {
		v.byName[l.Attrs().Name] = l
		kind, id, ok := d.ownAlias(l.Attrs().Alias)
		if !ok {
			continue
		}
		switch kind {
		case "network":
			v.bridges[id] = l
		case "port":
			v.taps[id] = l
		case "rleg":
			v.legs[id] = l
		}
	}
	return v, nil
}

// Observed implements datapath.Datapath.
func (d *Datapath) Observed(ctx context.Context) (datapath.Observed, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var o datapath.Observed
	if d.closed {
		return o, errors.New("linuxbridge: closed")
	}
	v, err := d.scan()
	if err != nil {
		return o, err
	}
	for id := range v.bridges {
		o.Networks = append(o.Networks, id)
	}
	for id := range v.taps {
		o.Ports = append(o.Ports, id)
	}
	routers, err := d.routers()
	if err != nil {
		return o, err
	}
	for id := range routers {
		o.Routers = append(o.Routers, id)
	}
	sort.Strings(o.Networks)
	sort.Strings(o.Ports)
	sort.Strings(o.Routers)
	return o, nil
}

// Apply implements datapath.Datapath.
func (d *Datapath) Apply(ctx context.Context, s datapath.HostState) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("linuxbridge: closed")
	}
	inv := datapath.Check(s)
	errs := []error{inv.Err()}
	d.fresh = nil
	defer func() { d.waitLive(ctx, d.fresh) }()

	// Security groups first, so that a new port is never up unfiltered.
	fwErr := d.applyFirewall(s, inv)
	if fwErr != nil {
		errs = append(errs, fwErr)
	}

	v, err := d.scan()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}

	// Remove what this owner has and the state does not name. Objects the
	// state names but cannot apply (invalid) are left as they are.
	nets, ports, routers := map[string]bool{}, map[string]bool{}, map[string]bool{}
	legs := map[string]bool{}
	for _, n := range s.Networks {
		nets[n.ID] = true
	}
	for _, p := range s.Ports {
		ports[p.ID] = true
	}
	for _, r := range s.Routers {
		routers[r.ID] = true
		_, bad := inv.Routers[r.ID]
		for _, l := range allLegs(r) {
			legs[r.ID+"/"+l.PortID] = true
		}
		if bad {
			legs[r.ID+"/*"] = true
		}
	}
	have, err := d.routers()
	if err != nil {
		errs = append(errs, err)
	}
	for id, name := range have {
		if !routers[id] {
			errs = append(errs, d.deleteRouter(id, name))
		}
	}
	var stale []netlink.Link
	for id, l := range v.taps {
		if !ports[id] {
			stale = append(stale, l)
		}
	}
	for id, l := range v.legs {
		router, _, _ := strings.Cut(id, "/")
		if !legs[id] && !legs[router+"/*"] {
			stale = append(stale, l)
		}
	}
	errs = append(errs, d.deleteLinks(v, stale)...)

	bridges := map[string]netlink.Link{}
	netMTU := map[string]int{}
	for _, n := range s.Networks {
		netMTU[n.ID] = orDefault(n.MTU, 0)
		if _, bad := inv.Networks[n.ID]; bad {
			continue
		}
		br, err := d.ensureBridge(v, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", n.ID, err))
			continue
		}
		bridges[n.ID] = br
	}
	for id, l := range v.bridges {
		if !nets[id] {
			errs = append(errs, d.deleteLink(v, l))
		}
	}

	snaps := nsSnapshots{}
	full := d.lastFull.IsZero() || time.Since(d.lastFull) >= d.fullEvery
	if full {
		d.lastFull = time.Now()
	}
	for id := range d.applied {
		if !ports[id] {
			delete(d.applied, id)
		}
	}
	for _, p := range s.Ports {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if _, bad := inv.Ports[p.ID]; bad {
			delete(d.applied, p.ID)
			continue
		}
		if err := d.ensurePort(v, snaps, bridges, netMTU, p, fwErr == nil, full); err != nil {
			delete(d.applied, p.ID)
			if errors.Is(err, errNetnsGone) {
				// Its server or container is going (a delete unbinds
				// its ports after removing it) or not made yet: nothing
				// to plug, and the port is not seen up. The next Apply
				// plugs it if the namespace comes.
				d.log.Debug("port not plugged: its namespace is gone", "port", p.ID, "netns", p.Netns)
				continue
			}
			errs = append(errs, fmt.Errorf("port %s: %w", p.ID, err))
		}
	}
	for _, r := range s.Routers {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if _, bad := inv.Routers[r.ID]; bad {
			continue
		}
		if err := d.ensureRouter(v, bridges, netMTU, r); err != nil {
			errs = append(errs, fmt.Errorf("router %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// deleteWorkers is how many links deleteLinks deletes at a time.
const deleteWorkers = 16

// deleteLinks deletes links side by side, each worker on a netlink socket
// of its own. Deleting a link waits out an RCU grace period in the kernel,
// and deletions under way together share one: 200 veths took 3.3 s one
// by one here, 0.39 s sixteen at a time.
func (d *Datapath) deleteLinks(v *hostView, links []netlink.Link) []error {
	if len(links) <= 1 {
		var errs []error
		for _, l := range links {
			errs = append(errs, d.deleteLink(v, l))
		}
		return errs
	}
	errs := make([]error, len(links))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(links), deleteWorkers) {
		wg.Go(func() {
			h := d.nl // shared (its socket serialises) if a socket of our own cannot be had
			if own, err := netlink.NewHandleAt(d.home, unix.NETLINK_ROUTE); err == nil {
				defer own.Close()
				h = own
			}
			for i := int(next.Add(1) - 1); i < len(links); i = int(next.Add(1) - 1) {
				if err := h.LinkDel(links[i]); err != nil && !errors.Is(err, unix.ENODEV) {
					errs[i] = fmt.Errorf("delete %s: %w", links[i].Attrs().Name, err)
				}
			}
		})
	}
	wg.Wait()
	for i, l := range links {
		if errs[i] == nil {
			d.changed("deleted link", "name", l.Attrs().Name, "alias", l.Attrs().Alias)
			delete(v.byName, l.Attrs().Name)
		}
	}
	return errs
}

func (d *Datapath) deleteLink(v *hostView, l netlink.Link) error {
	if err := d.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", l.Attrs().Name, err)
	}
	d.changed("deleted link", "name", l.Attrs().Name, "alias", l.Attrs().Alias)
	delete(v.byName, l.Attrs().Name)
	return nil
}

func orDefault(mtu, def int) int {
	if mtu > 0 {
		return mtu
	}
	if def > 0 {
		return def
	}
	return defaultMTU
}

func (d *Datapath) ensureBridge(v *hostView, n datapath.Network) (netlink.Link, error) {
	name, alias := datapath.BridgeName(n.ID), d.alias("network", n.ID)
	mtu := orDefault(n.MTU, 0)
	l := v.byName[name]
	if l != nil && l.Attrs().Alias != alias {
		return nil, fmt.Errorf("%s (alias %q): %w", name, l.Attrs().Alias, datapath.ErrConflict)
	}
	if l != nil && l.Type() != "bridge" {
		return nil, fmt.Errorf("%s is a %s, not a bridge", name, l.Type())
	}
	if l == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu, Alias: alias, TxQLen: -1}}
		if err := d.nl.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		d.changed("created bridge", "name", name)
		var err error
		if l, err = d.nl.LinkByName(name); err == nil {
			err = d.nl.LinkSetAlias(l, alias)
		}
		if err != nil {
			_ = d.nl.LinkDel(br)
			return nil, fmt.Errorf("mark %s: %w", name, err)
		}
		// An MTU changed after creation is "set by the user": the kernel
		// then keeps it rather than following the smallest port's. (Setting
		// the MTU it already has would not count.)
		for _, m := range []int{mtu - 1, mtu} {
			if err := d.nl.LinkSetMTU(l, m); err != nil {
				return nil, fmt.Errorf("mtu: %w", err)
			}
		}
		if l, err = d.nl.LinkByName(name); err != nil {
			return nil, err
		}
		v.byName[name] = l
		v.bridges[n.ID] = l
	}
	if l.Attrs().Alias != alias {
		if err := d.nl.LinkSetAlias(l, alias); err != nil {
			return nil, err
		}
		d.changed("set alias", "link", name)
	}
	if l.Attrs().MTU != mtu {
		if err := d.nl.LinkSetMTU(l, mtu); err != nil {
			return nil, fmt.Errorf("mtu: %w", err)
		}
		d.changed("set MTU", "link", name, "mtu", mtu)
	}
	if err := d.ensureAddrs(d.nl, l, n.HostCIDRs); err != nil {
		return nil, err
	}
	if err := d.ensureUp(d.nl, l); err != nil {
		return nil, err
	}
	return l, nil
}

func (d *Datapath) ensureUp(h *netlink.Handle, l netlink.Link) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
	}
	d.changed("set up", "link", l.Attrs().Name)
	return nil
}

func toPrefix(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ensureAddrs makes the addresses of l exactly want (IPv6 link-local
// addresses, which the kernel manages, aside).
func (d *Datapath) ensureAddrs(h *netlink.Handle, l netlink.Link, want []netip.Prefix) error {
	cur, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
	}
	wanted := map[netip.Prefix]bool{}
	for _, p := range want {
		wanted[netip.PrefixFrom(p.Addr().Unmap(), p.Bits())] = true
	}
	have := map[netip.Prefix]bool{}
	for _, a := range cur {
		p := toPrefix(a.IPNet)
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if !wanted[p] {
			if err := h.AddrDel(l, &a); err != nil {
				return fmt.Errorf("delete address %s from %s: %w", p, l.Attrs().Name, err)
			}
			d.changed("deleted address", "link", l.Attrs().Name, "addr", p)
			continue
		}
		have[p] = true
	}
	for _, p := range want {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		if have[p] {
			continue
		}
		a := &netlink.Addr{IPNet: toIPNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add address %s to %s: %w", p, l.Attrs().Name, err)
		}
		have[p] = true
		d.changed("added address", "link", l.Attrs().Name, "addr", p)
	}
	return nil
}

// veth is one veth pair to converge: the host end (tap) on a bridge, the
// other end in a namespace.
type veth struct {
	tap, alias string
	bridge     netlink.Link
	mtu        int
	nsPath     string
	ns         netns.NsHandle
	nh         *netlink.Handle // netlink in ns
	ifName     string
	mac        net.HardwareAddr
	addrs      []netip.Prefix
}

// quietIPv6 turns IPv6 off on a new pair before it is up: on the tap
// always (a bridge port needs no address), on the namespace end when the
// port has no IPv6 address. Otherwise each new interface's duplicate
// address detection, router solicitation and MLD reports are flooded to
// every port of the bridge, and creating a veth grows with the ports the
// host has: 500 pairs on one bridge took 27.6 s with IPv6 on, 5.2 s off.
func (d *Datapath) quietIPv6(w veth) error {
	off := func(ns netns.NsHandle, ifName string) error {
		_, err := writeSysctl(ns, d.home, "net.ipv6.conf."+ifName+".disable_ipv6", "1")
		if errors.Is(err, os.ErrNotExist) {
			return nil // no IPv6 in this kernel
		}
		return err
	}
	if err := off(d.home, w.tap); err != nil {
		return err
	}
	if slices.ContainsFunc(w.addrs, func(p netip.Prefix) bool { return p.Addr().Is6() }) {
		return nil
	}
	return off(w.ns, w.ifName)
}

// ensureVeth converges a veth pair and returns the namespace end. create
// false refuses to make a missing pair.
func (d *Datapath) ensureVeth(v *hostView, w veth, create bool) (netlink.Link, error) {
	before := d.changes.Load()
	defer func() {
		if d.changes.Load() != before {
			d.fresh = append(d.fresh, liveCheck{w.nsPath, w.tap, w.ifName})
		}
	}()
	tap := v.byName[w.tap]
	if tap != nil && tap.Attrs().Alias == "" && tap.Type() == "veth" {
		// A veth under this port's name with no mark at all is what a crash
		// between creating the pair and marking it leaves (the kernel takes
		// an alias only after creation): ours, so remade. (A foreign veth
		// named tap<this port's id> is not a real risk.)
		d.log.Info("unmarked veth left by an interrupted create: remaking it", "tap", w.tap)
		if err := d.deleteLink(v, tap); err != nil {
			return nil, err
		}
		tap = nil
	}
	if tap != nil && tap.Attrs().Alias != w.alias {
		return nil, fmt.Errorf("%s (alias %q): %w", w.tap, tap.Attrs().Alias, datapath.ErrConflict)
	}
	var peer netlink.Link
	if tap != nil {
		// The pair is sound when the namespace end is where it should be,
		// under its name, and the two point at each other.
		if l, err := w.nh.LinkByName(w.ifName); err == nil && l.Type() == "veth" && l.Attrs().Alias == w.alias &&
			l.Attrs().ParentIndex == tap.Attrs().Index && tap.Attrs().ParentIndex == l.Attrs().Index {
			peer = l
		} else {
			d.log.Info("veth not where it should be: remaking it", "tap", w.tap, "ifname", w.ifName)
			if err := d.deleteLink(v, tap); err != nil {
				return nil, err
			}
			tap = nil
		}
	}
	if tap == nil {
		if !create {
			return nil, errors.New("not created: its security groups are not in force")
		}
		if old, err := w.nh.LinkByName(w.ifName); err == nil {
			if !strings.HasPrefix(old.Attrs().Alias, "monostack:"+d.owner+":") {
				return nil, fmt.Errorf("namespace already has %s (alias %q): %w", w.ifName, old.Attrs().Alias, datapath.ErrConflict)
			}
			if err := w.nh.LinkDel(old); err != nil {
				return nil, fmt.Errorf("delete stale %s: %w", w.ifName, err)
			}
			d.changed("deleted stale link", "name", w.ifName)
		}
		pair := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: w.tap, MTU: w.mtu, Alias: w.alias, MasterIndex: w.bridge.Attrs().Index, TxQLen: -1},
			PeerName:         w.ifName,
			PeerHardwareAddr: w.mac,
			PeerNamespace:    netlink.NsFd(w.ns),
			PeerTxQLen:       -1,
		}
		if err := d.nl.LinkAdd(pair); err != nil {
			return nil, fmt.Errorf("create veth %s/%s: %w", w.tap, w.ifName, err)
		}
		d.changed("created veth", "tap", w.tap, "peer", w.ifName)
		// The kernel takes an alias only on an existing link: mark it at
		// once, or undo.
		var err error
		if tap, err = d.nl.LinkByName(w.tap); err == nil {
			err = d.nl.LinkSetAlias(tap, w.alias)
		}
		if err != nil {
			_ = d.nl.LinkDel(pair)
			return nil, fmt.Errorf("mark %s: %w", w.tap, err)
		}
		v.byName[w.tap] = tap
		if peer, err = w.nh.LinkByName(w.ifName); err != nil {
			return nil, err
		}
		if err := d.quietIPv6(w); err != nil {
			return nil, err
		}
	}

	// The host end.
	if tap.Attrs().MasterIndex != w.bridge.Attrs().Index {
		if err := d.nl.LinkSetMasterByIndex(tap, w.bridge.Attrs().Index); err != nil {
			return nil, fmt.Errorf("enslave %s: %w", w.tap, err)
		}
		d.changed("enslaved", "tap", w.tap)
	}
	if tap.Attrs().MTU != w.mtu {
		if err := d.nl.LinkSetMTU(tap, w.mtu); err != nil {
			return nil, err
		}
		d.changed("set MTU", "link", w.tap, "mtu", w.mtu)
	}
	if err := d.ensureUp(d.nl, tap); err != nil {
		return nil, err
	}

	// The namespace end.
	if peer.Attrs().Alias != w.alias {
		if err := w.nh.LinkSetAlias(peer, w.alias); err != nil {
			return nil, err
		}
		d.changed("set alias", "link", w.ifName)
	}
	if !slices.Equal(peer.Attrs().HardwareAddr, w.mac) {
		if err := w.nh.LinkSetHardwareAddr(peer, w.mac); err != nil {
			return nil, fmt.Errorf("set MAC of %s: %w", w.ifName, err)
		}
		d.changed("set MAC", "link", w.ifName, "mac", w.mac)
	}
	if peer.Attrs().MTU != w.mtu {
		if err := w.nh.LinkSetMTU(peer, w.mtu); err != nil {
			return nil, err
		}
		d.changed("set MTU", "link", w.ifName, "mtu", w.mtu)
	}
	if err := d.ensureAddrs(w.nh, peer, w.addrs); err != nil {
		return nil, err
	}
	if err := d.ensureUp(w.nh, peer); err != nil {
		return nil, err
	}
	lo, err := w.nh.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	if err := d.ensureUp(w.nh, lo); err != nil {
		return nil, err
	}
	return peer, nil
}

// ensurePort converges one port. Unless full, a port applied before with
// the same spec, whose tap the host still has as then, is taken as is.
// errNetnsGone: a port's namespace does not exist.
var errNetnsGone = errors.New("the port's network namespace does not exist")

func (d *Datapath) ensurePort(v *hostView, snaps nsSnapshots, bridges map[string]netlink.Link, netMTU map[string]int, p datapath.Port, fwOK, full bool) error {
	br := bridges[p.NetworkID]
	if br == nil {
		return fmt.Errorf("network %s not applied", p.NetworkID)
	}
	mtu := orDefault(p.MTU, netMTU[p.NetworkID])
	spec := portSpec(p, mtu)
	if a, ok := d.applied[p.ID]; ok && !full && a.spec == spec {
		if tap := v.byName[datapath.TapName(p.ID)]; tap != nil && tap.Attrs().Index == a.tap && d.tapCurrent(tap, br, mtu, p) {
			return nil
		}
	}
	delete(d.applied, p.ID)
	defer func() {
		if tap := v.byName[datapath.TapName(p.ID)]; tap != nil {
			d.applied[p.ID] = appliedPort{spec: spec, tap: tap.Attrs().Index}
		}
	}()
	if d.portCurrent(v, snaps, br, mtu, p) {
		return nil
	}
	ns, err := netns.GetFromPath(p.Netns)
	if errors.Is(err, os.ErrNotExist) {
		return errNetnsGone
	}
	if err != nil {
		return fmt.Errorf("netns %s: %w", p.Netns, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", p.Netns, err)
	}
	defer nh.Close()
	peer, err := d.ensureVeth(v, veth{
		tap: datapath.TapName(p.ID), alias: d.alias("port", p.ID), bridge: br,
		mtu: orDefault(p.MTU, netMTU[p.NetworkID]), nsPath: p.Netns, ns: ns, nh: nh, ifName: p.IfName, mac: p.MAC, addrs: p.Addresses,
	}, fwOK || !p.PortSecurity)
	if err != nil {
		return err
	}
	return d.ensureRoutes(nh, peer.Attrs().Index, p.Addresses, portRoutes(p, peer.Attrs().Index))
}

// portRoutes are the routes a port's namespace end (link index peer) must
// have.
func portRoutes(p datapath.Port, peer int) []route {
	var want []route
	// A server with several NICs has a default route through each; the
	// metric (the NIC's number: eth0 0, eth1 1…) makes the first preferred
	// and keeps the routes from clashing.
	metric := datapath.IfNumber(p.IfName)
	for _, g := range p.Gateways {
		want = append(want, route{dst: defaultPrefix(g), gw: g, link: peer, metric: metric})
	}
	for _, r := range p.Routes {
		want = append(want, route{dst: r.Dst.Masked(), gw: r.NextHop, link: peer})
	}
	return want
}

func defaultPrefix(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	return netip.MustParsePrefix("::/0")
}

type route struct {
	dst    netip.Prefix
	gw     netip.Addr
	link   int
	metric int
}

func routeKey(dst netip.Prefix, gw netip.Addr, metric int) string {
	return dst.String() + " via " + gw.String() + " metric " + strconv.Itoa(metric)
}

// routeKeyOf is the key of a route as the kernel reports it.
func routeKeyOf(r netlink.Route) string {
	var dst netip.Prefix
	if r.Dst != nil {
		dst = toPrefix(r.Dst)
	} else if r.Family == unix.AF_INET6 {
		dst = netip.MustParsePrefix("::/0")
	} else {
		dst = netip.MustParsePrefix("0.0.0.0/0")
	}
	gw, _ := netip.AddrFromSlice(r.Gw)
	return routeKey(dst, gw.Unmap(), r.Priority)
}

// ensureRoutes makes this datapath's routes (protocol routeProto) in a
// namespace exactly want; link > 0 limits it to the routes through one link.
// A next hop outside every address prefix is marked on-link.
func (d *Datapath) ensureRoutes(h *netlink.Handle, link int, addrs []netip.Prefix, want []route) error {
	filter := &netlink.Route{Protocol: routeProto, Table: unix.RT_TABLE_MAIN}
	mask := netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE
	if link > 0 {
		filter.LinkIndex = link
		mask |= netlink.RT_FILTER_OIF
	}
	cur, err := retryDump(func() ([]netlink.Route, error) { return h.RouteListFiltered(netlink.FAMILY_ALL, filter, mask) })
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	key := routeKey
	wanted := map[string]route{}
	for _, r := range want {
		wanted[key(r.dst, r.gw, r.metric)] = r
	}
	have := map[string]bool{}
	for _, r := range cur {
		k := routeKeyOf(r)
		if _, ok := wanted[k]; ok && !have[k] {
			have[k] = true
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete route %s: %w", k, err)
		}
		d.changed("deleted route", "route", k)
	}
	for _, r := range want {
		k := key(r.dst, r.gw, r.metric)
		if have[k] {
			continue
		}
		nr := &netlink.Route{Dst: toIPNet(r.dst), Gw: r.gw.AsSlice(), LinkIndex: r.link, Protocol: routeProto, Table: unix.RT_TABLE_MAIN, Priority: r.metric}
		onLink := false
		for _, a := range addrs {
			if a.Masked().Contains(r.gw) {
				onLink = true
			}
		}
		if !onLink && !r.gw.IsLinkLocalUnicast() && r.link > 0 {
			nr.Flags = int(netlink.FLAG_ONLINK)
		}
		if err := h.RouteAdd(nr); err != nil {
			return fmt.Errorf("add route %s: %w", k, err)
		}
		have[k] = true
		d.changed("added route", "route", k)
	}
	return nil
}

// liveCheck names the two ends of a veth to wait for.
type liveCheck struct{ nsPath, tap, ifName string }

// liveWait bounds how long Apply waits for new links to carry traffic.
const liveWait = 3 * time.Second

// waitLive waits until the veths an Apply made or changed are operational.
// The kernel activates a link (its operstate, its transmit queue) in
// deferred work that may lag up to a second behind "up"; until then what it
// sends is dropped. So a port Apply returns is a port that passes traffic.
func (d *Datapath) waitLive(ctx context.Context, fresh []liveCheck) {
	if len(fresh) == 0 {
		return
	}
	handles := map[string]*netlink.Handle{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	up := func(h *netlink.Handle, name string) bool {
		l, err := h.LinkByName(name)
		return err != nil || l.Attrs().OperState == netlink.OperUp // gone: nothing to wait for
	}
	deadline := time.Now().Add(liveWait)
	for {
		var still []liveCheck
		for _, f := range fresh {
			h, ok := handles[f.nsPath]
			if !ok {
				ns, err := netns.GetFromPath(f.nsPath)
				if err != nil {
					continue
				}
				h, err = netlink.NewHandleAt(ns)
				ns.Close()
				if err != nil {
					continue
				}
				handles[f.nsPath] = h
			}
			if !up(d.nl, f.tap) || !up(h, f.ifName) {
				still = append(still, f)
			}
		}
		if len(still) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.log.Warn("links not operational yet", "count", len(still), "first", still[0].tap)
			return
		}
		fresh = still
		time.Sleep(10 * time.Millisecond)
	}
}
