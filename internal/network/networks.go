package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/monostack/monostack/internal/store"
)

// Network is an L2 segment with its subnets.
type Network struct {
	ID, ProjectID, Name, Description string
	AdminStateUp, Shared, External   bool
	PortSecurity                     bool
	MTU                              int
	Status                           string
	NetworkType                      string
	PhysicalNetwork                  *string
	SegmentationID                   *int
	AZHints                          []string
	Subnets                          []string
	Tags                             []string
	CreatedAt, UpdatedAt             time.Time
	Revision                         int
}

const networkCols = `id, project_id, name, description, admin_state_up, shared, external, mtu, status,
	port_security_enabled, network_type, physical_network, segmentation_id, az_hints, created_at, updated_at, revision_number`

func scanNetwork(row scanner) (*Network, error) {
	var n Network
	var az, created, updated string
	var physnet sql.NullString
	var seg sql.NullInt64
	if err := row.Scan(&n.ID, &n.ProjectID, &n.Name, &n.Description, &n.AdminStateUp, &n.Shared, &n.External, &n.MTU,
		&n.Status, &n.PortSecurity, &n.NetworkType, &physnet, &seg, &az, &created, &updated, &n.Revision); err != nil {
		return nil, store.Translate(err)
	}
	if physnet.Valid {
		n.PhysicalNetwork = &physnet.String
	}
	if seg.Valid {
		v := int(seg.Int64)
		n.SegmentationID = &v
	}
	json.Unmarshal([]byte(az), &n.AZHints)
	if n.AZHints == nil {
		n.AZHints = []string{}
	}
	n.CreatedAt, n.UpdatedAt = parseTime(created), parseTime(updated)
	n.Subnets, n.Tags = []string{}, []string{}
	return &n, nil
}

// loadNetworks returns the networks a WHERE clause selects, with their
// subnets and tags, oldest first.
func (s *Service) loadNetworks(ctx context.Context, q queryer, where string, args ...any) ([]*Network, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+networkCols+` FROM networks WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*Network
	for rows.Next() {
		n, err := scanNetwork(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	byID := map[string]*Network{}
	for i, n := range out {
		ids[i] = n.ID
		byID[n.ID] = n
	}
	subq := `SELECT network_id, id FROM subnets`
	var subArgs []any
	if len(ids) < 500 {
		subq += ` WHERE network_id IN (` + placeholders(len(ids)) + `)`
		for _, id := range ids {
			subArgs = append(subArgs, id)
		}
	}
	srows, err := q.QueryContext(ctx, subq+` ORDER BY created_at, id`, subArgs...)
	if err != nil {
		return nil, err
	}
	for srows.Next() {
		var nid, sid string
		if err := srows.Scan(&nid, &sid); err != nil {
			srows.Close()
			return nil, err
		}
		if n := byID[nid]; n != nil {
			n.Subnets = append(n.Subnets, sid)
		}
	}
	srows.Close()
	if err := srows.Err(); err != nil {
		return nil, err
	}
	tags, err := loadTags(ctx, q, "networks", ids...)
	if err != nil {
		return nil, err
	}
	for _, n := range out {
		if t := tags[n.ID]; t != nil {
			n.Tags = t
		}
	}
	return out, nil
}

func (s *Service) getNetwork(ctx context.Context, q queryer, id string) (*Network, error) {
	ns, err := s.loadNetworks(ctx, q, `id=?`, id)
	if err != nil {
		return nil, err
	}
	if len(ns) == 0 {
		return nil, networkNotFound(id)
	}
	return ns[0], nil
}

func (s *Service) networkOwner(ctx context.Context, q queryer, id string) (string, error) {
	var owner string
	err := q.QueryRowContext(ctx, `SELECT project_id FROM networks WHERE id=?`, id).Scan(&owner)
	if errors.Is(store.Translate(err), store.ErrNotFound) {
		return "", networkNotFound(id)
	}
	return owner, err
}

// visibleNetwork returns a network the caller may see (404 otherwise).
func (s *Service) visibleNetwork(ctx context.Context, q queryer, c caller, id string) (*Network, error) {
	n, err := s.getNetwork(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if !c.seesNetwork(n) {
		return nil, networkNotFound(id)
	}
	return n, nil
}

func (s *Service) insertNetwork(ctx context.Context, tx *sql.Tx, n *Network) error {
	az, _ := json.Marshal(n.AZHints)
	var seg any
	if n.SegmentationID != nil {
		seg = *n.SegmentationID
	}
	t := timeText(n.CreatedAt)
	_, err := tx.ExecContext(ctx, `INSERT INTO networks (`+networkCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		n.ID, n.ProjectID, n.Name, n.Description, n.AdminStateUp, n.Shared, n.External, n.MTU, n.Status,
		n.PortSecurity, n.NetworkType, n.PhysicalNetwork, seg, string(az), t, t, n.Revision)
	if err != nil {
		return err
	}
	return setTags(ctx, tx, "networks", n.ID, n.Tags)
}

func (s *Service) saveNetwork(ctx context.Context, tx *sql.Tx, n *Network) error {
	_, err := tx.ExecContext(ctx, `UPDATE networks SET name=?, description=?, admin_state_up=?, shared=?, external=?, mtu=?,
		port_security_enabled=? WHERE id=?`, n.Name, n.Description, n.AdminStateUp, n.Shared, n.External, n.MTU, n.PortSecurity, n.ID)
	if err != nil {
		return err
	}
	return bump(ctx, tx, "networks", n.ID)
}

// allocateSegment picks the lowest free segmentation id of a tunnel type.
func allocateSegment(ctx context.Context, tx *sql.Tx, typ string) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT segmentation_id FROM networks WHERE network_type=? AND segmentation_id IS NOT NULL
		ORDER BY segmentation_id`, typ)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	next := 1
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return 0, err
		}
		if v == next {
			next++
		} else if v > next {
			break
		}
	}
	return next, rows.Err()
}

