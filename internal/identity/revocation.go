package identity

import (
	"context"
	"slices"
	"time"
)

// revocationEvent revokes every token that matches all its non-empty fields
// and was issued at or before IssuedBefore. Events are made by explicit
// revocation (audit id), password changes and user, project or domain
// disabling or deletion; they are kept in memory for fast checks and in the
// database so that they survive a restart.
type revocationEvent struct {
	UserID, ProjectID, DomainID, RoleID, AuditID, AppCredID string
	IssuedBefore                                            time.Time
}

func (s *Service) revoke(ctx context.Context, ev revocationEvent) error {
	if ev.IssuedBefore.IsZero() {
		ev.IssuedBefore = now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO revocation_events
		(user_id, project_id, domain_id, role_id, audit_id, app_cred_id, issued_before, created_at) VALUES (?,?,?,?,?,?,?,?)`,
		ev.UserID, ev.ProjectID, ev.DomainID, ev.RoleID, ev.AuditID, ev.AppCredID, timeText(ev.IssuedBefore), timeText(now()))
	if err != nil {
		return err
	}
	s.revMu.Lock()
	s.revs = append(s.revs, ev)
	s.revMu.Unlock()
	s.changed()
	return nil
}

// loadRevocations reads the events that can still match a token, dropping
// older ones.
func (s *Service) loadRevocations(ctx context.Context) error {
	horizon := now().Add(-s.cfg.TokenTTL - s.cfg.AllowExpiredWindow)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM revocation_events WHERE issued_before < ?`, timeText(horizon)); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, project_id, domain_id, role_id, audit_id, app_cred_id, issued_before FROM revocation_events`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var evs []revocationEvent
	for rows.Next() {
		var ev revocationEvent
		var ib string
		if err := rows.Scan(&ev.UserID, &ev.ProjectID, &ev.DomainID, &ev.RoleID, &ev.AuditID, &ev.AppCredID, &ib); err != nil {
			return err
		}
		ev.IssuedBefore = parseTime(ib)
		evs = append(evs, ev)
	}
	s.revMu.Lock()
	s.revs = evs
	s.revMu.Unlock()
	return rows.Err()
}

// revoked reports whether any event matches the token.
func (s *Service) revoked(t *payload, userDomainID, projectDomainID string) bool {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	for i := range s.revs {
		ev := &s.revs[i]
		if t.IssuedAt.After(ev.IssuedBefore) {
			continue
		}
		if ev.UserID != "" && ev.UserID != t.UserID {
			continue
		}
		if ev.ProjectID != "" && ev.ProjectID != t.ProjectID {
			continue
		}
		if ev.DomainID != "" && ev.DomainID != t.DomainID && ev.DomainID != projectDomainID && ev.DomainID != userDomainID {
			continue
		}
		if ev.AuditID != "" && !slices.Contains(t.AuditIDs, ev.AuditID) {
			continue
		}
		if ev.AppCredID != "" && ev.AppCredID != t.AppCredID {
			continue
		}
		return true
	}
	return false
}
