package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/monostack/monostack/internal/api"
	"slices"
	"testing"
	"time"
)

const tokenTimeLayout = "2006-01-02T15:04:05.000000Z"

func tokenTime(t *testing.T, tok map[string]any, key string) time.Time {
	t.Helper()
	s, _ := tok[key].(string)
	ts, err := time.Parse(tokenTimeLayout, s)
	if err != nil {
		t.Fatalf("%s %q: %v", key, s, err)
	}
	return ts
}

func strList(v any) []string {
	out := []string{}
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func roleNames(tok map[string]any) []string {
	out := []string{}
	l, _ := tok["roles"].([]any)
	for _, x := range l {
		out = append(out, x.(map[string]any)["name"].(string))
	}
	slices.Sort(out)
	return out
}

// craft makes a token directly (for times the API cannot produce, such as
// one already expired).
func (tc *testCloud) craft(p *payload) string {
	tc.t.Helper()
	if len(p.AuditIDs) == 0 {
		p.AuditIDs = []string{newAuditID()}
	}
	if len(p.Methods) == 0 {
		p.Methods = []string{"password"}
	}
	tok, _, err := tc.svc.issue(context.Background(), p)
	if err != nil {
		tc.t.Fatal(err)
	}
	return tok
}

func TestIssuePasswordToken(t *testing.T) {
	tc := newTestCloud(t)
	adminID, adminProject := tc.userID("admin"), tc.projectID("admin")
	users := map[string]map[string]any{
		"by id":               {"id": adminID},
		"by name, domain id":  byName("admin", "default"),
		"by name, domain nam": {"name": "admin", "domain": map[string]any{"name": "Default"}},
	}
	for name, user := range users {
		t.Run(name, func(t *testing.T) {
			before := time.Now().UTC().Truncate(time.Microsecond)
			res := tc.must(201, tc.issue(pwAuth(user, testAdminPassword, projectScope(adminProject))))
			sub := res.Header.Get("X-Subject-Token")
			if sub == "" || len(sub) >= 255 {
				t.Fatalf("X-Subject-Token %q (%d characters)", sub, len(sub))
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			tok := obj(t, res, "token")
			if got := strList(tok["methods"]); !slices.Equal(got, []string{"password"}) {
				t.Errorf("methods %v", got)
			}
			u := tok["user"].(map[string]any)
			if u["id"] != adminID || u["name"] != "admin" {
				t.Errorf("user %v", u)
			}
			if d := u["domain"].(map[string]any); d["id"] != "default" || d["name"] != "Default" {
				t.Errorf("user domain %v", d)
			}
			p := tok["project"].(map[string]any)
			if p["id"] != adminProject || p["name"] != "admin" || p["domain"].(map[string]any)["id"] != "default" {
				t.Errorf("project %v", p)
			}
			if tok["is_domain"] != false {
				t.Errorf("is_domain %v", tok["is_domain"])
			}
			// admin implies member implies reader.
			if got := roleNames(tok); !slices.Equal(got, []string{"admin", "member", "reader"}) {
				t.Errorf("roles %v", got)
			}
			if audit := strList(tok["audit_ids"]); len(audit) != 1 || len(audit[0]) != 22 {
				t.Errorf("audit_ids %v", audit)
			}
			issued, expires := tokenTime(t, tok, "issued_at"), tokenTime(t, tok, "expires_at")
			if issued.Before(before) || issued.After(time.Now().UTC()) {
				t.Errorf("issued_at %v, request made at %v", issued, before)
			}
			if expires.Sub(issued) != time.Hour {
				t.Errorf("expires_at - issued_at = %v, want 1h", expires.Sub(issued))
			}
			cat, ok := tok["catalog"].([]any)
			if !ok || len(cat) == 0 {
				t.Fatalf("catalog %v", tok["catalog"])
			}
			found := false
			for _, c := range cat {
				if c.(map[string]any)["type"] == "identity" {
					found = true
				}
			}
			if !found {
				t.Errorf("no identity service in catalog %v", cat)
			}
			// The token works and validates to the same body.
			v := tc.must(200, tc.validate(sub))
			if v.Header.Get("X-Subject-Token") != sub {
				t.Errorf("validate echoes X-Subject-Token %q", v.Header.Get("X-Subject-Token"))
			}
			vt := obj(t, v, "token")
			for _, k := range []string{"expires_at", "issued_at", "audit_ids", "user", "project", "roles"} {
				if !jsonEqual(vt[k], tok[k]) {
					t.Errorf("validated %s %v, issued %v", k, vt[k], tok[k])
				}
			}
			if !tc.usable(sub) {
				t.Errorf("new token not usable")
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestTokenScopes(t *testing.T) {
	tc := newTestCloud(t)
	adminID, demoID := tc.userID("admin"), tc.userID("demo")
	demoProject := tc.projectID("demo")
	dom := tc.mkDomain("Scoped")
	duser := tc.mkUser("dadmin", dom, "dpw")
	tc.grant("domains/" + dom + "/users/" + duser + "/roles/" + tc.roleID("admin"))
	noDefault := tc.mkUser("nodefault", "default", "ndpw")
	tc.grant("projects/" + demoProject + "/users/" + noDefault + "/roles/" + tc.roleID("reader"))
	// A default project the user has no role on is not used.
	lost := tc.mkUser("lost", "default", "lostpw")
	tc.must(200, tc.do("PATCH", "/identity/v3/users/"+lost, tc.admin, map[string]any{"user": map[string]any{"default_project_id": demoProject}}))

	t.Run("project by name and domain name", func(t *testing.T) {
		_, tok := tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword,
			map[string]any{"project": map[string]any{"name": "demo", "domain": map[string]any{"name": "Default"}}}))
		if tok["project"].(map[string]any)["id"] != demoProject {
			t.Fatalf("project %v", tok["project"])
		}
		if got := roleNames(tok); !slices.Equal(got, []string{"member", "reader"}) {
			t.Errorf("roles %v", got)
		}
	})
	t.Run("domain", func(t *testing.T) {
		sub, tok := tc.mustToken(pwAuth(byName("dadmin", dom), "dpw", domainScope(dom)))
		d, _ := tok["domain"].(map[string]any)
		if d["id"] != dom || d["name"] != "Scoped" {
			t.Fatalf("domain %v", tok["domain"])
		}
		if _, ok := tok["project"]; ok {
			t.Errorf("domain token has a project")
		}
		if got := roleNames(tok); !slices.Equal(got, []string{"admin", "member", "reader"}) {
			t.Errorf("roles %v", got)
		}
		if len(tok["catalog"].([]any)) == 0 {
			t.Errorf("domain token without catalog")
		}
		// By domain name too.
		tc.mustToken(pwAuth(byName("dadmin", dom), "dpw", map[string]any{"domain": map[string]any{"name": "scoped"}}))
		if len(sub) >= 255 {
			t.Errorf("domain token of %d characters", len(sub))
		}
	})
	t.Run("domain without a role", func(t *testing.T) {
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": adminID}, testAdminPassword, domainScope(dom))))
	})
	t.Run("system", func(t *testing.T) {
		sub, tok := tc.mustToken(pwAuth(map[string]any{"id": adminID}, testAdminPassword, systemScope))
		if s, _ := tok["system"].(map[string]any); s["all"] != true {
			t.Fatalf("system %v", tok["system"])
		}
		if _, ok := tok["project"]; ok {
			t.Errorf("system token has a project")
		}
		if got := roleNames(tok); !slices.Contains(got, "admin") {
			t.Errorf("roles %v", got)
		}
		// A system admin administers the cloud.
		tc.must(200, tc.do("GET", "/identity/v3/users", sub, nil))
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": demoID}, testDemoPassword, systemScope)))
		tc.fault(400, tc.issue(pwAuth(map[string]any{"id": adminID}, testAdminPassword, map[string]any{"system": map[string]any{"all": false}})))
	})
	t.Run("explicitly unscoped", func(t *testing.T) {
		// demo has a default project, which "unscoped" overrides.
		_, tok := tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword, "unscoped"))
		for _, k := range []string{"project", "domain", "system", "roles"} {
			if _, ok := tok[k]; ok {
				t.Errorf("unscoped token has %q: %v", k, tok[k])
			}
		}
		if c, ok := tok["catalog"].([]any); ok && len(c) != 0 {
			t.Errorf("unscoped token with a catalog: %v", c)
		}
	})
	t.Run("default project", func(t *testing.T) {
		_, tok := tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword, nil))
		if p, _ := tok["project"].(map[string]any); p["id"] != demoProject {
			t.Fatalf("no-scope token of demo scoped to %v, want its default project", tok["project"])
		}
	})
	t.Run("no default project", func(t *testing.T) {
		_, tok := tc.mustToken(pwAuth(map[string]any{"id": noDefault}, "ndpw", nil))
		if _, ok := tok["project"]; ok {
			t.Fatalf("token scoped to %v", tok["project"])
		}
	})
	t.Run("default project without a role", func(t *testing.T) {
		_, tok := tc.mustToken(pwAuth(map[string]any{"id": lost}, "lostpw", nil))
		if _, ok := tok["project"]; ok {
			t.Fatalf("token scoped to %v", tok["project"])
		}
	})
	t.Run("project without a role", func(t *testing.T) {
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": demoID}, testDemoPassword, projectScope(tc.projectID("admin")))))
	})
	t.Run("unknown project", func(t *testing.T) {
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": demoID}, testDemoPassword, projectScope(newID()))))
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": demoID}, testDemoPassword,
			map[string]any{"project": map[string]any{"name": "demo", "domain": map[string]any{"name": "nowhere"}}})))
	})
	t.Run("two scopes", func(t *testing.T) {
		tc.fault(400, tc.issue(pwAuth(map[string]any{"id": adminID}, testAdminPassword,
			map[string]any{"project": map[string]any{"id": demoProject}, "system": map[string]any{"all": true}})))
	})
}

