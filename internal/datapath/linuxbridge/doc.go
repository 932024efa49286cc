// Package linuxbridge is the real datapath: Linux bridges, veth pairs,
// network namespaces and nftables, driven over netlink (vishvananda/netlink,
// google/nftables) without shelling out.
//
// What one Apply makes, for an owner O:
//
//   - a Network is a bridge brq<id[:11]> (up, its MTU, and its HostCIDRs
//     when it has some, so the host reaches an external network);
//   - a Port is a veth pair: tap<id[:11]> on the bridge, its peer created in
//     the port's namespace as IfName with the port's MAC, MTU, addresses,
//     default routes and extra routes (routes carry protocol 109 so that
//     only ours are ever removed), lo up;
//   - a Router is the namespace qrouter-O_<id> with forwarding on, a leg
//     per network (qr-<port[:11]>, the gateway leg qg-<port[:11]> with the
//     floating IPs as /32s), its routes, and an "ip" table monostack-O
//     doing SNAT to the gateway address and DNAT/SNAT for floating IPs;
//   - security groups are the bridge and inet tables monostack-O (see
//     firewall.go): anti-spoofing on the taps, stateful rules per port.
//
// Ownership: every link carries the alias monostack:O:<kind>:<id>, router
// namespaces the prefix qrouter-O_, nftables tables the name monostack-O.
// Apply removes what carries O's mark and the state does not name, and
// refuses (ErrConflict) to touch a name someone else holds.
//
// Idempotence: Apply compares before it writes: a second Apply of the same
// state makes no netlink or nftables change (tables carry a marker chain
// with the fingerprint of their contents and are rebuilt, atomically, only
// when it differs). Ports are checked against one dump per namespace of its
// links, addresses and routes (portcheck.go); only a port that differs is
// read again and repaired link by link.
package linuxbridge
