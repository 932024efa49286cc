package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"
)

func TestMigrateAndTranslate(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files := fstest.MapFS{
		"001_a.sql": {Data: []byte(`CREATE TABLE a (id TEXT PRIMARY KEY, name TEXT UNIQUE);`)},
		"002_b.sql": {Data: []byte(`CREATE TABLE b (id TEXT PRIMARY KEY, a_id TEXT NOT NULL REFERENCES a(id));`)},
	}
	for i := 0; i < 2; i++ { // running twice is a no-op
		if err := db.Migrate(ctx, "svc", files); err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
	}
	if _, err := db.Exec(`INSERT INTO a VALUES ('1', 'x')`); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO a VALUES ('2', 'x')`)
	if !errors.Is(Translate(err), ErrConflict) {
		t.Fatalf("duplicate name: got %v, want ErrConflict", err)
	}
	_, err = db.Exec(`INSERT INTO b VALUES ('1', 'missing')`)
	if !errors.Is(Translate(err), ErrReferenced) {
		t.Fatalf("dangling reference: got %v, want ErrReferenced", err)
	}
	err = db.QueryRow(`SELECT id FROM a WHERE id='nope'`).Scan(new(string))
	if !errors.Is(Translate(err), ErrNotFound) {
		t.Fatalf("missing row: got %v, want ErrNotFound", err)
	}
	// A failing transaction leaves nothing behind.
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO a VALUES ('3', 'y')`); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO a VALUES ('4', 'y')`)
		return err
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("tx: got %v", err)
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM a`).Scan(&n)
	if n != 1 {
		t.Fatalf("rows after failed tx = %d, want 1", n)
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

// Many writers whose transactions also read beside the transaction (on the
// pool) must not starve each other of connections.
func TestConcurrentTxWithReadsBeside(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE c (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		go func() {
			errs <- db.Tx(ctx, func(tx *sql.Tx) error {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT count(*) FROM c`).Scan(&n); err != nil {
					return err
				}
				_, err := tx.Exec(`INSERT INTO c VALUES (?)`, n)
				return err
			})
		}()
	}
	for i := 0; i < 40; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestWritersDoNotStarve: many bare statements and transactions at once,
// the transactions reading beside themselves through the pool (as services
// do). With writers holding pooled connections while they wait for SQLite's
// lock, the transaction finds no connection for its read and everyone waits
// out the busy timeout; through the writer gate all of them finish.
func TestWritersDoNotStarve(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE c (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	const writers, txs = 200, 50
	errs := make(chan error, writers+txs)
	for i := 0; i < writers; i++ {
		go func() {
			_, err := db.ExecContext(ctx, `INSERT INTO c VALUES (1)`)
			errs <- err
		}()
	}
	for i := 0; i < txs; i++ {
		go func() {
			errs <- db.Tx(ctx, func(tx *sql.Tx) error {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT count(*) FROM c`).Scan(&n); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO c VALUES (2)`)
				return err
			})
		}()
	}
	for i := 0; i < writers+txs; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM c`).Scan(&n); err != nil || n != writers+txs {
		t.Fatalf("rows: %d, %v; want %d", n, err, writers+txs)
	}
}

// TestWriteInsideTxTimesOut: a statement run through db inside a Tx (a bug)
// fails with the context rather than hanging.
func TestWriteInsideTxTimesOut(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := db.ExecContext(ctx, `CREATE TABLE d (n INTEGER)`)
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
}

// BenchmarkWrite: one INSERT, through the writer gate (ExecContext) and
// bare (sql.DB's own), from 8 goroutines: what the gate costs a write.
func BenchmarkWrite(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "t.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE c (n INTEGER)`); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		exec func() error
	}{
		{"gate", func() error { _, err := db.ExecContext(ctx, `INSERT INTO c VALUES (1)`); return err }},
		{"bare", func() error { _, err := db.DB.ExecContext(ctx, `INSERT INTO c VALUES (1)`); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.exec(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