func TestNoCatalog(t *testing.T) {
	tc := newTestCloud(t)
	body := pwAuth(map[string]any{"id": tc.userID("demo")}, testDemoPassword, projectScope(tc.projectID("demo")))
	res := tc.must(201, tc.issue(body, "nocatalog"))
	if _, ok := obj(t, res, "token")["catalog"]; ok {
		t.Fatalf("?nocatalog token has a catalog: %s", res.Body)
	}
	sub := res.Header.Get("X-Subject-Token")
	if _, ok := obj(t, tc.must(200, tc.validate(sub, "nocatalog=1")), "token")["catalog"]; ok {
		t.Errorf("validate ?nocatalog has a catalog")
	}
	if c, _ := obj(t, tc.must(200, tc.validate(sub)), "token")["catalog"].([]any); len(c) == 0 {
		t.Errorf("validate without ?nocatalog has no catalog")
	}
	// ?nocatalog=false keeps it.
	res = tc.must(201, tc.issue(body, "nocatalog=false"))
	if c, _ := obj(t, res, "token")["catalog"].([]any); len(c) == 0 {
		t.Errorf("?nocatalog=false token has no catalog")
	}
	// /v3/auth/catalog answers the same catalog.
	cat := tc.must(200, tc.do("GET", "/identity/v3/auth/catalog", sub, nil))
	if !jsonEqual(cat.JSON(t)["catalog"], obj(t, res, "token")["catalog"]) {
		t.Errorf("auth/catalog %s differs from the token's", cat.Body)
	}
	unscoped, _ := tc.mustToken(pwAuth(map[string]any{"id": tc.userID("demo")}, testDemoPassword, "unscoped"))
	tc.fault(403, tc.do("GET", "/identity/v3/auth/catalog", unscoped, nil))
}

