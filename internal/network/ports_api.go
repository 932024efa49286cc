package network

import (
	"context"
	"database/sql"
	"github.com/monostack/monostack/internal/api"
	"net/netip"
)

// The Go API other services use (through small interfaces wired in
// internal/app): compute makes, binds and deletes the ports of its servers
// as Nova does through Neutron's REST API, on behalf of a project.

// PortRequest is a port to make for a project's device.
type PortRequest struct {
	// ProjectID owns the port; the network must be visible to it (its
	// own, shared or external), as for a member of that project.
	ProjectID, NetworkID string
	Name                 string
	DeviceID             string
	DeviceOwner          string // e.g. "compute:nova"
	// FixedIPs asks for addresses (a subnet, an address or both); nil
	// takes the automatic choice.
	FixedIPs []FixedIP
	// SecurityGroups are group ids of the project; nil means its default.
	SecurityGroups []string
	// Admin makes the port as a cloud admin would (on any network), still
	// owned by ProjectID: for a server an admin boots on another project's
	// network, which compute checked with NetworkFor when it was asked.
	Admin bool
}

// PortInfo is a port as another service needs it.
type PortInfo struct {
	ID, ProjectID, NetworkID      string
	MAC                           string
	DeviceID, DeviceOwner, HostID string
	Status                        string
	FixedIPs                      []FixedIP
	SecurityGroups                []string
	Profile                       map[string]any
	MTU                           int
	NetworkName                   string
	Addresses                     []netip.Prefix // fixed IPs with their subnets' prefix lengths
	Gateways                      []netip.Addr
}

func (s *Service) portInfo(ctx context.Context, q queryer, p *Port) (PortInfo, error) {
	n, err := s.getNetwork(ctx, q, p.NetworkID)
	if err != nil {
		return PortInfo{}, err
	}
	info := PortInfo{ID: p.ID, ProjectID: p.ProjectID, NetworkID: p.NetworkID, MAC: p.MAC, DeviceID: p.DeviceID,
		DeviceOwner: p.DeviceOwner, HostID: p.HostID, Status: p.Status, FixedIPs: p.FixedIPs,
		SecurityGroups: p.SecurityGroups, Profile: p.Profile, MTU: n.MTU, NetworkName: n.Name}
	hs := &hostStateBuilder{s: s, ctx: ctx, q: q, nets: map[string]*Network{}, subnets: map[string][]*Subnet{}}
	info.Addresses, info.Gateways, _, err = hs.addresses(p.NetworkID, p.FixedIPs)
	return info, err
}

// CreatePort makes a port as a member of r.ProjectID would through the API.
func (s *Service) CreatePort(ctx context.Context, r PortRequest) (PortInfo, error) {
	c := caller{project: r.ProjectID, member: true, admin: r.Admin}
	req := portReq{ProjectID: r.ProjectID, NetworkID: r.NetworkID, Name: r.Name, AdminStateUp: true,
		DeviceID: r.DeviceID, DeviceOwner: r.DeviceOwner, SecurityGroups: r.SecurityGroups}
	if r.FixedIPs != nil {
		req.FixedIPs = []fixedIPReq{}
		for _, f := range r.FixedIPs {
			req.FixedIPs = append(req.FixedIPs, fixedIPReq{SubnetID: f.SubnetID, IP: f.IP})
		}
	}
	var info PortInfo
	err := s.write(ctx, func(tx *sql.Tx) error {
		p, err := s.createPort(ctx, tx, c, req)
		if err != nil {
			return err
		}
		info, err = s.portInfo(ctx, tx, p)
		return err
	})
	return info, err
}

// DevicePorts returns the ports whose device is deviceID (a server's, as
// Nova finds them when it deallocates an instance).
func (s *Service) DevicePorts(ctx context.Context, deviceID string) ([]PortInfo, error) {
	ps, err := s.loadPorts(ctx, s.db, `p.device_id=?`, deviceID)
	if err != nil {
		return nil, err
	}
	out := make([]PortInfo, 0, len(ps))
	for _, p := range ps {
		info, err := s.portInfo(ctx, s.db, p)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// GetPort returns a port.
func (s *Service) GetPort(ctx context.Context, id string) (PortInfo, error) {
	p, err := s.getPort(ctx, s.db, id)
	if err != nil {
		return PortInfo{}, err
	}
	return s.portInfo(ctx, s.db, p)
}

// BindPort binds a port to a host with a binding profile (which names the
// namespace to plug it into: {"netns": "/var/run/netns/NAME"}, and
// optionally its "ifname" there), and sets its device; an empty host
// unbinds it. The host's agent is sent its new state.
func (s *Service) BindPort(ctx context.Context, id, host, deviceID, deviceOwner string, profile map[string]any) (PortInfo, error) {
	var info PortInfo
	err := s.write(ctx, func(tx *sql.Tx) error {
		p, err := s.getPort(ctx, tx, id)
		if err != nil {
			return err
		}
		if p.HostID != host {
			p.Status = statusDown
		}
		p.HostID, p.DeviceID, p.DeviceOwner = host, deviceID, deviceOwner
		if profile == nil {
			profile = map[string]any{}
		}
		p.Profile = profile
		if err := s.savePort(ctx, tx, p); err != nil {
			return err
		}
		if p, err = s.getPort(ctx, tx, id); err != nil {
			return err
		}
		info, err = s.portInfo(ctx, tx, p)
		return err
	})
	return info, err
}

// DeletePort deletes a port (its floating IPs are disassociated), as the
// port API does; a missing port is not an error.
func (s *Service) DeletePort(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		p, err := s.getPort(ctx, tx, id)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		switch p.DeviceOwner {
		case ownerRouterInterface, ownerRouterGateway, ownerFloatingIP:
			return servicePortInUse(p.ID, "has device owner "+p.DeviceOwner)
		}
		return s.deletePortRow(ctx, tx, id)
	})
}

// SetPortSecurityGroups replaces a port's security groups (by id) as a
// port update does; its host gets the new rules.
func (s *Service) SetPortSecurityGroups(ctx context.Context, id string, groups []string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := s.getPort(ctx, tx, id); err != nil {
			return err
		}
		if err := s.setPortGroups(ctx, tx, id, groups); err != nil {
			return err
		}
		return bump(ctx, tx, "ports", id)
	})
}
