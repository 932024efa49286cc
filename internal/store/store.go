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
	"time"

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
	// wgate lets one writer at a time (a transaction or a single
	// statement through ExecContext) ask SQLite for the write lock.
	// Without it, goroutines waiting in BEGIN IMMEDIATE or in a bare
	// INSERT each hold a pooled connection; the one holding the lock may
	// then find no connection for a read it makes beside its write, and
	// every writer waits for the busy timeout ("database is locked").
	// A channel rather than a mutex so a waiter gives up with its context
	// or after writeWait instead of hanging (for example a statement
	// wrongly run through db inside a Tx).
	wgate chan struct{}
}

// writeWait bounds how long a writer queues for the gate; it matches the
// busy timeout SQLite itself would have applied.
const writeWait = 10 * time.Second

// ErrWriteTimeout: a writer queued longer than writeWait for its turn.
var ErrWriteTimeout = errors.New("database is locked: timed out waiting to write")

// acquire takes the writer gate; release gives it back.
func (db *DB) acquire(ctx context.Context) error {
	select {
	case db.wgate <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(writeWait)
	defer t.Stop()
	select {
	case db.wgate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrWriteTimeout
	}
}

func (db *DB) release() { <-db.wgate }

// ExecContext runs one statement outside a transaction, through the same
// writer gate as Tx. It shadows sql.DB's method so every service's
// s.db.ExecContext queues for the write lock without holding a connection.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := db.acquire(ctx); err != nil {
		return nil, err
	}
	defer db.release()
	return db.DB.ExecContext(ctx, query, args...)
}

// Exec is ExecContext with a background context.
func (db *DB) Exec(query string, args ...any) (sql.Result, error) {
	return db.ExecContext(context.Background(), query, args...)
}

// Open opens (creating if needed) the SQLite database at file.
//
// A new database gets auto_vacuum=INCREMENTAL, so that the pages
// of deleted rows can be given back to the file system (Shrink): the
// object store keeps small objects in it, and a user who deletes
// gigabytes of them expects the disk back, as Swift gives it. An older
// database made without it is converted (VACUUM) when it is small enough
// to do so quickly (convertMax); a larger one keeps reusing its free pages
// for new rows but never shrinks.
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
	d := &DB{DB: db, wgate: make(chan struct{}, 1)}
	d.convertAutoVacuum()
	return d, nil
}

// convertMax is the largest database Open converts to incremental
// auto-vacuum (a VACUUM rewrites all of it: ~1 s for this much here).
const convertMax = 64 << 20

// convertAutoVacuum turns incremental auto-vacuum on for a new database,
// or one made before Open asked for it if it is small. The mode is set on
// one connection and written by a VACUUM on the same one (instant on a new
// database). Not in the DSN: a connection opened while a writer holds the
// lock would wait for it to set the mode, and the pool's reads beside a
// transaction would stall. Best effort: a database in use by another
// process stays as it is.
func (db *DB) convertAutoVacuum() {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	var mode, pages, size int64
	if conn.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode) != nil || mode != 0 {
		return
	}
	if conn.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages) != nil ||
		conn.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size) != nil || pages*size > convertMax {
		return
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA auto_vacuum=INCREMENTAL`); err == nil {
		conn.ExecContext(ctx, `VACUUM`)
	}
}

// FreeBytes is the size of the database's free pages: left by deleted
// rows, reused by later writes, or given back by Shrink.
func (db *DB) FreeBytes(ctx context.Context) (int64, error) {
	var pages, size int64
	if err := db.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&pages); err != nil {
		return 0, err
	}
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
		return 0, err
	}
	return pages * size, nil
}

// shrinkStep is how many pages one step of Shrink frees: each step holds
// the write lock for a few milliseconds.
const shrinkStep = 1024

// Shrink gives free pages back to the file system, a step at a time
// (through the writer gate, so writers go on in between), until at most
// keep bytes of them are left, and returns how many it gave back. The
// file gets shorter at the next checkpoint. A database without
// incremental auto-vacuum (see Open) gives nothing back.
func (db *DB) Shrink(ctx context.Context, keep int64) (int64, error) {
	var freed int64
	var mode int64
	if err := db.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != 2 {
		return 0, err
	}
	for {
		free, err := db.FreeBytes(ctx)
		if err != nil || free <= keep {
			return freed, err
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, shrinkStep)); err != nil {
			return freed, err
		}
		after, err := db.FreeBytes(ctx)
		if err != nil {
			return freed, err
		}
		if after >= free {
			return freed, nil // nothing moved: do not spin
		}
		freed += free - after
	}
}

// Tx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise. Errors from fn and the driver come back translated.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := db.acquire(ctx); err != nil {
		return err
	}
	defer db.release()
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
