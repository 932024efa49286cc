package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// fillAndDelete writes n 16 KiB blobs into a new table of db and deletes
// every other one.
func fillAndDelete(t *testing.T, exec func(string, ...any) (sql.Result, error), n int) {
	t.Helper()
	if _, err := exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 16<<10)
	for range n {
		if _, err := exec(`INSERT INTO blobs(v) VALUES (?)`, blob); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec(`DELETE FROM blobs WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}
}

// TestShrink: the pages of deleted rows go back to the file system, down
// to what the caller keeps, and the file gets shorter.
func TestShrink(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "t.db")
	db, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillAndDelete(t, db.Exec, 1000)
	free, err := db.FreeBytes(ctx)
	if err != nil || free < 7<<20 {
		t.Fatalf("free after deleting 500 blobs of 16 KiB: %d, %v", free, err)
	}
	db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	before, _ := os.Stat(file)
	freed, err := db.Shrink(ctx, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := db.FreeBytes(ctx)
	if left > 1<<20 || freed < free-(1<<20) {
		t.Errorf("Shrink gave back %d of %d, %d left", freed, free, left)
	}
	db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	after, _ := os.Stat(file)
	if before.Size()-after.Size() < freed {
		t.Errorf("file %d → %d bytes after giving back %d", before.Size(), after.Size(), freed)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM blobs`).Scan(&n); err != nil || n != 500 {
		t.Errorf("%d rows left, %v", n, err)
	}
}

// TestOpenConvertsSmallDatabase: a database made without auto-vacuum is
// converted by Open, and can shrink then.
func TestOpenConvertsSmallDatabase(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+file+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	fillAndDelete(t, old.Exec, 200)
	var mode int
	if err := old.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != 0 {
		t.Fatalf("old database auto_vacuum %d, %v", mode, err)
	}
	old.Close()
	db, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("after Open: auto_vacuum %d, %v", mode, err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM blobs`).Scan(&n); err != nil || n != 100 {
		t.Errorf("%d rows after the conversion, %v", n, err)
	}
	fillMore := make([]byte, 16<<10)
	for range 100 {
		db.Exec(`INSERT INTO blobs(v) VALUES (?)`, fillMore)
	}
	db.Exec(`DELETE FROM blobs`)
	if freed, err := db.Shrink(ctx, 0); err != nil || freed == 0 {
		t.Errorf("Shrink after the conversion: %d, %v", freed, err)
	}
}
