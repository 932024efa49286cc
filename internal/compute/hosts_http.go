package compute

import (
	"net/http"
	"strconv"

	"github.com/monostack/monostack/internal/api"
)

func (s *Service) hypervisorView(v api.Version, h hostRow, detail bool) map[string]any {
	state, status := "up", "enabled"
	if h.ForcedDown {
		state = "down"
	}
	if h.Disabled {
		status = "disabled"
	}
	var id, svcID any = h.ID, h.ID
	if v.AtLeast(2, 53) {
		id, svcID = h.UUID, h.ServiceUUID
	}
	m := map[string]any{"id": id, "hypervisor_hostname": h.Name, "state": state, "status": status}
	if !detail {
		return m
	}
	m["host_ip"] = h.IP
	m["hypervisor_type"] = h.HypType
	m["hypervisor_version"] = 1000000
	var reason any
	if h.DisabledReason.Valid {
		reason = h.DisabledReason.String
	}
	m["service"] = map[string]any{"host": h.Name, "id": svcID, "disabled_reason": reason}
	if !v.AtLeast(2, 88) {
		m["vcpus"], m["vcpus_used"] = h.VCPUs, h.UsedVCPUs
		m["memory_mb"], m["memory_mb_used"], m["free_ram_mb"] = h.MemMB, h.UsedMemMB, h.MemMB-h.UsedMemMB
		m["local_gb"], m["local_gb_used"], m["free_disk_gb"] = h.Disk, h.UsedDisk, h.Disk-h.UsedDisk
		m["disk_available_least"] = h.Disk - h.UsedDisk
		m["current_workload"], m["running_vms"] = 0, h.Running
		m["cpu_info"] = "{}"
	} else {
		m["uptime"] = nil
	}
	return m
}

func (s *Service) handleListHypervisors(detail bool) handler {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		hosts, err := s.listHosts(r.Context())
		if err != nil {
			return err
		}
		out := []any{}
		pattern := r.URL.Query().Get("hypervisor_hostname_pattern")
		for _, h := range hosts {
			if pattern != "" && !containsSub(h.Name, pattern) {
				continue
			}
			out = append(out, s.hypervisorView(v, h, detail))
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"hypervisors": out})
		return nil
	}
}

func containsSub(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func (s *Service) handleShowHypervisor(w http.ResponseWriter, r *http.Request, v api.Version) error {
	hosts, err := s.listHosts(r.Context())
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	for _, h := range hosts {
		if h.UUID == id || strconv.FormatInt(h.ID, 10) == id && !v.AtLeast(2, 53) {
			api.WriteJSON(w, http.StatusOK, map[string]any{"hypervisor": s.hypervisorView(v, h, true)})
			return nil
		}
	}
	return api.NotFound("Hypervisor with ID '%s' could not be found.", id)
}

func (s *Service) handleHypervisorStats(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if v.AtLeast(2, 88) {
		return api.NotFound("The resource could not be found.")
	}
	hosts, err := s.listHosts(r.Context())
	if err != nil {
		return err
	}
	var st struct{ n, vcpus, vused, mem, mused, disk, dused, running int64 }
	for _, h := range hosts {
		st.n++
		st.vcpus += h.VCPUs
		st.vused += h.UsedVCPUs
		st.mem += h.MemMB
		st.mused += h.UsedMemMB
		st.disk += h.Disk
		st.dused += h.UsedDisk
		st.running += h.Running
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"hypervisor_statistics": map[string]any{
		"count": st.n, "vcpus": st.vcpus, "vcpus_used": st.vused, "memory_mb": st.mem, "memory_mb_used": st.mused,
		"free_ram_mb": st.mem - st.mused, "local_gb": st.disk, "local_gb_used": st.dused, "free_disk_gb": st.disk - st.dused,
		"disk_available_least": st.disk - st.dused, "current_workload": 0, "running_vms": st.running,
	}})
	return nil
}

func (s *Service) handleListServices(w http.ResponseWriter, r *http.Request, v api.Version) error {
	hosts, err := s.listHosts(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := []any{}
	add := func(id any, binary, host, zone string, disabled bool, reason any, forced bool, updated string) {
		if b := q.Get("binary"); b != "" && b != binary {
			return
		}
		if h := q.Get("host"); h != "" && h != host {
			return
		}
		status, state := "enabled", "up"
		if disabled {
			status = "disabled"
		}
		if forced {
			state = "down"
		}
		m := map[string]any{"id": id, "binary": binary, "host": host, "zone": zone, "status": status, "state": state,
			"updated_at": usgTime(updated), "disabled_reason": reason}
		if v.AtLeast(2, 11) {
			m["forced_down"] = forced
		}
		out = append(out, m)
	}
	now := nowText()
	ctrlIDs := []any{1, 2}
	if v.AtLeast(2, 53) {
		ctrlIDs = []any{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"}
	}
	add(ctrlIDs[0], "nova-scheduler", s.cfg.Controller, "internal", false, nil, false, now)
	add(ctrlIDs[1], "nova-conductor", s.cfg.Controller, "internal", false, nil, false, now)
	for _, h := range hosts {
		var id any = h.ID + 2
		if v.AtLeast(2, 53) {
			id = h.ServiceUUID
		}
		var reason any
		if h.DisabledReason.Valid {
			reason = h.DisabledReason.String
		}
		add(id, "nova-compute", h.Name, s.cfg.AvailabilityZone, h.Disabled, reason, h.ForcedDown, h.Updated)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"services": out})
	return nil
}

func (s *Service) handleAvailabilityZones(detail bool) handler {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		hosts, err := s.listHosts(r.Context())
		if err != nil {
			return err
		}
		now := usgTime(nowText())
		if !detail {
			api.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": []any{
				map[string]any{"zoneName": s.cfg.AvailabilityZone, "zoneState": map[string]any{"available": len(hosts) > 0}, "hosts": nil},
			}})
			return nil
		}
		computes := map[string]any{}
		for _, h := range hosts {
			computes[h.Name] = map[string]any{"nova-compute": map[string]any{"available": !h.ForcedDown, "active": !h.Disabled, "updated_at": usgTime(h.Updated)}}
		}
		internal := map[string]any{s.cfg.Controller: map[string]any{
			"nova-scheduler": map[string]any{"available": true, "active": true, "updated_at": now},
			"nova-conductor": map[string]any{"available": true, "active": true, "updated_at": now},
		}}
		api.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": []any{
			map[string]any{"zoneName": "internal", "zoneState": map[string]any{"available": true}, "hosts": internal},
			map[string]any{"zoneName": s.cfg.AvailabilityZone, "zoneState": map[string]any{"available": len(hosts) > 0}, "hosts": computes},
		}})
		return nil
	}
}
