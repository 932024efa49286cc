package network

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/network/ipam"
	"github.com/monostack/monostack/internal/store"
)

// FloatingIP is an external address mapped to a port's fixed address.
type FloatingIP struct {
	ID, ProjectID, NetworkID  string
	Address                   netip.Addr
	FloatingPortID            string
	PortID, FixedIP, RouterID string
	Status, Description       string
	Tags                      []string
	CreatedAt, UpdatedAt      time.Time
	Revision                  int
	port                      *Port // the associated port, for port_details
}

const fipCols = `id, project_id, floating_network_id, floating_ip_address, floating_port_id, fixed_port_id, fixed_ip_address,
	router_id, status, description, created_at, updated_at, revision_number`

func (s *Service) loadFIPs(ctx context.Context, q queryer, where string, args ...any) ([]*FloatingIP, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+fipCols+` FROM floatingips WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*FloatingIP
	for rows.Next() {
		var f FloatingIP
		var addr, created, updated string
		var port, fixed, router sql.NullString
		if err := rows.Scan(&f.ID, &f.ProjectID, &f.NetworkID, &addr, &f.FloatingPortID, &port, &fixed, &router, &f.Status,
			&f.Description, &created, &updated, &f.Revision); err != nil {
			rows.Close()
			return nil, store.Translate(err)
		}
		f.Address, _ = netip.ParseAddr(addr)
		f.PortID, f.FixedIP, f.RouterID = port.String, fixed.String, router.String
		f.CreatedAt, f.UpdatedAt = parseTime(created), parseTime(updated)
		f.Tags = []string{}
		out = append(out, &f)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	var ports []string
	for i, f := range out {
		ids[i] = f.ID
		if f.PortID != "" {
			ports = append(ports, f.PortID)
		}
	}
	if len(ports) > 0 {
		ps, err := s.loadPorts(ctx, q, `p.id IN (`+placeholders(len(ports))+`)`, toAny(ports)...)
		if err != nil {
			return nil, err
		}
		byID := map[string]*Port{}
		for _, p := range ps {
			byID[p.ID] = p
		}
		for _, f := range out {
			f.port = byID[f.PortID]
		}
	}
	tags, err := loadTags(ctx, q, "floatingips", ids...)
	if err != nil {
		return nil, err
	}
	for _, f := range out {
		if t := tags[f.ID]; t != nil {
			f.Tags = t
		}
	}
	return out, nil
}

func (s *Service) getFloatingIP(ctx context.Context, q queryer, id string) (*FloatingIP, error) {
	l, err := s.loadFIPs(ctx, q, `id=?`, id)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, floatingIPNotFound(id)
	}
	return l[0], nil
}

func (s *Service) visibleFIP(ctx context.Context, q queryer, c caller, id string) (*FloatingIP, error) {
	f, err := s.getFloatingIP(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if !c.owns(f.ProjectID) {
		return nil, floatingIPNotFound(id)
	}
	return f, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (f *FloatingIP) wire() map[string]any {
	var details any
	if f.port != nil {
		details = map[string]any{"name": f.port.Name, "network_id": f.port.NetworkID, "mac_address": f.port.MAC,
			"admin_state_up": f.port.AdminStateUp, "status": f.port.Status, "device_id": f.port.DeviceID,
			"device_owner": f.port.DeviceOwner}
	}
	return map[string]any{
		"id": f.ID, "project_id": f.ProjectID, "tenant_id": f.ProjectID, "floating_network_id": f.NetworkID,
		"floating_ip_address": f.Address.String(), "port_id": nullable(f.PortID), "fixed_ip_address": nullable(f.FixedIP),
		"router_id": nullable(f.RouterID), "status": f.Status, "description": f.Description, "port_details": details,
		"tags": f.Tags, "created_at": wireTime(f.CreatedAt), "updated_at": wireTime(f.UpdatedAt), "revision_number": f.Revision,
	}
}

var fipAttrs = []string{"id", "project_id", "tenant_id", "floating_network_id", "floating_ip_address", "port_id",
	"fixed_ip_address", "router_id", "status", "description", "port_details", "tags", "created_at", "updated_at",
	"revision_number"}

var fipSpecs = withStandard(map[string]attrSpec{
	"floating_network_id": postOnly, "floating_ip_address": {post: true, admin: true}, "subnet_id": postOnly,
	"port_id": rw, "fixed_ip_address": rw, "router_id": readOnly, "status": readOnly, "port_details": readOnly,
	"dns_name": readOnly, "dns_domain": readOnly, "qos_policy_id": readOnly, "port_forwardings": readOnly,
})

// associate points a floating IP at a port's fixed address through the
// router that connects the port's subnet to the floating IP's network.
func (s *Service) associate(ctx context.Context, tx *sql.Tx, c caller, f *FloatingIP, portID string, fixed netip.Addr) error {
	if portID == "" {
		if fixed.IsValid() {
			return badResource("floatingip", "fixed_ip_address cannot be specified without a port_id")
		}
		f.PortID, f.FixedIP, f.RouterID, f.Status = "", "", "", statusDown
		return nil
	}
	p, _, err := s.visiblePort(ctx, tx, c, portID)
	if err != nil {
		return err
	}
	if p.ProjectID != f.ProjectID && !c.admin {
		return badResource("floatingip", "Cannot process floating IP association with Port %s, since that port is owned by a different project", p.ID)
	}
	if len(p.DeviceOwner) >= 8 && p.DeviceOwner[:8] == "network:" {
		return badResource("floatingip", "Port %s is unable to be assigned a floating IP", p.ID)
	}
	var fip FixedIP
	if fixed.IsValid() {
		if !fixed.Is4() {
			return badResource("floatingip", "Cannot process floating IP association with %s, since that is not an IPv4 address", fixed)
		}
		found := false
		for _, x := range p.FixedIPs {
			if x.IP == fixed {
				fip, found = x, true
			}
		}
		if !found {
			return badResource("floatingip", "Port %s does not have fixed ip %s", p.ID, fixed)
		}
	} else {
		var v4 []FixedIP
		for _, x := range p.FixedIPs {
			if x.IP.Is4() {
				v4 = append(v4, x)
			}
		}
		switch len(v4) {
		case 0:
			return badResource("floatingip", "Cannot add floating IP to port %s that has no fixed IPv4 addresses", p.ID)
		case 1:
			fip = v4[0]
		default:
			return badResource("floatingip", "Port %s has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP", p.ID)
		}
	}
	sn, err := s.getSubnet(ctx, tx, fip.SubnetID)
	if err != nil {
		return err
	}
	rid, err := s.routerFor(ctx, tx, sn, f.NetworkID)
	if err != nil {
		return err
	}
	if rid == "" {
		return externalGatewayForFIPNotFound(f.NetworkID, sn.ID, p.ID)
	}
	if p.ID != f.PortID || fip.IP.String() != f.FixedIP {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM floatingips WHERE floating_network_id=? AND fixed_port_id=? AND fixed_ip_address=? AND id<>?`,
			f.NetworkID, p.ID, fip.IP.String(), f.ID).Scan(&other)
		if err == nil {
			return nerr(http.StatusConflict, "FloatingIPPortAlreadyAssociated",
				"Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
				f.Address, f.ID, p.ID, fip.IP, f.NetworkID)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	f.PortID, f.FixedIP, f.RouterID = p.ID, fip.IP.String(), rid
	f.Status = statusDown
	if s.hosts.routerObserved(rid) {
		f.Status = statusActive
	}
	return nil
}

