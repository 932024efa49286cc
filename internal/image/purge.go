package image

import (
	"context"
	"time"
)

// PurgeDeleted forgets the ids of the images deleted before before, as
// `glance-manage db purge` does with Glance's deleted rows: until then an
// id is never given to a second image. monostack runs it for images
// deleted longer ago than --keep-deleted. It returns how many it forgot.
func (s *Service) PurgeDeleted(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM deleted_images WHERE deleted_at < ?`, timeText(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
