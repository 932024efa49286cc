package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/monostack/monostack/internal/network/ipam"
	"github.com/monostack/monostack/internal/store"
)

// Subnet is an address block of a network.
type Subnet struct {
	ID, ProjectID, NetworkID, Name, Description string
	IPVersion                                   int
	CIDR                                        netip.Prefix
	// Gateway is invalid for a subnet without one.
	Gateway              netip.Addr
	EnableDHCP           bool
	RAMode, AddressMode  *string
	Pools                []ipam.Range
	DNS                  []string
	HostRoutes           []HostRoute
	Tags                 []string
	CreatedAt, UpdatedAt time.Time
	Revision             int
}

// HostRoute is a route a subnet's ports are given.
type HostRoute struct {
	Destination netip.Prefix
	NextHop     netip.Addr
}

// Auto reports whether the subnet's ports get SLAAC (EUI-64) addresses.
func (sn *Subnet) Auto() bool {
	return sn.IPVersion == 6 && sn.AddressMode != nil && (*sn.AddressMode == "slaac" || *sn.AddressMode == "dhcpv6-stateless")
}

type poolJSON struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type routeJSON struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

const subnetCols = `id, project_id, network_id, name, description, ip_version, cidr, gateway_ip, enable_dhcp,
	ipv6_ra_mode, ipv6_address_mode, allocation_pools, dns_nameservers, host_routes, created_at, updated_at, revision_number`

func scanSubnet(row scanner) (*Subnet, error) {
	var sn Subnet
	var cidr, pools, dns, routes, created, updated string
	var gw, ra, am sql.NullString
	if err := row.Scan(&sn.ID, &sn.ProjectID, &sn.NetworkID, &sn.Name, &sn.Description, &sn.IPVersion, &cidr, &gw,
		&sn.EnableDHCP, &ra, &am, &pools, &dns, &routes, &created, &updated, &sn.Revision); err != nil {
		return nil, store.Translate(err)
	}
	sn.CIDR, _ = netip.ParsePrefix(cidr)
	if gw.Valid {
		sn.Gateway, _ = netip.ParseAddr(gw.String)
	}
	if ra.Valid {
		sn.RAMode = &ra.String
	}
	if am.Valid {
		sn.AddressMode = &am.String
	}
	var pj []poolJSON
	json.Unmarshal([]byte(pools), &pj)
	for _, p := range pj {
		a, _ := netip.ParseAddr(p.Start)
		b, _ := netip.ParseAddr(p.End)
		sn.Pools = append(sn.Pools, ipam.Range{Start: a, End: b})
	}
	json.Unmarshal([]byte(dns), &sn.DNS)
	if sn.DNS == nil {
		sn.DNS = []string{}
	}
	var rj []routeJSON
	json.Unmarshal([]byte(routes), &rj)
	for _, r := range rj {
		d, _ := netip.ParsePrefix(r.Destination)
		n, _ := netip.ParseAddr(r.NextHop)
		sn.HostRoutes = append(sn.HostRoutes, HostRoute{d, n})
	}
	sn.CreatedAt, sn.UpdatedAt = parseTime(created), parseTime(updated)
	sn.Tags = []string{}
	return &sn, nil
}

func (s *Service) loadSubnets(ctx context.Context, q queryer, where string, args ...any) ([]*Subnet, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+subnetCols+` FROM subnets WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*Subnet
	for rows.Next() {
		sn, err := scanSubnet(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, sn)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	for i, sn := range out {
		ids[i] = sn.ID
	}
	tags, err := loadTags(ctx, q, "subnets", ids...)
	if err != nil {
		return nil, err
	}
	for _, sn := range out {
		if t := tags[sn.ID]; t != nil {
			sn.Tags = t
		}
	}
	return out, nil
}

func (s *Service) getSubnet(ctx context.Context, q queryer, id string) (*Subnet, error) {
	l, err := s.loadSubnets(ctx, q, `id=?`, id)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, subnetNotFound(id)
	}
	return l[0], nil
}

func (s *Service) getSubnetWithNetwork(ctx context.Context, q queryer, id string) (*Subnet, *Network, error) {
	sn, err := s.getSubnet(ctx, q, id)
	if err != nil {
		return nil, nil, err
	}
	n, err := s.getNetwork(ctx, q, sn.NetworkID)
	return sn, n, err
}

// visibleSubnet returns a subnet (and its network) the caller may see.
func (s *Service) visibleSubnet(ctx context.Context, q queryer, c caller, id string) (*Subnet, *Network, error) {
	sn, n, err := s.getSubnetWithNetwork(ctx, q, id)
	if err != nil {
		return nil, nil, err
	}
	if !c.seesSubnet(sn, n) {
		return nil, nil, subnetNotFound(id)
	}
	return sn, n, nil
}

func encodeSubnetLists(sn *Subnet) (pools, dns, routes string) {
	pj := make([]poolJSON, len(sn.Pools))
	for i, p := range sn.Pools {
		pj[i] = poolJSON{p.Start.String(), p.End.String()}
	}
	rj := make([]routeJSON, len(sn.HostRoutes))
	for i, r := range sn.HostRoutes {
		rj[i] = routeJSON{r.Destination.String(), r.NextHop.String()}
	}
	b1, _ := json.Marshal(pj)
	d := sn.DNS
	if d == nil {
		d = []string{}
	}
	b2, _ := json.Marshal(d)
	b3, _ := json.Marshal(rj)
	return string(b1), string(b2), string(b3)
}

func gatewayValue(sn *Subnet) any {
	if sn.Gateway.IsValid() {
		return sn.Gateway.String()
	}
	return nil
}

func (s *Service) insertSubnet(ctx context.Context, tx *sql.Tx, sn *Subnet) error {
	pools, dns, routes := encodeSubnetLists(sn)
	t := timeText(sn.CreatedAt)
	_, err := tx.ExecContext(ctx, `INSERT INTO subnets (`+subnetCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		sn.ID, sn.ProjectID, sn.NetworkID, sn.Name, sn.Description, sn.IPVersion, sn.CIDR.String(), gatewayValue(sn),
		sn.EnableDHCP, sn.RAMode, sn.AddressMode, pools, dns, routes, t, t, sn.Revision)
	if err != nil {
		return err
	}
	if err := setTags(ctx, tx, "subnets", sn.ID, sn.Tags); err != nil {
		return err
	}
	return bump(ctx, tx, "networks", sn.NetworkID)
}

func (s *Service) saveSubnet(ctx context.Context, tx *sql.Tx, sn *Subnet) error {
	pools, dns, routes := encodeSubnetLists(sn)
	_, err := tx.ExecContext(ctx, `UPDATE subnets SET name=?, description=?, gateway_ip=?, enable_dhcp=?, allocation_pools=?,
		dns_nameservers=?, host_routes=? WHERE id=?`, sn.Name, sn.Description, gatewayValue(sn), sn.EnableDHCP, pools, dns, routes, sn.ID)
	if err != nil {
		return err
	}
	return bump(ctx, tx, "subnets", sn.ID)
}

func (s *Service) deleteSubnet(ctx context.Context, tx *sql.Tx, id string) error {
	n, err := ipam.Count(ctx, tx, id)
	if err != nil {
		return err
	}
	if n > 0 {
		return subnetInUse(id)
	}
	var netID string
	if err := tx.QueryRowContext(ctx, `SELECT network_id FROM subnets WHERE id=?`, id).Scan(&netID); err != nil {
		if errors.Is(store.Translate(err), store.ErrNotFound) {
			return subnetNotFound(id)
		}
		return err
	}
	if err := deleteTags(ctx, tx, "subnets", id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subnets WHERE id=?`, id); err != nil {
		return err
	}
	return bump(ctx, tx, "networks", netID)
}

