package volume

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blockdev/fake"
	"github.com/monostack/monostack/internal/testcloud"
)

// testCloud is a real identity service and this volume service on one
// temporary SQLite database, the volumes' bytes in an in-memory block
// store, served together by httptest.
type testCloud struct {
	*testcloud.Cloud
	blocks *fake.Store
	cfg    Config
	svc    *Service
	// Tokens and their projects: admin (cloud admin, project admin) and
	// demo (member of demo).
	admin, demo               string
	adminProject, demoProject string
	// projects are the projects of the tokens (those of addMember too).
	projects map[string]string
}

type response = testcloud.Response

func newTestCloud(t *testing.T, cfg Config) *testCloud {
	t.Helper()
	c := testcloud.New(t, testcloud.Options{})
	tc := &testCloud{Cloud: c, blocks: fake.New(), cfg: cfg, admin: c.Admin, demo: c.Demo,
		adminProject: c.AdminProject, demoProject: c.DemoProject,
		projects: map[string]string{c.Admin: c.AdminProject, c.Demo: c.DemoProject}}
	tc.start(t)
	return tc
}

// start opens the volume service on the cloud's database and block store
// and resumes what a previous run left, as monostack does at start.
func (tc *testCloud) start(t *testing.T) {
	t.Helper()
	svc, err := New(context.Background(), tc.DB, tc.cfg, tc.blocks, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	tc.svc = svc
	tc.Mount("/volume", svc.Router(tc.Identity, tc.AuthURL(), nil))
}

// restart stops the service (its workers finish or stop) and starts a new
// one on the same database and block store.
func (tc *testCloud) restart(t *testing.T) {
	t.Helper()
	tc.svc.Close()
	tc.start(t)
}

// project is the project of one of the cloud's tokens.
func (tc *testCloud) project(token string) string { return tc.projects[token] }

// addMember makes a user who is a member of a new project of the same
// name and returns the user's token.
func (tc *testCloud) addMember(t testing.TB, name string) string {
	t.Helper()
	token, project, _ := tc.AddUser(name, name, "member")
	tc.projects[token] = project
	return token
}

// do sends a request to path under /volume/v3/{the token's project}
// (a path of /volume or under /volume/ is sent as is). headers are name,
// value pairs.
func (tc *testCloud) do(t testing.TB, method, path, token string, body any, headers ...string) response {
	t.Helper()
	if path != "/volume" && !strings.HasPrefix(path, "/volume/") {
		path = "/volume/v3/" + tc.project(token) + path
	}
	return testcloud.Do(t, method, tc.URL()+path, token, body, headers...)
}

// must sends a request and fails the test unless it answers want.
func (tc *testCloud) must(t testing.TB, want int, method, path, token string, body any, headers ...string) response {
	t.Helper()
	return testcloud.Must(t, want, tc.do(t, method, path, token, body, headers...))
}

// creds are the credentials of a token, as the router gives them to the
// service.
func (tc *testCloud) creds(t testing.TB, token string) *api.Credentials {
	t.Helper()
	c, err := tc.Identity.Authenticate(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fault checks a fault answer: the status and Cinder's body
// {"<name>": {"code": status, "message": "..."}}.
func fault(t testing.TB, res response, status int, name string) string {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.Body)
	}
	f, ok := res.JSON(t)[name].(map[string]any)
	if !ok {
		t.Fatalf("fault body has no %q: %s", name, res.Body)
	}
	if code, _ := f["code"].(float64); int(code) != status {
		t.Fatalf("fault code %v, want %d: %s", f["code"], status, res.Body)
	}
	msg, _ := f["message"].(string)
	if msg == "" {
		t.Fatalf("fault has no message: %s", res.Body)
	}
	return msg
}

// isStatus reports whether err is an API error with the status.
func isStatus(err error, status int) bool {
	return err != nil && api.AsError(err).Status == status
}

// createVolume creates a volume (202, status creating) and returns its id.
func (tc *testCloud) createVolume(t testing.TB, token string, vol map[string]any) string {
	t.Helper()
	res := tc.must(t, 202, "POST", "/volumes", token, map[string]any{"volume": vol})
	v := res.JSON(t)["volume"].(map[string]any)
	if v["status"] != "creating" {
		t.Fatalf("new volume has status %v, want creating", v["status"])
	}
	return v["id"].(string)
}

// newVolume creates a volume of size GiB and waits until it is available.
func (tc *testCloud) newVolume(t testing.TB, token string, size int) string {
	t.Helper()
	id := tc.createVolume(t, token, map[string]any{"size": size})
	tc.waitVolume(t, token, id, "available")
	return id
}

const deadline = 5 * time.Second

// waitVolume polls a volume until it has the status and no work in
// flight, and returns it ("deleted" waits for a 404).
func (tc *testCloud) waitVolume(t testing.TB, token, id, want string) map[string]any {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		res := tc.do(t, "GET", "/volumes/"+id, token, nil)
		switch {
		case want == "deleted" && res.StatusCode == 404:
			return nil
		case res.StatusCode == 200:
			v := res.JSON(t)["volume"].(map[string]any)
			if v["status"] == want {
				return v
			}
			if time.Now().After(end) {
				t.Fatalf("volume %s: status %v, want %s", id, v["status"], want)
			}
		default:
			t.Fatalf("volume %s: %d %s", id, res.StatusCode, res.Body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitSnapshot polls a snapshot until it has the status ("deleted": 404).
func (tc *testCloud) waitSnapshot(t testing.TB, token, id, want string) map[string]any {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		res := tc.do(t, "GET", "/snapshots/"+id, token, nil)
		switch {
		case want == "deleted" && res.StatusCode == 404:
			return nil
		case res.StatusCode == 200:
			s := res.JSON(t)["snapshot"].(map[string]any)
			if s["status"] == want {
				return s
			}
			if time.Now().After(end) {
				t.Fatalf("snapshot %s: status %v, want %s", id, s["status"], want)
			}
		default:
			t.Fatalf("snapshot %s: %d %s", id, res.StatusCode, res.Body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// blocks lists the ids of the store's blocks.
func (tc *testCloud) blockIDs(t testing.TB) []string {
	t.Helper()
	infos, err := tc.blocks.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, in := range infos {
		ids = append(ids, in.ID)
	}
	return ids
}

// blockSize is a block's size in bytes, -1 when it does not exist.
func (tc *testCloud) blockSize(t testing.TB, id string) int64 {
	t.Helper()
	in, err := tc.blocks.Info(context.Background(), id)
	if err != nil {
		return -1
	}
	return in.Size
}

func (tc *testCloud) writeBlock(t testing.TB, id string, off int64, data []byte) {
	t.Helper()
	f, err := tc.blocks.Open(context.Background(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func (tc *testCloud) readBlock(t testing.TB, id string, off int64, n int) []byte {
	t.Helper()
	f, err := tc.blocks.Open(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// rows counts a table's rows.
func (tc *testCloud) rows(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := tc.DB.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// list returns the "volumes" (or another key's) list of a GET.
func (tc *testCloud) list(t testing.TB, path, token, key string, headers ...string) []map[string]any {
	t.Helper()
	res := tc.must(t, 200, "GET", path, token, nil, headers...)
	raw, ok := res.JSON(t)[key].([]any)
	if !ok {
		t.Fatalf("GET %s: no %q list: %s", path, key, res.Body)
	}
	out := []map[string]any{}
	for _, x := range raw {
		out = append(out, x.(map[string]any))
	}
	return out
}

func ids(l []map[string]any) []string {
	out := []string{}
	for _, m := range l {
		out = append(out, m["id"].(string))
	}
	return out
}
