package network

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/monostack/monostack/internal/api"
)

// attrSpec says how an attribute of a resource may be written.
type attrSpec struct {
	post, put bool
	// admin: only a cloud admin may set it (policy).
	admin bool
}

// Attribute sets shared by every standard resource.
var (
	rw       = attrSpec{post: true, put: true}
	postOnly = attrSpec{post: true}
	readOnly = attrSpec{}
	adminRW  = attrSpec{post: true, put: true, admin: true}
)

func withStandard(m map[string]attrSpec) map[string]attrSpec {
	for k, v := range map[string]attrSpec{
		"id": readOnly, "project_id": postOnly, "tenant_id": postOnly, "description": rw,
		"tags": postOnly, "created_at": readOnly, "updated_at": readOnly, "revision_number": readOnly,
	} {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return m
}

// entity is the inner object of a request body ({"network": {...}}),
// kept raw so that each field is checked for its type with Neutron's
// messages.
type entity map[string]json.RawMessage

// readBody reads {"<resource>": {...}} or, when bulk is allowed,
// {"<resource>s": [{...}, ...]}, checking every item's attributes against
// specs: unknown ones, ones not writable in this operation, and ones only
// an admin may set.
func readBody(r *http.Request, c caller, resource string, specs map[string]attrSpec, create, bulk bool) ([]entity, bool, error) {
	b, err := api.ReadBody(r, api.MaxBody)
	if err != nil {
		return nil, false, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, false, badRequest("Resource body required")
	}
	var outer map[string]json.RawMessage
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, false, nerr(http.StatusBadRequest, "MalformedRequestBody", "Malformed request body: cannot understand JSON.")
	}
	if err := json.Unmarshal(b, &outer); err != nil || outer == nil {
		return nil, false, badRequest("Body contains invalid data")
	}
	var items []json.RawMessage
	isBulk := false
	if raw, ok := outer[resource+"s"]; ok && bulk {
		isBulk = true
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false, badRequest("Body contains invalid data")
		}
		if len(items) == 0 {
			return nil, false, badRequest("Resources required")
		}
	} else if _, ok := outer[resource+"s"]; ok {
		return nil, false, badRequest("Bulk operation not supported")
	} else {
		raw, ok := outer[resource]
		if !ok || string(raw) == "null" {
			return nil, false, badRequest("Unable to find '%s' in request body", resource)
		}
		items = []json.RawMessage{raw}
	}
	out := make([]entity, 0, len(items))
	for _, raw := range items {
		var e entity
		if err := json.Unmarshal(raw, &e); err != nil || e == nil {
			// A bulk item may itself be wrapped: {"networks": [{"network": {...}}]}.
			return nil, false, badRequest("Object '%s' contains invalid data", resource)
		}
		if inner, ok := e[resource]; ok && len(e) == 1 && bulk {
			e = nil
			if err := json.Unmarshal(inner, &e); err != nil || e == nil {
				return nil, false, badRequest("Object '%s' contains invalid data", resource)
			}
		}
		if err := checkAttrs(e, c, resource, specs, create); err != nil {
			return nil, false, err
		}
		out = append(out, e)
	}
	return out, isBulk, nil
}

func checkAttrs(e entity, c caller, resource string, specs map[string]attrSpec, create bool) error {
	var unknown []string
	for k := range e {
		if _, ok := specs[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return badRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sp := specs[k]
		if create && !sp.post {
			return badRequest("Attribute '%s' not allowed in POST", k)
		}
		if !create && !sp.put {
			return badRequest("Cannot update read-only attribute %s", k)
		}
		if sp.admin && !c.admin {
			op := "update_"
			if create {
				op = "create_"
			}
			return policyDenied(op + resource + ":" + k)
		}
	}
	return nil
}

func (e entity) has(name string) bool { _, ok := e[name]; return ok }

func (e entity) isNull(name string) bool { return string(e[name]) == "null" }

// shown is a JSON value as upstream's messages show it: strings bare.
func shown(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	v := string(raw)
	if v == "null" {
		return "None"
	}
	if v == "true" || v == "false" {
		return strings.ToUpper(v[:1]) + v[1:]
	}
	if len(v) > 80 {
		v = v[:80] + "..."
	}
	return v
}

// str reads a string attribute of at most max characters (0: no limit).
func (e entity) str(name string, max int) (string, bool, error) {
	raw, ok := e[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, invalidAttr(name, "'%s' is not a valid string", shown(raw))
	}
	if max > 0 && utf8.RuneCountInString(s) > max {
		return "", false, invalidAttr(name, "'%s' exceeds maximum length of %d", s, max)
	}
	return s, true, nil
}

// optStr reads a string attribute that may be null (nil).
func (e entity) optStr(name string, max int) (*string, bool, error) {
	if !e.has(name) {
		return nil, false, nil
	}
	if e.isNull(name) {
		return nil, true, nil
	}
	s, _, err := e.str(name, max)
	return &s, true, err
}

// boolean reads a boolean the way neutron-lib converts one: true/false,
// 0/1 and their string forms.
func (e entity) boolean(name string) (bool, bool, error) {
	raw, ok := e[name]
	if !ok {
		return false, false, nil
	}
	v, err := toBool(raw)
	return v, true, err
}

func toBool(raw json.RawMessage) (bool, error) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	switch strings.ToLower(s) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, invalidInput("'%s' cannot be converted to boolean", shown(raw))
}

