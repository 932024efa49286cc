package network

import (
	"context"
	"database/sql"
	"net/http"
	"slices"

	"github.com/monostack/monostack/internal/api"
)

var networkSpecs = withStandard(map[string]attrSpec{
	"name": rw, "admin_state_up": rw, "shared": adminRW, "router:external": adminRW, "mtu": rw,
	"port_security_enabled": rw, "availability_zone_hints": postOnly,
	"provider:network_type": {post: true, admin: true}, "provider:physical_network": {post: true, admin: true},
	"provider:segmentation_id": {post: true, admin: true},
	"status":                   readOnly, "subnets": readOnly, "availability_zones": readOnly, "ipv4_address_scope": readOnly,
	"ipv6_address_scope": readOnly, "l2_adjacency": readOnly, "is_default": readOnly,
	"dns_domain": readOnly, "qos_policy_id": readOnly, "segments": readOnly,
})

var networkTypes = []string{"flat", "vlan", "vxlan", "geneve", "gre", "local"}

func (s *Service) handleListNetworks(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_network")
	if err != nil {
		return err
	}
	lq, err := parseList(r, networkAttrs)
	if err != nil {
		return err
	}
	where, args := `1=1`, []any{}
	if !c.admin {
		where, args = `project_id=? OR shared OR external`, []any{c.project}
	}
	ns, err := s.loadNetworks(r.Context(), s.db, where, args...)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(ns))
	for i, n := range ns {
		items[i] = n.wire(c, s.cfg.AvailabilityZone)
	}
	return writeList(w, r, "networks", lq, items, func(id string) error { return networkNotFound(id) })
}

func (s *Service) handleShowNetwork(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_network")
	if err != nil {
		return err
	}
	n, err := s.visibleNetwork(r.Context(), s.db, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"network": showFields(r, n.wire(c, s.cfg.AvailabilityZone))})
	return nil
}

