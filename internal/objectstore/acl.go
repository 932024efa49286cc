package objectstore

import (
	"net/url"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// Headers of a container's ACLs.
const (
	hdrRead  = "X-Container-Read"
	hdrWrite = "X-Container-Write"
)

// operatorRoles own the accounts of their project (keystoneauth's
// operator_roles, with DevStack's member); readerRoles may read them.
var (
	operatorRoles      = []string{"admin", "member", "swiftoperator"}
	readerRoles        = []string{"reader"}
	resellerAdminRoles = []string{"reselleradmin"}
)

// cleanACL normalises an X-Container-Read or -Write value as Swift does
// (".ref:*" becomes ".r:*", blanks go), refusing what it cannot mean.
func cleanACL(header, value string) (string, error) {
	write := strings.Contains(strings.ToLower(header), "write")
	var out []string
	for _, raw := range strings.Split(value, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		first, second, ok := strings.Cut(raw, ":")
		if !ok {
			out = append(out, raw)
			continue
		}
		first, second = strings.TrimSpace(first), strings.TrimSpace(second)
		if first == "" || !strings.HasPrefix(first, ".") {
			out = append(out, raw)
			continue
		}
		switch first {
		case ".r", ".ref", ".referer", ".referrer":
			if write {
				return "", errBadRequest("Referrers not allowed in write ACL: '%s'", raw)
			}
			negate := false
			if strings.HasPrefix(second, "-") {
				negate = true
				second = strings.TrimSpace(second[1:])
			}
			if second != "" && second != "*" && strings.HasPrefix(second, "*") {
				second = strings.TrimSpace(second[1:])
			}
			if second == "" || second == "." {
				return "", errBadRequest("No host/domain value after referrer designation in ACL: '%s'", raw)
			}
			if negate {
				second = "-" + second
			}
			out = append(out, ".r:"+second)
		default:
			return "", errBadRequest("Unknown designator '%s' in ACL: '%s'", first, raw)
		}
	}
	return strings.Join(out, ","), nil
}

// parseACL splits a cleaned ACL into referrer designations and groups.
func parseACL(acl string) (referrers, groups []string) {
	if acl == "" {
		return nil, nil
	}
	for _, v := range strings.Split(acl, ",") {
		if r, ok := strings.CutPrefix(v, ".r:"); ok {
			referrers = append(referrers, r)
		} else if u, err := url.PathUnescape(v); err == nil {
			groups = append(groups, u)
		} else {
			groups = append(groups, v)
		}
	}
	return referrers, groups
}

// referrerAllowed: does the Referer header's host pass the referrer ACL?
func referrerAllowed(referer string, acl []string) bool {
	if len(acl) == 0 {
		return false
	}
	host := "unknown"
	if u, err := url.Parse(referer); err == nil && u.Hostname() != "" {
		host = strings.ToLower(u.Hostname())
	}
	allow := false
	for _, m := range acl {
		if neg, ok := strings.CutPrefix(m, "-"); ok {
			if neg == host || strings.HasPrefix(neg, ".") && strings.HasSuffix(host, neg) {
				allow = false
			}
		} else if m == "*" || m == host || strings.HasPrefix(m, ".") && strings.HasSuffix(host, m) {
			allow = true
		}
	}
	return allow
}

// access is what a request wants to do.
type access int

const (
	accountRead    access = iota // HEAD/GET an account
	accountWrite                 // POST an account
	containerRead                // HEAD/GET (list) a container: the read ACL
	containerWrite               // PUT/POST/DELETE a container: owners only
	objectRead                   // HEAD/GET an object: the read ACL
	objectWrite                  // PUT/POST/DELETE an object: the write ACL
)

func (a access) reads() bool { return a == accountRead || a == containerRead || a == objectRead }

func hasAnyRole(c *api.Credentials, roles []string) bool {
	for _, r := range c.Roles {
		for _, want := range roles {
			if strings.EqualFold(r, want) {
				return true
			}
		}
	}
	return false
}

// authorize decides a request on account (and container c, nil when it
// does not exist or is not involved) as keystoneauth does:
//
//   - a TempURL grants what its signature covers;
//   - ResellerAdmin and cloud admins own every account; system readers
//     read everything;
//   - a container's ACL grants its read or write to project:user pairs
//     (ids or names, * for any), role names and project ids, and, for
//     reads, to referrers (.r:*; listing needs .rlistings too);
//   - operators (admin, member, SwiftOperator) of the account's project own
//     it; its readers read it.
//
// Denied requests are 403, or 401 without a token. owner says whether the
// caller owns the account (may see and set ACLs and keys).
func (rq *request) authorize(account string, c *Container, want access) (owner bool, err error) {
	if g := rq.tempURL; g != nil {
		if account != g.account || g.container != "" && (c == nil || c.Name != g.container) {
			return false, errUnauthorized()
		}
		return false, nil
	}
	cr := rq.creds
	var referrers, groups []string
	aclOn := c != nil && (want == containerRead || want == objectRead || want == objectWrite)
	if aclOn {
		if want == objectWrite {
			referrers, groups = parseACL(c.Meta[hdrWrite])
		} else {
			referrers, groups = parseACL(c.Meta[hdrRead])
		}
	}
	rlistings := false
	for _, g := range groups {
		if g == ".rlistings" {
			rlistings = true
		}
	}
	// Access without a confirmed identity: referrers (reads only).
	unconfirmed := 0 // 1 allowed, -1 refused, 0 undecided
	if aclOn && want != objectWrite && referrerAllowed(rq.r.Header.Get("Referer"), referrers) {
		if want == objectRead || rlistings {
			unconfirmed = 1
		} else {
			unconfirmed = -1
		}
	}
	if cr == nil {
		if unconfirmed == 1 {
			return false, nil
		}
		return false, errUnauthorized()
	}
	if hasAnyRole(cr, resellerAdminRoles) || cr.CloudAdmin() {
		return true, nil
	}
	if cr.System && cr.HasRole("reader") && want.reads() {
		return false, nil
	}
	if aclOn && matchACLUser(groups, cr) {
		return false, nil
	}
	if unconfirmed == 1 {
		return false, nil
	}
	if project, ok := projectOf(account); ok && cr.ProjectID == project {
		if hasAnyRole(cr, operatorRoles) {
			return true, nil
		}
		if hasAnyRole(cr, readerRoles) && want.reads() {
			return false, nil
		}
	}
	if aclOn && unconfirmed == 0 {
		for _, g := range groups {
			if g != "" && (hasAnyRole(cr, []string{g}) || g == cr.ProjectID) {
				return false, nil
			}
		}
	}
	return false, errForbidden()
}

// matchACLUser: does an ACL name the caller as project:user (ids, or names
// when both are in the default domain, or *)?
func matchACLUser(groups []string, cr *api.Credentials) bool {
	projects := []string{cr.ProjectID, "*"}
	users := []string{cr.UserID, "*"}
	if cr.UserDomainID == "default" && cr.ProjectDomainID == "default" {
		projects = append(projects, cr.ProjectName)
		users = append(users, cr.UserName)
	}
	for _, g := range groups {
		p, u, ok := strings.Cut(g, ":")
		if !ok || cr.ProjectID == "" {
			continue
		}
		pm, um := false, false
		for _, x := range projects {
			pm = pm || x != "" && x == p
		}
		for _, x := range users {
			um = um || x != "" && x == u
		}
		if pm && um {
			return true
		}
	}
	return false
}

// denyAnonymous is 401 or 403 as Swift's denied_response.
func (rq *request) denied() error {
	if rq.creds == nil && rq.tempURL == nil {
		return errUnauthorized()
	}
	return errForbidden()
}
