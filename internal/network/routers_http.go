package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/network/ipam"
)

var routerSpecs = withStandard(map[string]attrSpec{
	"name": rw, "admin_state_up": rw, "external_gateway_info": rw, "routes": {put: true},
	"availability_zone_hints": postOnly, "status": readOnly, "availability_zones": readOnly,
	"distributed": readOnly, "ha": readOnly, "flavor_id": readOnly,
})

func (s *Service) handleListRouters(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_router")
	if err != nil {
		return err
	}
	lq, err := parseList(r, routerAttrs)
	if err != nil {
		return err
	}
	where, args := `1=1`, []any{}
	if !c.admin {
		where, args = `project_id=?`, []any{c.project}
	}
	l, err := s.loadRouters(r.Context(), s.db, where, args...)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(l))
	for i, rt := range l {
		items[i] = rt.wire(s.cfg.AvailabilityZone)
	}
	return writeList(w, r, "routers", lq, items, func(id string) error { return routerNotFound(id) })
}

func (s *Service) handleShowRouter(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_router")
	if err != nil {
		return err
	}
	rt, err := s.visibleRouter(r.Context(), s.db, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"router": showFields(r, rt.wire(s.cfg.AvailabilityZone))})
	return nil
}

func (s *Service) handleCreateRouter(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "create_router")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "router", routerSpecs, true, false)
	if err != nil {
		return err
	}
	e, ctx := items[0], r.Context()
	pid, err := projectFromBody(e, c)
	if err != nil {
		return err
	}
	rt := &Router{ID: newID(), ProjectID: pid, AdminStateUp: true, Status: statusActive, EnableSNAT: true,
		Routes: []HostRoute{}, AZHints: []string{}, CreatedAt: now()}
	rt.UpdatedAt = rt.CreatedAt
	if err := nameDesc(e, &rt.Name, &rt.Description); err != nil {
		return err
	}
	if rt.Tags, err = tagsFromBody(e); err != nil {
		return err
	}
	if v, ok, err := e.boolean("admin_state_up"); err != nil {
		return err
	} else if ok {
		rt.AdminStateUp = v
	}
	if hints, ok, err := e.strList("availability_zone_hints", true, 255); err != nil {
		return err
	} else if ok {
		for _, h := range hints {
			if h != s.cfg.AvailabilityZone {
				return nerr(http.StatusNotFound, "AvailabilityZoneNotFound", "AvailabilityZone %s could not be found.", h)
			}
		}
		rt.AZHints = hints
	}
	g, _, err := gatewayFromBody(e, c, true)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkQuota(ctx, tx, pid, "router", 1); err != nil {
			return err
		}
		if err := s.insertRouter(ctx, tx, rt); err != nil {
			return err
		}
		if g != nil {
			if err := s.setGateway(ctx, tx, c, rt, g); err != nil {
				return err
			}
			if err := s.saveRouter(ctx, tx, rt); err != nil {
				return err
			}
		}
		var err error
		rt, err = s.getRouter(ctx, tx, rt.ID)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"router": rt.wire(s.cfg.AvailabilityZone)})
	return nil
}

func (s *Service) handleUpdateRouter(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "update_router")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "router", routerSpecs, false, false)
	if err != nil {
		return err
	}
	e, ctx, id := items[0], r.Context(), r.PathValue("id")
	g, gwSet, err := gatewayFromBody(e, c, false)
	if err != nil {
		return err
	}
	var rt *Router
	err = s.write(ctx, func(tx *sql.Tx) error {
		if rt, err = s.visibleRouter(ctx, tx, c, id); err != nil {
			return err
		}
		if err := nameDesc(e, &rt.Name, &rt.Description); err != nil {
			return err
		}
		if v, ok, err := e.boolean("admin_state_up"); err != nil {
			return err
		} else if ok {
			rt.AdminStateUp = v
		}
		if gwSet {
			if err := s.setGateway(ctx, tx, c, rt, g); err != nil {
				return err
			}
		}
		if e.has("routes") {
			routes, err := routesFromBody(e)
			if err != nil {
				return err
			}
			if err := s.validateRoutes(ctx, tx, rt, routes); err != nil {
				return err
			}
			rt.Routes = routes
		}
		if err := s.saveRouter(ctx, tx, rt); err != nil {
			return err
		}
		rt, err = s.getRouter(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"router": rt.wire(s.cfg.AvailabilityZone)})
	return nil
}