func TestValidateToken(t *testing.T) {
	tc := newTestCloud(t)
	t.Run("HEAD", func(t *testing.T) {
		res := tc.must(200, tc.do("HEAD", tokensPath, tc.admin, nil, "X-Subject-Token", tc.demo))
		if len(res.Body) != 0 {
			t.Errorf("HEAD body %q", res.Body)
		}
		tc.must(404, tc.do("HEAD", tokensPath, tc.admin, nil, "X-Subject-Token", tc.demo+"x"))
	})
	t.Run("own token", func(t *testing.T) {
		tc.must(200, tc.do("GET", tokensPath, tc.demo, nil, "X-Subject-Token", tc.demo))
	})
	t.Run("someone else's token", func(t *testing.T) {
		tc.fault(403, tc.do("GET", tokensPath, tc.demo, nil, "X-Subject-Token", tc.admin))
		tc.fault(403, tc.do("DELETE", tokensPath, tc.demo, nil, "X-Subject-Token", tc.admin))
	})
	t.Run("no subject", func(t *testing.T) {
		tc.fault(400, tc.do("GET", tokensPath, tc.admin, nil))
	})
	t.Run("no auth", func(t *testing.T) {
		res := tc.fault(401, tc.do("GET", tokensPath, "", nil, "X-Subject-Token", tc.demo))
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, sub := range []string{"x", tc.demo[:len(tc.demo)-4] + "AAAA", string(bytes.Repeat([]byte("A"), 2000)), "gAAAAA%%%"} {
			tc.fault(404, tc.validate(sub))
			tc.fault(401, tc.do("GET", "/identity/v3/auth/projects", sub, nil))
		}
	})
	t.Run("expired", func(t *testing.T) {
		now := time.Now().UTC()
		p := &payload{UserID: tc.userID("demo"), ProjectID: tc.projectID("demo"), IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
		old := tc.craft(p)
		tc.fault(404, tc.validate(old))
		tc.fault(401, tc.do("GET", "/identity/v3/auth/projects", old, nil))
		for _, q := range []string{"allow_expired=true", "allow_expired=1", "allow_expired"} {
			tok := obj(t, tc.must(200, tc.validate(old, q)), "token")
			if !tokenTime(t, tok, "expires_at").Equal(p.ExpiresAt.Truncate(time.Microsecond)) {
				t.Errorf("expires_at %v, want %v", tok["expires_at"], p.ExpiresAt)
			}
		}
		tc.fault(404, tc.validate(old, "allow_expired=false"))
		// Not beyond the allow_expired window.
		ancient := tc.craft(&payload{UserID: tc.userID("demo"), IssuedAt: now.Add(-50 * time.Hour), ExpiresAt: now.Add(-49 * time.Hour)})
		tc.fault(404, tc.validate(ancient, "allow_expired=true"))
		// An expired token cannot be rescoped.
		tc.fault(401, tc.issue(tokenAuth(old, projectScope(tc.projectID("demo")))))
	})
}

func TestRevokeToken(t *testing.T) {
	tc := newTestCloud(t)
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")
	other, _ := tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword, projectScope(demoProject)))
	// Used once, so that a cached validation must be dropped too.
	tc.must(200, tc.validate(tc.demo))
	tc.must(204, tc.do("DELETE", tokensPath, tc.demo, nil, "X-Subject-Token", tc.demo))
	tc.fault(404, tc.validate(tc.demo))
	tc.fault(404, tc.validate(tc.demo, "allow_expired=true"))
	if tc.usable(tc.demo) {
		t.Fatal("revoked token still usable")
	}
	tc.fault(401, tc.issue(tokenAuth(tc.demo, nil)))
	// A second revocation: the token is not found.
	tc.fault(404, tc.do("DELETE", tokensPath, tc.admin, nil, "X-Subject-Token", tc.demo))
	// The user's other tokens are untouched.
	if !tc.usable(other) {
		t.Fatal("revoking one token revoked another")
	}
	// A cloud admin may revoke anyone's token; a cloud reader may not.
	_, reader := tc.newUserToken("auditor", "reader", tc.projectID("admin"))
	tc.must(200, tc.do("GET", tokensPath, reader, nil, "X-Subject-Token", other))
	tc.fault(403, tc.do("DELETE", tokensPath, reader, nil, "X-Subject-Token", other))
	tc.must(204, tc.do("DELETE", tokensPath, tc.admin, nil, "X-Subject-Token", other))
	if tc.usable(other) {
		t.Fatal("token revoked by the admin still usable")
	}
	// The revocation survives a restart of the service.
	svc, err := New(context.Background(), tc.db, tc.keys, tc.svc.cfg, tc.svc.log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.validate(context.Background(), other, false); !api.IsNotFound(err) {
		t.Fatalf("revoked token after restart: %v", err)
	}
}