// integer reads an integer (or a string of one) within [min, max].
func (e entity) integer(name string, min, max int) (int, bool, error) {
	raw, ok := e[name]
	if !ok {
		return 0, false, nil
	}
	n, err := toInt(raw)
	if err != nil {
		return 0, false, invalidInput("'%s' is not an integer", shown(raw))
	}
	if n < min {
		return 0, false, invalidAttr(name, "'%d' is too small - must be at least '%d'", n, min)
	}
	if n > max {
		return 0, false, invalidAttr(name, "'%d' is too large - must be no larger than '%d'", n, max)
	}
	return n, true, nil
}

func toInt(raw json.RawMessage) (int, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		i, err := strconv.Atoi(string(n))
		return i, err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(s))
}

// strList reads a list of strings; unique requires no repeats.
func (e entity) strList(name string, unique bool, max int) ([]string, bool, error) {
	raw, ok := e[name]
	if !ok {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return []string{}, true, nil
	}
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, false, invalidAttr(name, "'%s' is not a list", shown(raw))
	}
	out := make([]string, 0, len(l))
	for _, item := range l {
		var s string
		if err := json.Unmarshal(item, &s); err != nil {
			return nil, false, invalidAttr(name, "'%s' is not a valid string", shown(item))
		}
		if max > 0 && utf8.RuneCountInString(s) > max {
			return nil, false, invalidAttr(name, "'%s' exceeds maximum length of %d", s, max)
		}
		if unique && slices.Contains(out, s) {
			return nil, false, invalidAttr(name, "Duplicate items in the list: '%s'", s)
		}
		out = append(out, s)
	}
	return out, true, nil
}

// list reads a list of objects.
func (e entity) list(name string) ([]entity, bool, error) {
	raw, ok := e[name]
	if !ok {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return []entity{}, true, nil
	}
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, false, invalidAttr(name, "'%s' is not a list", shown(raw))
	}
	out := make([]entity, 0, len(l))
	for _, item := range l {
		var m entity
		if err := json.Unmarshal(item, &m); err != nil || m == nil {
			return nil, false, invalidAttr(name, "'%s' is not a dictionary", shown(item))
		}
		out = append(out, m)
	}
	return out, true, nil
}

// object reads a JSON object attribute (null is an empty one).
func (e entity) object(name string) (map[string]any, bool, error) {
	raw, ok := e[name]
	if !ok {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return map[string]any{}, true, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false, invalidAttr(name, "'%s' is not a dictionary", shown(raw))
	}
	return m, true, nil
}

// ip reads an IP address attribute.
func (e entity) ip(name string) (netip.Addr, bool, error) {
	s, ok, err := e.str(name, 0)
	if !ok || err != nil {
		if err != nil {
			err = invalidAttr(name, "'%s' is not a valid IP address", shown(e[name]))
		}
		return netip.Addr{}, ok, err
	}
	a, err := parseIP(s)
	if err != nil {
		return netip.Addr{}, true, invalidAttr(name, "'%s' is not a valid IP address", s)
	}
	return a, true, nil
}

// parseIP parses an address, refusing zones and IPv4-mapped forms.
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid address %q", s)
	}
	return a.Unmap(), nil
}

// parseCIDR parses a prefix that must be in its network form.
func parseCIDR(attr, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, err2 := parseIP(s); err2 == nil {
			bits := 32
			if a.Is6() {
				bits = 128
			}
			return netip.Prefix{}, invalidAttr(attr, "'%s' isn't a recognized IP subnet cidr, '%s/%d' is recommended", s, a, bits)
		}
		return netip.Prefix{}, invalidAttr(attr, "'%s' is not a valid IP subnet", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, invalidAttr(attr, "'%s' isn't a recognized IP subnet cidr, '%s' is recommended", s, p.Masked())
	}
	return p, nil
}

func validMAC(s string) (net.HardwareAddr, bool) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 || m[0]&1 == 1 || bytes.Equal(m, make([]byte, 6)) {
		return nil, false
	}
	return m, true
}

// projectFromBody applies project_id/tenant_id of a create: only an admin
// may create on behalf of another project.
func projectFromBody(e entity, c caller) (string, error) {
	pid, hasP, err := e.str("project_id", 255)
	if err != nil {
		return "", err
	}
	tid, hasT, err := e.str("tenant_id", 255)
	if err != nil {
		return "", err
	}
	if hasP && hasT && pid != tid {
		return "", badRequest("Both project_id and tenant_id are specified and they are different")
	}
	if !hasP {
		pid, hasP = tid, hasT
	}
	if !hasP || pid == "" {
		if c.project == "" {
			return "", badRequest("Failed to parse request. Required attribute 'project_id' not specified")
		}
		return c.project, nil
	}
	if pid != c.project && !c.admin {
		return "", badRequest("Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges")
	}
	return pid, nil
}

// tagsFromBody reads the tags of a create.
func tagsFromBody(e entity) ([]string, error) {
	tags, _, err := e.strList("tags", true, maxTagLen)
	if err != nil {
		return nil, err
	}
	if len(tags) > maxTags {
		return nil, badResource("tags", "The number of tags exceed the per-resource limit of %d", maxTags)
	}
	for _, t := range tags {
		if t == "" {
			return nil, invalidAttr("tags", "'' is not a valid string")
		}
	}
	if tags == nil {
		tags = []string{}
	}
	return tags, nil
}

// nameDesc reads name and description.
func nameDesc(e entity, name, desc *string) error {
	if s, ok, err := e.str("name", 255); err != nil {
		return err
	} else if ok {
		*name = s
	}
	if s, ok, err := e.str("description", 255); err != nil {
		return err
	} else if ok {
		*desc = s
	}
	return nil
}
