package network

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/monostack/monostack/internal/api"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/network/ipam"
	"github.com/monostack/monostack/internal/store"
)

// Device owners the service itself gives ports.
const (
	ownerRouterInterface = "network:router_interface"
	ownerRouterGateway   = "network:router_gateway"
	ownerFloatingIP      = "network:floatingip"
	ownerDHCP            = "network:dhcp"
)

// Port statuses.
const (
	statusActive = "ACTIVE"
	statusDown   = "DOWN"
	statusNA     = "N/A"
)

// Port is a network attachment: a MAC, fixed addresses and, once bound, a
// host.
type Port struct {
	ID, ProjectID, NetworkID, Name, Description string
	AdminStateUp                                bool
	MAC                                         string
	DeviceID, DeviceOwner, Status               string
	PortSecurity                                bool
	HostID                                      string
	Profile                                     map[string]any
	VNICType                                    string
	AddressPairs                                []AddressPair
	FixedIPs                                    []FixedIP
	SecurityGroups                              []string
	Tags                                        []string
	CreatedAt, UpdatedAt                        time.Time
	Revision                                    int
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID string
	IP       netip.Addr
}

// AddressPair is an extra address (a single IP or a CIDR) and MAC a port
// may send from.
type AddressPair struct {
	IP  string `json:"ip_address"`
	MAC string `json:"mac_address"`
}

// Netns is the network namespace the port's binding:profile names.
func (p *Port) Netns() string {
	s, _ := p.Profile["netns"].(string)
	return s
}

const portCols = `id, project_id, network_id, name, description, admin_state_up, mac_address, device_id, device_owner,
	status, port_security_enabled, host_id, profile, vnic_type, allowed_address_pairs, created_at, updated_at, revision_number`

func scanPort(row scanner) (*Port, error) {
	var p Port
	var profile, pairs, created, updated string
	if err := row.Scan(&p.ID, &p.ProjectID, &p.NetworkID, &p.Name, &p.Description, &p.AdminStateUp, &p.MAC, &p.DeviceID,
		&p.DeviceOwner, &p.Status, &p.PortSecurity, &p.HostID, &profile, &p.VNICType, &pairs, &created, &updated, &p.Revision); err != nil {
		return nil, store.Translate(err)
	}
	json.Unmarshal([]byte(profile), &p.Profile)
	if p.Profile == nil {
		p.Profile = map[string]any{}
	}
	json.Unmarshal([]byte(pairs), &p.AddressPairs)
	if p.AddressPairs == nil {
		p.AddressPairs = []AddressPair{}
	}
	p.CreatedAt, p.UpdatedAt = parseTime(created), parseTime(updated)
	p.FixedIPs, p.SecurityGroups, p.Tags = []FixedIP{}, []string{}, []string{}
	return &p, nil
}

