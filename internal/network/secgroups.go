package network

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/monostack/monostack/internal/store"
)

// SecurityGroup is a named set of rules applied to ports.
type SecurityGroup struct {
	ID, ProjectID, Name, Description string
	IsDefault                        bool
	Rules                            []*SGRule
	Tags                             []string
	CreatedAt, UpdatedAt             time.Time
	Revision                         int
}

// SGRule is one allow rule of a group.
type SGRule struct {
	ID, ProjectID, SecurityGroupID string
	Direction, EtherType           string
	Protocol                       *string
	PortMin, PortMax               *int
	RemoteIPPrefix                 *string
	RemoteGroupID                  *string
	Description                    string
	CreatedAt, UpdatedAt           time.Time
	Revision                       int
}

// ipProtocols are the protocol names a rule may use, with their numbers.
var ipProtocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// protoNames lists the protocol names as upstream's message does.
var protoNames = []string{"None", "any", "ah", "dccp", "egp", "esp", "gre", "hopopt", "icmp", "igmp", "ip", "ipip",
	"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "ospf", "pgm",
	"rsvp", "sctp", "tcp", "udp", "udplite", "vrrp"}

// protoNumber is a rule protocol's number, -1 for any.
func protoNumber(p *string) int {
	if p == nil {
		return -1
	}
	if n, ok := ipProtocols[*p]; ok {
		return n
	}
	n, err := strconv.Atoi(*p)
	if err != nil {
		return -1
	}
	return n
}

const sgCols = `id, project_id, name, description, is_default, created_at, updated_at, revision_number`

const ruleCols = `id, project_id, security_group_id, direction, ethertype, protocol, port_range_min, port_range_max,
	remote_ip_prefix, remote_group_id, description, created_at, updated_at, revision_number`

func scanRule(row scanner) (*SGRule, error) {
	var r SGRule
	var proto, prefix, remote sql.NullString
	var pmin, pmax sql.NullInt64
	var created, updated string
	if err := row.Scan(&r.ID, &r.ProjectID, &r.SecurityGroupID, &r.Direction, &r.EtherType, &proto, &pmin, &pmax,
		&prefix, &remote, &r.Description, &created, &updated, &r.Revision); err != nil {
		return nil, store.Translate(err)
	}
	if proto.Valid {
		r.Protocol = &proto.String
	}
	if prefix.Valid {
		r.RemoteIPPrefix = &prefix.String
	}
	if remote.Valid {
		r.RemoteGroupID = &remote.String
	}
	if pmin.Valid {
		v := int(pmin.Int64)
		r.PortMin = &v
	}
	if pmax.Valid {
		v := int(pmax.Int64)
		r.PortMax = &v
	}
	r.CreatedAt, r.UpdatedAt = parseTime(created), parseTime(updated)
	return &r, nil
}

func (s *Service) loadRules(ctx context.Context, q queryer, where string, args ...any) ([]*SGRule, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+ruleCols+` FROM security_group_rules WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*SGRule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Service) loadSGs(ctx context.Context, q queryer, where string, args ...any) ([]*SecurityGroup, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+sgCols+` FROM security_groups WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*SecurityGroup
	byID := map[string]*SecurityGroup{}
	for rows.Next() {
		var g SecurityGroup
		var created, updated string
		if err := rows.Scan(&g.ID, &g.ProjectID, &g.Name, &g.Description, &g.IsDefault, &created, &updated, &g.Revision); err != nil {
			rows.Close()
			return nil, err
		}
		g.CreatedAt, g.UpdatedAt = parseTime(created), parseTime(updated)
		g.Rules, g.Tags = []*SGRule{}, []string{}
		out = append(out, &g)
		byID[g.ID] = &g
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	for i, g := range out {
		ids[i] = g.ID
	}
	var rules []*SGRule
	if len(ids) < 500 {
		rules, err = s.loadRules(ctx, q, `security_group_id IN (`+placeholders(len(ids))+`)`, toAny(ids)...)
	} else {
		rules, err = s.loadRules(ctx, q, `1=1`)
	}
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if g := byID[r.SecurityGroupID]; g != nil {
			g.Rules = append(g.Rules, r)
		}
	}
	tags, err := loadTags(ctx, q, "security_groups", ids...)
	if err != nil {
		return nil, err
	}
	for _, g := range out {
		if t := tags[g.ID]; t != nil {
			g.Tags = t
		}
	}
	return out, nil
}

func (s *Service) getSG(ctx context.Context, q queryer, id string) (*SecurityGroup, error) {
	l, err := s.loadSGs(ctx, q, `id=?`, id)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, sgNotFound(id)
	}
	return l[0], nil
}

