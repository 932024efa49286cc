package network

import (
	"context"
	"database/sql"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/monostack/monostack/internal/datapath"
)

// hostSyncer is the bookkeeping of the sync loop: whether something
// changed since the last round, which hosts there are, what each was last
// sent, and which routers each host's agent last reported.
type hostSyncer struct {
	mu       sync.Mutex
	kick     chan struct{}
	known    map[string]bool
	last     map[string]datapath.HostState
	observed map[string]map[string]bool // host → router ids
	// reported: when each host's agent first and last reported.
	reported map[string][2]time.Time
}

func (h *hostSyncer) init() {
	h.kick = make(chan struct{}, 1)
	h.known = map[string]bool{}
	h.last = map[string]datapath.HostState{}
	h.observed = map[string]map[string]bool{}
	h.reported = map[string][2]time.Time{}
}

func (h *hostSyncer) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *hostSyncer) routerObserved(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, rs := range h.observed {
		if rs[id] {
			return true
		}
	}
	return false
}

// changed marks that hosts' states may differ from what they were sent:
// the loop recomputes every host's state and delivers those that changed.
func (s *Service) changed() { s.hosts.poke() }

// Resync makes the loop send every host its state at the next round, even
// unchanged (after an agent restarted, say).
func (s *Service) Resync() {
	s.hosts.mu.Lock()
	clear(s.hosts.last)
	s.hosts.mu.Unlock()
	s.hosts.poke()
}

// runSync is the sync loop: a round after each burst of changes (at most
// one round per SyncDelay) and one every ResyncInterval that sends every
// host its state whether it changed or not. A failed delivery is retried a
// second later.
func (s *Service) runSync(ctx context.Context) {
	if s.syncTo == nil {
		return
	}
	resync := time.NewTicker(s.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var lastRound time.Time
	s.hosts.poke() // a first round at start
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-s.hosts.kick:
		case <-retry.C:
		case <-resync.C:
			force = true
		}
		if wait := s.cfg.SyncDelay - time.Since(lastRound); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		// Changes made while this round runs poke again: another round follows.
		lastRound = time.Now()
		if failed := s.syncRound(ctx, force); failed {
			retry.Reset(time.Second)
		}
	}
}

// syncRound delivers the state of each host that needs it; it reports
// whether any delivery failed.
func (s *Service) syncRound(ctx context.Context, force bool) bool {
	hosts, err := s.hostNames(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("listing hosts to sync", "err", err)
		}
		return true
	}
	failed := false
	for _, host := range hosts {
		st, err := s.HostState(ctx, host)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("computing host state", "host", host, "err", err)
			}
			failed = true
			continue
		}
		s.hosts.mu.Lock()
		prev, sent := s.hosts.last[host]
		s.hosts.mu.Unlock()
		if !force && sent && reflect.DeepEqual(prev, st) {
			continue
		}
		if err := s.syncTo.Sync(ctx, host, st); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("syncing host", "host", host, "err", err)
			}
			s.hosts.mu.Lock()
			delete(s.hosts.last, host)
			s.hosts.mu.Unlock()
			failed = true
			continue
		}
		s.hosts.mu.Lock()
		s.hosts.last[host] = st
		s.hosts.mu.Unlock()
	}
	return failed
}

// hostNames are the hosts to sync: those ports are bound to, this node,
// and every host synced before (so a host whose last port went away is
// told so).
func (s *Service) hostNames(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT host_id FROM ports WHERE host_id<>''`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	s.hosts.mu.Lock()
	defer s.hosts.mu.Unlock()
	if s.cfg.Host != "" {
		s.hosts.known[s.cfg.Host] = true
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		s.hosts.known[h] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(s.hosts.known))
	for h := range s.hosts.known {
		out = append(out, h)
	}
	slices.Sort(out)
	return out, nil
}

// ReportObserved takes an agent's report of what its host has: ports the
// host has plugged become ACTIVE and those it has not DOWN; on the router
// host, the routers' ports and the floating IPs of the routers it runs
// likewise. Status changes do not change any host's desired state.
func (s *Service) ReportObserved(ctx context.Context, host string, obs datapath.Observed) error {
	havePorts := map[string]bool{}
	for _, id := range obs.Ports {
		havePorts[id] = true
	}
	haveRouters := map[string]bool{}
	for _, id := range obs.Routers {
		haveRouters[id] = true
	}
	s.hosts.mu.Lock()
	s.hosts.observed[host] = haveRouters
	s.hosts.known[host] = true
	t := s.hosts.reported[host]
	if t[0].IsZero() {
		t[0] = time.Now()
	}
	t[1] = time.Now()
	s.hosts.reported[host] = t
	s.hosts.mu.Unlock()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		type change struct{ id, status string }
		var changes []change
		rows, err := tx.QueryContext(ctx, `SELECT id, status, admin_state_up, device_owner, device_id FROM ports WHERE host_id=?`, host)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, status, owner, device string
			var up bool
			if err := rows.Scan(&id, &status, &up, &owner, &device); err != nil {
				rows.Close()
				return err
			}
			want := statusDown
			switch owner {
			case ownerFloatingIP:
				continue
			case ownerRouterInterface, ownerRouterGateway:
				if haveRouters[device] && up {
					want = statusActive
				}
			default:
				if havePorts[id] && up {
					want = statusActive
				}
			}
			if want != status {
				changes = append(changes, change{id, want})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		t := timeText(now())
		for _, c := range changes {
			if _, err := tx.ExecContext(ctx, `UPDATE ports SET status=?, revision_number=revision_number+1, updated_at=? WHERE id=?`,
				c.status, t, c.id); err != nil {
				return err
			}
		}
		if host != s.cfg.Host {
			return nil
		}
		frows, err := tx.QueryContext(ctx, `SELECT id, status, router_id FROM floatingips`)
		if err != nil {
			return err
		}
		changes = changes[:0]
		for frows.Next() {
			var id, status string
			var router sql.NullString
			if err := frows.Scan(&id, &status, &router); err != nil {
				frows.Close()
				return err
			}
			want := statusDown
			if router.Valid && haveRouters[router.String] {
				want = statusActive
			}
			if want != status {
				changes = append(changes, change{id, want})
			}
		}
		frows.Close()
		if err := frows.Err(); err != nil {
			return err
		}
		for _, c := range changes {
			if _, err := tx.ExecContext(ctx, `UPDATE floatingips SET status=?, revision_number=revision_number+1, updated_at=? WHERE id=?`,
				c.status, t, c.id); err != nil {
				return err
			}
		}
		return nil
	})
}
