// Package datapath is the host side of networking: what a host must look
// like for the networks, ports, routers and security groups bound to it, and
// the Datapath interface that makes it so.
//
// The network service computes a HostState — the complete desired state of
// one host — and the host agent hands it to Apply. Apply is level-triggered
// and idempotent: it adds what is missing, fixes what differs and removes
// what this datapath owns but the state no longer names, so the same call
// after a crash, a restart or a lost message converges the host. Everything
// a Datapath creates (bridges, veths, namespaces, nftables tables) carries
// its owner id, and it never touches objects it does not own: two monostack
// instances on one host leave each other alone.
//
// Names follow Neutron's linuxbridge agent: a network's bridge is
// brq<network-id[:11]>, a port's host-side veth tap<port-id[:11]>.
package datapath

import (
	"context"
	"net"
	"net/netip"
	"strconv"
)

// HostState is everything one host must have.
type HostState struct {
	Networks []Network
	Ports    []Port
	Routers  []Router
}

// Network is an L2 segment: a Linux bridge. External networks also get an
// address on the host side of their bridge (HostCIDR) so that the host
// reaches floating IPs.
type Network struct {
	ID       string
	MTU      int
	External bool
	// HostCIDR, when set, is an address given to the bridge itself
	// (e.g. the gateway of an external subnet), in CIDR form.
	HostCIDRs []netip.Prefix
}

// Port is a port bound to this host: a veth pair whose host end joins the
// network's bridge and whose other end is moved into Netns and renamed
// IfName, with the port's MAC, addresses, routes and MTU.
type Port struct {
	ID        string
	NetworkID string
	MAC       net.HardwareAddr
	// Addresses in CIDR form (the address with its subnet's prefix length).
	Addresses []netip.Prefix
	// Gateways: the default route of each address family, if any.
	Gateways []netip.Addr
	// Routes: extra routes (subnet host_routes).
	Routes []Route
	MTU    int
	// Netns is the path of the network namespace the port serves
	// (/var/run/netns/NAME or /proc/PID/ns/net); IfName its name there.
	Netns  string
	IfName string

	// PortSecurity: when false, no anti-spoofing and no security groups.
	PortSecurity bool
	// AllowedAddressPairs: further MAC/IP pairs the port may send from.
	AllowedAddressPairs []AddressPair
	// Rules are the port's security-group rules, resolved: remote groups
	// already expanded to the member addresses.
	Rules []Rule
}

// Route is a destination prefix reached through a next hop.
type Route struct {
	Dst     netip.Prefix
	NextHop netip.Addr
}

// AddressPair is an extra source a port may use; MAC nil means the port's own.
type AddressPair struct {
	MAC    net.HardwareAddr
	Prefix netip.Prefix
}

// Rule is one security-group rule as the datapath enforces it (stateful:
// replies to allowed traffic are always allowed).
type Rule struct {
	Direction string // "ingress" or "egress"
	EtherType string // "IPv4" or "IPv6"
	Protocol  string // "", "tcp", "udp", "icmp", "icmpv6", or a protocol number
	// PortMin/PortMax: the port range for tcp/udp; for icmp, the type and
	// code (PortMax -1 for any code). 0 means any.
	PortMin, PortMax int
	// Remotes: the prefixes the rule matches on the far side; empty means any.
	Remotes []netip.Prefix
}

// Router is a namespace with a leg on each of its subnets and a gateway leg
// on an external network, doing SNAT for its subnets and DNAT/SNAT for its
// floating IPs.
type Router struct {
	ID string
	// Gateway is the external leg; nil for a router without a gateway.
	Gateway *RouterLeg
	// Interfaces are the legs on internal subnets (the subnet gateways).
	Interfaces  []RouterLeg
	SNAT        bool
	FloatingIPs []FloatingIP
	Routes      []Route
}

// RouterLeg is one router port: an address on a network.
type RouterLeg struct {
	PortID    string
	NetworkID string
	MAC       net.HardwareAddr
	Addresses []netip.Prefix
	// Gateway is the next hop of the router's default route (external leg).
	Gateway netip.Addr
	MTU     int
}

// FloatingIP maps an external address to a port's fixed address.
type FloatingIP struct {
	ID         string
	FloatingIP netip.Addr
	FixedIP    netip.Addr
}

// Datapath makes a host match a HostState.
type Datapath interface {
	// Apply converges the host to state: creates, updates and removes the
	// objects this datapath owns. It is idempotent; applying the same state
	// twice changes nothing. Partial failures are returned joined; objects
	// that were applied stay applied.
	Apply(ctx context.Context, state HostState) error
	// Observed reports what this datapath owns on the host right now, by id.
	Observed(ctx context.Context) (Observed, error)
	// Close releases the datapath's handles; it leaves the host as it is.
	Close() error
}

// Observed is what a datapath found on the host.
type Observed struct {
	Networks []string // network ids with a bridge
	Ports    []string // port ids with a veth
	Routers  []string // router ids with a namespace
}

// BridgeName is the bridge of a network.
func BridgeName(networkID string) string { return "brq" + short(networkID) }

// TapName is the host end of a port's veth.
func TapName(portID string) string { return "tap" + short(portID) }

// IfNumber is the number at the end of an interface name (eth1 → 1), or
// 0: the order of a port among its namespace's interfaces.
func IfNumber(name string) int {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(name[i:])
	return n
}

func short(id string) string {
	if len(id) > 11 {
		return id[:11]
	}
	return id
}