func (s *Service) handleCreateNetwork(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "create_network")
	if err != nil {
		return err
	}
	items, bulk, err := readBody(r, c, "network", networkSpecs, true, true)
	if err != nil {
		return err
	}
	ctx := r.Context()
	nets := make([]*Network, len(items))
	for i, e := range items {
		if nets[i], err = s.networkFromBody(e, c); err != nil {
			return err
		}
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, n := range nets {
			if err := s.createNetwork(ctx, tx, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCreated(w, "network", bulk, func(i int) map[string]any {
		return nets[i].wire(c, s.cfg.AvailabilityZone)
	}, len(nets))
}

// writeCreated answers a create with one resource or, for a bulk create,
// the list.
func writeCreated(w http.ResponseWriter, resource string, bulk bool, item func(int) map[string]any, n int) error {
	if n == 1 && !bulk {
		api.WriteJSON(w, http.StatusCreated, map[string]any{resource: item(0)})
		return nil
	}
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = item(i)
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{resource + "s": out})
	return nil
}

func (s *Service) networkFromBody(e entity, c caller) (*Network, error) {
	pid, err := projectFromBody(e, c)
	if err != nil {
		return nil, err
	}
	n := &Network{ID: newID(), ProjectID: pid, AdminStateUp: true, PortSecurity: true, Status: "ACTIVE",
		CreatedAt: now(), AZHints: []string{}, Subnets: []string{}}
	n.UpdatedAt = n.CreatedAt
	if err := nameDesc(e, &n.Name, &n.Description); err != nil {
		return nil, err
	}
	if n.Tags, err = tagsFromBody(e); err != nil {
		return nil, err
	}
	for name, dst := range map[string]*bool{"admin_state_up": &n.AdminStateUp, "shared": &n.Shared,
		"router:external": &n.External, "port_security_enabled": &n.PortSecurity} {
		if v, ok, err := e.boolean(name); err != nil {
			return nil, err
		} else if ok {
			*dst = v
		}
	}
	if hints, ok, err := e.strList("availability_zone_hints", true, 255); err != nil {
		return nil, err
	} else if ok {
		for _, h := range hints {
			if h != s.cfg.AvailabilityZone {
				return nil, nerr(http.StatusNotFound, "AvailabilityZoneNotFound", "AvailabilityZone %s could not be found.", h)
			}
		}
		n.AZHints = hints
	}
	n.NetworkType = s.cfg.TenantNetworkType
	if t, ok, err := e.str("provider:network_type", 255); err != nil {
		return nil, err
	} else if ok {
		if !slices.Contains(networkTypes, t) {
			return nil, invalidInput("network_type value '%s' not supported", t)
		}
		n.NetworkType = t
	}
	if p, ok, err := e.optStr("provider:physical_network", 64); err != nil {
		return nil, err
	} else if ok {
		n.PhysicalNetwork = p
	}
	if e.has("provider:segmentation_id") && !e.isNull("provider:segmentation_id") {
		v, _, err := e.integer("provider:segmentation_id", 1, 1<<24-1)
		if err != nil {
			return nil, err
		}
		n.SegmentationID = &v
	}
	switch n.NetworkType {
	case "flat", "vlan":
		if n.PhysicalNetwork == nil {
			if n.NetworkType == "vlan" {
				return nil, invalidInput("physical_network required for VLAN provider network")
			}
			p := s.cfg.PhysicalNetwork
			n.PhysicalNetwork = &p
		}
		if n.NetworkType == "flat" && n.SegmentationID != nil {
			return nil, invalidInput("segmentation_id specified for flat network")
		}
		if n.NetworkType == "vlan" && (n.SegmentationID == nil || *n.SegmentationID > 4094) {
			return nil, invalidInput("segmentation_id out of range (1 through 4094)")
		}
	default:
		if n.PhysicalNetwork != nil {
			return nil, invalidInput("provider:physical_network specified for %s network", n.NetworkType)
		}
	}
	maxMTU := s.cfg.TenantMTU
	if n.NetworkType == "flat" || n.NetworkType == "vlan" || n.NetworkType == "local" {
		maxMTU = s.cfg.ExternalMTU
	}
	n.MTU = maxMTU
	if v, ok, err := e.integer("mtu", 0, 1<<31-1); err != nil {
		return nil, err
	} else if ok {
		if v > maxMTU {
			return nil, invalidInput("Requested MTU is too big, maximum is %d", maxMTU)
		}
		n.MTU = v
	}
	return n, nil
}

// createNetwork stores a new network, checking the quota and allocating a
// segment.
func (s *Service) createNetwork(ctx context.Context, tx *sql.Tx, n *Network) error {
	if err := s.checkQuota(ctx, tx, n.ProjectID, "network", 1); err != nil {
		return err
	}
	switch n.NetworkType {
	case "vxlan", "geneve", "gre":
		if n.SegmentationID == nil {
			v, err := allocateSegment(ctx, tx, n.NetworkType)
			if err != nil {
				return err
			}
			n.SegmentationID = &v
		}
	}
	err := s.insertNetwork(ctx, tx, n)
	if isConflict(err) && n.SegmentationID != nil {
		if n.NetworkType == "vlan" {
			return nerr(http.StatusConflict, "VlanIdInUse", "Unable to create the network. The VLAN %d on physical network %s is in use.",
				*n.SegmentationID, *n.PhysicalNetwork)
		}
		return nerr(http.StatusConflict, "TunnelIdInUse", "Unable to create the network. The tunnel ID %d is in use.", *n.SegmentationID)
	}
	return err
}

func (s *Service) handleUpdateNetwork(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "update_network")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "network", networkSpecs, false, false)
	if err != nil {
		return err
	}
	e, ctx, id := items[0], r.Context(), r.PathValue("id")
	var n *Network
	err = s.write(ctx, func(tx *sql.Tx) error {
		if n, err = s.visibleNetwork(ctx, tx, c, id); err != nil {
			return err
		}
		if !c.owns(n.ProjectID) {
			return policyDenied("update_network")
		}
		if err := nameDesc(e, &n.Name, &n.Description); err != nil {
			return err
		}
		if v, ok, err := e.boolean("admin_state_up"); err != nil {
			return err
		} else if ok {
			n.AdminStateUp = v
		}
		if v, ok, err := e.boolean("port_security_enabled"); err != nil {
			return err
		} else if ok {
			n.PortSecurity = v
		}
		if v, ok, err := e.boolean("shared"); err != nil {
			return err
		} else if ok && v != n.Shared {
			if !v {
				var others int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ports WHERE network_id=? AND project_id<>? AND project_id<>''`,
					n.ID, n.ProjectID).Scan(&others); err != nil {
					return err
				}
				if others > 0 {
					return nerr(http.StatusConflict, "InvalidSharedSetting",
						"Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", n.ID)
				}
			}
			n.Shared = v
		}
		if v, ok, err := e.boolean("router:external"); err != nil {
			return err
		} else if ok && v != n.External {
			if !v {
				if used, err := hasGatewayPorts(ctx, tx, n.ID); err != nil {
					return err
				} else if used {
					return externalNetworkInUse(n.ID)
				}
			}
			n.External = v
		}
		if v, ok, err := e.integer("mtu", 0, 1<<31-1); err != nil {
			return err
		} else if ok {
			maxMTU := s.cfg.TenantMTU
			if n.NetworkType == "flat" || n.NetworkType == "vlan" || n.NetworkType == "local" {
				maxMTU = s.cfg.ExternalMTU
			}
			if v > maxMTU {
				return invalidInput("Requested MTU is too big, maximum is %d", maxMTU)
			}
			if err := checkMTUForSubnets(ctx, tx, n.ID, v); err != nil {
				return err
			}
			n.MTU = v
		}
		if err := s.saveNetwork(ctx, tx, n); err != nil {
			return err
		}
		n, err = s.getNetwork(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"network": n.wire(c, s.cfg.AvailabilityZone)})
	return nil
}

// checkMTUForSubnets refuses an MTU too small for the network's subnets.
func checkMTUForSubnets(ctx context.Context, q queryer, networkID string, mtu int) error {
	if mtu >= 1280 {
		return nil
	}
	var v4, v6 int
	if err := q.QueryRowContext(ctx, `SELECT coalesce(sum(CASE WHEN ip_version=4 THEN 1 ELSE 0 END),0),
		coalesce(sum(CASE WHEN ip_version=6 THEN 1 ELSE 0 END),0) FROM subnets WHERE network_id=?`, networkID).Scan(&v4, &v6); err != nil {
		return err
	}
	if (v4 > 0 || v6 > 0) && mtu < 68 {
		return mtuConflict(networkID, 68)
	}
	if v6 > 0 {
		return mtuConflict(networkID, 1280)
	}
	return nil
}

func mtuConflict(networkID string, min int) error {
	return nerr(http.StatusConflict, "NetworkMTUSubnetConflict", "MTU of %s is not valid, subnet requires a minimum of %d", networkID, min)
}

func (s *Service) handleDeleteNetwork(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "delete_network")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		n, err := s.visibleNetwork(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !c.owns(n.ProjectID) {
			return policyDenied("delete_network")
		}
		return s.deleteNetwork(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
