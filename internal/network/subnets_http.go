package network

import (
	"context"
	"database/sql"
	"net/http"
	"net/netip"
	"slices"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/network/ipam"
)

var subnetSpecs = withStandard(map[string]attrSpec{
	"name": rw, "network_id": postOnly, "ip_version": postOnly, "cidr": postOnly, "gateway_ip": rw,
	"enable_dhcp": rw, "ipv6_ra_mode": postOnly, "ipv6_address_mode": postOnly, "subnetpool_id": postOnly,
	"prefixlen": postOnly, "use_default_subnetpool": postOnly, "allocation_pools": rw, "dns_nameservers": rw,
	"host_routes": rw, "service_types": readOnly, "segment_id": readOnly, "dns_publish_fixed_ip": readOnly,
})

const (
	maxDNSNameservers = 5
	maxHostRoutes     = 20
)

var ipv6Modes = []string{"dhcpv6-stateful", "dhcpv6-stateless", "slaac"}

func (s *Service) handleListSubnets(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_subnet")
	if err != nil {
		return err
	}
	lq, err := parseList(r, subnetAttrs)
	if err != nil {
		return err
	}
	where, args := `1=1`, []any{}
	if !c.admin {
		where = `project_id=? OR network_id IN (SELECT id FROM networks WHERE project_id=? OR shared OR external)`
		args = []any{c.project, c.project}
	}
	l, err := s.loadSubnets(r.Context(), s.db, where, args...)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(l))
	for i, sn := range l {
		items[i] = sn.wire()
	}
	return writeList(w, r, "subnets", lq, items, func(id string) error { return subnetNotFound(id) })
}

func (s *Service) handleShowSubnet(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_subnet")
	if err != nil {
		return err
	}
	sn, _, err := s.visibleSubnet(r.Context(), s.db, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"subnet": showFields(r, sn.wire())})
	return nil
}