func TestRescope(t *testing.T) {
	tc := newTestCloud(t)
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")
	unscoped, ut := tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword, "unscoped"))
	time.Sleep(2 * time.Millisecond)
	scoped, st := tc.mustToken(tokenAuth(unscoped, projectScope(demoProject)))
	if st["project"].(map[string]any)["id"] != demoProject {
		t.Fatalf("rescoped to %v", st["project"])
	}
	if st["expires_at"] != ut["expires_at"] {
		t.Errorf("rescoped expires_at %v, parent's %v", st["expires_at"], ut["expires_at"])
	}
	if !tokenTime(t, st, "issued_at").After(tokenTime(t, ut, "issued_at")) {
		t.Errorf("rescoped issued_at %v not after parent's %v", st["issued_at"], ut["issued_at"])
	}
	ua, sa := strList(ut["audit_ids"]), strList(st["audit_ids"])
	if len(sa) != 2 || sa[1] != ua[0] || sa[0] == ua[0] {
		t.Errorf("rescoped audit_ids %v, parent's %v", sa, ua)
	}
	if m := strList(st["methods"]); !sameSet(m, []string{"password", "token"}) {
		t.Errorf("rescoped methods %v", m)
	}
	// Rescoping again keeps the chain's first audit id.
	_, st2 := tc.mustToken(tokenAuth(scoped, "unscoped"))
	if sa2 := strList(st2["audit_ids"]); len(sa2) != 2 || sa2[1] != ua[0] || sa2[0] == sa[0] {
		t.Errorf("twice rescoped audit_ids %v, chain %v", sa2, ua)
	}
	if st2["expires_at"] != ut["expires_at"] {
		t.Errorf("twice rescoped expires_at %v, want %v", st2["expires_at"], ut["expires_at"])
	}
	// A token close to expiry gives a token that expires with it.
	now := time.Now().UTC()
	short := tc.craft(&payload{UserID: demoID, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)})
	_, rt := tc.mustToken(tokenAuth(short, projectScope(demoProject)))
	if got := tokenTime(t, rt, "expires_at"); !got.Equal(now.Add(5 * time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("rescoped short token expires at %v, want %v", got, now.Add(5*time.Minute))
	}
	// Scopes still need roles.
	tc.fault(401, tc.issue(tokenAuth(unscoped, projectScope(tc.projectID("admin")))))
	// A system token cannot become a project or domain token.
	sys, _ := tc.mustToken(pwAuth(map[string]any{"id": tc.userID("admin")}, testAdminPassword, systemScope))
	tc.fault(403, tc.issue(tokenAuth(sys, projectScope(tc.projectID("admin")))))
	// A method named twice counts once.
	twice := tokenAuth(unscoped, nil)
	twice["auth"].(map[string]any)["identity"].(map[string]any)["methods"] = []string{"token", "token"}
	if _, tt := tc.mustToken(twice); len(strList(tt["audit_ids"])) != 2 {
		t.Errorf("audit_ids of a token made with [token, token]: %v", tt["audit_ids"])
	}
	// Bad tokens.
	tc.fault(401, tc.issue(tokenAuth("nonsense", nil)))
	tc.fault(400, tc.issue(map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}}}}))
	tc.fault(400, tc.issue(tokenAuth("", nil)))
}