func (s *Service) visibleSG(ctx context.Context, q queryer, c caller, id string) (*SecurityGroup, error) {
	g, err := s.getSG(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if !c.owns(g.ProjectID) {
		return nil, sgNotFound(id)
	}
	return g, nil
}

func (s *Service) insertSG(ctx context.Context, tx *sql.Tx, g *SecurityGroup) error {
	t := timeText(g.CreatedAt)
	if _, err := tx.ExecContext(ctx, `INSERT INTO security_groups (`+sgCols+`) VALUES (?,?,?,?,?,?,?,?)`,
		g.ID, g.ProjectID, g.Name, g.Description, g.IsDefault, t, t, g.Revision); err != nil {
		return err
	}
	for _, r := range g.Rules {
		if err := insertRule(ctx, tx, r); err != nil {
			return err
		}
	}
	return setTags(ctx, tx, "security_groups", g.ID, g.Tags)
}

func insertRule(ctx context.Context, tx *sql.Tx, r *SGRule) error {
	t := timeText(r.CreatedAt)
	_, err := tx.ExecContext(ctx, `INSERT INTO security_group_rules (`+ruleCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.ProjectID, r.SecurityGroupID, r.Direction, r.EtherType, r.Protocol, r.PortMin, r.PortMax,
		r.RemoteIPPrefix, r.RemoteGroupID, r.Description, t, t, r.Revision)
	return err
}

// newGroup makes a group with the rules upstream gives new groups: all
// egress allowed, and for a project's default group, ingress from the
// group's own members.
func newGroup(project, name, desc string, isDefault bool) *SecurityGroup {
	g := &SecurityGroup{ID: newID(), ProjectID: project, Name: name, Description: desc, IsDefault: isDefault,
		CreatedAt: now(), Tags: []string{}}
	g.UpdatedAt = g.CreatedAt
	for _, et := range []string{"IPv4", "IPv6"} {
		g.Rules = append(g.Rules, &SGRule{ID: newID(), ProjectID: project, SecurityGroupID: g.ID, Direction: "egress",
			EtherType: et, CreatedAt: g.CreatedAt, UpdatedAt: g.CreatedAt})
		if isDefault {
			self := g.ID
			g.Rules = append(g.Rules, &SGRule{ID: newID(), ProjectID: project, SecurityGroupID: g.ID, Direction: "ingress",
				EtherType: et, RemoteGroupID: &self, CreatedAt: g.CreatedAt, UpdatedAt: g.CreatedAt})
		}
	}
	return g
}

// ensureDefaultSG returns the id of a project's default group, making it
// (inside tx) on first use.
func (s *Service) ensureDefaultSG(ctx context.Context, tx *sql.Tx, project string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM security_groups WHERE project_id=? AND is_default`, project).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	g := newGroup(project, "default", "Default security group", true)
	if err := s.insertSG(ctx, tx, g); err != nil {
		return "", err
	}
	return g.ID, nil
}

// EnsureDefaultSecurityGroup makes a project's default group if it has
// none, and returns its id.
func (s *Service) EnsureDefaultSecurityGroup(ctx context.Context, project string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM security_groups WHERE project_id=? AND is_default`, project).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	s.defaultSG.Lock()
	defer s.defaultSG.Unlock()
	err = s.write(ctx, func(tx *sql.Tx) error {
		id, err = s.ensureDefaultSG(ctx, tx, project)
		return err
	})
	return id, err
}

func (g *SecurityGroup) wire() map[string]any {
	rules := make([]map[string]any, len(g.Rules))
	for i, r := range g.Rules {
		rules[i] = r.wire()
	}
	return map[string]any{
		"id": g.ID, "name": g.Name, "description": g.Description, "project_id": g.ProjectID, "tenant_id": g.ProjectID,
		"security_group_rules": rules, "tags": g.Tags, "created_at": wireTime(g.CreatedAt),
		"updated_at": wireTime(g.UpdatedAt), "revision_number": g.Revision,
	}
}

func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// normalizedCIDR is a rule prefix without host bits.
func normalizedCIDR(p *string) any {
	if p == nil {
		return nil
	}
	pr, err := netip.ParsePrefix(*p)
	if err != nil {
		return nil
	}
	return pr.Masked().String()
}

func (r *SGRule) wire() map[string]any {
	return map[string]any{
		"id": r.ID, "project_id": r.ProjectID, "tenant_id": r.ProjectID, "security_group_id": r.SecurityGroupID,
		"direction": r.Direction, "ethertype": r.EtherType, "protocol": strOrNil(r.Protocol),
		"port_range_min": intOrNil(r.PortMin), "port_range_max": intOrNil(r.PortMax),
		"remote_ip_prefix": strOrNil(r.RemoteIPPrefix), "remote_group_id": strOrNil(r.RemoteGroupID),
		"normalized_cidr": normalizedCIDR(r.RemoteIPPrefix), "description": r.Description,
		"created_at": wireTime(r.CreatedAt), "updated_at": wireTime(r.UpdatedAt), "revision_number": r.Revision,
	}
}

var sgAttrs = []string{"id", "name", "description", "project_id", "tenant_id", "security_group_rules", "tags",
	"created_at", "updated_at", "revision_number"}

var ruleAttrs = []string{"id", "project_id", "tenant_id", "security_group_id", "direction", "ethertype", "protocol",
	"port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id", "normalized_cidr", "description",
	"created_at", "updated_at", "revision_number"}

// ruleKey is what makes two rules the same rule.
type ruleKey struct {
	group, direction, ethertype string
	proto                       int
	pmin, pmax                  int
	prefix, remote              string
}

func (r *SGRule) key() ruleKey {
	k := ruleKey{group: r.SecurityGroupID, direction: r.Direction, ethertype: r.EtherType, proto: protoNumber(r.Protocol),
		pmin: -1, pmax: -1}
	if k.proto == 58 && r.Protocol != nil {
		k.proto = 58
	}
	if r.PortMin != nil {
		k.pmin = *r.PortMin
	}
	if r.PortMax != nil {
		k.pmax = *r.PortMax
	}
	if p, ok := normalizedCIDR(r.RemoteIPPrefix).(string); ok && p != "0.0.0.0/0" && p != "::/0" {
		k.prefix = p
	}
	if r.RemoteGroupID != nil {
		k.remote = *r.RemoteGroupID
	}
	return k
}

func sgInUseByPorts(ctx context.Context, q queryer, id string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM port_security_groups WHERE security_group_id=?`, id).Scan(&n)
	return n > 0, err
}

func cannotRemoveDefault() error {
	return nerr(http.StatusConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
}
