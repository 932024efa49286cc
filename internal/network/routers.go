package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/monostack/monostack/internal/store"
)

// Router connects subnets to each other and, through its gateway port, to
// an external network, with SNAT and floating IPs.
type Router struct {
	ID, ProjectID, Name, Description string
	AdminStateUp                     bool
	Status                           string
	GWPortID                         string
	EnableSNAT                       bool
	Routes                           []HostRoute
	AZHints                          []string
	Tags                             []string
	CreatedAt, UpdatedAt             time.Time
	Revision                         int

	// GWPort is the gateway port, loaded with the router.
	GWPort *Port
}

const routerCols = `id, project_id, name, description, admin_state_up, status, gw_port_id, enable_snat, routes, az_hints,
	created_at, updated_at, revision_number`

func (s *Service) loadRouters(ctx context.Context, q queryer, where string, args ...any) ([]*Router, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+routerCols+` FROM routers WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*Router
	for rows.Next() {
		var rt Router
		var gw sql.NullString
		var routes, az, created, updated string
		if err := rows.Scan(&rt.ID, &rt.ProjectID, &rt.Name, &rt.Description, &rt.AdminStateUp, &rt.Status, &gw,
			&rt.EnableSNAT, &routes, &az, &created, &updated, &rt.Revision); err != nil {
			rows.Close()
			return nil, store.Translate(err)
		}
		rt.GWPortID = gw.String
		var rj []routeJSON
		json.Unmarshal([]byte(routes), &rj)
		rt.Routes = []HostRoute{}
		for _, r := range rj {
			d, _ := netip.ParsePrefix(r.Destination)
			n, _ := netip.ParseAddr(r.NextHop)
			rt.Routes = append(rt.Routes, HostRoute{d, n})
		}
		json.Unmarshal([]byte(az), &rt.AZHints)
		if rt.AZHints == nil {
			rt.AZHints = []string{}
		}
		rt.CreatedAt, rt.UpdatedAt = parseTime(created), parseTime(updated)
		rt.Tags = []string{}
		out = append(out, &rt)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	var gws []string
	for i, rt := range out {
		ids[i] = rt.ID
		if rt.GWPortID != "" {
			gws = append(gws, rt.GWPortID)
		}
	}
	if len(gws) > 0 {
		ports, err := s.loadPorts(ctx, q, `p.id IN (`+placeholders(len(gws))+`)`, toAny(gws)...)
		if err != nil {
			return nil, err
		}
		byID := map[string]*Port{}
		for _, p := range ports {
			byID[p.ID] = p
		}
		for _, rt := range out {
			rt.GWPort = byID[rt.GWPortID]
		}
	}
	tags, err := loadTags(ctx, q, "routers", ids...)
	if err != nil {
		return nil, err
	}
	for _, rt := range out {
		if t := tags[rt.ID]; t != nil {
			rt.Tags = t
		}
	}
	return out, nil
}

func (s *Service) getRouter(ctx context.Context, q queryer, id string) (*Router, error) {
	l, err := s.loadRouters(ctx, q, `id=?`, id)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, routerNotFound(id)
	}
	return l[0], nil
}

func (s *Service) visibleRouter(ctx context.Context, q queryer, c caller, id string) (*Router, error) {
	rt, err := s.getRouter(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if !c.owns(rt.ProjectID) {
		return nil, routerNotFound(id)
	}
	return rt, nil
}

func encodeRoutes(routes []HostRoute) string {
	rj := make([]routeJSON, len(routes))
	for i, r := range routes {
		rj[i] = routeJSON{r.Destination.String(), r.NextHop.String()}
	}
	b, _ := json.Marshal(rj)
	return string(b)
}

func (s *Service) insertRouter(ctx context.Context, tx *sql.Tx, rt *Router) error {
	az, _ := json.Marshal(rt.AZHints)
	t := timeText(rt.CreatedAt)
	_, err := tx.ExecContext(ctx, `INSERT INTO routers (`+routerCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		rt.ID, rt.ProjectID, rt.Name, rt.Description, rt.AdminStateUp, rt.Status, nil, rt.EnableSNAT,
		encodeRoutes(rt.Routes), string(az), t, t, rt.Revision)
	if err != nil {
		return err
	}
	return setTags(ctx, tx, "routers", rt.ID, rt.Tags)
}

func (s *Service) saveRouter(ctx context.Context, tx *sql.Tx, rt *Router) error {
	var gw any
	if rt.GWPortID != "" {
		gw = rt.GWPortID
	}
	_, err := tx.ExecContext(ctx, `UPDATE routers SET name=?, description=?, admin_state_up=?, gw_port_id=?, enable_snat=?,
		routes=? WHERE id=?`, rt.Name, rt.Description, rt.AdminStateUp, gw, rt.EnableSNAT, encodeRoutes(rt.Routes), rt.ID)
	if err != nil {
		return err
	}
	return bump(ctx, tx, "routers", rt.ID)
}

// routerInterfaces returns a router's interface ports.
func (s *Service) routerInterfaces(ctx context.Context, q queryer, routerID string) ([]*Port, error) {
	return s.loadPorts(ctx, q, `p.device_id=? AND p.device_owner=?`, routerID, ownerRouterInterface)
}

// gatewayReq is a parsed external_gateway_info; nil network removes the gateway.
type gatewayReq struct {
	NetworkID string
	SNAT      *bool
	FixedIPs  []fixedIPReq
	// fixedSet: external_fixed_ips was given.
	fixedSet bool
}

func gatewayFromBody(e entity, c caller, create bool) (*gatewayReq, bool, error) {
	if !e.has("external_gateway_info") {
		return nil, false, nil
	}
	if e.isNull("external_gateway_info") {
		return nil, true, nil
	}
	m, _, err := e.list1("external_gateway_info")
	if err != nil {
		return nil, false, err
	}
	op := "update_router"
	if create {
		op = "create_router"
	}
	for k := range m {
		switch k {
		case "network_id", "enable_snat", "external_fixed_ips":
		default:
			return nil, false, invalidAttr("external_gateway_info", "Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: {'%s'}", k)
		}
	}
	if !m.has("network_id") || m.isNull("network_id") {
		if len(m) > 0 && (m.has("enable_snat") || m.has("external_fixed_ips")) {
			return nil, false, invalidAttr("external_gateway_info", "Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: {}")
		}
		return nil, true, nil
	}
	g := &gatewayReq{}
	if g.NetworkID, _, err = m.str("network_id", 36); err != nil {
		return nil, false, err
	}
	if v, ok, err := m.boolean("enable_snat"); err != nil {
		return nil, false, err
	} else if ok {
		if !c.admin {
			return nil, false, policyDenied(op + ":external_gateway_info:enable_snat")
		}
		g.SNAT = &v
	}
	if m.has("external_fixed_ips") {
		if !c.admin {
			return nil, false, policyDenied(op + ":external_gateway_info:external_fixed_ips")
		}
		if g.FixedIPs, err = fixedIPsFromBody(entity{"fixed_ips": m["external_fixed_ips"]}); err != nil {
			return nil, false, err
		}
		g.fixedSet = true
	}
	return g, true, nil
}

// list1 reads an object attribute as an entity.
func (e entity) list1(name string) (entity, bool, error) {
	raw, ok := e[name]
	if !ok {
		return nil, false, nil
	}
	var m entity
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false, invalidAttr(name, "'%s' is not a dictionary", shown(raw))
	}
	return m, true, nil
}

func gatewayInUseByFIPs(routerID, netID string) error {
	return nerr(http.StatusConflict, "RouterExternalGatewayInUseByFloatingIp",
		"Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.", routerID, netID)
}

func routerOverlap(newSubnet, existing *Subnet) error {
	return badResource("router", "Cidr %s of subnet %s overlaps with cidr %s of subnet %s",
		newSubnet.CIDR, newSubnet.ID, existing.CIDR, existing.ID)
}

// attachedSubnets returns the subnets a router is on: those of its
// interfaces and all those of its gateway's network.
func (s *Service) attachedSubnets(ctx context.Context, q queryer, rt *Router, skipGateway bool) ([]*Subnet, error) {
	var out []*Subnet
	ifaces, err := s.routerInterfaces(ctx, q, rt.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range ifaces {
		for _, f := range p.FixedIPs {
			sn, err := s.getSubnet(ctx, q, f.SubnetID)
			if err != nil {
				return nil, err
			}
			out = append(out, sn)
		}
	}
	if rt.GWPort != nil && !skipGateway {
		l, err := s.subnetsOf(ctx, q, rt.GWPort.NetworkID)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	return out, nil
}

// setGateway makes a router's gateway what g asks (nil: none).
func (s *Service) setGateway(ctx context.Context, tx *sql.Tx, c caller, rt *Router, g *gatewayReq) error {
	if g != nil && g.SNAT != nil {
		rt.EnableSNAT = *g.SNAT
	}
	cur := rt.GWPort
	if g != nil && cur != nil && cur.NetworkID == g.NetworkID {
		if !g.fixedSet {
			return nil
		}
		same := len(g.FixedIPs) == len(cur.FixedIPs)
		for _, f := range g.FixedIPs {
			same = same && slices.ContainsFunc(cur.FixedIPs, func(x FixedIP) bool {
				return (!f.IP.IsValid() || f.IP == x.IP) && (f.SubnetID == "" || f.SubnetID == x.SubnetID)
			})
		}
		if same {
			return nil
		}
	}
	if cur != nil {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM floatingips WHERE router_id=?`, rt.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return gatewayInUseByFIPs(rt.ID, cur.NetworkID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE routers SET gw_port_id=NULL WHERE id=?`, rt.ID); err != nil {
			return err
		}
		if err := s.deletePortRow(ctx, tx, cur.ID); err != nil {
			return err
		}
		rt.GWPortID, rt.GWPort = "", nil
	}
	if g == nil {
		if _, err := tx.ExecContext(ctx, `UPDATE routers SET enable_snat=? WHERE id=?`, rt.EnableSNAT, rt.ID); err != nil {
			return err
		}
		return nil
	}
	net, err := s.visibleNetwork(ctx, tx, c, g.NetworkID)
	if err != nil {
		return err
	}
	if !net.External {
		return badResource("router", "Network %s is not an external network", net.ID)
	}
	extSubnets, err := s.subnetsOf(ctx, tx, net.ID)
	if err != nil {
		return err
	}
	for _, f := range g.FixedIPs {
		for _, sn := range extSubnets {
			if f.IP.IsValid() && sn.Gateway == f.IP {
				return badResource("router", "External IP %s is the same as the gateway IP", f.IP)
			}
		}
	}
	attached, err := s.attachedSubnets(ctx, tx, rt, true)
	if err != nil {
		return err
	}
	for _, ext := range extSubnets {
		for _, a := range attached {
			if ext.CIDR.Overlaps(a.CIDR) {
				return routerOverlap(ext, a)
			}
		}
	}
	var fixed []fixedIPReq
	if g.fixedSet {
		fixed = g.FixedIPs
		if fixed == nil {
			fixed = []fixedIPReq{}
		}
	}
	p, err := s.createPort(ctx, tx, system, portReq{NetworkID: net.ID, AdminStateUp: true, DeviceID: rt.ID,
		DeviceOwner: ownerRouterGateway, FixedIPs: fixed, HostID: s.cfg.Host, skipQuota: true, routerIP: true})
	if err != nil {
		return err
	}
	rt.GWPortID, rt.GWPort = p.ID, p
	return nil
}

// routeReqs reads a routes attribute.
func routesFromBody(e entity) ([]HostRoute, error) {
	l, _, err := e.list("routes")
	if err != nil {
		return nil, err
	}
	out := []HostRoute{}
	for _, item := range l {
		for k := range item {
			if k != "destination" && k != "nexthop" {
				return nil, invalidAttr("routes", "Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} Provided keys: {'%s'}", k)
			}
		}
		d, _, err1 := item.str("destination", 0)
		n, _, err2 := item.str("nexthop", 0)
		if err1 != nil || err2 != nil {
			return nil, invalidAttr("routes", "'%s' is not a valid string", shown(e["routes"]))
		}
		dst, err := netip.ParsePrefix(d)
		if err != nil {
			return nil, invalidAttr("routes", "'%s' is not a valid IP subnet", d)
		}
		hop, err := parseIP(n)
		if err != nil {
			return nil, invalidAttr("routes", "'%s' is not a valid IP address", n)
		}
		r := HostRoute{dst.Masked(), hop}
		if slices.Contains(out, r) {
			return nil, invalidAttr("routes", "Duplicate items in the list: '%s'", d)
		}
		out = append(out, r)
	}
	return out, nil
}

const maxRoutes = 30

// validateRoutes checks that each next hop is on a subnet the router is
// on, and not one of the router's own addresses.
func (s *Service) validateRoutes(ctx context.Context, q queryer, rt *Router, routes []HostRoute) error {
	if len(routes) > maxRoutes {
		return nerr(http.StatusBadRequest, "RoutesExhausted", "Unable to complete operation for %s. The number of routes exceeds the maximum %d.", rt.ID, maxRoutes)
	}
	attached, err := s.attachedSubnets(ctx, q, rt, false)
	if err != nil {
		return err
	}
	own := map[netip.Addr]bool{}
	ifaces, err := s.routerInterfaces(ctx, q, rt.ID)
	if err != nil {
		return err
	}
	if rt.GWPort != nil {
		ifaces = append(ifaces, rt.GWPort)
	}
	for _, p := range ifaces {
		for _, f := range p.FixedIPs {
			own[f.IP] = true
		}
	}
	for _, r := range routes {
		show := encodeRoutes([]HostRoute{r})
		if own[r.NextHop] {
			return invalidRoutes(show, "the nexthop is used by router")
		}
		if !slices.ContainsFunc(attached, func(sn *Subnet) bool { return sn.CIDR.Contains(r.NextHop) }) {
			return invalidRoutes(show, "the nexthop is not connected with router")
		}
	}
	return nil
}

func invalidRoutes(routes, reason string) error {
	return nerr(http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: %s, %s.", routes, reason)
}

func (rt *Router) wire(az string) map[string]any {
	var gw any
	if rt.GWPort != nil {
		ips := make([]map[string]any, len(rt.GWPort.FixedIPs))
		for i, f := range rt.GWPort.FixedIPs {
			ips[i] = map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IP.String()}
		}
		gw = map[string]any{"network_id": rt.GWPort.NetworkID, "enable_snat": rt.EnableSNAT, "external_fixed_ips": ips}
	}
	routes := make([]map[string]any, len(rt.Routes))
	for i, r := range rt.Routes {
		routes[i] = map[string]any{"destination": r.Destination.String(), "nexthop": r.NextHop.String()}
	}
	return map[string]any{
		"id": rt.ID, "name": rt.Name, "description": rt.Description, "project_id": rt.ProjectID, "tenant_id": rt.ProjectID,
		"admin_state_up": rt.AdminStateUp, "status": rt.Status, "external_gateway_info": gw, "routes": routes,
		"availability_zone_hints": rt.AZHints, "availability_zones": []string{az}, "tags": rt.Tags,
		"created_at": wireTime(rt.CreatedAt), "updated_at": wireTime(rt.UpdatedAt), "revision_number": rt.Revision,
	}
}

var routerAttrs = []string{"id", "name", "description", "project_id", "tenant_id", "admin_state_up", "status",
	"external_gateway_info", "routes", "availability_zone_hints", "availability_zones", "tags", "created_at",
	"updated_at", "revision_number"}
