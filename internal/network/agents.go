package network

import (
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/monostack/monostack/internal/api"
)

// Agents (read-only): each host whose agent has reported (ReportObserved)
// is a "Linux bridge agent", and the router host an "L3 agent" too; an
// agent is alive when its host reported within agentDownTime, upstream's
// agent_down_time.

const agentDownTime = 75 * time.Second

type agent struct {
	id, typ, binary, topic, host string
	az                           any
	created, heartbeat           time.Time
	alive                        bool
}

func agentTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func (a agent) wire() map[string]any {
	return map[string]any{
		"id": a.id, "agent_type": a.typ, "binary": a.binary, "topic": a.topic, "host": a.host,
		"admin_state_up": true, "alive": a.alive, "availability_zone": a.az, "configurations": map[string]any{},
		"created_at": agentTime(a.created), "started_at": agentTime(a.created), "heartbeat_timestamp": agentTime(a.heartbeat),
		"description": nil, "resources_synced": nil, "ha_state": nil,
	}
}

var agentAttrs = []string{"id", "agent_type", "binary", "topic", "host", "admin_state_up", "alive", "availability_zone",
	"configurations", "created_at", "started_at", "heartbeat_timestamp", "description", "resources_synced", "ha_state"}

// agents lists the agents as of now.
func (s *Service) agents() []agent {
	s.hosts.mu.Lock()
	reported := make(map[string][2]time.Time, len(s.hosts.reported))
	for h, t := range s.hosts.reported {
		reported[h] = t
	}
	s.hosts.mu.Unlock()
	hosts := make([]string, 0, len(reported)+1)
	for h := range reported {
		hosts = append(hosts, h)
	}
	if _, ok := reported[s.cfg.Host]; !ok && s.cfg.Host != "" {
		hosts = append(hosts, s.cfg.Host)
	}
	slices.Sort(hosts)
	var out []agent
	for _, h := range hosts {
		t, ok := reported[h]
		first, last := t[0], t[1]
		if !ok {
			first, last = s.started, s.started
		}
		alive := ok && time.Since(last) < agentDownTime
		mk := func(typ, binary, topic string, az any) agent {
			id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("monostack-agent:"+h+"/"+typ)).String()
			return agent{id: id, typ: typ, binary: binary, topic: topic, host: h, az: az, created: first, heartbeat: last, alive: alive}
		}
		out = append(out, mk("Linux bridge agent", "neutron-linuxbridge-agent", "N/A", nil))
		if h == s.cfg.Host {
			out = append(out, mk("L3 agent", "neutron-l3-agent", "l3_agent", s.cfg.AvailabilityZone))
		}
	}
	return out
}

func (s *Service) handleListAgents(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_agent")
	if err != nil {
		return err
	}
	lq, err := parseList(r, agentAttrs)
	if err != nil {
		return err
	}
	items := []map[string]any{}
	if c.admin {
		for _, a := range s.agents() {
			items = append(items, a.wire())
		}
	}
	return writeList(w, r, "agents", lq, items, func(id string) error { return agentNotFound(id) })
}

func agentNotFound(id string) error {
	return nerr(http.StatusNotFound, "AgentNotFound", "Agent %s could not be found.", id)
}

func (s *Service) handleShowAgent(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_agent")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if c.admin {
		for _, a := range s.agents() {
			if a.id == id {
				api.WriteJSON(w, http.StatusOK, map[string]any{"agent": showFields(r, a.wire())})
				return nil
			}
		}
	}
	return agentNotFound(id)
}
