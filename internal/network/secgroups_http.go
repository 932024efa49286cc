package network

import (
	"context"
	"database/sql"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

var sgSpecs = withStandard(map[string]attrSpec{
	"name": rw, "security_group_rules": readOnly, "stateful": readOnly, "shared": readOnly,
})

var ruleSpecs = map[string]attrSpec{
	"id": readOnly, "project_id": postOnly, "tenant_id": postOnly, "description": rw,
	"security_group_id": postOnly, "direction": postOnly, "ethertype": postOnly, "protocol": postOnly,
	"port_range_min": postOnly, "port_range_max": postOnly, "remote_ip_prefix": postOnly, "remote_group_id": postOnly,
	"remote_address_group_id": postOnly, "normalized_cidr": readOnly, "created_at": readOnly, "updated_at": readOnly,
	"revision_number": readOnly, "belongs_to_default_sg": readOnly,
}

func (s *Service) handleListSGs(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_security_group")
	if err != nil {
		return err
	}
	lq, err := parseList(r, sgAttrs)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// A project's default group comes into being when the project first
	// looks at its groups, as upstream makes it.
	projects := map[string]bool{}
	if c.project != "" {
		projects[c.project] = true
	}
	if c.admin {
		for _, k := range []string{"project_id", "tenant_id"} {
			if vs := lq.filters[k]; len(vs) == 1 {
				projects[vs[0]] = true
			}
		}
	}
	for p := range projects {
		if _, err := s.EnsureDefaultSecurityGroup(ctx, p); err != nil {
			return err
		}
	}
	where, args := `1=1`, []any{}
	if !c.admin {
		where, args = `project_id=?`, []any{c.project}
	}
	gs, err := s.loadSGs(ctx, s.db, where, args...)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(gs))
	for i, g := range gs {
		items[i] = g.wire()
	}
	return writeList(w, r, "security_groups", lq, items, func(id string) error { return sgNotFound(id) })
}

func (s *Service) handleShowSG(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_security_group")
	if err != nil {
		return err
	}
	g, err := s.visibleSG(r.Context(), s.db, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"security_group": showFields(r, g.wire())})
	return nil
}

