package container

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// Versions is the microversion range served: what python3-zunclient 4.5
// speaks.
var Versions = api.Microversions{Service: "container", Min: api.Version{Major: 1, Minor: 1}, Max: api.Version{Major: 1, Minor: 40}}

type handler func(w http.ResponseWriter, r *http.Request, v api.Version) error

var (
	reader api.Rule = func(c *api.Credentials) bool { return c.ProjectID != "" }
	member api.Rule = func(c *api.Credentials) bool {
		return c.ProjectID != "" && (c.HasRole("member") || c.HasRole("admin"))
	}
	admin = api.AdminOnly
)

// Router returns the Containers API under /container (the catalog's
// endpoint is /container/v1, as zunclient wants it).
func (s *Service) Router(auth api.Authenticator, authURI string, log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: "/container", Fault: fault, Auth: auth, AuthURI: authURI, Log: log})
	h := func(pattern string, rule api.Rule, fn handler) {
		wrapped := func(w http.ResponseWriter, r *http.Request) error {
			// gophercloud names the service application-container.
			if hv := r.Header.Get("OpenStack-API-Version"); strings.Contains(hv, "application-container") {
				r.Header.Set("OpenStack-API-Version", strings.ReplaceAll(hv, "application-container", "container"))
			}
			w.Header().Set("OpenStack-API-Minimum-Version", "container "+Versions.Min.String())
			w.Header().Set("OpenStack-API-Maximum-Version", "container "+Versions.Max.String())
			v, err := Versions.Negotiate(w, r)
			if err != nil {
				return api.AsError(err).WithType("")
			}
			return fn(w, r, v)
		}
		rt.Handle(pattern, rule, wrapped)
		// zunclient asks for some collections with a trailing slash.
		if method, path, _ := strings.Cut(pattern, " "); !strings.Contains(path, "{") {
			rt.Handle(method+" "+path+"/{$}", rule, wrapped)
		}
	}
	rt.Public("GET ", s.handleRoot)
	rt.Public("GET /{$}", s.handleRoot)
	rt.Public("GET /v1", s.handleV1)
	rt.Public("GET /v1/{$}", s.handleV1)
	// The websocket of exec --interactive and attach: its URL's one-time
	// token is the credential (interactive.go).
	rt.Public("GET "+websocketPath, s.handleWebsocket)

	const p = "/v1/containers"
	h("POST "+p, member, s.handleCreate)
	h("GET "+p, reader, s.handleList)
	h("GET "+p+"/{c}", reader, s.handleShow)
	h("PATCH "+p+"/{c}", member, s.handleUpdate)
	h("DELETE "+p+"/{c}", member, s.handleDelete)
	for name := range actions {
		h("POST "+p+"/{c}/"+name, member, s.handleAction(name))
	}
	h("GET "+p+"/{c}/logs", reader, s.handleLogs)
	h("POST "+p+"/{c}/execute", member, s.handleExecute)
	h("POST "+p+"/{c}/execute_resize", member, s.handleExecuteResize)
	h("GET "+p+"/{c}/attach", member, s.handleAttach)
	h("POST "+p+"/{c}/resize", member, s.handleResize)
	h("GET "+p+"/{c}/top", reader, s.handleTop)
	h("GET "+p+"/{c}/stats", reader, s.handleStats)
	h("POST "+p+"/{c}/commit", member, s.handleCommit)
	h("GET "+p+"/{c}/network_list", reader, s.handleNetworkList)
	h("POST "+p+"/{c}/network_attach", member, s.handleNetworkAttach)
	h("POST "+p+"/{c}/add_security_group", member, s.handleAddSecurityGroup)
	h("POST "+p+"/{c}/remove_security_group", member, s.handleRemoveSecurityGroup)
	h("POST "+p+"/{c}/network_detach", member, s.handleNetworkDetach)
	h("GET "+p+"/{c}/get_archive", reader, s.handleGetArchive)
	h("POST "+p+"/{c}/put_archive", member, s.handlePutArchive)
	h("POST "+p+"/{c}/rebuild", member, s.handleRebuild)
	h("GET "+p+"/{c}/container_actions", reader, s.handleActions)
	h("GET "+p+"/{c}/container_actions/{req}", reader, s.handleActions)

	// Capsules, also unversioned: Zun routes any first segment but v1
	// to v1, and gophercloud's endpoint after discovery has none.
	for _, p := range []string{"/v1/capsules", "/capsules"} {
		h("POST "+p, member, s.handleCreateCapsule)
		h("GET "+p, reader, s.handleListCapsules)
		h("GET "+p+"/{c}", reader, s.handleShowCapsule)
		h("DELETE "+p+"/{c}", member, s.handleDeleteCapsule)
	}

	h("GET /v1/hosts", admin, s.handleHosts)
	h("GET /v1/hosts/{id}", admin, s.handleHosts)
	h("GET /v1/services", admin, s.handleServices)
	h("GET /v1/availability_zones", reader, s.handleAvailabilityZones)
	h("GET /v1/images", admin, s.handleImages)
	h("GET /v1/images/{id}", admin, s.handleImages)
	h("GET /v1/quotas/{project}", reader, s.handleShowQuotas)
	h("GET /v1/quotas/{project}/defaults", reader, s.handleShowQuotas)
	h("PUT /v1/quotas/{project}", admin, s.handleUpdateQuotas)
	h("DELETE /v1/quotas/{project}", admin, s.handleDeleteQuotas)
	h("GET /v1/quota_classes/{class}", admin, s.handleShowQuotaClass)
	h("PUT /v1/quota_classes/{class}", admin, s.handleUpdateQuotas)
	return rt
}

