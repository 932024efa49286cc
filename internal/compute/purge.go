package compute

import (
	"context"
	"database/sql"
	"time"
)

// PurgeDeleted removes what is kept of the servers deleted before before:
// their rows (with their metadata, tags and ports, by cascade) and their
// instance actions. Nova keeps a deleted server's row and actions
// (`GET /servers?deleted=true`, `os-instance-actions`) until an operator
// runs `nova-manage db archive_deleted_rows` and `purge`; monostack runs
// this instead, for servers deleted longer ago than --keep-deleted, so
// that a cloud that makes and deletes servers all day does not keep every
// one of them. It returns how many servers it removed.
func (s *Service) PurgeDeleted(ctx context.Context, before time.Time) (int64, error) {
	cutoff := before.UTC().Format(timeFormat)
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM compute_instance_actions WHERE server_id IN
			(SELECT id FROM compute_servers WHERE deleted=1 AND terminated_at < ?)`, cutoff); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM compute_servers WHERE deleted=1 AND terminated_at < ?`, cutoff)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
