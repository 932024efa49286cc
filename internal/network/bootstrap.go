package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// BootstrapConfig names the projects of the first start's layout.
type BootstrapConfig struct {
	AdminProjectID, DemoProjectID string
}

// EnsureBootstrap creates whatever is missing of DevStack's layout: the
// default security groups of the admin and demo projects, the external
// network "public" (admin's) with "public-subnet", the network "private"
// (demo's) with "private-subnet", and demo's router "router1" with its
// gateway on public and an interface on private-subnet. It is idempotent:
// what exists (found by name) is left as it is. The addresses come from
// Config.
func (s *Service) EnsureBootstrap(ctx context.Context, b BootstrapConfig) error {
	if b.AdminProjectID == "" || b.DemoProjectID == "" {
		return fmt.Errorf("network bootstrap: admin and demo project ids are required")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, p := range []string{b.AdminProjectID, b.DemoProjectID} {
			if _, err := s.ensureDefaultSG(ctx, tx, p); err != nil {
				return err
			}
		}
		public, err := s.ensureNetwork(ctx, tx, b.AdminProjectID, "public", true)
		if err != nil {
			return err
		}
		if _, err := s.ensureSubnet(ctx, tx, public, "public-subnet", map[string]any{
			"cidr": s.cfg.PublicCIDR, "gateway_ip": s.cfg.PublicGateway, "enable_dhcp": false,
			"allocation_pools": []map[string]string{{"start": s.cfg.PublicPoolStart, "end": s.cfg.PublicPoolEnd}},
		}); err != nil {
			return fmt.Errorf("public-subnet: %w", err)
		}
		private, err := s.ensureNetwork(ctx, tx, b.DemoProjectID, "private", false)
		if err != nil {
			return err
		}
		privSubnet, err := s.ensureSubnet(ctx, tx, private, "private-subnet", map[string]any{"cidr": s.cfg.PrivateCIDR})
		if err != nil {
			return fmt.Errorf("private-subnet: %w", err)
		}
		routers, err := s.loadRouters(ctx, tx, `project_id=? AND name=?`, b.DemoProjectID, "router1")
		if err != nil {
			return err
		}
		var rt *Router
		if len(routers) > 0 {
			rt = routers[0]
		} else {
			rt = &Router{ID: newID(), ProjectID: b.DemoProjectID, Name: "router1", AdminStateUp: true, Status: statusActive,
				EnableSNAT: true, Routes: []HostRoute{}, AZHints: []string{}, Tags: []string{}, CreatedAt: now()}
			rt.UpdatedAt = rt.CreatedAt
			if err := s.insertRouter(ctx, tx, rt); err != nil {
				return err
			}
		}
		if rt.GWPort == nil {
			if err := s.setGateway(ctx, tx, system, rt, &gatewayReq{NetworkID: public.ID}); err != nil {
				return fmt.Errorf("router1 gateway: %w", err)
			}
			if err := s.saveRouter(ctx, tx, rt); err != nil {
				return err
			}
		}
		ifaces, err := s.routerInterfaces(ctx, tx, rt.ID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(ifaces, func(p *Port) bool {
			return slices.ContainsFunc(p.FixedIPs, func(f FixedIP) bool { return f.SubnetID == privSubnet.ID })
		}) {
			if _, _, err := s.interfaceBySubnet(ctx, tx, system, rt, privSubnet.ID); err != nil {
				return fmt.Errorf("router1 interface: %w", err)
			}
		}
		return nil
	})
}

func (s *Service) ensureNetwork(ctx context.Context, tx *sql.Tx, project, name string, external bool) (*Network, error) {
	l, err := s.loadNetworks(ctx, tx, `project_id=? AND name=?`, project, name)
	if err != nil || len(l) > 0 {
		if len(l) > 0 {
			return l[0], nil
		}
		return nil, err
	}
	n := &Network{ID: newID(), ProjectID: project, Name: name, AdminStateUp: true, PortSecurity: true, Status: statusActive,
		External: external, NetworkType: s.cfg.TenantNetworkType, MTU: s.cfg.TenantMTU, AZHints: []string{},
		Subnets: []string{}, Tags: []string{}, CreatedAt: now()}
	n.UpdatedAt = n.CreatedAt
	if external {
		physnet := s.cfg.PhysicalNetwork
		n.NetworkType, n.PhysicalNetwork, n.MTU = "flat", &physnet, s.cfg.ExternalMTU
	}
	if err := s.createNetwork(ctx, tx, n); err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	return n, nil
}

func (s *Service) ensureSubnet(ctx context.Context, tx *sql.Tx, n *Network, name string, attrs map[string]any) (*Subnet, error) {
	l, err := s.loadSubnets(ctx, tx, `network_id=? AND name=?`, n.ID, name)
	if err != nil || len(l) > 0 {
		if len(l) > 0 {
			return l[0], nil
		}
		return nil, err
	}
	version := 4
	if c, _ := attrs["cidr"].(string); strings.Contains(c, ":") {
		version = 6
	}
	attrs["name"], attrs["network_id"], attrs["ip_version"], attrs["project_id"] = name, n.ID, version, n.ProjectID
	e := entity{}
	for k, v := range attrs {
		b, _ := json.Marshal(v)
		e[k] = b
	}
	return s.createSubnet(ctx, tx, system, e)
}
