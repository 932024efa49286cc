package objectstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/monostack/monostack/internal/store"
)

// resellerPrefix starts every account name: AUTH_<project id>.
const resellerPrefix = "AUTH_"

// Account is a project's storage account. It exists implicitly for every
// project; Created is zero until its first write makes a row.
type Account struct {
	Name           string
	Created        int64
	Meta           meta
	ContainerCount int64
	ObjectCount    int64
	BytesUsed      int64
}

// projectOf returns the project id an account name belongs to.
func projectOf(account string) (string, bool) {
	p, ok := strings.CutPrefix(account, resellerPrefix)
	return p, ok && p != ""
}

// getAccount returns the account with its totals, computed from its
// containers' counters.
func (s *Service) getAccount(ctx context.Context, name string) (Account, error) {
	a := Account{Name: name, Meta: meta{}}
	var m string
	err := s.db.QueryRowContext(ctx, `SELECT created, meta FROM swift_accounts WHERE name=?`, name).Scan(&a.Created, &m)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return a, err
	default:
		a.Meta = decodeMeta(m)
	}
	err = s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(object_count), 0), coalesce(sum(bytes_used), 0)
		FROM swift_containers WHERE account=?`, name).Scan(&a.ContainerCount, &a.ObjectCount, &a.BytesUsed)
	return a, err
}

// ensureAccount makes the account's row if it has none.
func ensureAccount(ctx context.Context, tx *sql.Tx, name string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO swift_accounts (name, created, meta) VALUES (?, ?, '{}')
		ON CONFLICT (name) DO NOTHING`, name, now)
	return err
}

// updateAccountMeta applies update to the account's metadata, making the
// row if needed; check validates the result before it is stored.
func (s *Service) updateAccountMeta(ctx context.Context, name string, update func(meta) error) error {
	return s.write(func(ctx context.Context, tx *sql.Tx) error {
		if err := ensureAccount(ctx, tx, name, nowMicro()); err != nil {
			return err
		}
		var raw string
		if err := tx.QueryRowContext(ctx, `SELECT meta FROM swift_accounts WHERE name=?`, name).Scan(&raw); err != nil {
			return store.Translate(err)
		}
		m := decodeMeta(raw)
		if err := update(m); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE swift_accounts SET meta=? WHERE name=?`, m.encode(), name)
		return err
	})
}