// deleteNetwork removes a network without ports, with its subnets.
func (s *Service) deleteNetwork(ctx context.Context, tx *sql.Tx, id string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM ports WHERE network_id=? ORDER BY created_at`, id)
	if err != nil {
		return err
	}
	var ports []string
	for rows.Next() {
		var p string
		rows.Scan(&p)
		ports = append(ports, p)
	}
	rows.Close()
	if len(ports) > 0 {
		return networkInUse(id, ports)
	}
	srows, err := tx.QueryContext(ctx, `SELECT id FROM subnets WHERE network_id=?`, id)
	if err != nil {
		return err
	}
	var subnets []string
	for srows.Next() {
		var sid string
		srows.Scan(&sid)
		subnets = append(subnets, sid)
	}
	srows.Close()
	for _, sid := range subnets {
		if err := deleteTags(ctx, tx, "subnets", sid); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subnets WHERE network_id=?`, id); err != nil {
		return err
	}
	if err := deleteTags(ctx, tx, "networks", id); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM networks WHERE id=?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return networkNotFound(id)
	}
	return nil
}

// wire is the network as the API shows it to c.
func (n *Network) wire(c caller, az string) map[string]any {
	m := map[string]any{
		"id": n.ID, "name": n.Name, "description": n.Description,
		"project_id": n.ProjectID, "tenant_id": n.ProjectID,
		"admin_state_up": n.AdminStateUp, "status": n.Status, "shared": n.Shared,
		"router:external": n.External, "mtu": n.MTU, "port_security_enabled": n.PortSecurity,
		"subnets": n.Subnets, "availability_zone_hints": n.AZHints, "availability_zones": []string{az},
		"ipv4_address_scope": nil, "ipv6_address_scope": nil, "l2_adjacency": true, "is_default": false,
		"tags": n.Tags, "created_at": wireTime(n.CreatedAt), "updated_at": wireTime(n.UpdatedAt),
		"revision_number": n.Revision,
	}
	if c.admin {
		m["provider:network_type"] = n.NetworkType
		m["provider:physical_network"] = nil
		if n.PhysicalNetwork != nil {
			m["provider:physical_network"] = *n.PhysicalNetwork
		}
		m["provider:segmentation_id"] = nil
		if n.SegmentationID != nil {
			m["provider:segmentation_id"] = *n.SegmentationID
		}
	}
	return m
}

var networkAttrs = []string{"id", "name", "description", "project_id", "tenant_id", "admin_state_up", "status", "shared",
	"router:external", "mtu", "port_security_enabled", "subnets", "availability_zone_hints", "availability_zones",
	"ipv4_address_scope", "ipv6_address_scope", "l2_adjacency", "is_default", "tags", "created_at", "updated_at",
	"revision_number", "provider:network_type", "provider:physical_network", "provider:segmentation_id"}

// networkInUseByGateways reports whether routers have gateways on the network.
func hasGatewayPorts(ctx context.Context, q queryer, networkID string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM ports WHERE network_id=? AND device_owner IN (?,?)`,
		networkID, ownerRouterGateway, ownerFloatingIP).Scan(&n)
	return n > 0, err
}

func externalNetworkInUse(id string) error {
	return nerr(http.StatusConflict, "ExternalNetworkInUse",
		"External network %s cannot be updated to be made non-external, since it has existing gateway ports.", id)
}