func (s *Service) handleCreateSubnet(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "create_subnet")
	if err != nil {
		return err
	}
	items, bulk, err := readBody(r, c, "subnet", subnetSpecs, true, true)
	if err != nil {
		return err
	}
	ctx := r.Context()
	out := make([]*Subnet, len(items))
	err = s.write(ctx, func(tx *sql.Tx) error {
		for i, e := range items {
			sn, err := s.createSubnet(ctx, tx, c, e)
			if err != nil {
				return err
			}
			out[i] = sn
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCreated(w, "subnet", bulk, func(i int) map[string]any { return out[i].wire() }, len(out))
}

// createSubnet validates a subnet body as upstream does, in its order, and
// stores the subnet.
func (s *Service) createSubnet(ctx context.Context, tx *sql.Tx, c caller, e entity) (*Subnet, error) {
	pid, err := projectFromBody(e, c)
	if err != nil {
		return nil, err
	}
	for _, req := range []string{"network_id", "ip_version"} {
		if !e.has(req) {
			return nil, badRequest("Failed to parse request. Required attribute '%s' not specified", req)
		}
	}
	netID, _, err := e.str("network_id", 36)
	if err != nil {
		return nil, err
	}
	ver, _, err := e.integer("ip_version", 0, 1<<31-1)
	if err != nil {
		return nil, err
	}
	if ver != 4 && ver != 6 {
		return nil, invalidAttr("ip_version", "%d is not in [4, 6]", ver)
	}
	if e.has("subnetpool_id") && !e.isNull("subnetpool_id") {
		id, _, _ := e.str("subnetpool_id", 0)
		return nil, nerr(http.StatusNotFound, "SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
	}
	if v, ok, err := e.boolean("use_default_subnetpool"); err != nil {
		return nil, err
	} else if ok && v {
		return nil, badResource("subnets", "No default subnetpool found for IPv%d", ver)
	}
	if !e.has("cidr") || e.isNull("cidr") {
		if e.has("prefixlen") {
			return nil, badResource("subnets", "a subnetpool must be specified in the absence of a cidr")
		}
		return nil, badResource("subnets", "a subnetpool must be specified in the absence of a cidr")
	}
	if e.has("prefixlen") {
		return nil, badResource("subnets", "cidr and prefixlen must not be supplied together")
	}
	cidrText, _, err := e.str("cidr", 0)
	if err != nil {
		return nil, err
	}
	cidr, err := parseCIDR("cidr", cidrText)
	if err != nil {
		return nil, err
	}
	net, err := s.visibleNetwork(ctx, tx, c, netID)
	if err != nil {
		return nil, err
	}
	if !c.owns(net.ProjectID) {
		return nil, policyDenied("create_subnet")
	}
	sn := &Subnet{ID: newID(), ProjectID: pid, NetworkID: netID, IPVersion: ver, CIDR: cidr, EnableDHCP: true,
		CreatedAt: now(), DNS: []string{}}
	sn.UpdatedAt = sn.CreatedAt
	if err := nameDesc(e, &sn.Name, &sn.Description); err != nil {
		return nil, err
	}
	if sn.Tags, err = tagsFromBody(e); err != nil {
		return nil, err
	}
	if v, ok, err := e.boolean("enable_dhcp"); err != nil {
		return nil, err
	} else if ok {
		sn.EnableDHCP = v
	}
	for name, dst := range map[string]**string{"ipv6_ra_mode": &sn.RAMode, "ipv6_address_mode": &sn.AddressMode} {
		v, ok, err := e.optStr(name, 0)
		if err != nil {
			return nil, err
		}
		if ok && v != nil {
			if !slices.Contains(ipv6Modes, *v) {
				return nil, invalidAttr(name, "'%s' is not in %s", *v, pyList(ipv6Modes))
			}
			*dst = v
		}
	}
	if (cidr.Addr().Is4() && ver != 4) || (cidr.Addr().Is6() && ver != 6) {
		return nil, invalidInput("cidr '%s' does not match the ip_version '%d'", cidrText, ver)
	}
	if ver == 6 && cidr.Addr().IsUnspecified() {
		return nil, invalidInput("IPv6 subnet '::' is not supported")
	}
	if cidr.Bits() == 0 {
		return nil, invalidInput("0 is not allowed as CIDR prefix length")
	}
	if sn.EnableDHCP {
		if (ver == 4 && cidr.Bits() > 30) || (ver == 6 && cidr.Bits() > 126) {
			return nil, invalidInput("Subnet has a prefix length that is incompatible with DHCP service enabled")
		}
		if cidr.Addr().IsMulticast() {
			return nil, invalidInput("Multicast IP subnet is not supported if enable_dhcp is True")
		}
		if cidr.Addr().IsLoopback() {
			return nil, invalidInput("Loopback IP subnet is not supported if enable_dhcp is True")
		}
		if ver == 4 && cidr.Addr() == netip.IPv4Unspecified() {
			return nil, invalidInput("First IP '0.0.0.0' of network is not supported if enable_dhcp is True.")
		}
	}
	gwSet := e.has("gateway_ip")
	if gwSet && !e.isNull("gateway_ip") {
		gw, _, err := e.ip("gateway_ip")
		if err != nil {
			return nil, err
		}
		if gw.Is4() != (ver == 4) {
			return nil, invalidInput("gateway_ip '%s' does not match the ip_version '%d'", gw, ver)
		}
		if !ipam.GatewayValid(cidr, gw) {
			return nil, invalidInput("Gateway is not valid on subnet")
		}
		sn.Gateway = gw
	} else if !gwSet {
		sn.Gateway = ipam.DefaultGateway(cidr)
	}
	if err := subnetLists(e, sn, true); err != nil {
		return nil, err
	}
	if ver == 4 && (sn.RAMode != nil || sn.AddressMode != nil) {
		if sn.RAMode != nil {
			return nil, invalidInput("ipv6_ra_mode is not valid when ip_version is 4")
		}
		return nil, invalidInput("ipv6_address_mode is not valid when ip_version is 4")
	}
	if ver == 6 {
		if (sn.RAMode != nil || sn.AddressMode != nil) && !sn.EnableDHCP {
			return nil, invalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
		}
		if sn.RAMode != nil && sn.AddressMode != nil && *sn.RAMode != *sn.AddressMode {
			return nil, invalidInput("ipv6_ra_mode set to '%s' with ipv6_address_mode set to '%s' is not valid. "+
				"If both attributes are set, they must be the same value", *sn.RAMode, *sn.AddressMode)
		}
		if sn.Auto() && cidr.Bits() != 64 {
			return nil, invalidInput("Invalid CIDR %s for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64", cidr)
		}
	}
	if net.MTU < 68 || (ver == 6 && net.MTU < 1280) {
		min := 68
		if ver == 6 {
			min = 1280
		}
		return nil, mtuConflict(net.ID, min)
	}
	others, err := s.subnetsOf(ctx, tx, netID)
	if err != nil {
		return nil, err
	}
	if err := checkOverlap(cidr, netID, others); err != nil {
		return nil, err
	}
	if e.has("allocation_pools") && !e.isNull("allocation_pools") {
		pools, err := poolsFromBody(e)
		if err != nil {
			return nil, err
		}
		if err := ipam.ValidatePools(cidr, pools, sn.Gateway); err != nil {
			return nil, ipamError(err, netID)
		}
		sn.Pools = pools
	} else {
		sn.Pools = ipam.DefaultPools(cidr, sn.Gateway)
	}
	if err := s.checkQuota(ctx, tx, pid, "subnet", 1); err != nil {
		return nil, err
	}
	if err := s.insertSubnet(ctx, tx, sn); err != nil {
		return nil, err
	}
	return sn, nil
}

// subnetLists reads dns_nameservers and host_routes.
func subnetLists(e entity, sn *Subnet, isNew bool) error {
	if l, ok, err := e.strList("dns_nameservers", true, 0); err != nil {
		return err
	} else if ok {
		if len(l) > maxDNSNameservers {
			id := sn.ID
			if isNew {
				id = "new subnet"
			}
			return nerr(http.StatusBadRequest, "DNSNameServersExhausted",
				"Unable to complete operation for %s. The number of DNS nameservers exceeds the limit %d.", id, maxDNSNameservers)
		}
		for _, d := range l {
			a, err := parseIP(d)
			if err != nil {
				return invalidAttr("dns_nameservers", "'%s' is not a valid nameserver. '%s' is not a valid IP address", d, d)
			}
			if a.Is4() != (sn.IPVersion == 4) {
				return invalidInput("dns_nameserver '%s' does not match the ip_version '%d'", d, sn.IPVersion)
			}
		}
		sn.DNS = l
	}
	if l, ok, err := e.list("host_routes"); err != nil {
		return err
	} else if ok {
		if len(l) > maxHostRoutes {
			return nerr(http.StatusBadRequest, "HostRoutesExhausted",
				"Unable to complete operation for %s. The number of host routes exceeds the limit %d.", map[bool]string{true: "new subnet", false: sn.ID}[isNew], maxHostRoutes)
		}
		routes := []HostRoute{}
		for _, item := range l {
			for k := range item {
				if k != "destination" && k != "nexthop" {
					return invalidAttr("host_routes", "Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} Provided keys: {'%s'}", k)
				}
			}
			d, _, err1 := item.str("destination", 0)
			n, _, err2 := item.str("nexthop", 0)
			dst, err3 := netip.ParsePrefix(d)
			hop, err4 := parseIP(n)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
				return invalidInput("Invalid route: {'destination': '%s', 'nexthop': '%s'}", d, n)
			}
			if dst.Addr().Is4() != (sn.IPVersion == 4) || hop.Is4() != (sn.IPVersion == 4) {
				return invalidInput("route '%s' does not match the ip_version '%d'", d, sn.IPVersion)
			}
			routes = append(routes, HostRoute{dst.Masked(), hop})
		}
		sn.HostRoutes = routes
	}
	return nil
}

func poolsFromBody(e entity) ([]ipam.Range, error) {
	l, _, err := e.list("allocation_pools")
	if err != nil {
		return nil, err
	}
	pools := make([]ipam.Range, 0, len(l))
	for _, item := range l {
		for k := range item {
			if k != "start" && k != "end" {
				return nil, invalidAttr("allocation_pools", "Unrecognized attribute(s) '%s'", k)
			}
		}
		if !item.has("start") || !item.has("end") {
			return nil, invalidAttr("allocation_pools", "Invalid data format for IP pool: '%s'", shown(e["allocation_pools"]))
		}
		var ends [2]netip.Addr
		for i, k := range []string{"start", "end"} {
			v, _, err := item.str(k, 0)
			a, err2 := parseIP(v)
			if err != nil || err2 != nil {
				return nil, invalidAttr("allocation_pools", "'%s' is not a valid IP address", shown(item[k]))
			}
			ends[i] = a
		}
		pools = append(pools, ipam.Range{Start: ends[0], End: ends[1]})
	}
	return pools, nil
}

func (s *Service) handleUpdateSubnet(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "update_subnet")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "subnet", subnetSpecs, false, false)
	if err != nil {
		return err
	}
	e, ctx, id := items[0], r.Context(), r.PathValue("id")
	var sn *Subnet
	err = s.write(ctx, func(tx *sql.Tx) error {
		var net *Network
		if sn, net, err = s.visibleSubnet(ctx, tx, c, id); err != nil {
			return err
		}
		if !c.owns(sn.ProjectID) && !c.owns(net.ProjectID) {
			return policyDenied("update_subnet")
		}
		if err := nameDesc(e, &sn.Name, &sn.Description); err != nil {
			return err
		}
		if v, ok, err := e.boolean("enable_dhcp"); err != nil {
			return err
		} else if ok {
			if !v && sn.IPVersion == 6 && (sn.RAMode != nil || sn.AddressMode != nil) {
				return invalidInput("Cannot disable enable_dhcp with ipv6 attributes set")
			}
			if v && !sn.EnableDHCP && ((sn.IPVersion == 4 && sn.CIDR.Bits() > 30) || (sn.IPVersion == 6 && sn.CIDR.Bits() > 126)) {
				return invalidInput("Subnet has a prefix length that is incompatible with DHCP service enabled")
			}
			sn.EnableDHCP = v
		}
		if e.has("gateway_ip") {
			var gw netip.Addr
			if !e.isNull("gateway_ip") {
				if gw, _, err = e.ip("gateway_ip"); err != nil {
					return err
				}
				if gw.Is4() != (sn.IPVersion == 4) {
					return invalidInput("gateway_ip '%s' does not match the ip_version '%d'", gw, sn.IPVersion)
				}
				if !ipam.GatewayValid(sn.CIDR, gw) {
					return invalidInput("Gateway is not valid on subnet")
				}
			}
			if gw != sn.Gateway && sn.Gateway.IsValid() {
				var portID string
				err := tx.QueryRowContext(ctx, `SELECT a.port_id FROM ip_allocations a JOIN ports p ON p.id=a.port_id
					WHERE a.subnet_id=? AND a.ip_address=? AND p.device_owner=?`, sn.ID, sn.Gateway.String(), ownerRouterInterface).Scan(&portID)
				if err == nil {
					return nerr(http.StatusConflict, "GatewayIpInUse", "Current gateway ip %s already in use by port %s. Unable to update.", sn.Gateway, portID)
				}
			}
			sn.Gateway = gw
		}
		if err := subnetLists(e, sn, false); err != nil {
			return err
		}
		if e.has("allocation_pools") {
			pools := ipam.DefaultPools(sn.CIDR, sn.Gateway)
			if !e.isNull("allocation_pools") {
				if pools, err = poolsFromBody(e); err != nil {
					return err
				}
			}
			sn.Pools = pools
		}
		if err := ipam.ValidatePools(sn.CIDR, sn.Pools, sn.Gateway); err != nil {
			return ipamError(err, sn.NetworkID)
		}
		if err := s.saveSubnet(ctx, tx, sn); err != nil {
			return err
		}
		sn, err = s.getSubnet(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"subnet": sn.wire()})
	return nil
}

func (s *Service) handleDeleteSubnet(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "delete_subnet")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		sn, net, err := s.visibleSubnet(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !c.owns(sn.ProjectID) && !c.owns(net.ProjectID) {
			return policyDenied("delete_subnet")
		}
		return s.deleteSubnet(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
