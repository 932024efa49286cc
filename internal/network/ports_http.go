package network

import (
	"context"
	"database/sql"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/network/ipam"
)

var portSpecs = withStandard(map[string]attrSpec{
	"name": rw, "network_id": postOnly, "admin_state_up": rw, "mac_address": rw, "fixed_ips": rw,
	"device_id": rw, "device_owner": rw, "security_groups": rw, "allowed_address_pairs": rw,
	"port_security_enabled": rw, "binding:host_id": adminRW, "binding:profile": adminRW, "binding:vnic_type": rw,
	"status": readOnly, "binding:vif_type": readOnly, "binding:vif_details": readOnly, "ip_allocation": readOnly,
	"dns_name": readOnly, "dns_assignment": readOnly, "qos_policy_id": readOnly, "resource_request": readOnly,
})

var vnicTypes = []string{"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
	"smart-nic", "vdpa", "accelerator-direct", "accelerator-direct-physical", "remote-managed"}

const maxAddressPairs = 10

func (s *Service) handleListPorts(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_port")
	if err != nil {
		return err
	}
	lq, err := parseList(r, portAttrs)
	if err != nil {
		return err
	}
	where, args := `1=1`, []any{}
	if !c.admin {
		where = `(p.project_id=? OR p.network_id IN (SELECT id FROM networks WHERE project_id=?))`
		args = []any{c.project, c.project}
	}
	// Narrow in SQL what is cheap to narrow (attributes that are their
	// column's value as is); the generic filters still apply. A poller of
	// a network's ACTIVE ports no longer loads all of them.
	for _, f := range [][2]string{{"network_id", "network_id"}, {"device_id", "device_id"},
		{"device_owner", "device_owner"}, {"status", "status"}, {"id", "id"}, {"mac_address", "mac_address"},
		{"project_id", "project_id"}, {"tenant_id", "project_id"}} {
		if vs := lq.filters[f[0]]; len(vs) > 0 {
			where += ` AND p.` + f[1] + ` IN (` + placeholders(len(vs)) + `)`
			args = append(args, toAny(vs)...)
		}
	}
	ps, err := s.loadPorts(r.Context(), s.db, where, args...)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(ps))
	for i, p := range ps {
		items[i] = p.wire(c)
	}
	return writeList(w, r, "ports", lq, items, func(id string) error { return portNotFound(id) })
}

func (s *Service) handleShowPort(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_port")
	if err != nil {
		return err
	}
	p, _, err := s.visiblePort(r.Context(), s.db, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"port": showFields(r, p.wire(c))})
	return nil
}