func (s *Service) saveFIP(ctx context.Context, tx *sql.Tx, f *FloatingIP) error {
	_, err := tx.ExecContext(ctx, `UPDATE floatingips SET fixed_port_id=?, fixed_ip_address=?, router_id=?, status=?, description=?
		WHERE id=?`, nullable(f.PortID), nullable(f.FixedIP), nullable(f.RouterID), f.Status, f.Description, f.ID)
	if err != nil {
		return err
	}
	return bump(ctx, tx, "floatingips", f.ID)
}

func (s *Service) handleListFIPs(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_floatingip")
	if err != nil {
		return err
	}
	lq, err := parseList(r, fipAttrs)
	if err != nil {
		return err
	}
	where, args := `1=1`, []any{}
	if !c.admin {
		where, args = `project_id=?`, []any{c.project}
	}
	l, err := s.loadFIPs(r.Context(), s.db, where, args...)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(l))
	for i, f := range l {
		items[i] = f.wire()
	}
	return writeList(w, r, "floatingips", lq, items, func(id string) error { return floatingIPNotFound(id) })
}

func (s *Service) handleShowFIP(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_floatingip")
	if err != nil {
		return err
	}
	f, err := s.visibleFIP(r.Context(), s.db, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"floatingip": showFields(r, f.wire())})
	return nil
}

