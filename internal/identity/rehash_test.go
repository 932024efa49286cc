package identity

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/store"
)

// Generated bootstrap passwords start at bcrypt's minimum cost (a fast first
// start) and are rehashed at the configured cost at their first use; chosen
// ones are hashed at the configured cost at once.
func TestGeneratedPasswordsRehashedOnFirstUse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, _ := fernet.OpenRepo(filepath.Join(dir, "keys"), 3)
	s, err := New(ctx, db, keys, Config{BaseURL: "http://x", Region: "RegionOne", TokenTTL: time.Hour, BcryptCost: 6}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBootstrap(ctx, Bootstrap{AdminPassword: "chosen", DemoPassword: "random-demo", Generated: map[string]bool{"demo": true}}); err != nil {
		t.Fatal(err)
	}
	cost := func(name string) int {
		u, err := s.UserByName(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := bcrypt.Cost([]byte(u.passwordHash))
		return c
	}
	if cost("admin") != 6 || cost("demo") != bcrypt.MinCost {
		t.Fatalf("costs at bootstrap: admin %d demo %d", cost("admin"), cost("demo"))
	}
	demo, _ := s.UserByName(ctx, "default", "demo")
	if s.checkPassword(&demo, "wrong") {
		t.Fatal("wrong password accepted")
	}
	if !s.checkPassword(&demo, "random-demo") {
		t.Fatal("password refused")
	}
	deadline := time.Now().Add(5 * time.Second)
	for cost("demo") != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("demo's hash still at cost %d", cost("demo"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	demo, _ = s.UserByName(ctx, "default", "demo")
	if !s.checkPassword(&demo, "random-demo") {
		t.Fatal("password refused after the rehash")
	}
}