func (s *Service) handleCreatePort(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "create_port")
	if err != nil {
		return err
	}
	items, bulk, err := readBody(r, c, "port", portSpecs, true, true)
	if err != nil {
		return err
	}
	reqs := make([]portReq, len(items))
	for i, e := range items {
		if reqs[i], err = portFromBody(e, c); err != nil {
			return err
		}
	}
	ctx := r.Context()
	out := make([]*Port, len(reqs))
	err = s.write(ctx, func(tx *sql.Tx) error {
		for i, req := range reqs {
			p, err := s.createPort(ctx, tx, c, req)
			if err != nil {
				return err
			}
			out[i] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCreated(w, "port", bulk, func(i int) map[string]any { return out[i].wire(c) }, len(out))
}

func portFromBody(e entity, c caller) (portReq, error) {
	var req portReq
	var err error
	if req.ProjectID, err = projectFromBody(e, c); err != nil {
		return req, err
	}
	if !e.has("network_id") {
		return req, badRequest("Failed to parse request. Required attribute 'network_id' not specified")
	}
	if req.NetworkID, _, err = e.str("network_id", 36); err != nil {
		return req, err
	}
	req.AdminStateUp = true
	if err := nameDesc(e, &req.Name, &req.Description); err != nil {
		return req, err
	}
	if req.Tags, err = tagsFromBody(e); err != nil {
		return req, err
	}
	if v, ok, err := e.boolean("admin_state_up"); err != nil {
		return req, err
	} else if ok {
		req.AdminStateUp = v
	}
	if v, ok, err := e.boolean("port_security_enabled"); err != nil {
		return req, err
	} else if ok {
		req.PortSecurity = &v
	}
	if m, ok, err := e.str("mac_address", 0); err != nil {
		return req, err
	} else if ok {
		hw, valid := validMAC(m)
		if !valid {
			return req, invalidAttr("mac_address", "'%s' is not a valid MAC address", m)
		}
		req.MAC = hw.String()
	}
	if req.DeviceID, _, err = e.str("device_id", 255); err != nil {
		return req, err
	}
	if req.DeviceOwner, _, err = e.str("device_owner", 255); err != nil {
		return req, err
	}
	if e.has("fixed_ips") {
		if req.FixedIPs, err = fixedIPsFromBody(e); err != nil {
			return req, err
		}
	}
	if e.has("security_groups") {
		if req.SecurityGroups, _, err = e.strList("security_groups", false, 36); err != nil {
			return req, err
		}
	}
	if e.has("allowed_address_pairs") {
		if req.AddressPairs, err = addressPairsFromBody(e); err != nil {
			return req, err
		}
	}
	if req.HostID, _, err = e.str("binding:host_id", 255); err != nil {
		return req, err
	}
	if req.Profile, _, err = e.object("binding:profile"); err != nil {
		return req, err
	}
	if v, ok, err := e.str("binding:vnic_type", 0); err != nil {
		return req, err
	} else if ok {
		if !slices.Contains(vnicTypes, v) {
			return req, invalidAttr("binding:vnic_type", "'%s' is not in %s", v, pyList(vnicTypes))
		}
		req.VNICType = v
	}
	return req, nil
}

func fixedIPsFromBody(e entity) ([]fixedIPReq, error) {
	l, _, err := e.list("fixed_ips")
	if err != nil {
		return nil, err
	}
	out := make([]fixedIPReq, 0, len(l))
	for _, item := range l {
		var fr fixedIPReq
		for k := range item {
			if k != "subnet_id" && k != "ip_address" {
				return nil, invalidAttr("fixed_ips", "Invalid data format for fixed IP: '%s'", shown(e["fixed_ips"]))
			}
		}
		if v, ok, err := item.str("subnet_id", 0); err != nil {
			return nil, invalidAttr("fixed_ips", "'%s' is not a valid UUID", shown(item["subnet_id"]))
		} else if ok {
			fr.SubnetID = v
		}
		if v, ok, err := item.str("ip_address", 0); err != nil {
			return nil, invalidAttr("fixed_ips", "'%s' is not a valid IP address", shown(item["ip_address"]))
		} else if ok {
			a, err := parseIP(v)
			if err != nil {
				return nil, invalidAttr("fixed_ips", "'%s' is not a valid IP address", v)
			}
			fr.IP = a
		}
		out = append(out, fr)
	}
	return out, nil
}

func addressPairsFromBody(e entity) ([]AddressPair, error) {
	l, _, err := e.list("allowed_address_pairs")
	if err != nil {
		return nil, err
	}
	if len(l) > maxAddressPairs {
		return nil, nerr(http.StatusBadRequest, "AllowedAddressPairExhausted",
			"The number of allowed address pair exceeds the maximum %d.", maxAddressPairs)
	}
	out := make([]AddressPair, 0, len(l))
	for _, item := range l {
		for k := range item {
			if k != "ip_address" && k != "mac_address" {
				return nil, invalidAttr("allowed_address_pairs", "Unrecognized attribute(s) '%s'", k)
			}
		}
		ip, ok, err := item.str("ip_address", 0)
		if err != nil || !ok {
			return nil, nerr(http.StatusBadRequest, "AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address")
		}
		if p, err := netip.ParsePrefix(ip); err == nil {
			ip = p.String()
		} else if a, err := parseIP(ip); err == nil {
			ip = a.String()
		} else {
			return nil, invalidAttr("allowed_address_pairs", "'%s' is not a valid IP address", ip)
		}
		ap := AddressPair{IP: ip}
		if m, ok, err := item.str("mac_address", 0); err != nil {
			return nil, err
		} else if ok {
			hw, valid := validMAC(m)
			if !valid {
				return nil, invalidAttr("allowed_address_pairs", "'%s' is not a valid MAC address", m)
			}
			ap.MAC = hw.String()
		}
		for _, o := range out {
			if o == ap {
				return nil, nerr(http.StatusBadRequest, "DuplicateAddressPairInRequest",
					"Request contains duplicate address pair: mac_address %s ip_address %s.", ap.MAC, ap.IP)
			}
		}
		out = append(out, ap)
	}
	return out, nil
}

func (s *Service) handleUpdatePort(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "update_port")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "port", portSpecs, false, false)
	if err != nil {
		return err
	}
	e, ctx, id := items[0], r.Context(), r.PathValue("id")
	var p *Port
	err = s.write(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = s.updatePort(ctx, tx, c, id, e)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"port": p.wire(c)})
	return nil
}