// loadPorts returns the ports a WHERE clause (on table alias p) selects,
// with their addresses, groups and tags.
func (s *Service) loadPorts(ctx context.Context, q queryer, where string, args ...any) ([]*Port, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+prefixCols("p", portCols)+` FROM ports p WHERE `+where+` ORDER BY p.created_at, p.id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*Port
	for rows.Next() {
		p, err := scanPort(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	byID := make(map[string]*Port, len(out))
	ids := make([]string, len(out))
	for i, p := range out {
		byID[p.ID] = p
		ids[i] = p.ID
	}
	sel, selArgs := `SELECT p.id FROM ports p WHERE `+where, args
	if len(ids) < 500 {
		sel, selArgs = placeholders(len(ids)), toAny(ids)
	}
	arows, err := q.QueryContext(ctx, `SELECT a.port_id, a.subnet_id, a.ip_address FROM ip_allocations a
		JOIN subnets s ON s.id=a.subnet_id WHERE a.port_id IN (`+sel+`) ORDER BY s.ip_version, s.created_at, a.ip_address`, selArgs...)
	if err != nil {
		return nil, err
	}
	for arows.Next() {
		var pid, sid, ip string
		if err := arows.Scan(&pid, &sid, &ip); err != nil {
			arows.Close()
			return nil, err
		}
		if p := byID[pid]; p != nil {
			a, _ := netip.ParseAddr(ip)
			p.FixedIPs = append(p.FixedIPs, FixedIP{sid, a})
		}
	}
	arows.Close()
	if err := arows.Err(); err != nil {
		return nil, err
	}
	grows, err := q.QueryContext(ctx, `SELECT port_id, security_group_id FROM port_security_groups WHERE port_id IN (`+sel+`)
		ORDER BY security_group_id`, selArgs...)
	if err != nil {
		return nil, err
	}
	for grows.Next() {
		var pid, gid string
		if err := grows.Scan(&pid, &gid); err != nil {
			grows.Close()
			return nil, err
		}
		if p := byID[pid]; p != nil {
			p.SecurityGroups = append(p.SecurityGroups, gid)
		}
	}
	grows.Close()
	if err := grows.Err(); err != nil {
		return nil, err
	}
	tags, err := loadTags(ctx, q, "ports", ids...)
	if err != nil {
		return nil, err
	}
	for _, p := range out {
		if t := tags[p.ID]; t != nil {
			p.Tags = t
		}
	}
	return out, nil
}

func prefixCols(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (s *Service) getPort(ctx context.Context, q queryer, id string) (*Port, error) {
	l, err := s.loadPorts(ctx, q, `p.id=?`, id)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, portNotFound(id)
	}
	return l[0], nil
}

// visiblePort returns a port the caller may see, and its network's owner.
func (s *Service) visiblePort(ctx context.Context, q queryer, c caller, id string) (*Port, string, error) {
	p, err := s.getPort(ctx, q, id)
	if err != nil {
		return nil, "", err
	}
	owner, err := s.networkOwner(ctx, q, p.NetworkID)
	if err != nil {
		return nil, "", err
	}
	if !c.seesPort(p, owner) {
		return nil, "", portNotFound(id)
	}
	return p, owner, nil
}

// portReq is a port to create, parsed and defaulted.
type portReq struct {
	ProjectID, NetworkID, Name, Description string
	AdminStateUp                            bool
	MAC                                     string
	// FixedIPs as asked; nil asks for the automatic choice.
	FixedIPs            []fixedIPReq
	DeviceID            string
	DeviceOwner         string
	SecurityGroups      []string // nil: the project's default group
	PortSecurity        *bool
	AddressPairs        []AddressPair
	HostID, VNICType    string
	Profile             map[string]any
	Tags                []string
	Status              string
	skipQuota, routerIP bool
}

type fixedIPReq struct {
	SubnetID string
	IP       netip.Addr
}

func randomMAC() string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

// createPort makes a port inside tx: MAC, addresses, groups, binding.
func (s *Service) createPort(ctx context.Context, tx *sql.Tx, c caller, req portReq) (*Port, error) {
	net, err := s.visibleNetwork(ctx, tx, c, req.NetworkID)
	if err != nil {
		return nil, err
	}
	netOwner := c.owns(net.ProjectID)
	if strings.HasPrefix(req.DeviceOwner, "network:") && !netOwner {
		return nil, policyDenied("create_port:device_owner")
	}
	if req.MAC != "" && !netOwner {
		return nil, policyDenied("create_port:mac_address")
	}
	if !req.skipQuota {
		if err := s.checkQuota(ctx, tx, req.ProjectID, "port", 1); err != nil {
			return nil, err
		}
	}
	p := &Port{ID: newID(), ProjectID: req.ProjectID, NetworkID: net.ID, Name: req.Name, Description: req.Description,
		AdminStateUp: req.AdminStateUp, MAC: req.MAC, DeviceID: req.DeviceID, DeviceOwner: req.DeviceOwner,
		Status: req.Status, PortSecurity: net.PortSecurity, HostID: req.HostID, Profile: req.Profile,
		VNICType: req.VNICType, AddressPairs: req.AddressPairs, Tags: req.Tags, CreatedAt: now()}
	p.UpdatedAt = p.CreatedAt
	if p.Status == "" {
		p.Status = statusDown
	}
	if p.Profile == nil {
		p.Profile = map[string]any{}
	}
	if p.VNICType == "" {
		p.VNICType = "normal"
	}
	if p.AddressPairs == nil {
		p.AddressPairs = []AddressPair{}
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if req.PortSecurity != nil {
		p.PortSecurity = *req.PortSecurity
	}
	if err := s.portGroups(ctx, tx, c, p, req.SecurityGroups, req.SecurityGroups != nil); err != nil {
		return nil, err
	}
	if len(p.AddressPairs) > 0 && !p.PortSecurity {
		return nil, addressPairsNeedPortSecurity()
	}
	for _, fr := range req.FixedIPs {
		if fr.IP.IsValid() && !netOwner {
			return nil, policyDenied("create_port:fixed_ips:ip_address")
		}
	}
	if p.MAC, err = pickMAC(ctx, tx, net.ID, req.MAC); err != nil {
		return nil, err
	}
	fillPairMACs(p)
	if err := s.insertPortRow(ctx, tx, p); err != nil {
		return nil, err
	}
	subnets, err := s.subnetsOf(ctx, tx, net.ID)
	if err != nil {
		return nil, err
	}
	if p.FixedIPs, err = s.allocateIPs(ctx, tx, net.ID, subnets, p, req.FixedIPs, req.routerIP); err != nil {
		return nil, err
	}
	if len(p.SecurityGroups) > 0 && len(p.FixedIPs) == 0 && req.SecurityGroups != nil && len(req.SecurityGroups) > 0 && !p.PortSecurity {
		return nil, sgNeedsPortSecurity()
	}
	for _, g := range p.SecurityGroups {
		if _, err := tx.ExecContext(ctx, `INSERT INTO port_security_groups (port_id, security_group_id) VALUES (?,?)`, p.ID, g); err != nil {
			return nil, err
		}
	}
	if err := setTags(ctx, tx, "ports", p.ID, p.Tags); err != nil {
		return nil, err
	}
	return p, nil
}

func addressPairsNeedPortSecurity() error {
	return nerr(http.StatusConflict, "AddressPairAndPortSecurityRequired",
		"Port Security must be enabled in order to have allowed address pairs on a port.")
}

func sgNeedsPortSecurity() error {
	return nerr(http.StatusBadRequest, "PortSecurityAndIPRequiredForSecurityGroups",
		"Port security must be enabled and port must have an IP address in order to use security groups.")
}

// portGroups settles a port's security groups: those asked (each must be
// the port's project's), else the project's default group for a port with
// port security that is not the service's own.
func (s *Service) portGroups(ctx context.Context, tx *sql.Tx, c caller, p *Port, asked []string, set bool) error {
	if set {
		if len(asked) > 0 && !p.PortSecurity {
			return sgNeedsPortSecurity()
		}
		groups := []string{}
		for _, g := range asked {
			sg, err := s.getSG(ctx, tx, g)
			if err != nil || (sg.ProjectID != p.ProjectID && !c.admin) {
				if err != nil && !api.IsNotFound(err) {
					return err
				}
				return sgNotFound(g)
			}
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		slices.Sort(groups)
		p.SecurityGroups = groups
		return nil
	}
	p.SecurityGroups = []string{}
	if !p.PortSecurity || strings.HasPrefix(p.DeviceOwner, "network:") || p.ProjectID == "" {
		return nil
	}
	id, err := s.ensureDefaultSG(ctx, tx, p.ProjectID)
	if err != nil {
		return err
	}
	p.SecurityGroups = []string{id}
	return nil
}

// pickMAC returns want if it is free on the network, or a new free
// fa:16:3e MAC when want is empty.
func pickMAC(ctx context.Context, tx *sql.Tx, networkID, want string) (string, error) {
	if want != "" {
		if taken, err := macTaken(ctx, tx, networkID, want); err != nil || taken {
			if err == nil {
				err = macInUse(networkID, want)
			}
			return "", err
		}
		return want, nil
	}
	for range 16 {
		mac := randomMAC()
		taken, err := macTaken(ctx, tx, networkID, mac)
		if err != nil {
			return "", err
		}
		if !taken {
			return mac, nil
		}
	}
	return "", nerr(http.StatusServiceUnavailable, "NetworkMacAddressGenerationFailure", "Unable to generate unique mac on network %s.", networkID)
}

func (s *Service) insertPortRow(ctx context.Context, tx *sql.Tx, p *Port) error {
	profile, _ := json.Marshal(p.Profile)
	pairs, _ := json.Marshal(p.AddressPairs)
	t := timeText(p.CreatedAt)
	_, err := tx.ExecContext(ctx, `INSERT INTO ports (`+portCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		p.ID, p.ProjectID, p.NetworkID, p.Name, p.Description, p.AdminStateUp, p.MAC, p.DeviceID, p.DeviceOwner,
		p.Status, p.PortSecurity, p.HostID, string(profile), p.VNICType, string(pairs), t, t, p.Revision)
	if isConflict(err) {
		return macInUse(p.NetworkID, p.MAC)
	}
	return err
}

// fillPairMACs gives address pairs without a MAC the port's own.
func fillPairMACs(p *Port) {
	for i := range p.AddressPairs {
		if p.AddressPairs[i].MAC == "" {
			p.AddressPairs[i].MAC = p.MAC
		}
	}
}

func macTaken(ctx context.Context, q queryer, networkID, mac string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM ports WHERE network_id=? AND mac_address=?`, networkID, mac).Scan(&n)
	return n > 0, err
}