func TestTokenLength(t *testing.T) {
	tc := newTestCloud(t)
	adminID := tc.userID("admin")
	dom := tc.mkDomain("Long")
	tc.grant("domains/" + dom + "/users/" + adminID + "/roles/" + tc.roleID("admin"))
	tc.grant("domains/default/users/" + adminID + "/roles/" + tc.roleID("admin"))
	scopes := []any{"unscoped", nil, projectScope(tc.projectID("demo")), domainScope(dom), domainScope("default"), systemScope}
	tc.grant("projects/" + tc.projectID("demo") + "/users/" + adminID + "/roles/" + tc.roleID("member"))
	for _, sc := range scopes {
		tok, _ := tc.mustToken(pwAuth(map[string]any{"id": adminID}, testAdminPassword, sc))
		if len(tok) >= 255 {
			t.Errorf("token for scope %v has %d characters", sc, len(tok))
		}
		re, _ := tc.mustToken(tokenAuth(tok, sc))
		if len(re) >= 255 {
			t.Errorf("rescoped token for scope %v has %d characters", sc, len(re))
		}
	}
	res := tc.must(201, tc.do("POST", "/identity/v3/users/"+adminID+"/application_credentials", tc.admin,
		map[string]any{"application_credential": map[string]any{"name": "len"}}))
	ac := obj(t, res, "application_credential")
	tok, _ := tc.mustToken(appCredAuth(map[string]any{"id": ac["id"], "secret": ac["secret"]}))
	if len(tok) >= 255 {
		t.Errorf("application credential token has %d characters", len(tok))
	}
}

