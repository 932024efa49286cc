package objectstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/monostack/monostack/internal/store"
)

// Container is a container of an account, with its counters.
type Container struct {
	ID          int64
	Account     string
	Name        string
	Created     int64
	Modified    int64
	Meta        meta
	ObjectCount int64
	BytesUsed   int64
}

const containerCols = `id, account, name, created, modified, meta, object_count, bytes_used`

type rowScanner interface{ Scan(...any) error }

func scanContainer(row rowScanner) (Container, error) {
	var c Container
	var m string
	err := row.Scan(&c.ID, &c.Account, &c.Name, &c.Created, &c.Modified, &m, &c.ObjectCount, &c.BytesUsed)
	if err != nil {
		return c, store.Translate(err)
	}
	c.Meta = decodeMeta(m)
	return c, nil
}

// getContainer returns the container (read in tx, or outside any when tx
// is nil); a missing one is a 404 error.
func (s *Service) getContainer(ctx context.Context, tx *sql.Tx, account, name string) (Container, error) {
	c, err := scanContainer(in(ctx, tx, s.st.container).QueryRowContext(ctx, account, name))
	if errors.Is(err, store.ErrNotFound) {
		return c, errNotFound()
	}
	return c, err
}

// lookupContainer is getContainer that answers nil for a missing container,
// for callers that must authorize before saying whether it exists.
func (s *Service) lookupContainer(ctx context.Context, account, name string) (*Container, error) {
	c, err := scanContainer(s.st.container.QueryRowContext(ctx, account, name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// putContainer creates the container, or updates the metadata of the one
// that exists; created says which.
func (s *Service) putContainer(ctx context.Context, account, name string, update func(meta) error) (created bool, err error) {
	err = s.write(func(ctx context.Context, tx *sql.Tx) error {
		now := nowMicro()
		if err := ensureAccount(ctx, tx, account, now); err != nil {
			return err
		}
		c, err := s.getContainer(ctx, tx, account, name)
		switch {
		case err == nil:
			created = false
			if err := update(c.Meta); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE swift_containers SET meta=?, modified=? WHERE id=?`, c.Meta.encode(), now, c.ID)
			return err
		case isStatus(err, 404):
			created = true
			m := meta{}
			if err := update(m); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO swift_containers (account, name, created, modified, meta) VALUES (?, ?, ?, ?, ?)`,
				account, name, now, now, m.encode())
			return err
		default:
			return err
		}
	})
	return created, err
}

// postContainer updates the metadata of an existing container.
func (s *Service) postContainer(ctx context.Context, account, name string, update func(meta) error) error {
	return s.write(func(ctx context.Context, tx *sql.Tx) error {
		c, err := s.getContainer(ctx, tx, account, name)
		if err != nil {
			return err
		}
		if err := update(c.Meta); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE swift_containers SET meta=?, modified=? WHERE id=?`, c.Meta.encode(), nowMicro(), c.ID)
		return err
	})
}

// deleteContainer removes an empty container. Objects already expired do
// not count: they are removed with it.
func (s *Service) deleteContainer(ctx context.Context, account, name string) error {
	var files []string
	err := s.write(func(ctx context.Context, tx *sql.Tx) error {
		files = files[:0]
		c, err := s.getContainer(ctx, tx, account, name)
		if err != nil {
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM swift_objects WHERE container_id=? AND (delete_at=0 OR delete_at>?))`,
			c.ID, nowUnix()).Scan(&live); err != nil {
			return err
		}
		if live != 0 {
			return errConflict()
		}
		rows, err := tx.QueryContext(ctx, `SELECT file FROM swift_objects WHERE container_id=?`, c.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				rows.Close()
				return err
			}
			files = append(files, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, f := range files {
			if err := s.deleteBlob(ctx, tx, f); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM swift_objects WHERE container_id=?`, c.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM swift_containers WHERE id=?`, c.ID)
		return err
	})
	if err != nil {
		return err
	}
	for _, f := range files {
		s.removeFile(f)
	}
	return nil
}

// removeFile removes a file whose row is gone; a failure only leaves an
// orphan for the next start-up check, so it is logged, not returned. A
// blob in the database went with its row, in the same transaction: for
// one, removeFile does nothing.
func (s *Service) removeFile(rel string) {
	if isDBFile(rel) {
		return
	}
	if err := s.blobs.remove(rel); err != nil {
		s.log.Warn("removing object file", "file", rel, "err", err)
	}
}