// allocateIPs gives a port its addresses: those asked, or automatically one
// IPv4 address, one stateful IPv6 address and a SLAAC address on each
// automatic IPv6 subnet.
func (s *Service) allocateIPs(ctx context.Context, tx *sql.Tx, networkID string, subnets []*Subnet, p *Port, reqs []fixedIPReq, routerPort bool) ([]FixedIP, error) {
	byID := map[string]*Subnet{}
	for _, sn := range subnets {
		byID[sn.ID] = sn
	}
	mac, _ := net.ParseMAC(p.MAC)
	var out []FixedIP
	reserve := func(sn *Subnet, ip netip.Addr) error {
		err := ipam.Reserve(ctx, tx, ipam.Allocation{SubnetID: sn.ID, NetworkID: networkID, PortID: p.ID, Addr: ip})
		if err != nil {
			return ipamError(err, networkID)
		}
		out = append(out, FixedIP{sn.ID, ip})
		return nil
	}
	// auto allocates from a subnet; a full subnet is an *ipam.ExhaustedError.
	auto := func(sn *Subnet) error {
		if sn.Auto() {
			ip, err := ipam.EUI64(sn.CIDR, mac)
			if err != nil {
				return err
			}
			return reserve(sn, ip)
		}
		ip, err := ipam.Allocate(ctx, tx, sn.ID, networkID, p.ID, sn.Pools)
		if err != nil {
			return err
		}
		out = append(out, FixedIP{sn.ID, ip})
		return nil
	}
	if reqs == nil {
		var v4, v6 []*Subnet
		for _, sn := range subnets {
			switch {
			case sn.IPVersion == 4:
				v4 = append(v4, sn)
			case sn.Auto() && !routerPort:
				if err := auto(sn); err != nil {
					return nil, ipamError(err, networkID)
				}
			case !sn.Auto():
				v6 = append(v6, sn)
			}
		}
		for _, group := range [][]*Subnet{v4, v6} {
			if len(group) == 0 {
				continue
			}
			done := false
			for _, sn := range group {
				err := auto(sn)
				if err == nil {
					done = true
					break
				}
				var ex *ipam.ExhaustedError
				if !errors.As(err, &ex) {
					return nil, ipamError(err, networkID)
				}
			}
			if !done {
				return nil, ipGenerationFailure(networkID)
			}
		}
		return sortFixed(out, byID), nil
	}
	seen := map[netip.Addr]bool{}
	for _, fr := range reqs {
		var sn *Subnet
		switch {
		case fr.SubnetID != "":
			sn = byID[fr.SubnetID]
			if sn == nil {
				var exists int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM subnets WHERE id=?`, fr.SubnetID).Scan(&exists); err != nil {
					return nil, err
				}
				if exists == 0 {
					return nil, subnetNotFound(fr.SubnetID)
				}
				return nil, invalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s", networkID, fr.SubnetID)
			}
			if fr.IP.IsValid() && !ipam.ValidForSubnet(sn.CIDR, fr.IP, routerPort) {
				return nil, invalidIPForSubnet(fr.IP.String())
			}
		case fr.IP.IsValid():
			for _, cand := range subnets {
				if ipam.ValidForSubnet(cand.CIDR, fr.IP, routerPort) {
					sn = cand
					break
				}
			}
			if sn == nil {
				return nil, invalidIPForNetwork(fr.IP.String())
			}
		default:
			return nil, invalidInput("IP allocation requires subnet_id or ip_address")
		}
		if fr.IP.IsValid() {
			if seen[fr.IP] {
				return nil, invalidAttr("fixed_ips", "Duplicate IP address '%s'", fr.IP)
			}
			seen[fr.IP] = true
			if err := reserve(sn, fr.IP); err != nil {
				return nil, err
			}
			continue
		}
		if err := auto(sn); err != nil {
			return nil, ipamError(err, networkID)
		}
	}
	return sortFixed(out, byID), nil
}

func sortFixed(ips []FixedIP, byID map[string]*Subnet) []FixedIP {
	if ips == nil {
		return []FixedIP{}
	}
	slices.SortStableFunc(ips, func(a, b FixedIP) int {
		sa, sb := byID[a.SubnetID], byID[b.SubnetID]
		if sa != nil && sb != nil && sa.IPVersion != sb.IPVersion {
			return sa.IPVersion - sb.IPVersion
		}
		return 0
	})
	return ips
}

// savePort writes a port's mutable columns and bumps its revision.
func (s *Service) savePort(ctx context.Context, tx *sql.Tx, p *Port) error {
	profile, _ := json.Marshal(p.Profile)
	pairs, _ := json.Marshal(p.AddressPairs)
	_, err := tx.ExecContext(ctx, `UPDATE ports SET name=?, description=?, admin_state_up=?, mac_address=?, device_id=?,
		device_owner=?, status=?, port_security_enabled=?, host_id=?, profile=?, vnic_type=?, allowed_address_pairs=? WHERE id=?`,
		p.Name, p.Description, p.AdminStateUp, p.MAC, p.DeviceID, p.DeviceOwner, p.Status, p.PortSecurity, p.HostID,
		string(profile), p.VNICType, string(pairs), p.ID)
	if err != nil {
		return err
	}
	return bump(ctx, tx, "ports", p.ID)
}

func (s *Service) setPortGroups(ctx context.Context, tx *sql.Tx, portID string, groups []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM port_security_groups WHERE port_id=?`, portID); err != nil {
		return err
	}
	for _, g := range groups {
		if _, err := tx.ExecContext(ctx, `INSERT INTO port_security_groups (port_id, security_group_id) VALUES (?,?)`, portID, g); err != nil {
			return err
		}
	}
	return nil
}

// deletePortRow removes a port: floating IPs on it are disassociated, its
// addresses released.
func (s *Service) deletePortRow(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE floatingips SET fixed_port_id=NULL, fixed_ip_address=NULL, router_id=NULL,
		status=?, revision_number=revision_number+1, updated_at=? WHERE fixed_port_id=?`, statusDown, timeText(now()), id); err != nil {
		return err
	}
	if err := ipam.ReleasePort(ctx, tx, id); err != nil {
		return err
	}
	if err := deleteTags(ctx, tx, "ports", id); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM ports WHERE id=?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return portNotFound(id)
	}
	return nil
}

func vifType(p *Port) string {
	switch {
	case p.HostID == "":
		return "unbound"
	case p.VNICType != "normal":
		return "binding_failed"
	}
	return "bridge"
}

func (p *Port) wire(c caller) map[string]any {
	ips := make([]map[string]any, len(p.FixedIPs))
	for i, f := range p.FixedIPs {
		ips[i] = map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IP.String()}
	}
	pairs := make([]map[string]any, len(p.AddressPairs))
	for i, a := range p.AddressPairs {
		pairs[i] = map[string]any{"ip_address": a.IP, "mac_address": a.MAC}
	}
	m := map[string]any{
		"id": p.ID, "name": p.Name, "description": p.Description, "network_id": p.NetworkID,
		"project_id": p.ProjectID, "tenant_id": p.ProjectID, "mac_address": p.MAC,
		"admin_state_up": p.AdminStateUp, "status": p.Status, "device_id": p.DeviceID, "device_owner": p.DeviceOwner,
		"fixed_ips": ips, "allowed_address_pairs": pairs, "security_groups": p.SecurityGroups,
		"port_security_enabled": p.PortSecurity, "binding:vnic_type": p.VNICType, "ip_allocation": "immediate",
		"tags": p.Tags, "created_at": wireTime(p.CreatedAt), "updated_at": wireTime(p.UpdatedAt),
		"revision_number": p.Revision,
	}
	if c.admin {
		m["binding:host_id"] = p.HostID
		m["binding:profile"] = p.Profile
		m["binding:vif_type"] = vifType(p)
		details := map[string]any{}
		if p.HostID != "" && p.VNICType == "normal" {
			details = map[string]any{"connectivity": "l2", "port_filter": true,
				"bridge_name": datapath.BridgeName(p.NetworkID)}
		}
		m["binding:vif_details"] = details
	}
	return m
}

var portAttrs = []string{"id", "name", "description", "network_id", "project_id", "tenant_id", "mac_address",
	"admin_state_up", "status", "device_id", "device_owner", "fixed_ips", "allowed_address_pairs", "security_groups",
	"port_security_enabled", "binding:vnic_type", "binding:host_id", "binding:profile", "binding:vif_type",
	"binding:vif_details", "ip_allocation", "tags", "created_at", "updated_at", "revision_number"}