func TestKeyRotation(t *testing.T) {
	tc := newTestCloud(t)
	body := pwAuth(map[string]any{"id": tc.userID("demo")}, testDemoPassword, nil)
	seen, _ := tc.mustToken(body)
	unseen, _ := tc.mustToken(body) // never validated, so never cached
	if err := tc.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	// One rotation: the old primary is a secondary and still decrypts.
	tc.must(200, tc.validate(seen))
	fresh, _ := tc.mustToken(body)
	fresh2, _ := tc.mustToken(body)
	if err := tc.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	tc.must(200, tc.validate(fresh))
	if err := tc.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	// Three rotations later the key that made the first tokens is gone,
	// and with three keys kept, so is the one of the second.
	for _, tok := range []string{unseen, fresh2} {
		tc.fault(404, tc.validate(tok))
		if tc.usable(tok) {
			t.Fatal("token of a retired key still usable")
		}
	}
	// New tokens work.
	now, _ := tc.mustToken(body)
	tc.must(200, tc.validate(now))
}

// TestRevocationEffects: every change that takes a user's access away
// invalidates the tokens already issued, at once.
func TestRevocationEffects(t *testing.T) {
	setup := func(t *testing.T) (tc *testCloud, uid, pid, tok, unscoped string) {
		tc = newTestCloud(t)
		pid = tc.mkProject("victim-project", "", "")
		uid, tok = tc.newUserToken("victim", "member", pid)
		unscoped, _ = tc.mustToken(pwAuth(map[string]any{"id": uid}, "victim-pw", "unscoped"))
		// Validate both once so that cached validations are in play.
		tc.must(200, tc.validate(tok))
		tc.must(200, tc.validate(unscoped))
		return
	}
	gone := func(tc *testCloud, toks ...string) {
		tc.t.Helper()
		for _, tok := range toks {
			tc.fault(404, tc.validate(tok))
			if tc.usable(tok) {
				tc.t.Fatal("token still usable")
			}
		}
	}
	t.Run("password change", func(t *testing.T) {
		tc, uid, pid, tok, unscoped := setup(t)
		path := "/identity/v3/users/" + uid + "/password"
		// The wrong original password changes nothing.
		res := tc.fault(401, tc.do("POST", path, tok, map[string]any{"user": map[string]any{"original_password": "wrong", "password": "new-pw"}}))
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		tc.must(200, tc.validate(tok))
		// Not someone else's password.
		tc.fault(403, tc.do("POST", "/identity/v3/users/"+tc.userID("admin")+"/password", tok,
			map[string]any{"user": map[string]any{"original_password": testAdminPassword, "password": "x"}}))
		tc.must(204, tc.do("POST", path, tok, map[string]any{"user": map[string]any{"original_password": "victim-pw", "password": "new-pw"}}))
		gone(tc, tok, unscoped)
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": uid}, "victim-pw", nil)))
		fresh, _ := tc.mustToken(pwAuth(map[string]any{"id": uid}, "new-pw", projectScope(pid)))
		if !tc.usable(fresh) {
			t.Fatal("token made with the new password not usable")
		}
	})
	t.Run("password set by admin", func(t *testing.T) {
		tc, uid, _, tok, unscoped := setup(t)
		tc.must(200, tc.do("PATCH", "/identity/v3/users/"+uid, tc.admin, map[string]any{"user": map[string]any{"password": "other"}}))
		gone(tc, tok, unscoped)
	})
	t.Run("other user changes are harmless", func(t *testing.T) {
		tc, uid, _, tok, unscoped := setup(t)
		tc.must(200, tc.do("PATCH", "/identity/v3/users/"+uid, tc.admin, map[string]any{"user": map[string]any{"email": "v@example.com"}}))
		tc.must(200, tc.validate(tok))
		tc.must(200, tc.validate(unscoped))
	})
	t.Run("user disabled", func(t *testing.T) {
		tc, uid, pid, tok, unscoped := setup(t)
		tc.must(200, tc.do("PATCH", "/identity/v3/users/"+uid, tc.admin, map[string]any{"user": map[string]any{"enabled": false}}))
		gone(tc, tok, unscoped)
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": uid}, "victim-pw", nil)))
		// Enabling again lets the user in, but old tokens stay revoked.
		tc.must(200, tc.do("PATCH", "/identity/v3/users/"+uid, tc.admin, map[string]any{"user": map[string]any{"enabled": true}}))
		gone(tc, tok, unscoped)
		tc.mustToken(pwAuth(map[string]any{"id": uid}, "victim-pw", projectScope(pid)))
	})
	t.Run("user deleted", func(t *testing.T) {
		tc, uid, _, tok, unscoped := setup(t)
		tc.must(204, tc.do("DELETE", "/identity/v3/users/"+uid, tc.admin, nil))
		gone(tc, tok, unscoped)
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": uid}, "victim-pw", nil)))
	})
	t.Run("project disabled", func(t *testing.T) {
		tc, uid, pid, tok, unscoped := setup(t)
		tc.must(200, tc.do("PATCH", "/identity/v3/projects/"+pid, tc.admin, map[string]any{"project": map[string]any{"enabled": false}}))
		gone(tc, tok)
		// The user's unscoped token is not about the project.
		tc.must(200, tc.validate(unscoped))
		tc.fault(401, tc.issue(pwAuth(map[string]any{"id": uid}, "victim-pw", projectScope(pid))))
		tc.fault(401, tc.issue(tokenAuth(unscoped, projectScope(pid))))
	})
	t.Run("project deleted", func(t *testing.T) {
		tc, _, pid, tok, unscoped := setup(t)
		tc.must(204, tc.do("DELETE", "/identity/v3/projects/"+pid, tc.admin, nil))
		gone(tc, tok)
		tc.must(200, tc.validate(unscoped))
	})
	t.Run("role removed", func(t *testing.T) {
		tc, uid, pid, tok, unscoped := setup(t)
		tc.must(204, tc.do("DELETE", "/identity/v3/projects/"+pid+"/users/"+uid+"/roles/"+tc.roleID("member"), tc.admin, nil))
		gone(tc, tok)
		tc.must(200, tc.validate(unscoped))
		tc.fault(401, tc.issue(tokenAuth(unscoped, projectScope(pid))))
	})
	t.Run("role narrowed", func(t *testing.T) {
		// Roles are computed at validation: a token loses a role the
		// moment the assignment goes.
		tc, uid, pid, tok, _ := setup(t)
		tc.grant("projects/" + pid + "/users/" + uid + "/roles/" + tc.roleID("reader"))
		tc.must(204, tc.do("DELETE", "/identity/v3/projects/"+pid+"/users/"+uid+"/roles/"+tc.roleID("member"), tc.admin, nil))
		if got := roleNames(obj(t, tc.must(200, tc.validate(tok)), "token")); !slices.Equal(got, []string{"reader"}) {
			t.Errorf("roles after removal %v", got)
		}
	})
	t.Run("role deleted", func(t *testing.T) {
		tc, uid, pid, _, _ := setup(t)
		custom := tc.mkRole("custom")
		tc.grant("projects/" + pid + "/users/" + uid + "/roles/" + custom)
		tc.must(204, tc.do("DELETE", "/identity/v3/projects/"+pid+"/users/"+uid+"/roles/"+tc.roleID("member"), tc.admin, nil))
		tok, _ := tc.mustToken(pwAuth(map[string]any{"id": uid}, "victim-pw", projectScope(pid)))
		tc.must(200, tc.validate(tok))
		tc.must(204, tc.do("DELETE", "/identity/v3/roles/"+custom, tc.admin, nil))
		gone(tc, tok)
	})
	t.Run("group membership removed", func(t *testing.T) {
		tc, uid, pid, tok, _ := setup(t)
		g := tc.mkGroup("team", "default")
		tc.grant("projects/" + pid + "/groups/" + g + "/roles/" + tc.roleID("admin"))
		tc.must(204, tc.do("PUT", "/identity/v3/groups/"+g+"/users/"+uid, tc.admin, nil))
		if got := roleNames(obj(t, tc.must(200, tc.validate(tok)), "token")); !slices.Contains(got, "admin") {
			t.Fatalf("group role not in token: %v", got)
		}
		tc.must(204, tc.do("DELETE", "/identity/v3/groups/"+g+"/users/"+uid, tc.admin, nil))
		if got := roleNames(obj(t, tc.must(200, tc.validate(tok)), "token")); slices.Contains(got, "admin") {
			t.Fatalf("group role still in token after leaving the group: %v", got)
		}
	})
	t.Run("domain disabled", func(t *testing.T) {
		tc := newTestCloud(t)
		dom := tc.mkDomain("Doomed")
		uid := tc.mkUser("dweller", dom, "dpw")
		pid := tc.mkProject("home", dom, "")
		tc.grant("projects/" + pid + "/users/" + uid + "/roles/" + tc.roleID("member"))
		tok, _ := tc.mustToken(pwAuth(map[string]any{"id": uid}, "dpw", projectScope(pid)))
		tc.must(200, tc.validate(tok))
		// A Default user's token on a project of the domain dies too.
		dpid := tc.userID("demo")
		tc.grant("projects/" + pid + "/users/" + dpid + "/roles/" + tc.roleID("member"))
		demoThere, _ := tc.mustToken(pwAuth(map[string]any{"id": dpid}, testDemoPassword, projectScope(pid)))
		tc.must(200, tc.do("PATCH", "/identity/v3/domains/"+dom, tc.admin, map[string]any{"domain": map[string]any{"enabled": false}}))
		gone(tc, tok, demoThere)
		if !tc.usable(tc.demo) {
			t.Fatal("disabling another domain revoked demo's token")
		}
		tc.fault(401, tc.issue(pwAuth(byName("dweller", dom), "dpw", nil)))
	})
}

