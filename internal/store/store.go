package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Error classes every service maps to its own fault at the API edge.
var (
	// ErrNotFound: the row asked for does not exist. A missing row is
	// always this error, never a nil result.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write would break a uniqueness constraint.
	ErrConflict = errors.New("conflict")
	// ErrReferenced: the write would break a foreign key (the row is in use
	// or refers to a row that does not exist).
	ErrReferenced = errors.New("referenced")
)

// DB is the shared database handle. It embeds *sql.DB so services use the
// standard API; Tx and the error translation are the additions.
type DB struct {
	*sql.DB
	// wmu lets one transaction at a time ask SQLite for the write lock.
	// Without it, goroutines waiting in BEGIN IMMEDIATE each hold a pooled
	// connection; the one holding the lock may then find no connection for
	// a read it makes beside its transaction, and every writer waits for
	// the busy timeout ("database is locked").
	wmu sync.Mutex
}

// Open opens (creating if needed) the SQLite database at file.
func Open(file string) (*DB, error) {
	q := []string{
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
		"_pragma=busy_timeout(10000)",
		"_pragma=foreign_keys(1)",
		"_txlock=immediate", // writers take the lock up front: no BUSY on upgrade
	}
	db, err := sql.Open("sqlite", "file:"+file+"?"+strings.Join(q, "&"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	// SQLite serialises writers anyway (Tx queues them without holding a
	// connection); the other connections let readers run beside a writer
	// under WAL.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	return &DB{DB: db}, nil
}

// Tx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise. Errors from fn and the driver come back translated.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return Translate(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return Translate(err)
	}
	return Translate(tx.Commit())
}

// IntegrityCheck runs SQLite's integrity_check and reports any problem.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	return nil
}

// Translate maps driver errors to the package's error classes, wrapping the
// original so its text stays in logs. Already-translated errors and nil pass
// through.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrReferenced) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, sqlite3.SQLITE_CONSTRAINT_TRIGGER:
			return fmt.Errorf("%w: %v", ErrReferenced, err)
		}
	}
	return err
}

// Migrate applies, in order, the migrations of one service that have not run
// yet. Files are named NNN_description.sql; each runs in its own transaction
// together with the record that it ran.
func (db *DB) Migrate(ctx context.Context, service string, files fs.FS) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		service TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (service, version))`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return err
	}
	type mig struct {
		version int
		name    string
	}
	var migs []mig
	for _, n := range names {
		num, _, ok := strings.Cut(path.Base(n), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number and '_'", n)
		}
		migs = append(migs, mig{v, n})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	for _, m := range migs {
		body, err := fs.ReadFile(files, m.name)
		if err != nil {
			return err
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE service=? AND version=?`,
				service, m.version).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(service, version) VALUES (?, ?)`, service, m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s/%s: %w", service, m.name, err)
		}
	}
	return nil
}