func (s *Service) handleDeleteRouter(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "delete_router")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		rt, err := s.visibleRouter(ctx, tx, c, id)
		if err != nil {
			return err
		}
		ifaces, err := s.routerInterfaces(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(ifaces) > 0 {
			ids := make([]string, len(ifaces))
			for i, p := range ifaces {
				ids[i] = p.ID
			}
			return nerr(http.StatusConflict, "RouterInUse", "Router %s has ports still attached: %s", id, strings.Join(ids, ", "))
		}
		if err := s.setGateway(ctx, tx, c, rt, nil); err != nil {
			return err
		}
		if err := deleteTags(ctx, tx, "routers", id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM routers WHERE id=?`, id)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// interfaceInfo is the body of add/remove_router_interface.
type interfaceInfo struct {
	SubnetID, PortID string
}

func readInterfaceInfo(r *http.Request) (interfaceInfo, error) {
	var info interfaceInfo
	b, err := api.ReadBody(r, api.MaxBody)
	if err != nil {
		return info, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return info, badResource("router", "Either subnet_id or port_id must be specified")
	}
	for k, raw := range m {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return info, badResource("router", "'%s' is not a valid UUID", shown(raw))
		}
		switch k {
		case "subnet_id":
			info.SubnetID = v
		case "port_id":
			info.PortID = v
		}
	}
	if info.SubnetID == "" && info.PortID == "" {
		return info, badResource("router", "Either subnet_id or port_id must be specified")
	}
	return info, nil
}

func interfaceResult(rt *Router, p *Port, subnetIDs []string) map[string]any {
	last := ""
	if len(subnetIDs) > 0 {
		last = subnetIDs[len(subnetIDs)-1]
	}
	return map[string]any{"id": rt.ID, "tenant_id": p.ProjectID, "project_id": p.ProjectID, "port_id": p.ID,
		"network_id": p.NetworkID, "subnet_id": last, "subnet_ids": subnetIDs}
}

func (s *Service) handleAddInterface(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "add_router_interface")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	if _, err := s.visibleRouter(ctx, s.db, c, id); err != nil {
		return err
	}
	info, err := readInterfaceInfo(r)
	if err != nil {
		return err
	}
	if info.SubnetID != "" && info.PortID != "" {
		return badResource("router", "Cannot specify both subnet-id and port-id")
	}
	var result map[string]any
	err = s.write(ctx, func(tx *sql.Tx) error {
		rt, err := s.visibleRouter(ctx, tx, c, id)
		if err != nil {
			return err
		}
		var p *Port
		var subnets []*Subnet
		if info.PortID != "" {
			p, subnets, err = s.interfaceByPort(ctx, tx, c, rt, info.PortID)
		} else {
			p, subnets, err = s.interfaceBySubnet(ctx, tx, c, rt, info.SubnetID)
		}
		if err != nil {
			return err
		}
		ids := make([]string, len(subnets))
		for i, sn := range subnets {
			ids[i] = sn.ID
		}
		result = interfaceResult(rt, p, ids)
		return bump(ctx, tx, "routers", rt.ID)
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, result)
	return nil
}

// checkRouterSubnets refuses subnets the router is on already or that
// overlap those.
func (s *Service) checkRouterSubnets(ctx context.Context, q queryer, rt *Router, subnets []*Subnet) error {
	attached, err := s.attachedSubnets(ctx, q, rt, false)
	if err != nil {
		return err
	}
	for _, sn := range subnets {
		for _, a := range attached {
			if a.ID == sn.ID {
				return badResource("router", "Router already has a port on subnet %s", sn.ID)
			}
		}
	}
	for _, sn := range subnets {
		for _, a := range attached {
			if a.CIDR.Overlaps(sn.CIDR) {
				return routerOverlap(sn, a)
			}
		}
	}
	return nil
}

func (s *Service) interfaceBySubnet(ctx context.Context, tx *sql.Tx, c caller, rt *Router, subnetID string) (*Port, []*Subnet, error) {
	sn, net, err := s.visibleSubnet(ctx, tx, c, subnetID)
	if err != nil {
		return nil, nil, err
	}
	if !sn.Gateway.IsValid() {
		return nil, nil, badResource("router", "Subnet for router interface must have a gateway IP")
	}
	if !c.owns(sn.ProjectID) && !c.owns(net.ProjectID) {
		return nil, nil, badResource("router", "Cannot add interface to router because subnet %s is not owned by project making the request", sn.ID)
	}
	if err := s.checkRouterSubnets(ctx, tx, rt, []*Subnet{sn}); err != nil {
		return nil, nil, err
	}
	p, err := s.createPort(ctx, tx, system, portReq{ProjectID: rt.ProjectID, NetworkID: sn.NetworkID, AdminStateUp: true,
		DeviceID: rt.ID, DeviceOwner: ownerRouterInterface, FixedIPs: []fixedIPReq{{SubnetID: sn.ID, IP: sn.Gateway}},
		HostID: s.cfg.Host, skipQuota: true, routerIP: true})
	if err != nil {
		return nil, nil, err
	}
	return p, []*Subnet{sn}, nil
}

func (s *Service) interfaceByPort(ctx context.Context, tx *sql.Tx, c caller, rt *Router, portID string) (*Port, []*Subnet, error) {
	p, _, err := s.visiblePort(ctx, tx, c, portID)
	if err != nil {
		return nil, nil, err
	}
	if p.DeviceID != "" {
		return nil, nil, portInUse(p.ID, p.NetworkID, p.DeviceID)
	}
	if len(p.FixedIPs) == 0 {
		return nil, nil, badResource("router", "Router port must have at least one fixed IP")
	}
	var subnets []*Subnet
	v4 := 0
	for _, f := range p.FixedIPs {
		sn, err := s.getSubnet(ctx, tx, f.SubnetID)
		if err != nil {
			return nil, nil, err
		}
		if sn.IPVersion == 4 {
			v4++
		}
		if !slices.ContainsFunc(subnets, func(x *Subnet) bool { return x.ID == sn.ID }) {
			subnets = append(subnets, sn)
		}
	}
	if err := s.checkRouterSubnets(ctx, tx, rt, subnets); err != nil {
		return nil, nil, err
	}
	if v4 > 1 {
		return nil, nil, badResource("router", "Cannot have multiple IPv4 subnets on router port")
	}
	p.DeviceID, p.DeviceOwner, p.HostID = rt.ID, ownerRouterInterface, s.cfg.Host
	if err := s.savePort(ctx, tx, p); err != nil {
		return nil, nil, err
	}
	if err := s.setPortGroups(ctx, tx, p.ID, nil); err != nil {
		return nil, nil, err
	}
	return p, subnets, nil
}

func (s *Service) handleRemoveInterface(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "remove_router_interface")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	if _, err := s.visibleRouter(ctx, s.db, c, id); err != nil {
		return err
	}
	info, err := readInterfaceInfo(r)
	if err != nil {
		return err
	}
	var result map[string]any
	err = s.write(ctx, func(tx *sql.Tx) error {
		rt, err := s.visibleRouter(ctx, tx, c, id)
		if err != nil {
			return err
		}
		ifaces, err := s.routerInterfaces(ctx, tx, rt.ID)
		if err != nil {
			return err
		}
		var p *Port
		var sn *Subnet
		if info.PortID != "" {
			i := slices.IndexFunc(ifaces, func(x *Port) bool { return x.ID == info.PortID })
			if i < 0 {
				return nerr(http.StatusNotFound, "RouterInterfaceNotFound", "Router %s does not have an interface with id %s", rt.ID, info.PortID)
			}
			p = ifaces[i]
			if info.SubnetID != "" && !slices.ContainsFunc(p.FixedIPs, func(f FixedIP) bool { return f.SubnetID == info.SubnetID }) {
				return nerr(http.StatusBadRequest, "SubnetMismatchForPort", "Subnet on port %s does not match the requested subnet %s.", p.ID, info.SubnetID)
			}
		} else {
			if sn, _, err = s.visibleSubnet(ctx, tx, c, info.SubnetID); err != nil {
				return err
			}
			i := slices.IndexFunc(ifaces, func(x *Port) bool {
				return slices.ContainsFunc(x.FixedIPs, func(f FixedIP) bool { return f.SubnetID == sn.ID })
			})
			if i < 0 {
				return nerr(http.StatusNotFound, "RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", rt.ID, sn.ID)
			}
			p = ifaces[i]
		}
		var subnets []*Subnet
		for _, f := range p.FixedIPs {
			if sn != nil && f.SubnetID != sn.ID {
				continue
			}
			x, err := s.getSubnet(ctx, tx, f.SubnetID)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(subnets, func(y *Subnet) bool { return y.ID == x.ID }) {
				subnets = append(subnets, x)
			}
		}
		for _, x := range subnets {
			if err := s.interfaceInUse(ctx, tx, rt, x); err != nil {
				return err
			}
		}
		ids := make([]string, len(subnets))
		for i, x := range subnets {
			ids[i] = x.ID
		}
		result = interfaceResult(rt, p, ids)
		if sn != nil && len(p.FixedIPs) > 1 {
			for _, f := range p.FixedIPs {
				if f.SubnetID == sn.ID {
					if err := ipam.Release(ctx, tx, p.ID, f.SubnetID, f.IP); err != nil {
						return err
					}
				}
			}
			if err := bump(ctx, tx, "ports", p.ID); err != nil {
				return err
			}
		} else if err := s.deletePortRow(ctx, tx, p.ID); err != nil {
			return err
		}
		return bump(ctx, tx, "routers", rt.ID)
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, result)
	return nil
}

// interfaceInUse refuses to take a router off a subnet that floating IPs
// or extra routes of the router need.
func (s *Service) interfaceInUse(ctx context.Context, q queryer, rt *Router, sn *Subnet) error {
	rows, err := q.QueryContext(ctx, `SELECT f.fixed_ip_address FROM floatingips f JOIN ip_allocations a
		ON a.port_id=f.fixed_port_id AND a.ip_address=f.fixed_ip_address WHERE f.router_id=? AND a.subnet_id=?`, rt.ID, sn.ID)
	if err != nil {
		return err
	}
	used := rows.Next()
	rows.Close()
	if used {
		return nerr(http.StatusConflict, "RouterInterfaceInUseByFloatingIP",
			"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", sn.ID, rt.ID)
	}
	for _, route := range rt.Routes {
		if sn.CIDR.Contains(route.NextHop) {
			return nerr(http.StatusConflict, "RouterInterfaceInUseByRoute",
				"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more routes.", sn.ID, rt.ID)
		}
	}
	return nil
}

// handleExtraRoutes serves add_extraroutes and remove_extraroutes.
func (s *Service) handleExtraRoutes(add bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		action := "remove_extraroutes"
		if add {
			action = "add_extraroutes"
		}
		c, err := writerOf(r, action)
		if err != nil {
			return err
		}
		ctx, id := r.Context(), r.PathValue("id")
		if _, err := s.visibleRouter(ctx, s.db, c, id); err != nil {
			return err
		}
		items, _, err := readBody(r, c, "router", map[string]attrSpec{"routes": {post: true, put: true}}, false, false)
		if err != nil {
			return err
		}
		routes, err := routesFromBody(items[0])
		if err != nil {
			return err
		}
		var rt *Router
		err = s.write(ctx, func(tx *sql.Tx) error {
			if rt, err = s.visibleRouter(ctx, tx, c, id); err != nil {
				return err
			}
			next := slices.Clone(rt.Routes)
			for _, route := range routes {
				i := slices.Index(next, route)
				switch {
				case add && i < 0:
					next = append(next, route)
				case !add && i >= 0:
					next = slices.Delete(next, i, i+1)
				}
			}
			if add {
				if err := s.validateRoutes(ctx, tx, rt, next); err != nil {
					return err
				}
			}
			rt.Routes = next
			if err := s.saveRouter(ctx, tx, rt); err != nil {
				return err
			}
			rt, err = s.getRouter(ctx, tx, id)
			return err
		})
		if err != nil {
			return err
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"router": rt.wire(s.cfg.AvailabilityZone)})
		return nil
	}
}

// routerFor finds the router that connects a subnet to an external
// network, preferring one whose interface is the subnet's gateway.
func (s *Service) routerFor(ctx context.Context, q queryer, sn *Subnet, externalNet string) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT p.device_id, a.ip_address FROM ports p
		JOIN ip_allocations a ON a.port_id=p.id
		JOIN routers r ON r.id=p.device_id
		JOIN ports g ON g.id=r.gw_port_id
		WHERE p.device_owner=? AND a.subnet_id=? AND g.network_id=? ORDER BY r.created_at`, ownerRouterInterface, sn.ID, externalNet)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	first := ""
	for rows.Next() {
		var rid, ip string
		if err := rows.Scan(&rid, &ip); err != nil {
			return "", err
		}
		if a, err := netip.ParseAddr(ip); err == nil && a == sn.Gateway {
			return rid, nil
		}
		if first == "" {
			first = rid
		}
	}
	return first, rows.Err()
}