// TestAuthFailure: an unknown user and a wrong password are the same 401.
func TestAuthFailure(t *testing.T) {
	tc := newTestCloud(t)
	noPassword := tc.mkUser("nopw", "default", "")
	disabled := tc.mkUser("off", "default", "offpw")
	tc.must(200, tc.do("PATCH", "/identity/v3/users/"+disabled, tc.admin, map[string]any{"user": map[string]any{"enabled": false}}))
	cases := map[string]map[string]any{
		"wrong password":    pwAuth(byName("demo", "default"), "wrong", nil),
		"unknown user":      pwAuth(byName("nobody", "default"), testDemoPassword, nil),
		"unknown user id":   pwAuth(map[string]any{"id": newID()}, testDemoPassword, nil),
		"unknown domain":    pwAuth(map[string]any{"name": "demo", "domain": map[string]any{"name": "Nowhere"}}, testDemoPassword, nil),
		"empty password":    pwAuth(byName("demo", "default"), "", nil),
		"user without one":  pwAuth(map[string]any{"id": noPassword}, "", nil),
		"disabled user":     pwAuth(map[string]any{"id": disabled}, "offpw", nil),
		"long password":     pwAuth(byName("demo", "default"), string(bytes.Repeat([]byte("p"), 10000)), nil),
		"another's project": pwAuth(byName("demo", "default"), "wrong", projectScope(tc.projectID("admin"))),
	}
	var first response
	for name, body := range cases {
		res := tc.issue(body)
		checkFault(t, res, 401)
		if res.Header.Get("X-Subject-Token") != "" {
			t.Errorf("%s: X-Subject-Token on a failure", name)
		}
		if res.Header.Get("WWW-Authenticate") != `Keystone uri="`+tc.srv.URL+`/identity"` {
			t.Errorf("%s: WWW-Authenticate %q", name, res.Header.Get("WWW-Authenticate"))
		}
		if name == "disabled user" {
			continue // Keystone says so
		}
		if first.Body == nil {
			first = res
		} else if !bytes.Equal(res.Body, first.Body) {
			t.Errorf("%s: body %s differs from %s", name, res.Body, first.Body)
		}
	}
	// Unsupported methods are 401 too.
	res := tc.issue(map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"totp"}}}})
	checkFault(t, res, 401)
	// Two methods naming different users.
	body := pwAuth(byName("demo", "default"), testDemoPassword, nil)
	id := body["auth"].(map[string]any)["identity"].(map[string]any)
	id["methods"] = []string{"password", "token"}
	id["token"] = map[string]any{"id": tc.admin}
	checkFault(t, tc.issue(body), 401)
	// Two methods naming the same user are fine.
	id["token"] = map[string]any{"id": tc.demo}
	_, tok := tc.mustToken(body)
	if m := strList(tok["methods"]); !sameSet(m, []string{"password", "token"}) {
		t.Errorf("methods %v", m)
	}
}