func (s *Service) updatePort(ctx context.Context, tx *sql.Tx, c caller, id string, e entity) (*Port, error) {
	p, netOwnerID, err := s.visiblePort(ctx, tx, c, id)
	if err != nil {
		return nil, err
	}
	netOwner := c.owns(netOwnerID)
	if err := nameDesc(e, &p.Name, &p.Description); err != nil {
		return nil, err
	}
	if v, ok, err := e.boolean("admin_state_up"); err != nil {
		return nil, err
	} else if ok {
		p.AdminStateUp = v
	}
	if v, ok, err := e.str("device_id", 255); err != nil {
		return nil, err
	} else if ok {
		p.DeviceID = v
	}
	if v, ok, err := e.str("device_owner", 255); err != nil {
		return nil, err
	} else if ok {
		if strings.HasPrefix(v, "network:") && !netOwner {
			return nil, policyDenied("update_port:device_owner")
		}
		p.DeviceOwner = v
	}
	if m, ok, err := e.str("mac_address", 0); err != nil {
		return nil, err
	} else if ok {
		hw, valid := validMAC(m)
		if !valid {
			return nil, invalidAttr("mac_address", "'%s' is not a valid MAC address", m)
		}
		if !netOwner {
			return nil, policyDenied("update_port:mac_address")
		}
		if hw.String() != p.MAC {
			if p.HostID != "" {
				return nil, nerr(http.StatusConflict, "PortBound", "Unable to complete operation on port %s, port is already bound, port type: %s, old_mac %s, new_mac %s.",
					p.ID, vifType(p), p.MAC, hw)
			}
			if taken, err := macTaken(ctx, tx, p.NetworkID, hw.String()); err != nil {
				return nil, err
			} else if taken {
				return nil, macInUse(p.NetworkID, hw.String())
			}
			p.MAC = hw.String()
		}
	}
	if v, ok, err := e.str("binding:host_id", 255); err != nil {
		return nil, err
	} else if ok && v != p.HostID {
		p.HostID = v
		p.Status = statusDown
	}
	if m, ok, err := e.object("binding:profile"); err != nil {
		return nil, err
	} else if ok {
		p.Profile = m
	}
	if v, ok, err := e.str("binding:vnic_type", 0); err != nil {
		return nil, err
	} else if ok {
		if !slices.Contains(vnicTypes, v) {
			return nil, invalidAttr("binding:vnic_type", "'%s' is not in %s", v, pyList(vnicTypes))
		}
		p.VNICType = v
	}
	if v, ok, err := e.boolean("port_security_enabled"); err != nil {
		return nil, err
	} else if ok {
		p.PortSecurity = v
	}
	if e.has("allowed_address_pairs") {
		if p.AddressPairs, err = addressPairsFromBody(e); err != nil {
			return nil, err
		}
		fillPairMACs(p)
	}
	if e.has("security_groups") {
		groups, _, err := e.strList("security_groups", false, 36)
		if err != nil {
			return nil, err
		}
		if err := s.portGroups(ctx, tx, c, p, groups, true); err != nil {
			return nil, err
		}
		if err := s.setPortGroups(ctx, tx, p.ID, p.SecurityGroups); err != nil {
			return nil, err
		}
	}
	if !p.PortSecurity && len(p.SecurityGroups) > 0 {
		return nil, nerr(http.StatusConflict, "PortSecurityPortHasSecurityGroup",
			"Port has security group associated. Cannot disable port security or ip address until security group is removed")
	}
	if !p.PortSecurity && len(p.AddressPairs) > 0 {
		return nil, addressPairsNeedPortSecurity()
	}
	if e.has("fixed_ips") {
		reqs, err := fixedIPsFromBody(e)
		if err != nil {
			return nil, err
		}
		for _, fr := range reqs {
			if fr.IP.IsValid() && !netOwner {
				return nil, policyDenied("update_port:fixed_ips:ip_address")
			}
		}
		if err := s.changeFixedIPs(ctx, tx, p, reqs); err != nil {
			return nil, err
		}
	}
	if err := s.savePort(ctx, tx, p); err != nil {
		return nil, err
	}
	return s.getPort(ctx, tx, p.ID)
}

