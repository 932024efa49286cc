package placement

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
)

type cloud struct {
	svc   *Service
	srv   *httptest.Server
	admin string
	demo  string
}

func newCloud(t *testing.T) *cloud {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := fernet.OpenRepo(filepath.Join(dir, "keys"), 3)
	if err != nil {
		t.Fatal(err)
	}
	c := &cloud{srv: httptest.NewServer(nil)}
	t.Cleanup(c.srv.Close)
	log := slog.New(slog.DiscardHandler)
	ident, err := identity.New(ctx, db, keys, identity.Config{BaseURL: c.srv.URL, Region: "RegionOne", TokenTTL: time.Hour, BcryptCost: 4}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.EnsureBootstrap(ctx, identity.Bootstrap{AdminPassword: "a", DemoPassword: "d"}); err != nil {
		t.Fatal(err)
	}
	if c.svc, err = New(ctx, db, log); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/identity/", ident.Router(log))
	rt := c.svc.Router(ident, ident.URL(), log)
	mux.Handle("/placement/", rt)
	mux.Handle("/placement", rt)
	c.srv.Config.Handler = api.WithRequestID(nil, mux)
	c.admin = c.token(t, "admin", "a", "admin")
	c.demo = c.token(t, "demo", "d", "demo")
	return c
}

func (c *cloud) token(t *testing.T, user, pw, project string) string {
	res := c.do(t, "POST", "/identity/v3/auth/tokens", "", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": pw}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}}}})
	return res.h.Get("X-Subject-Token")
}

type resp struct {
	code int
	h    http.Header
	body map[string]any
	raw  string
}

func (c *cloud) do(t *testing.T, method, path, token, version string, body any) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if version != "" {
		req.Header.Set("OpenStack-API-Version", "placement "+version)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{code: res.StatusCode, h: res.Header, raw: string(raw)}
	json.Unmarshal(raw, &r.body)
	return r
}

func (c *cloud) must(t *testing.T, code int, r resp) resp {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.raw)
	}
	return r
}

func TestRootAndPolicy(t *testing.T) {
	c := newCloud(t)
	root := c.must(t, 200, c.do(t, "GET", "/placement", "", "", nil)).body["versions"].([]any)[0].(map[string]any)
	if root["max_version"] != "1.39" || root["min_version"] != "1.0" {
		t.Fatalf("root %v", root)
	}
	f := c.must(t, 403, c.do(t, "GET", "/placement/resource_providers", c.demo, "", nil))
	if e := f.body["errors"].([]any)[0].(map[string]any); e["status"] != 403.0 {
		t.Fatalf("fault %v", f.body)
	}
	c.must(t, 406, c.do(t, "GET", "/placement/resource_providers", c.admin, "1.40", nil))
}