func strOrNil(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func (sn *Subnet) wire() map[string]any {
	pools := make([]map[string]any, len(sn.Pools))
	for i, p := range sn.Pools {
		pools[i] = map[string]any{"start": p.Start.String(), "end": p.End.String()}
	}
	routes := make([]map[string]any, len(sn.HostRoutes))
	for i, r := range sn.HostRoutes {
		routes[i] = map[string]any{"destination": r.Destination.String(), "nexthop": r.NextHop.String()}
	}
	return map[string]any{
		"id": sn.ID, "name": sn.Name, "description": sn.Description,
		"project_id": sn.ProjectID, "tenant_id": sn.ProjectID, "network_id": sn.NetworkID,
		"ip_version": sn.IPVersion, "cidr": sn.CIDR.String(), "gateway_ip": gatewayValue(sn),
		"enable_dhcp": sn.EnableDHCP, "ipv6_ra_mode": strOrNil(sn.RAMode), "ipv6_address_mode": strOrNil(sn.AddressMode),
		"subnetpool_id": nil, "allocation_pools": pools, "dns_nameservers": sn.DNS, "host_routes": routes,
		"service_types": []string{}, "tags": sn.Tags, "created_at": wireTime(sn.CreatedAt),
		"updated_at": wireTime(sn.UpdatedAt), "revision_number": sn.Revision,
	}
}

var subnetAttrs = []string{"id", "name", "description", "project_id", "tenant_id", "network_id", "ip_version", "cidr",
	"gateway_ip", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "allocation_pools",
	"dns_nameservers", "host_routes", "service_types", "tags", "created_at", "updated_at", "revision_number"}

// subnetsOf returns the subnets of a network.
func (s *Service) subnetsOf(ctx context.Context, q queryer, networkID string) ([]*Subnet, error) {
	return s.loadSubnets(ctx, q, `network_id=?`, networkID)
}

// checkOverlap refuses a CIDR overlapping another subnet of the network.
func checkOverlap(cidr netip.Prefix, networkID string, others []*Subnet) error {
	for _, o := range others {
		if o.CIDR.Overlaps(cidr) {
			return invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", cidr, networkID)
		}
	}
	return nil
}

// ipamError maps an IPAM error to the upstream fault.
func ipamError(err error, networkID string) error {
	var (
		inv *ipam.InvalidPoolError
		oob *ipam.OutOfBoundsPoolError
		ovl *ipam.OverlappingPoolsError
		gw  *ipam.GatewayInPoolError
		al  *ipam.AllocatedError
		ex  *ipam.ExhaustedError
	)
	switch {
	case errors.As(err, &inv):
		return nerr(http.StatusBadRequest, "InvalidAllocationPool", "The allocation pool %s is not valid.", inv.Pool)
	case errors.As(err, &oob):
		return nerr(http.StatusBadRequest, "OutOfBoundsAllocationPool", "The allocation pool %s spans beyond the subnet cidr %s.", oob.Pool, oob.CIDR)
	case errors.As(err, &ovl):
		return nerr(http.StatusConflict, "OverlappingAllocationPools", "Found overlapping allocation pools: %s %s for subnet %s.", ovl.A, ovl.B, ovl.CIDR)
	case errors.As(err, &gw):
		return nerr(http.StatusConflict, "GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s.", gw.Gateway, gw.Pool)
	case errors.As(err, &al):
		return ipAlreadyAllocated(al.Addr.String(), al.SubnetID)
	case errors.As(err, &ex):
		return ipGenerationFailure(networkID)
	}
	return err
}