// changeFixedIPs makes a port's addresses those asked: addresses asked by
// value and kept are kept, a subnet asked without an address keeps the
// port's address there, the rest is released or allocated.
func (s *Service) changeFixedIPs(ctx context.Context, tx *sql.Tx, p *Port, reqs []fixedIPReq) error {
	if p.DeviceOwner == ownerFloatingIP || p.DeviceOwner == ownerRouterGateway {
		return badResource("port", "Cannot update the fixed_ips of the port %s, because its device_owner %s is reserved", p.ID, p.DeviceOwner)
	}
	current := slices.Clone(p.FixedIPs)
	var keep []FixedIP
	var fresh []fixedIPReq
	take := func(match func(FixedIP) bool) bool {
		i := slices.IndexFunc(current, match)
		if i < 0 {
			return false
		}
		keep = append(keep, current[i])
		current = slices.Delete(current, i, i+1)
		return true
	}
	for _, fr := range reqs {
		if fr.IP.IsValid() {
			if take(func(f FixedIP) bool { return f.IP == fr.IP && (fr.SubnetID == "" || fr.SubnetID == f.SubnetID) }) {
				continue
			}
		}
		fresh = append(fresh, fr)
	}
	var rest []fixedIPReq
	for _, fr := range fresh {
		if !fr.IP.IsValid() && fr.SubnetID != "" && take(func(f FixedIP) bool { return f.SubnetID == fr.SubnetID }) {
			continue
		}
		rest = append(rest, fr)
	}
	for _, f := range current {
		if err := ipam.Release(ctx, tx, p.ID, f.SubnetID, f.IP); err != nil {
			return err
		}
	}
	subnets, err := s.subnetsOf(ctx, tx, p.NetworkID)
	if err != nil {
		return err
	}
	added := []FixedIP{}
	if len(rest) > 0 {
		if added, err = s.allocateIPs(ctx, tx, p.NetworkID, subnets, p, rest, p.DeviceOwner == ownerRouterInterface); err != nil {
			return err
		}
	}
	byID := map[string]*Subnet{}
	for _, sn := range subnets {
		byID[sn.ID] = sn
	}
	p.FixedIPs = sortFixed(append(keep, added...), byID)
	return nil
}

func (s *Service) handleDeletePort(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "delete_port")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		p, _, err := s.visiblePort(ctx, tx, c, id)
		if err != nil {
			return err
		}
		switch p.DeviceOwner {
		case ownerRouterInterface, ownerRouterGateway, ownerFloatingIP:
			return servicePortInUse(p.ID, "has device owner "+p.DeviceOwner)
		}
		return s.deletePortRow(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
