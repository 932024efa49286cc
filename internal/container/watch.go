package container

import (
	"context"
	"errors"
	"time"

	"github.com/monostack/monostack/internal/runtime"
)

// The watcher reads the containers' states from their host and records
// what changed without the API being asked: a process that exited is
// Stopped with its exit code, a paused one Paused; and it applies restart
// policies to containers that exited on their own.

func (s *Service) watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.syncNow(ctx)
	}
}

// syncNow syncs the states of the host's containers now (at most every
// 100 ms: list and show call it so that what they answer is fresh).
func (s *Service) syncNow(ctx context.Context) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if time.Since(s.lastSync) < 100*time.Millisecond || s.cfg.Host == "" {
		return
	}
	// The records first, then the host: a record is compared with a
	// state of the host at least as new (a container the host listed
	// before its build recorded it Running would look gone), and record
	// changes a status only if it is still the one read here.
	// Not those an action is working on (task_state): the host's states
	// in the middle of it (a rebooting container stopped for a moment)
	// are not how it ends, and the action records that.
	rows, err := s.db.QueryContext(ctx, `SELECT `+containerCols+` FROM container_containers WHERE host=? AND task IS NULL
		AND (task_state IS NULL OR task_state='') AND status IN (?, ?, ?, ?)`, s.cfg.Host, stRunning, stPaused, stRestarting, stStopped)
	if err != nil {
		return
	}
	var cts []Container
	for rows.Next() {
		ct, err := scanContainer(rows)
		if err == nil {
			cts = append(cts, ct)
		}
	}
	rows.Close()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	states, err := s.hosts.List(lctx, s.cfg.Host)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("listing containers on the host", "err", err)
		}
		return
	}
	s.lastSync = time.Now()
	byID := map[string]runtime.State{}
	for _, st := range states {
		byID[st.ID] = st
	}
	for _, ct := range cts {
		st, ok := byID[ct.UUID]
		s.reconcile(ctx, ct, st, ok)
	}
}

// syncOne syncs one container's record with its host, as syncNow does
// for all (show asks for one: at 500 containers the whole host takes
// ~250 ms to read, one container ~1 ms).
// It reports whether the record may have changed (then read it again).
func (s *Service) syncOne(ctx context.Context, ct Container) bool {
	if ct.Host == "" || ct.Host != s.cfg.Host || ct.Task != "" || ct.TaskState != "" ||
		!contains([]string{stRunning, stPaused, stRestarting, stStopped}, ct.Status) {
		return false
	}
	st, err := s.hosts.State(ctx, ct.Host, ct.UUID)
	if errors.Is(err, runtime.ErrNotFound) {
		return s.reconcile(ctx, ct, st, false)
	}
	if err != nil {
		return false // the watcher tries again
	}
	return s.reconcile(ctx, ct, st, true)
}

// reconcile records what the host says of a container (ok false: it has
// none), and applies the restart policy or auto_remove to one that ended
// on its own. It reports whether it wrote (or tried to write) the record.
func (s *Service) reconcile(ctx context.Context, ct Container, st runtime.State, ok bool) bool {
	if !ok {
		if ct.Status == stStopped {
			return false
		}
		s.record(ctx, ct, stError, "The container is gone from its host.", nil)
		return true
	}
	switch st.Status {
	case runtime.Running:
		if ct.Status == stRunning {
			return false
		}
		s.record(ctx, ct, stRunning, "", nil)
	case runtime.Paused:
		if ct.Status == stPaused {
			return false
		}
		s.record(ctx, ct, stPaused, "", nil)
	case runtime.Stopped, runtime.Created:
		if ct.Status == stStopped {
			return false
		}
		exit := st.ExitCode
		if !s.record(ctx, ct, stStopped, "", &exit) {
			return true // an action took it over meanwhile
		}
		s.log.Info("container exited", "container", ct.UUID, "exit_code", exit)
		id := ct.UUID
		switch {
		case s.shouldRestart(ct, exit):
			s.spawn(id, func(ctx context.Context) { s.restart(ctx, id) })
		case ct.AutoRemove && ct.CapsuleID == "":
			// --rm: a container that ended on its own goes away,
			// as docker run --rm does.
			res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, task=?,
				task_state='container_deleting', updated_at=? WHERE uuid=? AND task IS NULL`, stDeleting, taskDelete, nowText(), id)
			if n, _ := res.RowsAffected(); err == nil && n == 1 {
				s.spawn(id, func(ctx context.Context) { s.destroy(ctx, id) })
			}
		}
	default:
		return false
	}
	return true
}

// record sets a container's status as the host reports it, unless an
// action took the container over meanwhile.
func (s *Service) record(ctx context.Context, ct Container, status, reason string, exit *int) bool {
	var finished any
	if status == stStopped {
		finished = nowText()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, status_reason=?, exit_code=coalesce(?, exit_code),
		finished_at=coalesce(?, finished_at), updated_at=? WHERE uuid=? AND task IS NULL AND (task_state IS NULL OR task_state='')
		AND status=?`, status, nilIfEmpty(reason), exit, finished, nowText(), ct.UUID, ct.Status)
	if err != nil {
		return false
	}
	n, _ := res.RowsAffected()
	return n > 0
}

// shouldRestart applies the restart policy to a container whose process
// exited on its own.
func (s *Service) shouldRestart(ct Container, exit int) bool {
	if ct.UserStopped {
		return false
	}
	switch ct.Restart.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		max := ct.Restart.maxRetries()
		return exit != 0 && (max == 0 || ct.RestartCount < max)
	}
	return false
}

// restart starts a container again under its restart policy. It marks
// the container (task_state) while it works so that the watcher, which
// still sees it stopped on the host, leaves it alone.
func (s *Service) restart(ctx context.Context, id string) {
	ct, err := s.loadContainer(ctx, s.db, id)
	if err != nil || ct.Task != "" || ct.Status != stStopped || ct.UserStopped {
		return
	}
	res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, task_state='container_starting',
		restart_count=restart_count+1, updated_at=? WHERE uuid=? AND task IS NULL AND (task_state IS NULL OR task_state='')
		AND status=?`, stRestarting, nowText(), id, stStopped)
	if err != nil {
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return // an action or a delete took it over
	}
	if _, err := s.hosts.Action(ctx, ct.Host, id, "start", 0, 0); err != nil {
		if ctx.Err() != nil {
			return // closing: the next service's watcher sees how it is
		}
		s.log.Warn("restarting a container", "container", id, "err", err)
		// Unless a delete took the container over meanwhile.
		s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, status_reason=?, task_state=NULL, updated_at=?
			WHERE uuid=? AND task IS NULL`, stError, "Restarting the container failed: "+err.Error(), nowText(), id)
		return
	}
	s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, task_state=NULL, started_at=?, updated_at=? WHERE uuid=?
		AND task IS NULL AND status=?`, stRunning, nowText(), nowText(), id, stRestarting)
}
