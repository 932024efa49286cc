// Package network is Neutron: the Networking API v2.0 under /network
// (networks, subnets, ports, routers, floating IPs, security groups and
// their rules, quotas, tags, extensions and availability zones), with
// upstream's wire formats, fault types, filters, sorting and paging, and
// its default policy (a project sees its own resources and the shared and
// external networks; another project's are 404).
//
// Addresses are handed out by the ipam subpackage inside each write's
// transaction, so an address is never given twice.
//
// The service also computes each host's desired state (datapath.HostState)
// from the database — the ports bound to the host, their networks and
// resolved security-group rules, and on the router host the routers with
// SNAT and floating IPs — and delivers it through a Syncer after each burst
// of changes and periodically. Agents report back what they observed
// (ReportObserved), which moves ports and floating IPs to ACTIVE or DOWN.
package network