func (s *Service) handleCreateFIP(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "create_floatingip")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "floatingip", fipSpecs, true, false)
	if err != nil {
		return err
	}
	e, ctx := items[0], r.Context()
	pid, err := projectFromBody(e, c)
	if err != nil {
		return err
	}
	if !e.has("floating_network_id") {
		return badRequest("Failed to parse request. Required attribute 'floating_network_id' not specified")
	}
	netID, _, err := e.str("floating_network_id", 36)
	if err != nil {
		return err
	}
	f := &FloatingIP{ID: newID(), ProjectID: pid, NetworkID: netID, Status: statusDown, CreatedAt: now()}
	f.UpdatedAt = f.CreatedAt
	if f.Description, _, err = e.str("description", 255); err != nil {
		return err
	}
	if f.Tags, err = tagsFromBody(e); err != nil {
		return err
	}
	var want fixedIPReq
	if a, ok, err := e.ip("floating_ip_address"); err != nil {
		return err
	} else if ok {
		want.IP = a
	}
	if v, ok, err := e.str("subnet_id", 36); err != nil {
		return err
	} else if ok {
		want.SubnetID = v
	}
	portID, _, err := e.optStr("port_id", 36)
	if err != nil {
		return err
	}
	var fixed netip.Addr
	if a, ok, err := e.ip("fixed_ip_address"); err != nil && !e.isNull("fixed_ip_address") {
		return err
	} else if ok && err == nil {
		fixed = a
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		net, err := s.visibleNetwork(ctx, tx, c, netID)
		if err != nil {
			return err
		}
		if !net.External {
			return badResource("floatingip", "Network %s is not a valid external network", netID)
		}
		subnets, err := s.subnetsOf(ctx, tx, netID)
		if err != nil {
			return err
		}
		var v4 []*Subnet
		for _, sn := range subnets {
			if sn.IPVersion == 4 {
				v4 = append(v4, sn)
			}
		}
		if len(v4) == 0 {
			return badResource("floatingip", "Network %s does not contain any IPv4 subnet", netID)
		}
		if err := s.checkQuota(ctx, tx, pid, "floatingip", 1); err != nil {
			return err
		}
		var fixedReq []fixedIPReq
		if want.IP.IsValid() || want.SubnetID != "" {
			fixedReq = []fixedIPReq{want}
		} else {
			// Only IPv4 subnets give floating addresses: try each.
			for _, sn := range v4 {
				free, err := hasFree(ctx, tx, sn)
				if err != nil {
					return err
				}
				if free {
					fixedReq = []fixedIPReq{{SubnetID: sn.ID}}
					break
				}
			}
			if fixedReq == nil {
				return nerr(http.StatusBadRequest, "ExternalIpAddressExhausted", "Unable to find any IP address on external network %s.", netID)
			}
		}
		p, err := s.createPort(ctx, tx, system, portReq{NetworkID: netID, AdminStateUp: true, DeviceID: f.ID,
			DeviceOwner: ownerFloatingIP, FixedIPs: fixedReq, Status: statusNA, skipQuota: true})
		if err != nil {
			var ae *api.Error
			if errors.As(err, &ae) && ae.Type == "IpAddressGenerationFailure" {
				return nerr(http.StatusBadRequest, "ExternalIpAddressExhausted", "Unable to find any IP address on external network %s.", netID)
			}
			return err
		}
		var addr netip.Addr
		for _, x := range p.FixedIPs {
			if x.IP.Is4() {
				addr = x.IP
				break
			}
		}
		if !addr.IsValid() {
			return badResource("floatingip", "Network %s does not contain any IPv4 subnet", netID)
		}
		f.Address, f.FloatingPortID = addr, p.ID
		if portID != nil {
			if err := s.associate(ctx, tx, c, f, *portID, fixed); err != nil {
				return err
			}
		} else if fixed.IsValid() {
			return badResource("floatingip", "fixed_ip_address cannot be specified without a port_id")
		}
		t := timeText(f.CreatedAt)
		if _, err := tx.ExecContext(ctx, `INSERT INTO floatingips (`+fipCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			f.ID, f.ProjectID, f.NetworkID, f.Address.String(), f.FloatingPortID, nullable(f.PortID), nullable(f.FixedIP),
			nullable(f.RouterID), f.Status, f.Description, t, t, 0); err != nil {
			return err
		}
		if err := setTags(ctx, tx, "floatingips", f.ID, f.Tags); err != nil {
			return err
		}
		f, err = s.getFloatingIP(ctx, tx, f.ID)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"floatingip": f.wire()})
	return nil
}