func (s *Service) version(r *http.Request) map[string]any {
	return map[string]any{"id": "v1", "links": []api.Link{{Rel: "self", Href: hostURL(r) + "/v1/"}}, "status": "CURRENT",
		"max_version": Versions.Max.String(), "min_version": Versions.Min.String()}
}

// handleRoot is what zunclient reads before every command to pick its
// microversion.
func (s *Service) handleRoot(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{"name": "OpenStack Zun API",
		"description": "Zun is an OpenStack project which aims to provide containers service.",
		"versions":    []any{s.version(r)}, "default_version": s.version(r)})
	return nil
}

func (s *Service) handleV1(w http.ResponseWriter, r *http.Request) error {
	base := hostURL(r)
	m := map[string]any{"id": "v1",
		"media_types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.zun.v1+json"}},
		"links": []any{map[string]any{"href": base + "/v1/", "rel": "self"},
			map[string]any{"href": "https://docs.openstack.org/zun/latest/", "rel": "describedby", "type": "text/html"}}}
	for _, res := range []string{"services", "containers", "images", "hosts", "availability_zones", "quotas", "quota_classes", "capsules"} {
		m[res] = []api.Link{{Rel: "self", Href: base + "/v1/" + res + "/"}, {Rel: "bookmark", Href: base + "/" + res + "/"}}
	}
	api.WriteJSON(w, http.StatusOK, m)
	return nil
}

// HostInfo describes the host containers run on, for the hosts API.
type HostInfo struct {
	CPUs          int64
	MemoryMB      int64
	DiskGB        int64
	Architecture  string
	OS            string
	KernelVersion string
}

func (s *Service) hostUUID() string {
	// A stable id for the host: derived from its name.
	sum := uint64(14695981039346656037)
	for _, b := range []byte(s.cfg.Host) {
		sum ^= uint64(b)
		sum *= 1099511628211
	}
	h := []byte(strings.Repeat("0", 32))
	const hexd = "0123456789abcdef"
	for i := 0; i < 16; i++ {
		h[i] = hexd[(sum>>(4*uint(i)))&15]
		h[16+i] = hexd[(sum>>(4*uint(15-i)))&15]
	}
	x := string(h)
	return x[0:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}

func (s *Service) handleHosts(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var n, mem, cpu, disk float64
	s.db.QueryRowContext(r.Context(), `SELECT count(*), coalesce(sum(memory), 0), coalesce(sum(cpu), 0), coalesce(sum(disk), 0)
		FROM container_containers WHERE host=?`, s.cfg.Host).Scan(&n, &mem, &cpu, &disk)
	hi := s.cfg.HostInfo
	host := map[string]any{
		"uuid": s.hostUUID(), "hostname": s.cfg.Host, "links": links(r, "hosts", s.hostUUID()),
		"mem_total": hi.MemoryMB, "mem_used": int64(mem), "cpus": hi.CPUs, "cpu_used": cpu,
		"disk_total": hi.DiskGB, "disk_used": int64(disk), "disk_quota_supported": false, "total_containers": int64(n),
		"architecture": hi.Architecture, "os_type": "linux", "os": hi.OS, "kernel_version": hi.KernelVersion,
		"labels": map[string]string{}, "runtimes": []string{"runc"}, "enable_cpu_pinning": false,
	}
	if id := r.PathValue("id"); id != "" {
		if id != s.hostUUID() && id != s.cfg.Host {
			return api.NotFound("ComputeNode %s could not be found.", id).WithType("compute-node-not-found")
		}
		api.WriteJSON(w, http.StatusOK, host)
		return nil
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"hosts": []any{host}, "next": nil})
	return nil
}

func (s *Service) handleServices(w http.ResponseWriter, r *http.Request, v api.Version) error {
	now := time.Now().UTC().Format(timeFormat)
	reports := int64(time.Since(s.started) / (10 * time.Second))
	api.WriteJSON(w, http.StatusOK, map[string]any{"services": []any{map[string]any{
		"id": 1, "host": s.cfg.Host, "binary": "zun-compute", "state": "up", "disabled": false, "disabled_reason": nil,
		"forced_down": false, "availability_zone": s.cfg.AvailabilityZone, "report_count": reports,
		"created_at": s.started.Format(timeFormat), "updated_at": now, "last_seen_up": now,
	}}})
	return nil
}

func (s *Service) handleAvailabilityZones(w http.ResponseWriter, r *http.Request, v api.Version) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{"availability_zones": []any{
		map[string]any{"availability_zone": s.cfg.AvailabilityZone}}, "next": nil})
	return nil
}

// handleImages lists the Glance images containers can run, in Zun's
// image shape.
func (s *Service) handleImages(w http.ResponseWriter, r *http.Request, v api.Version) error {
	imgs, err := s.images.List(r.Context(), api.CredentialsFrom(r.Context()))
	if err != nil {
		return err
	}
	out := []any{}
	for _, im := range imgs {
		view := map[string]any{"uuid": im.ID, "image_id": im.ID, "repo": im.Name, "tag": "latest", "size": im.Size,
			"project_id": nil, "image_pull_policy": nil, "host": s.cfg.Host, "links": links(r, "images", im.ID)}
		if id := r.PathValue("id"); id != "" {
			if id == im.ID {
				api.WriteJSON(w, http.StatusOK, view)
				return nil
			}
			continue
		}
		out = append(out, view)
	}
	if id := r.PathValue("id"); id != "" {
		return api.NotFound("Image %s could not be found.", id).WithType("image-not-found")
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"images": out, "next": nil})
	return nil
}
