// Package store opens the database every service keeps its tables in, runs
// each service's embedded migrations, and translates driver errors once so
// that services only ever see ErrNotFound and ErrConflict.
//
// The default database is a single SQLite file (modernc.org/sqlite, pure Go)
// in WAL mode with synchronous=FULL: a write that returned is on disk, so an
// acknowledged request survives kill -9 and power loss.
package store
