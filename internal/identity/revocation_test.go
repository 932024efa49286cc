package identity

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestRevocationsPruned: events no token can match any more (older than
// the token lifetime plus the allow_expired window) are dropped, from the
// database and from memory, while the daemon runs, not only at its next
// start; the recent ones still revoke their tokens.
func TestRevocationsPruned(t *testing.T) {
	tc := newTestCloud(t)
	ctx := context.Background()
	s := tc.svc
	old := s.revocationHorizon().Add(-time.Minute)
	for i := range 50 {
		if err := s.revoke(ctx, revocationEvent{AuditID: newID(), IssuedBefore: old}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := s.revoke(ctx, revocationEvent{UserID: newID(), IssuedBefore: old}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A token revoked now, while the old events are still there.
	tok := tc.passwordToken("demo", testDemoPassword, "demo")
	if res := tc.do("DELETE", "/identity/v3/auth/tokens", tc.admin, nil, "X-Subject-Token", tok); res.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.StatusCode, res.Body)
	}
	count := func() (rows, mem int) {
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM revocation_events`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		s.revMu.RLock()
		defer s.revMu.RUnlock()
		return rows, s.revs.len()
	}
	if rows, mem := count(); rows < 56 || mem < 56 {
		t.Fatalf("before the prune: %d rows, %d in memory", rows, mem)
	}

	// The next revocation after revPruneEvery prunes.
	s.revMu.Lock()
	s.revs.pruned = now().Add(-revPruneEvery)
	s.revMu.Unlock()
	other := tc.passwordToken("demo", testDemoPassword, "demo")
	if res := tc.do("DELETE", "/identity/v3/auth/tokens", tc.admin, nil, "X-Subject-Token", other); res.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.StatusCode, res.Body)
	}
	if rows, mem := count(); rows != 2 || mem != 2 {
		t.Errorf("after the prune: %d rows, %d in memory; want the 2 recent ones", rows, mem)
	}
	for _, tok := range []string{tok, other} {
		if res := tc.do("GET", "/identity/v3/auth/tokens", tc.admin, nil, "X-Subject-Token", tok); res.StatusCode != http.StatusNotFound {
			t.Errorf("a revoked token validates: %d", res.StatusCode)
		}
	}
	if res := tc.do("GET", "/identity/v3/auth/tokens", tc.admin, nil, "X-Subject-Token", tc.demo); res.StatusCode != http.StatusOK {
		t.Errorf("a token not revoked: %d %s", res.StatusCode, res.Body)
	}
}