// hasFree reports whether a subnet's pools have an unallocated address.
func hasFree(ctx context.Context, q queryer, sn *Subnet) (bool, error) {
	used, err := ipam.Allocated(ctx, q, sn.ID)
	if err != nil {
		return false, err
	}
	for _, p := range sn.Pools {
		inPool := 0
		for a := range used {
			if p.Contains(a) {
				inPool++
			}
		}
		if uint64(inPool) < p.Size() {
			return true, nil
		}
	}
	return false, nil
}

func (s *Service) handleUpdateFIP(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "update_floatingip")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "floatingip", fipSpecs, false, false)
	if err != nil {
		return err
	}
	e, ctx, id := items[0], r.Context(), r.PathValue("id")
	var f *FloatingIP
	err = s.write(ctx, func(tx *sql.Tx) error {
		if f, err = s.visibleFIP(ctx, tx, c, id); err != nil {
			return err
		}
		if d, ok, err := e.str("description", 255); err != nil {
			return err
		} else if ok {
			f.Description = d
		}
		var fixed netip.Addr
		if e.has("fixed_ip_address") && !e.isNull("fixed_ip_address") {
			if fixed, _, err = e.ip("fixed_ip_address"); err != nil {
				return err
			}
		}
		if e.has("port_id") {
			portID, _, err := e.optStr("port_id", 36)
			if err != nil {
				return err
			}
			id := ""
			if portID != nil {
				id = *portID
			}
			if err := s.associate(ctx, tx, c, f, id, fixed); err != nil {
				return err
			}
		} else if fixed.IsValid() {
			if f.PortID == "" {
				return badResource("floatingip", "fixed_ip_address cannot be specified without a port_id")
			}
			if err := s.associate(ctx, tx, c, f, f.PortID, fixed); err != nil {
				return err
			}
		}
		if err := s.saveFIP(ctx, tx, f); err != nil {
			return err
		}
		f, err = s.getFloatingIP(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"floatingip": f.wire()})
	return nil
}

func (s *Service) handleDeleteFIP(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "delete_floatingip")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		f, err := s.visibleFIP(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if err := deleteTags(ctx, tx, "floatingips", id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM floatingips WHERE id=?`, id); err != nil {
			return err
		}
		return s.deletePortRow(ctx, tx, f.FloatingPortID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
