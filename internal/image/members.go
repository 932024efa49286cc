package image

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Member is a project an image is shared with, and what that project said
// about it.
type Member struct {
	ImageID   string
	MemberID  string // a project id
	Status    string // pending, accepted, rejected
	CreatedAt time.Time
	UpdatedAt time.Time
}

var memberStatuses = []string{"pending", "accepted", "rejected"}

func errMemberNotFound(imageID, member string) error {
	return api.NotFound("%s not found in the member list of the image %s.", member, imageID)
}

func scanMember(row interface{ Scan(...any) error }) (Member, error) {
	var m Member
	var created, updated string
	if err := row.Scan(&m.ImageID, &m.MemberID, &m.Status, &created, &updated); err != nil {
		return m, store.Translate(err)
	}
	m.CreatedAt, m.UpdatedAt = parseTime(created), parseTime(updated)
	return m, nil
}

const memberCols = `image_id, member, status, created_at, updated_at`

func (s *Service) members(ctx context.Context, imageID string) ([]Member, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+memberCols+` FROM image_members WHERE image_id=? ORDER BY created_at, member`, imageID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *Service) member(ctx context.Context, imageID, member string) (Member, error) {
	m, err := scanMember(s.db.QueryRowContext(ctx, `SELECT `+memberCols+` FROM image_members WHERE image_id=? AND member=?`, imageID, member))
	if errors.Is(err, store.ErrNotFound) {
		return m, errMemberNotFound(imageID, member)
	}
	return m, err
}

// AddMember shares an image with a project (status pending).
func (s *Service) AddMember(ctx context.Context, imageID, member string) (Member, error) {
	t := timeText(now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM image_members WHERE image_id=?`, imageID).Scan(&n); err != nil {
			return err
		}
		if n >= maxMembers {
			return api.Errorf(413, "Image member limit exceeded for image %s: at most %d members.", imageID, maxMembers)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO image_members (image_id, member, status, created_at, updated_at)
			VALUES (?,?,'pending',?,?)`, imageID, member, t, t)
		if errors.Is(store.Translate(err), store.ErrConflict) {
			return api.Conflict("Member %s is duplicated for image %s", member, imageID)
		}
		return err
	})
	if err != nil {
		return Member{}, err
	}
	return s.member(ctx, imageID, member)
}

func (s *Service) setMemberStatus(ctx context.Context, imageID, member, status string) (Member, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE image_members SET status=?, updated_at=? WHERE image_id=? AND member=?`,
		status, timeText(now()), imageID, member)
	if err != nil {
		return Member{}, store.Translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Member{}, errMemberNotFound(imageID, member)
	}
	return s.member(ctx, imageID, member)
}

func (s *Service) removeMember(ctx context.Context, imageID, member string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM image_members WHERE image_id=? AND member=?`, imageID, member)
	if err != nil {
		return store.Translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errMemberNotFound(imageID, member)
	}
	return nil
}