func TestProvidersInventoriesAllocations(t *testing.T) {
	c := newCloud(t)
	p := c.must(t, 200, c.do(t, "POST", "/placement/resource_providers", c.admin, "1.20", map[string]any{"name": "rp1"})).body
	id := p["uuid"].(string)
	if p["root_provider_uuid"] != id || p["generation"] != 0.0 {
		t.Fatalf("provider %v", p)
	}
	c.must(t, 201, c.do(t, "POST", "/placement/resource_providers", c.admin, "", map[string]any{"name": "rp2"}))
	c.must(t, 409, c.do(t, "POST", "/placement/resource_providers", c.admin, "", map[string]any{"name": "rp1"}))
	inv := map[string]any{"resource_provider_generation": 0, "inventories": map[string]any{
		"VCPU": map[string]any{"total": 2, "allocation_ratio": 2.0}, "MEMORY_MB": map[string]any{"total": 1024, "reserved": 24}}}
	c.must(t, 200, c.do(t, "PUT", "/placement/resource_providers/"+id+"/inventories", c.admin, "", inv))
	// A stale generation is refused.
	r := c.must(t, 409, c.do(t, "PUT", "/placement/resource_providers/"+id+"/inventories", c.admin, "", inv))
	if r.body["errors"].([]any)[0].(map[string]any)["code"] != "placement.concurrent_update" {
		t.Fatalf("conflict %v", r.body)
	}
	c.must(t, 400, c.do(t, "PUT", "/placement/resource_providers/"+id+"/inventories/CUSTOM_NOPE", c.admin, "", map[string]any{"resource_provider_generation": 1, "total": 1}))
	consumer := "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	alloc := func(vcpu int) map[string]any {
		return map[string]any{"allocations": map[string]any{id: map[string]any{"resources": map[string]any{"VCPU": vcpu, "MEMORY_MB": 500}}},
			"project_id": "p", "user_id": "u", "consumer_generation": nil}
	}
	c.must(t, 409, c.do(t, "PUT", "/placement/allocations/"+consumer, c.admin, "1.28", alloc(5)))
	c.must(t, 204, c.do(t, "PUT", "/placement/allocations/"+consumer, c.admin, "1.28", alloc(4)))
	got := c.must(t, 200, c.do(t, "GET", "/placement/allocations/"+consumer, c.admin, "1.28", nil)).body
	if got["consumer_generation"] != 0.0 || got["project_id"] != "p" {
		t.Fatalf("allocations %v", got)
	}
	u := c.must(t, 200, c.do(t, "GET", "/placement/resource_providers/"+id+"/usages", c.admin, "", nil)).body["usages"].(map[string]any)
	if u["VCPU"] != 4.0 || u["MEMORY_MB"] != 500.0 {
		t.Fatalf("usages %v", u)
	}
	pu := c.must(t, 200, c.do(t, "GET", "/placement/usages?project_id=p", c.admin, "1.9", nil)).body["usages"].(map[string]any)
	if pu["VCPU"] != 4.0 {
		t.Fatalf("project usages %v", pu)
	}
	cands := c.must(t, 200, c.do(t, "GET", "/placement/allocation_candidates?resources=MEMORY_MB:400", c.admin, "1.34", nil)).body
	if len(cands["allocation_requests"].([]any)) != 1 {
		t.Fatalf("candidates %v", cands)
	}
	cands = c.must(t, 200, c.do(t, "GET", "/placement/allocation_candidates?resources=MEMORY_MB:600", c.admin, "1.34", nil)).body
	if len(cands["allocation_requests"].([]any)) != 0 {
		t.Fatalf("candidates %v", cands)
	}
	c.must(t, 409, c.do(t, "DELETE", "/placement/resource_providers/"+id+"/inventories/VCPU", c.admin, "", nil))
	c.must(t, 409, c.do(t, "DELETE", "/placement/resource_providers/"+id, c.admin, "", nil))
	// Traits and aggregates.
	c.must(t, 201, c.do(t, "PUT", "/placement/traits/CUSTOM_FAST", c.admin, "1.6", nil))
	c.must(t, 400, c.do(t, "PUT", "/placement/traits/FAST", c.admin, "1.6", nil))
	gen := c.must(t, 200, c.do(t, "GET", "/placement/resource_providers/"+id, c.admin, "", nil)).body["generation"]
	c.must(t, 200, c.do(t, "PUT", "/placement/resource_providers/"+id+"/traits", c.admin, "1.6", map[string]any{"resource_provider_generation": gen, "traits": []string{"CUSTOM_FAST", "HW_CPU_X86_AVX2"}}))
	c.must(t, 400, c.do(t, "PUT", "/placement/resource_providers/"+id+"/traits", c.admin, "1.6", map[string]any{"resource_provider_generation": 0, "traits": []string{"CUSTOM_NOPE"}}))
	tr := c.must(t, 200, c.do(t, "GET", "/placement/traits?name=startswith:CUSTOM", c.admin, "1.6", nil)).body["traits"].([]any)
	if len(tr) != 1 {
		t.Fatalf("traits %v", tr)
	}
	agg := "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	c.must(t, 200, c.do(t, "PUT", "/placement/resource_providers/"+id+"/aggregates", c.admin, "1.1", []string{agg}))
	ag := c.must(t, 200, c.do(t, "GET", "/placement/resource_providers/"+id+"/aggregates", c.admin, "1.19", nil)).body
	if len(ag["aggregates"].([]any)) != 1 || ag["resource_provider_generation"] == nil {
		t.Fatalf("aggregates %v", ag)
	}
	list := c.must(t, 200, c.do(t, "GET", "/placement/resource_providers?member_of="+agg, c.admin, "1.3", nil)).body["resource_providers"].([]any)
	if len(list) != 1 {
		t.Fatalf("member_of %v", list)
	}
	c.must(t, 204, c.do(t, "DELETE", "/placement/allocations/"+consumer, c.admin, "", nil))
	c.must(t, 404, c.do(t, "DELETE", "/placement/allocations/"+consumer, c.admin, "", nil))
	c.must(t, 204, c.do(t, "DELETE", "/placement/resource_providers/"+id, c.admin, "", nil))
	rc := c.must(t, 200, c.do(t, "GET", "/placement/resource_classes", c.admin, "1.2", nil)).body["resource_classes"].([]any)
	if len(rc) < 3 {
		t.Fatalf("classes %v", rc)
	}
}

// TestConcurrentClaims: 50 claims at once against a host that holds 10.
func TestConcurrentClaims(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	if _, err := c.svc.EnsureProvider(ctx, "h", HostInventory(1, 1000, 100, 0, Ratios{})); err != nil {
		t.Fatal(err)
	}
	// EnsureProvider is idempotent.
	id, err := c.svc.EnsureProvider(ctx, "h", HostInventory(1, 1000, 100, 0, Ratios{}))
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := c.svc.Inventories(ctx, id)
	if inv[VCPU].AllocationRatio != 16 || inv[MemoryMB].AllocationRatio != 1.5 || inv[DiskGB].AllocationRatio != 1 {
		t.Fatalf("inventory %v", inv)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.svc.Claim(ctx, Claim{ConsumerID: fmt.Sprintf("c%d", i), ProjectID: "p", UserID: "u",
				Resources: map[string]int64{VCPU: 1, MemoryMB: 150}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case err == ErrNoValidHost:
				full++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 10 || full != 40 {
		t.Fatalf("%d claims succeeded, %d refused; want 10 and 40", ok, full)
	}
	u, _ := c.svc.Usages(ctx, id)
	if u[MemoryMB] != 1500 {
		t.Fatalf("usage %v", u)
	}
	for i := range 50 {
		if err := c.svc.Release(ctx, fmt.Sprintf("c%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if u, _ := c.svc.Usages(ctx, id); len(u) != 0 {
		t.Fatalf("usage after release %v", u)
	}
	_ = strings.TrimSpace
}
