package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/store"
)

// Benchmarks of token validation and issue, on a bootstrapped service over
// a real SQLite database. End-to-end figures over HTTP, with start-up time
// and memory, come from cmd/monostack-bench; see docs/benchmarks.md.
//
//	go test ./internal/identity -run '^$' -bench . -benchmem

// benchCloud is the harness's testCloud for benchmarks: newTestCloud takes a
// *testing.T, which a benchmark does not have. It builds the same service
// (same Config, same bootstrap) and drives its handler in-process.
type benchCloud struct {
	svc     *Service
	handler http.Handler
	// admin is a project-scoped password token of admin on project admin.
	admin     string
	projectID string
}

func newBenchCloud(b *testing.B, bcryptCost int) *benchCloud {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := store.Open(filepath.Join(dir, "test.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	keys, err := fernet.OpenRepo(filepath.Join(dir, "keys"), 3)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(ctx, db, keys, Config{BaseURL: "http://127.0.0.1:8800", Region: "RegionOne", TokenTTL: time.Hour, BcryptCost: bcryptCost},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.EnsureBootstrap(ctx, Bootstrap{AdminPassword: testAdminPassword, DemoPassword: testDemoPassword}); err != nil {
		b.Fatal(err)
	}
	bc := &benchCloud{svc: svc, handler: svc.Router(nil)}
	rec := bc.post(b, passwordAuth("admin", testAdminPassword, "admin"))
	bc.admin = rec.Header().Get("X-Subject-Token")
	var body struct {
		Token struct {
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Token.Project.ID == "" {
		b.Fatalf("admin token body: %v: %s", err, rec.Body)
	}
	bc.projectID = body.Token.Project.ID
	return bc
}

func passwordAuth(user, password, project string) []byte {
	j, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}},
	}})
	return j
}

func (bc *benchCloud) tokenAuth() []byte {
	j, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": bc.admin}},
		"scope":    map[string]any{"project": map[string]any{"id": bc.projectID}},
	}})
	return j
}

// post sends POST /identity/v3/auth/tokens to the handler and wants a 201.
func (bc *benchCloud) post(b *testing.B, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/identity/v3/auth/tokens", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	bc.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		b.Fatalf("issue: %d %s", rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkValidateCached is s.validate of a token validated before: a
// cache hit.
func BenchmarkValidateCached(b *testing.B) {
	bc := newBenchCloud(b, 4)
	ctx := context.Background()
	if _, err := bc.svc.validate(ctx, bc.admin, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bc.svc.validate(ctx, bc.admin, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateCachedParallel(b *testing.B) {
	bc := newBenchCloud(b, 4)
	ctx := context.Background()
	if _, err := bc.svc.validate(ctx, bc.admin, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bc.svc.validate(ctx, bc.admin, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkValidateUncached is s.validate with allowExpired, which neither
// reads nor fills the validation cache: decrypt, unpack, check revocation,
// and resolve the user and scope, which comes from the scope cache (the
// database is read about once a second).
func BenchmarkValidateUncached(b *testing.B) {
	bc := newBenchCloud(b, 4)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bc.svc.validate(ctx, bc.admin, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateUncachedRevoked10k: the same with 10,000 tokens
// revoked (DELETE /v3/auth/tokens) within the horizon, and 100 users
// disabled: the revocation check on every validation.
func BenchmarkValidateUncachedRevoked10k(b *testing.B) {
	bc := newBenchCloud(b, 4)
	ctx := context.Background()
	for i := range 10000 {
		ev := revocationEvent{AuditID: newID()}
		if i%100 == 0 {
			ev = revocationEvent{UserID: newID()}
		}
		if err := bc.svc.revoke(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bc.svc.validate(ctx, bc.admin, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateUncachedParallel(b *testing.B) {
	bc := newBenchCloud(b, 4)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bc.svc.validate(ctx, bc.admin, true); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkResolveUncached is s.resolveUncached: looking up the user, its
// domain, the project, its domain and the effective roles in the database,
// what a validation or issue costs when no cache knows the scope.
func BenchmarkResolveUncached(b *testing.B) {
	bc := newBenchCloud(b, 4)
	ctx := context.Background()
	info, err := bc.svc.validate(ctx, bc.admin, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bc.svc.resolveUncached(ctx, info.p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateHTTP is GET /v3/auth/tokens through the handler, both
// tokens cached: routing, policy and writing the cached body.
func BenchmarkValidateHTTP(b *testing.B) {
	bc := newBenchCloud(b, 4)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/identity/v3/auth/tokens", nil)
		req.Header.Set("X-Auth-Token", bc.admin)
		req.Header.Set("X-Subject-Token", bc.admin)
		rec := httptest.NewRecorder()
		bc.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("validate: %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkValidateDistinct is GET /v3/auth/tokens of b.N different
// tokens, each validated once, as when many clients each bring their own
// token. Besides the time, it reports the heap each cached validation holds
// (heap-B/cached) and how many entries the cache still holds 2 s later, once
// they all expired, after one more validation (cached-after-2s).
func BenchmarkValidateDistinct(b *testing.B) {
	bc := newBenchCloud(b, 4)
	body := bc.tokenAuth()
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = bc.post(b, body).Header().Get("X-Subject-Token")
	}
	validate := func(tok string) {
		req := httptest.NewRequest("GET", "/identity/v3/auth/tokens", nil)
		req.Header.Set("X-Auth-Token", bc.admin)
		req.Header.Set("X-Subject-Token", tok)
		rec := httptest.NewRecorder()
		bc.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("validate: %d %s", rec.Code, rec.Body)
		}
	}
	cached := func() int {
		bc.svc.cache.mu.RLock()
		defer bc.svc.cache.mu.RUnlock()
		return len(bc.svc.cache.m)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		validate(toks[i])
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if n := cached(); n > 0 {
		b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/float64(n), "heap-B/cached")
	}
	time.Sleep(2 * cacheTTL)
	validate(bc.admin)
	b.ReportMetric(float64(cached()), "cached-after-2s")
	runtime.KeepAlive(toks)
}

// BenchmarkIssueToken is POST /v3/auth/tokens with the token method,
// rescoping a cached project token to its project, through the handler.
func BenchmarkIssueToken(b *testing.B) {
	bc := newBenchCloud(b, 4)
	body := bc.tokenAuth()
	b.ReportAllocs()
	for b.Loop() {
		bc.post(b, body)
	}
}

func BenchmarkIssueTokenParallel(b *testing.B) {
	bc := newBenchCloud(b, 4)
	body := bc.tokenAuth()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/identity/v3/auth/tokens", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			bc.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				b.Errorf("issue: %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
}

// BenchmarkIssuePassword is POST /v3/auth/tokens with the password method,
// at the harness's bcrypt cost 4 (everything but the hash) and at the
// default cost 12 (what a cloud pays).
func BenchmarkIssuePassword(b *testing.B) {
	for _, cost := range []int{4, 12} {
		b.Run("bcrypt="+map[int]string{4: "4", 12: "12"}[cost], func(b *testing.B) {
			bc := newBenchCloud(b, cost)
			body := passwordAuth("admin", testAdminPassword, "admin")
			b.ReportAllocs()
			for b.Loop() {
				bc.post(b, body)
			}
		})
	}
}
