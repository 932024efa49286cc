package identity

import (
	"testing"
	"time"
)

func TestTokenCacheSweepsExpired(t *testing.T) {
	c := newTokenCache(100)
	far := time.Now().Add(time.Hour)
	for _, tok := range []string{"a", "b", "c"} {
		c.put(tok, 1, &tokenInfo{}, far)
	}
	if c.get("a", 1) == nil || c.get("a", 2) != nil {
		t.Fatal("a fresh entry is served at its generation only")
	}
	// One TTL later nothing is served, and the next sweep drops it all.
	later := time.Now().Add(2 * cacheTTL)
	c.mu.Lock()
	c.sweepLocked(later)
	n := len(c.m)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d expired entries kept after a sweep", n)
	}
	// A full cache of live entries is cleared rather than grown.
	small := newTokenCache(2)
	for _, tok := range []string{"a", "b", "c"} {
		small.put(tok, 1, &tokenInfo{}, far)
	}
	if len(small.m) > 2 || small.get("c", 1) == nil {
		t.Fatalf("full cache: %d entries, newest served: %v", len(small.m), small.get("c", 1) != nil)
	}
}
