package acceptance

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	_ "modernc.org/sqlite"
)

const dbFile = "monostack.db"

// TestKill9KeepsAcknowledgedWrites: eight clients create users as fast as
// they can; the daemon is killed with SIGKILL in the middle. After a
// restart on the same data directory every user whose creation was
// acknowledged (201) is there, and the database is sound, both as the kill
// left it and after a clean stop.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	// A low bcrypt cost, so that the burst measures the store, not hashing;
	// the users get passwords all the same, to check a hash survives.
	d := startTestDaemon(t, "--bcrypt-cost", "4")
	ctx := context.Background()
	_, ic, err := d.login(ctx, d.authOpts("admin", d.passwords["admin"], "admin"))
	if err != nil {
		t.Fatal(err)
	}

	type acked struct{ id, name string }
	const workers = 8
	var (
		mu       sync.Mutex
		ackedAll []acked
		failures = map[string]int{}
		killed   bool
		wg       sync.WaitGroup
	)
	burst, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; burst.Err() == nil; i++ {
				name := fmt.Sprintf("burst-%d-%d", w, i)
				u, err := users.Create(burst, ic, users.CreateOpts{Name: name, DomainID: "default",
					Password: "pw-" + name, Extra: map[string]any{"email": name + "@example.com"}}).Extract()
				mu.Lock()
				switch {
				case err == nil:
					ackedAll = append(ackedAll, acked{u.ID, name})
				case killed:
					failures["after the kill"]++
				default:
					failures[err.Error()]++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the daemon is gone; don't spin
				}
			}
		}()
	}
	time.Sleep(time.Second)
	mu.Lock()
	before := len(ackedAll)
	killed = true // under mu: a failure seen after this may be the kill's doing
	mu.Unlock()
	d.kill()
	killedAt := time.Since(start)
	wg.Wait()
	t.Logf("SIGKILL after %s with %d creations acknowledged; %d acknowledged in all; failures: %v",
		killedAt.Round(time.Millisecond), before, len(ackedAll), failures)
	if before < 20 {
		t.Fatalf("only %d users created in the second before the kill; the burst did not get going", before)
	}
	for what, n := range failures {
		if what != "after the kill" {
			t.Errorf("%d creations failed before the kill: %s", n, what)
		}
	}

	// The database exactly as the kill left it: a copy, checked here, so
	// that the daemon's own recovery is not what is tested.
	crash := filepath.Join(d.root, "crash")
	if err := os.Mkdir(crash, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		if err := copyFile(filepath.Join(d.dataDir, dbFile+suffix), filepath.Join(crash, dbFile+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	checkDB(t, filepath.Join(crash, dbFile), "the database as SIGKILL left it")

	if err := d.start(); err != nil {
		t.Fatalf("restart after SIGKILL: %v", err)
	}
	_, ic, err = d.login(ctx, d.authOpts("admin", d.passwords["admin"], "admin"))
	if err != nil {
		t.Fatalf("authenticate after restart: %v", err)
	}
	pages, err := users.List(ic, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	us, err := users.ExtractUsers(pages)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]users.User{}
	names := map[string]int{}
	for _, u := range us {
		byID[u.ID] = u
		names[u.Name]++
	}
	lost := 0
	for _, a := range ackedAll {
		u, ok := byID[a.id]
		if !ok {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged user %s (%s) is missing after restart", a.name, a.id)
			}
			continue
		}
		if u.Name != a.name || u.Extra["email"] != a.name+"@example.com" {
			t.Errorf("user %s after restart: %+v", a.id, u)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged users lost", lost, len(ackedAll))
	}
	for n, c := range names {
		if c > 1 {
			t.Errorf("user name %s appears %d times", n, c)
		}
	}
	// A password hash written in the burst still checks, and the store takes writes.
	if len(ackedAll) > 0 {
		last := ackedAll[len(ackedAll)-1]
		o := d.authOpts(last.name, "pw-"+last.name, "")
		o.Scope = nil
		if _, _, err := d.login(ctx, o); err != nil {
			t.Errorf("authenticate as %s, created just before the kill: %v", last.name, err)
		}
	}
	if _, err := users.Create(ctx, ic, users.CreateOpts{Name: "after-restart", DomainID: "default"}).Extract(); err != nil {
		t.Errorf("create a user after the restart: %v", err)
	}

	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	checkDB(t, filepath.Join(d.dataDir, dbFile), "the database after restart and clean stop")
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// checkDB opens a monostack database with no daemon on it and runs
// SQLite's integrity and foreign-key checks.
func checkDB(t *testing.T, file, what string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("%s: integrity_check: %v", what, err)
	}
	var res []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		res = append(res, s)
	}
	rows.Close()
	if !slices.Equal(res, []string{"ok"}) {
		t.Errorf("%s: PRAGMA integrity_check: %v", what, res)
	}
	rows, err = db.Query("PRAGMA foreign_key_check")
	if err != nil {
		t.Fatalf("%s: foreign_key_check: %v", what, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if n > 0 {
		t.Errorf("%s: PRAGMA foreign_key_check found %d rows that break a foreign key", what, n)
	}
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table'`).Scan(&tables); err != nil || tables == 0 {
		t.Errorf("%s: %d tables (%v)", what, tables, err)
	}
}

// TestRestartKeepsEverything: a clean restart (SIGTERM, start on the same
// directory and port) keeps what was made, the tokens issued before it and
// the bootstrap passwords; the bootstrap that runs at each start changes
// nothing, so the identity collections read the same before and after.
func TestRestartKeepsEverything(t *testing.T) {
	d := startTestDaemon(t)
	ctx := context.Background()
	apc, ic, err := d.login(ctx, d.authOpts("admin", d.passwords["admin"], "admin"))
	if err != nil {
		t.Fatal(err)
	}
	dpc := d.session(t, "demo").pc
	adminToken, demoToken := apc.Token(), dpc.Token()

	// Things made before the restart.
	p, err := projects.Create(ctx, ic, projects.CreateOpts{Name: "kept", Description: "made before a restart",
		Tags: []string{"keep"}, Extra: map[string]any{"owner": "acceptance"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	u, err := users.Create(ctx, ic, users.CreateOpts{Name: "kept-user", DomainID: "default", DefaultProjectID: p.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	g, err := groups.Create(ctx, ic, groups.CreateOpts{Name: "kept-group", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := users.AddToGroup(ctx, ic, g.ID, u.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	r, err := roles.Create(ctx, ic, roles.CreateOpts{Name: "kept-role"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []roles.AssignOpts{{UserID: u.ID, ProjectID: p.ID}, {GroupID: g.ID, DomainID: "default"}} {
		if err := roles.Assign(ctx, ic, r.ID, a).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}

	files := map[string][]byte{}
	for _, f := range []string{"passwords", "openrc.admin", "openrc.demo", "clouds.yaml"} {
		b, err := os.ReadFile(filepath.Join(d.dataDir, f))
		if err != nil {
			t.Fatalf("%s was not written: %v", f, err)
		}
		files[f] = b
	}
	if !strings.Contains(string(files["openrc.admin"]), d.passwords["admin"]) ||
		!strings.Contains(string(files["openrc.demo"]), d.passwords["demo"]) ||
		!strings.Contains(string(files["clouds.yaml"]), d.authURL()) {
		t.Errorf("openrc/clouds.yaml do not carry the passwords and auth URL")
	}
	before := snapshot(t, d, adminToken)

	for i := 1; i <= 2; i++ {
		if err := d.restart(); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		for f, b := range files {
			now, err := os.ReadFile(filepath.Join(d.dataDir, f))
			if err != nil || string(now) != string(b) {
				t.Errorf("restart %d: %s changed (err %v)", i, f, err)
			}
		}
		// The token from before the restart still works...
		after := snapshot(t, d, adminToken)
		compareSnapshots(t, fmt.Sprintf("restart %d", i), before, after)
		// ...and so does demo's.
		if valid, err := tokens.Validate(ctx, ic, demoToken); err != nil || !valid {
			t.Errorf("restart %d: demo's token from before: valid=%v err=%v", i, valid, err)
		}
		got, err := projects.Get(ctx, ic, p.ID).Extract()
		if err != nil || got.Name != "kept" || !slices.Equal(got.Tags, []string{"keep"}) || got.Extra["owner"] != "acceptance" {
			t.Errorf("restart %d: project %+v %v", i, got, err)
		}
		if err := roles.Validate(ctx, ic, r.ID, roles.ValidateOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
			t.Errorf("restart %d: assignment: %v", i, err)
		}
		if ok, err := users.IsMemberOfGroup(ctx, ic, g.ID, u.ID).Extract(); err != nil || !ok {
			t.Errorf("restart %d: membership: %v %v", i, ok, err)
		}
	}

	// The bootstrap passwords still authenticate.
	for _, user := range []string{"admin", "demo"} {
		if _, _, err := d.login(ctx, d.authOpts(user, d.passwords[user], user)); err != nil {
			t.Errorf("authenticate as %s with the bootstrap password after restarts: %v", user, err)
		}
	}
	// A revocation made before a restart holds after it.
	if err := tokens.Revoke(ctx, ic, demoToken).Err; err != nil {
		t.Fatal(err)
	}
	if err := d.restart(); err != nil {
		t.Fatal(err)
	}
	if valid, err := tokens.Validate(ctx, ic, demoToken); err != nil || valid {
		t.Errorf("a token revoked before the restart: valid=%v err=%v", valid, err)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	checkDB(t, filepath.Join(d.dataDir, dbFile), "the database after clean restarts")
}

// snapshot reads the identity collections as canonical JSON per entry.
func snapshot(t *testing.T, d *daemon, token string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, c := range []struct{ path, key string }{
		{"/v3/users", "users"}, {"/v3/projects", "projects"}, {"/v3/roles", "roles"},
		{"/v3/role_assignments", "role_assignments"}, {"/v3/role_assignments?effective&include_names", "role_assignments"},
		{"/v3/domains", "domains"}, {"/v3/groups", "groups"}, {"/v3/role_inferences", "role_inferences"},
		{"/v3/auth/catalog", "catalog"},
		{"/v3/regions", "regions"}, {"/v3/services", "services"}, {"/v3/endpoints", "endpoints"},
	} {
		code, body := call(t, "GET", d.authURL()+c.path, token, nil)
		catalogAPI := c.key == "regions" || c.key == "services" || c.key == "endpoints"
		if code == http.StatusNotFound && catalogAPI {
			continue // not implemented yet
		}
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", c.path, code, body)
		}
		list, ok := body[c.key].([]any)
		if !ok {
			t.Fatalf("GET %s: no %q list in %v", c.path, c.key, body)
		}
		var entries []string
		for _, e := range list {
			b, err := json.Marshal(e) // maps marshal with sorted keys
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, string(b))
		}
		sort.Strings(entries)
		out[c.path] = entries
	}
	return out
}

func compareSnapshots(t *testing.T, what string, before, after map[string][]string) {
	t.Helper()
	for path, b := range before {
		a := after[path]
		if slices.Equal(a, b) {
			continue
		}
		var gone, added []string
		for _, e := range b {
			if !slices.Contains(a, e) {
				gone = append(gone, e)
			}
		}
		for _, e := range a {
			if !slices.Contains(b, e) {
				added = append(added, e)
			}
		}
		t.Errorf("%s: GET %s differs:\n  only before: %v\n  only after:  %v", what, path, gone, added)
	}
}
