package fernet

import (
	"os"
	"testing"
	"time"
)

func TestRoundTripAndTamper(t *testing.T) {
	k, _ := GenerateKey()
	other, _ := GenerateKey()
	now := time.Unix(1700000000, 0)
	for _, msg := range [][]byte{{}, []byte("x"), make([]byte, 16), make([]byte, 100)} {
		tok, err := Encrypt(k, msg, now)
		if err != nil {
			t.Fatal(err)
		}
		got, ts, err := Decrypt([]Key{other, k}, tok)
		if err != nil || string(got) != string(msg) || !ts.Equal(now) {
			t.Fatalf("round trip of %d bytes: %v %q %v", len(msg), err, got, ts)
		}
		if _, _, err := Decrypt([]Key{other}, tok); err != ErrInvalid {
			t.Fatalf("wrong key: %v", err)
		}
		b := []byte(tok)
		b[len(b)/2] ^= 1
		if _, _, err := Decrypt([]Key{k}, string(b)); err != ErrInvalid {
			t.Fatalf("tampered: %v", err)
		}
	}
	for _, bad := range []string{"", "!!!", "gAAAAA", "abc=="} {
		if _, _, err := Decrypt([]Key{k}, bad); err != ErrInvalid {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestRepoRotation(t *testing.T) {
	dir := t.TempDir() + "/keys"
	r, err := OpenRepo(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("repo mode %v", fi.Mode().Perm())
	}
	tok, _ := Encrypt(r.Primary(), []byte("hello"), time.Now())
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Decrypt(r.Keys(), tok); err != nil {
		t.Fatalf("token from before one rotation: %v", err)
	}
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if len(r.Keys()) != 3 {
		t.Fatalf("keys kept = %d, want 3", len(r.Keys()))
	}
	if _, _, err := Decrypt(r.Keys(), tok); err != ErrInvalid {
		t.Fatalf("token from three rotations ago still valid: %v", err)
	}
	// Reopening finds the same keys.
	r2, err := OpenRepo(dir, 3)
	if err != nil || r2.Primary() != r.Primary() {
		t.Fatalf("reopen: %v", err)
	}
}
