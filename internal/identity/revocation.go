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
	s.revs.add(ev)
	prune := now().Sub(s.revs.pruned) >= revPruneEvery
	if prune {
		s.revs.pruned = now() // one prune at a time; a failed one waits its turn
	}
	s.revMu.Unlock()
	s.changed()
	if prune {
		// The event is stored: a failed prune is retried next time.
		if err := s.pruneRevocations(ctx); err != nil && s.log != nil {
			s.log.Warn("identity: pruning revocation events", "err", err)
		}
	}
	return nil
}

// revPruneEvery is how often revoke drops the events no token can match
// any more: without it a daemon that runs for weeks kept every event it
// made (each one scanned on every validation) until its next restart.
const revPruneEvery = 10 * time.Minute

// revocationHorizon is the time before which an event matches no token
// that can still validate: tokens issued then have expired, and are past
// even ?allow_expired's window.
func (s *Service) revocationHorizon() time.Time {
	return now().Add(-s.cfg.TokenTTL - s.cfg.AllowExpiredWindow)
}

// deleteRevocations deletes the stored events older than horizon.
func (s *Service) deleteRevocations(ctx context.Context, horizon time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM revocation_events WHERE issued_before < ?`, timeText(horizon))
	return err
}

// pruneRevocations drops the events older than the horizon, stored and in
// memory.
func (s *Service) pruneRevocations(ctx context.Context) error {
	horizon := s.revocationHorizon()
	if err := s.deleteRevocations(ctx, horizon); err != nil {
		return err
	}
	s.revMu.Lock()
	s.revs.prune(horizon)
	s.revMu.Unlock()
	return nil
}

// loadRevocations reads the events that can still match a token, dropping
// older ones.
func (s *Service) loadRevocations(ctx context.Context) error {
	if err := s.deleteRevocations(ctx, s.revocationHorizon()); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, project_id, domain_id, role_id, audit_id, app_cred_id, issued_before FROM revocation_events`)
	if err != nil {
		return err
	}
	defer rows.Close()
	revs := revocations{pruned: now()}
	for rows.Next() {
		var ev revocationEvent
		var ib string
		if err := rows.Scan(&ev.UserID, &ev.ProjectID, &ev.DomainID, &ev.RoleID, &ev.AuditID, &ev.AppCredID, &ib); err != nil {
			return err
		}
		ev.IssuedBefore = parseTime(ib)
		revs.add(ev)
	}
	s.revMu.Lock()
	s.revs = revs
	s.revMu.Unlock()
	return rows.Err()
}

// revocations are the events in memory: those that name only an audit id
// (a token revoked by DELETE /v3/auth/tokens, by far the most) by audit
// id, so that a check looks up the token's one or two audit ids rather
// than scanning them; the others (users, projects, domains, application
// credentials) in a list.
type revocations struct {
	audit  map[string]time.Time // audit id → latest IssuedBefore
	others []revocationEvent
	pruned time.Time // when events past the horizon were last dropped
}

func (ev *revocationEvent) auditOnly() bool {
	return ev.AuditID != "" && ev.UserID == "" && ev.ProjectID == "" && ev.DomainID == "" && ev.RoleID == "" && ev.AppCredID == ""
}

func (r *revocations) add(ev revocationEvent) {
	if !ev.auditOnly() {
		r.others = append(r.others, ev)
		return
	}
	if r.audit == nil {
		r.audit = map[string]time.Time{}
	}
	if ib, ok := r.audit[ev.AuditID]; !ok || ev.IssuedBefore.After(ib) {
		r.audit[ev.AuditID] = ev.IssuedBefore
	}
}

func (r *revocations) prune(horizon time.Time) {
	for id, ib := range r.audit {
		if ib.Before(horizon) {
			delete(r.audit, id)
		}
	}
	r.others = slices.DeleteFunc(r.others, func(ev revocationEvent) bool { return ev.IssuedBefore.Before(horizon) })
}

func (r *revocations) len() int { return len(r.audit) + len(r.others) }

// revoked reports whether any event matches the token.
func (s *Service) revoked(t *payload, userDomainID, projectDomainID string) bool {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	for _, id := range t.AuditIDs {
		if ib, ok := s.revs.audit[id]; ok && !t.IssuedAt.After(ib) {
			return true
		}
	}
	for i := range s.revs.others {
		ev := &s.revs.others[i]
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