func defaultExists() error {
	return nerr(http.StatusConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
}

func (s *Service) handleCreateSG(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "create_security_group")
	if err != nil {
		return err
	}
	items, bulk, err := readBody(r, c, "security_group", sgSpecs, true, true)
	if err != nil {
		return err
	}
	groups := make([]*SecurityGroup, len(items))
	for i, e := range items {
		pid, err := projectFromBody(e, c)
		if err != nil {
			return err
		}
		var name, desc string
		if err := nameDesc(e, &name, &desc); err != nil {
			return err
		}
		if strings.EqualFold(name, "default") {
			return defaultExists()
		}
		g := newGroup(pid, name, desc, false)
		if g.Tags, err = tagsFromBody(e); err != nil {
			return err
		}
		groups[i] = g
	}
	ctx := r.Context()
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, g := range groups {
			if _, err := s.ensureDefaultSG(ctx, tx, g.ProjectID); err != nil {
				return err
			}
			if err := s.checkQuota(ctx, tx, g.ProjectID, "security_group", 1); err != nil {
				return err
			}
			if err := s.insertSG(ctx, tx, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCreated(w, "security_group", bulk, func(i int) map[string]any { return groups[i].wire() }, len(groups))
}

func (s *Service) handleUpdateSG(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "update_security_group")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "security_group", sgSpecs, false, false)
	if err != nil {
		return err
	}
	e, ctx, id := items[0], r.Context(), r.PathValue("id")
	var g *SecurityGroup
	err = s.write(ctx, func(tx *sql.Tx) error {
		if g, err = s.visibleSG(ctx, tx, c, id); err != nil {
			return err
		}
		old := g.Name
		if err := nameDesc(e, &g.Name, &g.Description); err != nil {
			return err
		}
		if g.IsDefault && g.Name != old {
			return nerr(http.StatusConflict, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
		}
		if !g.IsDefault && strings.EqualFold(g.Name, "default") && g.Name != old {
			return defaultExists()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE security_groups SET name=?, description=? WHERE id=?`, g.Name, g.Description, g.ID); err != nil {
			return err
		}
		if err := bump(ctx, tx, "security_groups", g.ID); err != nil {
			return err
		}
		g, err = s.getSG(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"security_group": g.wire()})
	return nil
}

func (s *Service) handleDeleteSG(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "delete_security_group")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		g, err := s.visibleSG(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if g.IsDefault && !c.admin {
			return cannotRemoveDefault()
		}
		if used, err := sgInUseByPorts(ctx, tx, id); err != nil {
			return err
		} else if used {
			return sgInUse(id)
		}
		if err := deleteTags(ctx, tx, "security_groups", id); err != nil {
			return err
		}
		// Rules of other groups naming this one as their remote group go
		// with it (ON DELETE CASCADE), as upstream's do.
		_, err = tx.ExecContext(ctx, `DELETE FROM security_groups WHERE id=?`, id)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Rules.

func (s *Service) handleListRules(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_security_group_rule")
	if err != nil {
		return err
	}
	lq, err := parseList(r, ruleAttrs)
	if err != nil {
		return err
	}
	where, args := `1=1`, []any{}
	if !c.admin {
		where = `project_id=? OR security_group_id IN (SELECT id FROM security_groups WHERE project_id=?)`
		args = []any{c.project, c.project}
	}
	if vs := lq.filters["security_group_id"]; len(vs) > 0 {
		where = `(` + where + `) AND security_group_id IN (` + placeholders(len(vs)) + `)`
		args = append(args, toAny(vs)...)
	}
	rules, err := s.loadRules(r.Context(), s.db, where, args...)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(rules))
	for i, rl := range rules {
		items[i] = rl.wire()
	}
	return writeList(w, r, "security_group_rules", lq, items, func(id string) error { return sgRuleNotFound(id) })
}

func (s *Service) visibleRule(ctx context.Context, q queryer, c caller, id string) (*SGRule, error) {
	l, err := s.loadRules(ctx, q, `id=?`, id)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, sgRuleNotFound(id)
	}
	rl := l[0]
	if c.owns(rl.ProjectID) {
		return rl, nil
	}
	g, err := s.getSG(ctx, q, rl.SecurityGroupID)
	if err != nil || !c.owns(g.ProjectID) {
		return nil, sgRuleNotFound(id)
	}
	return rl, nil
}

func (s *Service) handleShowRule(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_security_group_rule")
	if err != nil {
		return err
	}
	rl, err := s.visibleRule(r.Context(), s.db, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"security_group_rule": showFields(r, rl.wire())})
	return nil
}

func (s *Service) handleCreateRule(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "create_security_group_rule")
	if err != nil {
		return err
	}
	items, bulk, err := readBody(r, c, "security_group_rule", ruleSpecs, true, true)
	if err != nil {
		return err
	}
	rules := make([]*SGRule, len(items))
	for i, e := range items {
		if rules[i], err = ruleFromBody(e, c); err != nil {
			return err
		}
	}
	seen := map[ruleKey]bool{}
	for _, rl := range rules {
		if seen[rl.key()] {
			return nerr(http.StatusConflict, "DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST.")
		}
		seen[rl.key()] = true
	}
	ctx := r.Context()
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, rl := range rules {
			if err := s.createRule(ctx, tx, c, rl); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCreated(w, "security_group_rule", bulk, func(i int) map[string]any { return rules[i].wire() }, len(rules))
}

// portProtocols are those whose rules may have port ranges.
var portProtocols = map[int]bool{6: true, 17: true, 33: true, 132: true, 136: true}

func ruleFromBody(e entity, c caller) (*SGRule, error) {
	pid, err := projectFromBody(e, c)
	if err != nil {
		return nil, err
	}
	rl := &SGRule{ID: newID(), ProjectID: pid, CreatedAt: now(), EtherType: "IPv4"}
	rl.UpdatedAt = rl.CreatedAt
	for _, req := range []string{"security_group_id", "direction"} {
		if !e.has(req) {
			return nil, badRequest("Failed to parse request. Required attribute '%s' not specified", req)
		}
	}
	if rl.SecurityGroupID, _, err = e.str("security_group_id", 36); err != nil {
		return nil, err
	}
	if rl.Description, _, err = e.str("description", 255); err != nil {
		return nil, err
	}
	dir, _, err := e.str("direction", 0)
	if err != nil || (dir != "ingress" && dir != "egress") {
		return nil, invalidAttr("direction", "'%s' is not in ['ingress', 'egress']", shown(e["direction"]))
	}
	rl.Direction = dir
	if e.has("ethertype") && !e.isNull("ethertype") {
		et, _, err := e.str("ethertype", 0)
		switch strings.ToLower(et) {
		case "ipv4":
			rl.EtherType = "IPv4"
		case "ipv6":
			rl.EtherType = "IPv6"
		default:
			_ = err
			return nil, nerr(http.StatusBadRequest, "SecurityGroupRuleInvalidEtherType",
				"Security group rule for ethertype '%s' not supported. Allowed values are ['IPv4', 'IPv6'].", shown(e["ethertype"]))
		}
	}
	if e.has("protocol") && !e.isNull("protocol") {
		raw := e["protocol"]
		var p string
		if n, err := toInt(raw); err == nil {
			if n < 0 || n > 255 {
				return nil, invalidProtocol(shown(raw))
			}
			p = strconv.Itoa(n)
		} else if s, _, err := e.str("protocol", 0); err == nil {
			p = strings.ToLower(s)
			if _, ok := ipProtocols[p]; !ok && p != "any" && p != "" {
				return nil, invalidProtocol(s)
			}
		} else {
			return nil, invalidProtocol(shown(raw))
		}
		if p != "any" && p != "" {
			rl.Protocol = &p
		}
	}
	for name, dst := range map[string]**int{"port_range_min": &rl.PortMin, "port_range_max": &rl.PortMax} {
		if !e.has(name) || e.isNull(name) {
			continue
		}
		n, err := toInt(e[name])
		if err != nil || n < 0 || n > 65535 {
			return nil, nerr(http.StatusBadRequest, "SecurityGroupInvalidPortValue", "Invalid value for port %s", shown(e[name]))
		}
		*dst = &n
	}
	if e.has("remote_ip_prefix") && !e.isNull("remote_ip_prefix") {
		v, _, err := e.str("remote_ip_prefix", 0)
		if err != nil {
			return nil, nerr(http.StatusBadRequest, "InvalidCIDR", "Invalid CIDR %s given as IP prefix.", shown(e["remote_ip_prefix"]))
		}
		if v != "" {
			pr, err := netip.ParsePrefix(v)
			if err != nil {
				a, err2 := parseIP(v)
				if err2 != nil {
					return nil, nerr(http.StatusBadRequest, "InvalidCIDR", "Invalid CIDR %s given as IP prefix.", v)
				}
				pr = netip.PrefixFrom(a, a.BitLen())
			}
			text := pr.String()
			rl.RemoteIPPrefix = &text
		}
	}
	if e.has("remote_group_id") && !e.isNull("remote_group_id") {
		v, _, err := e.str("remote_group_id", 36)
		if err != nil {
			return nil, err
		}
		rl.RemoteGroupID = &v
	}
	if e.has("remote_address_group_id") && !e.isNull("remote_address_group_id") {
		v, _, _ := e.str("remote_address_group_id", 36)
		return nil, nerr(http.StatusNotFound, "AddressGroupNotFound", "Address group %s could not be found.", v)
	}
	return rl, validateRule(rl)
}

func invalidProtocol(p string) error {
	return nerr(http.StatusBadRequest, "SecurityGroupRuleInvalidProtocol",
		"Security group rule protocol %s not supported. Only protocol values %s and integer representations [0 to 255] are supported.",
		p, "["+strings.Join(quoteAll(protoNames), ", ")+"]")
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if s == "None" {
			out[i] = s
		} else {
			out[i] = "'" + s + "'"
		}
	}
	return out
}

func sgInput(typ, format string, args ...any) error {
	return nerr(http.StatusBadRequest, typ, format, args...)
}

// validateRule checks a rule's fields against each other, as upstream does.
func validateRule(rl *SGRule) error {
	if rl.RemoteIPPrefix != nil && rl.RemoteGroupID != nil {
		return sgInput("SecurityGroupMultipleRemoteEntites", "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.")
	}
	proto := protoNumber(rl.Protocol)
	if (rl.PortMin != nil || rl.PortMax != nil) && rl.Protocol == nil {
		return sgInput("SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
	}
	switch {
	case rl.Protocol == nil:
	case portProtocols[proto]:
		if rl.PortMin != nil && *rl.PortMin == 0 || rl.PortMax != nil && *rl.PortMax == 0 {
			return sgInput("SecurityGroupInvalidPortValue", "Invalid value for port 0")
		}
		if rl.PortMin != nil && rl.PortMax != nil && *rl.PortMin > *rl.PortMax {
			return sgInput("SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
		}
	case proto == 1 || proto == 58:
		for name, v := range map[string]*int{"type": rl.PortMin, "code": rl.PortMax} {
			if v != nil && *v > 255 {
				attr := "port_range_min"
				if name == "code" {
					attr = "port_range_max"
				}
				return sgInput("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP %s (%s) %d. It must be 0 to 255.", name, attr, *v)
			}
		}
		if rl.PortMin == nil && rl.PortMax != nil {
			return sgInput("SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *rl.PortMax)
		}
	default:
		if rl.PortMin != nil || rl.PortMax != nil {
			return sgInput("SecurityGroupInvalidProtocolForPort",
				"Ports cannot be specified for protocol %s. Ports are only supported for ['tcp', 'udp', 'dccp', 'sctp', 'udplite', '6', '17', '33', '132', '136'].", *rl.Protocol)
		}
	}
	if rl.Protocol != nil && rl.EtherType == "IPv4" && (*rl.Protocol == "icmpv6" || *rl.Protocol == "ipv6-icmp" || *rl.Protocol == "58") {
		return sgInput("SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype %s for protocol %s.", rl.EtherType, *rl.Protocol)
	}
	if rl.RemoteIPPrefix != nil {
		pr, _ := netip.ParsePrefix(*rl.RemoteIPPrefix)
		if pr.Addr().Is4() != (rl.EtherType == "IPv4") {
			return sgInput("SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", rl.EtherType, *rl.RemoteIPPrefix)
		}
	}
	return nil
}

// createRule checks the group, the remote group, duplicates and the quota,
// and stores the rule.
func (s *Service) createRule(ctx context.Context, tx *sql.Tx, c caller, rl *SGRule) error {
	g, err := s.visibleSG(ctx, tx, c, rl.SecurityGroupID)
	if err != nil {
		return err
	}
	if rl.RemoteGroupID != nil {
		if _, err := s.visibleSG(ctx, tx, c, *rl.RemoteGroupID); err != nil {
			return err
		}
	}
	for _, o := range g.Rules {
		if o.key() == rl.key() {
			return sgRuleExists(o.ID)
		}
	}
	if err := s.checkQuota(ctx, tx, rl.ProjectID, "security_group_rule", 1); err != nil {
		return err
	}
	if err := insertRule(ctx, tx, rl); err != nil {
		return err
	}
	return bump(ctx, tx, "security_groups", g.ID)
}

func (s *Service) handleUpdateRule(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "update_security_group_rule")
	if err != nil {
		return err
	}
	items, _, err := readBody(r, c, "security_group_rule", ruleSpecs, false, false)
	if err != nil {
		return err
	}
	e, ctx, id := items[0], r.Context(), r.PathValue("id")
	var rl *SGRule
	err = s.write(ctx, func(tx *sql.Tx) error {
		if rl, err = s.visibleRule(ctx, tx, c, id); err != nil {
			return err
		}
		if d, ok, err := e.str("description", 255); err != nil {
			return err
		} else if ok {
			rl.Description = d
		}
		if _, err := tx.ExecContext(ctx, `UPDATE security_group_rules SET description=? WHERE id=?`, rl.Description, id); err != nil {
			return err
		}
		if err := bump(ctx, tx, "security_group_rules", id); err != nil {
			return err
		}
		l, err := s.loadRules(ctx, tx, `id=?`, id)
		if err == nil && len(l) == 1 {
			rl = l[0]
		}
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"security_group_rule": rl.wire()})
	return nil
}

func (s *Service) handleDeleteRule(w http.ResponseWriter, r *http.Request) error {
	c, err := writerOf(r, "delete_security_group_rule")
	if err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		rl, err := s.visibleRule(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM security_group_rules WHERE id=?`, id); err != nil {
			return err
		}
		return bump(ctx, tx, "security_groups", rl.SecurityGroupID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
