package container

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

type createBody struct {
	Name          *string           `json:"name"`
	Image         string            `json:"image"`
	Command       json.RawMessage   `json:"command"`
	Entrypoint    []string          `json:"entrypoint"`
	CPU           any               `json:"cpu"`
	Memory        any               `json:"memory"`
	Disk          any               `json:"disk"`
	Environment   map[string]string `json:"environment"`
	Labels        map[string]string `json:"labels"`
	Workdir       *string           `json:"workdir"`
	Hostname      *string           `json:"hostname"`
	RestartPolicy *struct {
		Name              string `json:"Name"`
		MaximumRetryCount any    `json:"MaximumRetryCount"`
	} `json:"restart_policy"`
	AutoRemove       any               `json:"auto_remove"`
	AutoHeal         any               `json:"auto_heal"`
	Interactive      any               `json:"interactive"`
	TTY              any               `json:"tty"`
	Privileged       any               `json:"privileged"`
	SecurityGroups   []string          `json:"security_groups"`
	Nets             []map[string]any  `json:"nets"`
	Mounts           []map[string]any  `json:"mounts"`
	Hints            map[string]string `json:"hints"`
	AvailabilityZone *string           `json:"availability_zone"`
	ImageDriver      *string           `json:"image_driver"`
	ImagePullPolicy  *string           `json:"image_pull_policy"`
	Runtime          *string           `json:"runtime"`
	Registry         *string           `json:"registry"`
	Host             *string           `json:"host"`
	ExposedPorts     map[string]any    `json:"exposed_ports"`
	Healthcheck      map[string]any    `json:"healthcheck"`
	CPUPolicy        *string           `json:"cpu_policy"`
}

var numberPattern = regexp.MustCompile(`^[0-9]*(\.([0-9]+))?$`)

// number reads a number Zun accepts as a JSON number or a string of one.
func number(field string, v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case float64:
		return x, nil
	case json.Number:
		return x.Float64()
	case string:
		// Only what Zun's pattern allows: ParseFloat alone would take
		// "NaN", "Inf" and negative numbers.
		if x := strings.TrimSpace(x); numberPattern.MatchString(x) {
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f, nil
			}
		}
	}
	return 0, schemaError("Invalid input for field '%s'.Value: '%v'. '%v' does not match '^[0-9]*(\\.([0-9]+))?$'", field, v, v)
}

func integer(field string, v any) (int64, error) {
	f, err := number(field, v)
	if err != nil || f != float64(int64(f)) {
		return 0, schemaError("Invalid input for field '%s'.Value: '%v'. '%v' does not match '^[0-9]+$'", field, v, v)
	}
	return int64(f), nil
}

func flag(field string, v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "on", "yes":
			return true, nil
		case "false", "0", "off", "no":
			return false, nil
		}
	}
	return false, schemaError("Invalid input for field '%s'.Value: '%v'. '%v' is not of type 'boolean'", field, v, v)
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b createBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.Image) == "" || len(b.Image) > 255 {
		return schemaError("Invalid input for field 'image'. 'image' is a required property")
	}
	n := NewContainer{Image: b.Image, Environment: b.Environment, Labels: b.Labels, Entrypoint: b.Entrypoint,
		SecurityGroups: b.SecurityGroups}
	if b.Name != nil {
		n.Name = *b.Name
	}
	if len(b.Command) > 0 && string(b.Command) != "null" {
		var list []string
		var str string
		switch {
		case json.Unmarshal(b.Command, &list) == nil:
			n.Command = list
		case json.Unmarshal(b.Command, &str) == nil:
			cmd, err := splitCommand(str)
			if err != nil {
				return schemaError("Invalid input for field 'command': %v", err)
			}
			n.Command = cmd
		default:
			return schemaError("Invalid input for field 'command'. It must be a list of strings.")
		}
	}
	var err error
	if n.CPU, err = number("cpu", b.CPU); err != nil {
		return err
	}
	if b.CPU != nil && (n.CPU < 0.1 || n.CPU > 16) {
		return schemaError("Invalid input for field 'cpu'.Value: '%v'. %v is not between the minimum of 0.1 and the maximum of 16.0", b.CPU, n.CPU)
	}
	if n.Memory, err = integer("memory", b.Memory); err != nil {
		return err
	}
	if b.Memory != nil && (n.Memory < 4 || n.Memory > 8192) {
		return schemaError("Invalid input for field 'memory'.Value: '%v'. %d is not between the minimum of 4 and the maximum of 8192", b.Memory, n.Memory)
	}
	if n.Disk, err = integer("disk", b.Disk); err != nil {
		return err
	}
	if n.Disk < 0 {
		return schemaError("Invalid input for field 'disk'.Value: '%v'. %d is less than the minimum of 0", b.Disk, n.Disk)
	}
	if b.Workdir != nil {
		n.Workdir = *b.Workdir
	}
	if b.Hostname != nil {
		n.Hostname = *b.Hostname
		if len(n.Hostname) < 2 || len(n.Hostname) > 63 {
			return schemaError("Invalid input for field 'hostname'. Value: '%s'. It must be 2 to 63 characters.", n.Hostname)
		}
	}
	if b.AvailabilityZone != nil {
		n.AZ = *b.AvailabilityZone
	}
	if b.RestartPolicy != nil {
		n.Restart.Name = b.RestartPolicy.Name
		if b.RestartPolicy.MaximumRetryCount != nil {
			k, err := integer("restart_policy", b.RestartPolicy.MaximumRetryCount)
			if err != nil {
				return err
			}
			n.Restart.MaximumRetryCount = strconv.FormatInt(k, 10)
		}
	}
	for field, p := range map[string]struct {
		v   any
		dst *bool
	}{"auto_remove": {b.AutoRemove, &n.AutoRemove}, "auto_heal": {b.AutoHeal, &n.AutoHeal},
		"interactive": {b.Interactive, &n.Interactive}, "tty": {b.TTY, &n.TTY}} {
		if *p.dst, err = flag(field, p.v); err != nil {
			return err
		}
	}
	if !v.AtLeast(1, 36) {
		n.TTY = n.Interactive
	}
	if priv, err := flag("privileged", b.Privileged); err != nil {
		return err
	} else if priv {
		return api.Forbidden("Policy doesn't allow container:create:privileged to be performed.").WithType("policy-not-authorized")
	}
	for _, m := range b.Mounts {
		mr := MountRequest{}
		mr.Source, _ = m["source"].(string)
		mr.Destination, _ = m["destination"].(string)
		switch t, _ := m["type"].(string); t {
		case "", "volume":
		case "bind":
			// The client sends the file's bytes, base64-encoded.
			data, err := base64.StdEncoding.DecodeString(mr.Source)
			if err != nil {
				return schemaError("Invalid input for field 'mounts': the source of a bind mount must be a file's contents in base64.")
			}
			if len(data) > MaxFileBytes {
				return schemaError("Invalid input for field 'mounts': a file to inject is at most %d bytes.", MaxFileBytes)
			}
			mr.Source, mr.File, mr.Data = "", true, data
		default:
			return schemaError("Invalid input for field 'mounts': type %q is not one of volume, bind.", t)
		}
		if m["size"] != nil {
			if mr.Size, err = integer("mounts", m["size"]); err != nil {
				return err
			}
		}
		n.Mounts = append(n.Mounts, mr)
	}
	if b.Host != nil && *b.Host != "" && *b.Host != s.cfg.Host {
		return api.NotFound("Requested host %s could not be found.", *b.Host).WithType("requested-host-not-found")
	}
	for _, net := range b.Nets {
		nr := NetRequest{}
		nr.Network, _ = net["network"].(string)
		nr.Port, _ = net["port"].(string)
		nr.FixedIP, _ = net["v4-fixed-ip"].(string)
		if (nr.Network == "") == (nr.Port == "") {
			return api.BadRequest("Invalid input for field 'nets': exactly one of network and port must be given.").WithType("invalid-value")
		}
		n.Networks = append(n.Networks, nr)
	}
	if n.Run, err = flag("run", emptyNil(r.URL.Query().Get("run"))); err != nil {
		return err
	}
	c := api.CredentialsFrom(r.Context())
	ct, err := s.Create(r.Context(), c, n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", hostURL(r)+"/v1/containers/"+ct.UUID)
	view := s.containerView(r, ct, true)
	view["addresses"], view["ports"] = nil, nil
	api.WriteJSON(w, http.StatusAccepted, view)
	return nil
}

func emptyNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Service) handleShow(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ct, err := s.find(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("c"))
	if err != nil {
		return err
	}
	// What the host says now, not at the watcher's last look.
	if s.syncOne(r.Context(), ct) {
		if ct, err = s.loadContainer(r.Context(), s.db, ct.UUID); err != nil {
			return err
		}
	}
	api.WriteJSON(w, http.StatusOK, s.containerView(r, ct, true))
	return nil
}

var listFilters = map[string]string{"name": "name", "image": "image", "project_id": "project_id", "user_id": "user_id",
	"memory": "memory", "host": "host", "task_state": "task_state", "status": "status", "auto_remove": "auto_remove"}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request, v api.Version) error {
	s.syncNow(r.Context())
	c := api.CredentialsFrom(r.Context())
	q := r.URL.Query()
	// A capsule's containers are listed with their capsule, as Zun does.
	conds := []string{"capsule_id IS NULL"}
	var args []any
	all, err := flag("all_projects", emptyNil(q.Get("all_projects")))
	if err != nil {
		return err
	}
	if !all || !c.CloudAdmin() {
		conds, args = append(conds, "project_id=?"), append(args, c.ProjectID)
	}
	for k := range q {
		switch k {
		case "all_projects", "limit", "marker", "sort_key", "sort_dir":
			continue
		}
		col, ok := listFilters[k]
		if !ok {
			return api.BadRequest("Unknown parameters: %s", k)
		}
		val := q.Get(k)
		if col == "auto_remove" {
			b, err := flag(k, val)
			if err != nil {
				return err
			}
			conds, args = append(conds, col+"=?"), append(args, b)
			continue
		}
		conds, args = append(conds, col+"=?"), append(args, val)
	}
	order := "seq"
	switch q.Get("sort_key") {
	case "", "id":
	case "name", "status", "created_at", "updated_at", "image", "memory", "cpu", "host":
		order = q.Get("sort_key")
	default:
		return api.BadRequest("Invalid sort key: %s.", q.Get("sort_key"))
	}
	switch strings.ToLower(q.Get("sort_dir")) {
	case "", "asc":
		order += " ASC"
	case "desc":
		order += " DESC"
	default:
		return api.BadRequest("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", q.Get("sort_dir"))
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT `+containerCols+` FROM container_containers`+where+` ORDER BY `+order+`, seq`, args...)
	if err != nil {
		return err
	}
	var list []Container
	for rows.Next() {
		ct, err := scanContainer(rows)
		if err != nil {
			rows.Close()
			return err
		}
		list = append(list, ct)
	}
	rows.Close()
	uuids := make([]string, len(list))
	for i, ct := range list {
		uuids[i] = ct.UUID
	}
	start, end, next, err := page(r, "containers", uuids, func(m string) error {
		return api.BadRequest("Marker %s could not be found.", m)
	})
	if err != nil {
		return err
	}
	out := []any{}
	for _, ct := range list[start:end] {
		if err := s.fillPorts(r.Context(), s.db, &ct); err != nil {
			return err
		}
		out = append(out, s.containerView(r, ct, false))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"containers": out, "next": next})
	return nil
}

func (s *Service) handleUpdate(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b map[string]any
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	ct, err := s.find(ctx, c, r.PathValue("c"))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return schemaError("Invalid input: at least one of name, cpu, memory, auto_heal must be given.")
	}
	var resize bool
	for k, val := range b {
		switch k {
		case "name":
			name, _ := val.(string)
			if !namePattern.MatchString(name) || len(name) > 255 {
				return schemaError("Invalid input for field 'name'.Value: '%v'.", val)
			}
			if name == ct.Name {
				return api.Conflict("The new name for the container is the same as the old name.")
			}
			// Names are unique in a project, as Create keeps them (find
			// by name relies on it).
			var dup int
			s.db.QueryRowContext(ctx, `SELECT count(*) FROM container_containers WHERE project_id=? AND name=?`, ct.ProjectID, name).Scan(&dup)
			if dup > 0 {
				return api.Conflict("A container with name %s already exists.", name)
			}
			ct.Name = name
		case "cpu":
			f, err := number("cpu", val)
			if err != nil {
				return err
			}
			if f < 0.1 || f > 16 {
				return schemaError("Invalid input for field 'cpu'.Value: '%v'. %v is not between the minimum of 0.1 and the maximum of 16.0", val, f)
			}
			ct.CPU, resize = f, true
		case "memory":
			m, err := integer("memory", val)
			if err != nil {
				return err
			}
			if m < 4 || m > 8192 {
				return schemaError("Invalid input for field 'memory'.Value: '%v'. %d is not between the minimum of 4 and the maximum of 8192", val, m)
			}
			ct.Memory, resize = m, true
		case "auto_heal":
			if ct.AutoHeal, err = flag("auto_heal", val); err != nil {
				return err
			}
		default:
			return schemaError("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if !contains([]string{stCreated, stRunning, stStopped, stPaused}, ct.Status) {
		return invalidState(ct.UUID, "update", ct.Status)
	}
	if resize {
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return s.checkQuota(ctx, tx, ct.ProjectID, ct, ct.UUID) }); err != nil {
			return err
		}
		if err := s.resize(ctx, ct); err != nil {
			return err
		}
	}
	ct.UpdatedAt = nowText()
	_, err = s.db.ExecContext(ctx, `UPDATE container_containers SET name=?, cpu=?, memory=?, auto_heal=?, updated_at=? WHERE uuid=?`,
		ct.Name, ct.CPU, ct.Memory, ct.AutoHeal, ct.UpdatedAt, ct.UUID)
	if err != nil {
		return err
	}
	s.startAction(ctx, ct, "update")
	s.finishAction(ctx, ct.UUID, nil, "update")
	api.WriteJSON(w, http.StatusOK, s.containerView(r, ct, true))
	return nil
}

// resize applies new limits to a container on its host.
func (s *Service) resize(ctx context.Context, ct Container) error {
	rs, ok := s.hosts.(interface {
		Resize(ctx context.Context, host, id string, res runtime.Resources) error
	})
	if !ok {
		return api.Conflict("Containers cannot be resized on this cloud.")
	}
	err := rs.Resize(ctx, ct.Host, ct.UUID, runtime.Resources{MemoryBytes: ct.Memory << 20, VCPUs: ct.CPU})
	var ae *api.Error
	if err != nil && !errors.As(err, &ae) {
		// The host refused the limits (memory below what the container
		// uses, say): the caller's to change, not a server error.
		return api.Conflict("Cannot resize container %s: %v", ct.UUID, err)
	}
	return err
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request, v api.Version) error {
	q := r.URL.Query()
	force, err := flag("force", emptyNil(q.Get("force")))
	if err != nil {
		return err
	}
	stop, err := flag("stop", emptyNil(q.Get("stop")))
	if err != nil {
		return err
	}
	c := api.CredentialsFrom(r.Context())
	if err := s.Delete(r.Context(), c, r.PathValue("c"), force, stop); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// action is a container action that the host carries out.
type action struct {
	name  string   // in messages and the action log
	verb  string   // Hosts.Action argument
	from  []string // statuses it may start from
	task  string   // task_state while it runs
	inter string   // status while it runs ("": unchanged)
}

var actions = map[string]action{
	"start":   {"start", "start", []string{stCreated, stStopped, stError}, "container_starting", ""},
	"stop":    {"stop", "stop", []string{stRunning}, "container_stopping", ""},
	"reboot":  {"reboot", "reboot", []string{stCreated, stRunning, stStopped, stError}, "container_rebooting", stRestarting},
	"pause":   {"pause", "pause", []string{stRunning}, "container_pausing", ""},
	"unpause": {"unpause", "resume", []string{stPaused}, "container_unpausing", ""},
	"kill":    {"kill", "kill", []string{stRunning}, "container_killing", ""},
}

// handleAction starts a state action; it answers 202 and the host does
// the work.
func (s *Service) handleAction(name string) handler {
	a := actions[name]
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		ctx := r.Context()
		q := r.URL.Query()
		var timeout time.Duration
		if t := q.Get("timeout"); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil || n < 0 {
				return schemaError("Invalid input for query parameters 'timeout'. Value: '%s'. '%s' is not a non-negative integer", t, t)
			}
			timeout = time.Duration(n) * time.Second
		}
		sig := 0
		if name == "kill" {
			var err error
			if sig, err = parseSignal(q.Get("signal")); err != nil {
				return err
			}
		}
		ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
		if err != nil {
			return err
		}
		if ct.TaskState != "" || !contains(a.from, ct.Status) {
			return invalidState(ct.UUID, a.name, ct.Status)
		}
		inter := a.inter
		if inter == "" {
			inter = ct.Status
		}
		res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET task_state=?, status=?, updated_at=? WHERE uuid=?
			AND task IS NULL AND (task_state IS NULL OR task_state='') AND status=?`, a.task, inter, nowText(), ct.UUID, ct.Status)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return invalidState(ct.UUID, a.name, "busy")
		}
		s.startAction(ctx, ct, a.name)
		s.spawn(ct.UUID, func(ctx context.Context) { s.runAction(ctx, ct.UUID, a, timeout, sig) })
		api.WriteJSON(w, http.StatusAccepted, nil)
		return nil
	}
}

// runAction carries out an action on the host and records the state the
// host reports.
func (s *Service) runAction(ctx context.Context, id string, a action, timeout time.Duration, sig int) {
	ct, err := s.loadContainer(ctx, s.db, id)
	if err != nil || ct.TaskState != a.task {
		return
	}
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	st, err := s.hosts.Action(ctx, ct.Host, id, a.verb, timeout, sig)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("container action failed", "container", id, "action", a.name, "err", err)
		back := ct.Status
		if a.inter != "" {
			back = stError
		}
		s.db.ExecContext(ctx, `UPDATE container_containers SET task_state=NULL, status=?, status_reason=?, updated_at=? WHERE uuid=?`,
			back, err.Error(), nowText(), id)
		s.finishAction(ctx, id, err, a.name)
		return
	}
	status, started, finished := stStopped, any(nil), any(nil)
	var exit any
	switch st.Status {
	case runtime.Running:
		status = stRunning
		if a.name == "start" || a.name == "reboot" {
			started = nowText()
		}
	case runtime.Paused:
		status = stPaused
	case runtime.Created:
		status = stCreated
	default:
		finished, exit = nowText(), st.ExitCode
	}
	userStopped := a.name == "stop" || a.name == "kill"
	// A start or restart by the user begins the restart policy's count
	// anew, as docker start does.
	userStarted := a.name == "start" || a.name == "reboot"
	s.db.ExecContext(ctx, `UPDATE container_containers SET task_state=NULL, status=?, status_reason=NULL, user_stopped=?,
		started_at=coalesce(?, started_at), finished_at=coalesce(?, finished_at), exit_code=coalesce(?, exit_code),
		restart_count=CASE WHEN ? THEN 0 ELSE restart_count END, updated_at=? WHERE uuid=?`,
		status, userStopped, started, finished, exit, userStarted, nowText(), id)
	s.finishAction(ctx, id, nil, a.name)
}

// parseSignal reads kill's signal: a name (SIGTERM, TERM, term) or a
// number; "" and "None" are SIGKILL, as docker kill.
func parseSignal(s string) (int, error) {
	if s == "" || s == "None" {
		return int(syscall.SIGKILL), nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig, ok := signals[name]; ok {
		return int(sig), nil
	}
	return 0, api.BadRequest("Bad signal: %s.", s).WithType("invalid-value")
}

var signals = map[string]syscall.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT, "SIGKILL": syscall.SIGKILL,
	"SIGTERM": syscall.SIGTERM, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2, "SIGSTOP": syscall.SIGSTOP,
	"SIGCONT": syscall.SIGCONT, "SIGABRT": syscall.SIGABRT, "SIGALRM": syscall.SIGALRM, "SIGPIPE": syscall.SIGPIPE,
	"SIGWINCH": syscall.SIGWINCH,
}

func (s *Service) handleLogs(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	if !contains([]string{stCreated, stError, stPaused, stRunning, stStopped, stUnknown, stRestarting}, ct.Status) {
		return invalidState(ct.UUID, "logs", ct.Status)
	}
	q := r.URL.Query()
	opts := LogOptions{Stdout: true, Stderr: true, Tail: -1}
	for _, f := range []struct {
		name string
		into *bool
	}{{"stdout", &opts.Stdout}, {"stderr", &opts.Stderr}, {"timestamps", &opts.Timestamps}} {
		if v := q.Get(f.name); v != "" {
			b, err := flag(f.name, v)
			if err != nil {
				return api.BadRequest("Valid stdout, stderr and timestamps values are: 1, true, on, yes, 0, false, off, no").WithType("invalid-value")
			}
			*f.into = b
		}
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return schemaError("Invalid input for query parameters 'tail'. Value: '%s'.", t)
		}
		opts.Tail = n
	}
	if since := q.Get("since"); since != "" && since != "None" {
		// Zun's: an integer epoch (seconds), or a datetime like
		// 2026-11-26 01:02:03,456789.
		if n, err := strconv.ParseInt(since, 10, 64); err == nil {
			opts.Since = time.Unix(n, 0)
		} else if t, err := time.Parse("2006-01-02 15:04:05,999999", since); err == nil {
			opts.Since = t
		} else {
			return api.BadRequest("Invalid since %q: give an integer epoch (seconds) or a datetime like 2026-11-26 01:02:03,456789.", since).WithType("invalid-value")
		}
	}
	b, err := s.hosts.Logs(ctx, ct.Host, ct.UUID, opts)
	if err != nil {
		return hostError(err, ct, "logs")
	}
	api.WriteJSON(w, http.StatusOK, strings.TrimSuffix(string(b), "\n"))
	return nil
}

func (s *Service) handleExecute(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	q := r.URL.Query()
	var body map[string]any
	if r.ContentLength != 0 {
		api.DecodeJSON(r, &body)
	}
	command := q.Get("command")
	if command == "" {
		command, _ = body["command"].(string)
	}
	if command == "" {
		return schemaError("Invalid input for query parameters 'command'. 'command' is a required property")
	}
	run, err := flag("run", emptyNil(q.Get("run")))
	if err != nil {
		return err
	}
	if q.Get("run") == "" {
		run = true
	}
	if _, err := flag("interactive", emptyNil(q.Get("interactive"))); err != nil {
		return err
	}
	args, err := splitCommand(command)
	if err != nil || len(args) == 0 {
		return schemaError("Invalid input for query parameters 'command'. Value: '%s'.", command)
	}
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	if ct.Status != stRunning {
		return invalidState(ct.UUID, "execute", ct.Status)
	}
	if !run {
		// A session for the websocket (interactive.go); with run=true,
		// interactive or not, the command runs and its output is answered.
		return s.executeInteractive(w, r, ct, args)
	}
	s.startAction(ctx, ct, "exec_cmd")
	res, err := s.hosts.Exec(ctx, ct.Host, ct.UUID, args, nil, "", "")
	if errors.Is(err, runtime.ErrExec) {
		s.finishAction(ctx, ct.UUID, err, "exec_cmd")
		api.WriteJSON(w, http.StatusOK, map[string]any{"output": err.Error(), "exit_code": 126, "exec_id": nil, "proxy_url": nil})
		return nil
	}
	if err != nil {
		s.finishAction(ctx, ct.UUID, err, "exec_cmd")
		return hostError(err, ct, "execute")
	}
	s.finishAction(ctx, ct.UUID, nil, "exec_cmd")
	out := string(res.Stdout) + string(res.Stderr)
	api.WriteJSON(w, http.StatusOK, map[string]any{"output": strings.TrimSuffix(out, "\n"), "exit_code": res.ExitCode,
		"exec_id": nil, "proxy_url": nil})
	return nil
}

func (s *Service) handleTop(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	if ct.Status != stRunning {
		return invalidState(ct.UUID, "top", ct.Status)
	}
	procs, err := s.hosts.Top(ctx, ct.Host, ct.UUID)
	if err != nil {
		return hostError(err, ct, "top")
	}
	rows := []any{}
	for _, p := range procs {
		rows = append(rows, []string{p.UID, p.PID, p.PPID, p.Command})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"Titles": []string{"UID", "PID", "PPID", "CMD"}, "Processes": rows})
	return nil
}

func (s *Service) handleStats(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	if ct.Status != stRunning {
		return invalidState(ct.UUID, "stats", ct.Status)
	}
	st, err := s.hosts.Stats(ctx, ct.Host, ct.UUID)
	if err != nil {
		return hostError(err, ct, "stats")
	}
	memPct := 0.0
	if st.MemoryLimit > 0 {
		memPct = float64(st.MemoryUsage) * 100 / float64(st.MemoryLimit)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"CONTAINER": ct.Name, "CPU %": round2(st.CPUPercent), "MEM USAGE(MiB)": st.MemoryUsage >> 20,
		"MEM LIMIT(MiB)": st.MemoryLimit >> 20, "MEM %": round2(memPct),
		"BLOCK I/O(B)": fmt.Sprintf("%d/%d", st.BlockRead, st.BlockWrite), "NET I/O(B)": fmt.Sprintf("%d/%d", st.NetRx, st.NetTx),
	})
	return nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func (s *Service) handleCommit(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	repo, tag := r.URL.Query().Get("repository"), r.URL.Query().Get("tag")
	if repo == "" {
		return schemaError("Invalid input for query parameters 'repository'. 'repository' is a required property")
	}
	if tag == "" {
		tag = "latest"
	}
	ct, err := s.find(ctx, c, r.PathValue("c"))
	if err != nil {
		return err
	}
	if !contains([]string{stRunning, stStopped, stPaused}, ct.Status) {
		return invalidState(ct.UUID, "commit", ct.Status)
	}
	s.startAction(ctx, ct, "commit")
	id, err := s.images.Commit(ctx, c, ct.ProjectID, repo, tag, func(w io.Writer) error {
		return s.hosts.Snapshot(ctx, ct.Host, ct.UUID, w)
	})
	s.finishAction(ctx, ct.UUID, err, "commit")
	if err != nil {
		return hostError(err, ct, "commit")
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"uuid": id})
	return nil
}

func (s *Service) handleNetworkList(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	out := []any{}
	for _, p := range ct.Ports {
		ips := []any{}
		for _, a := range p.Addresses {
			ips = append(ips, map[string]any{"ip_address": a.Addr, "version": a.Version, "subnet_id": a.SubnetID})
		}
		out = append(out, map[string]any{"net_id": p.NetworkID, "port_id": p.PortID, "fixed_ips": ips})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"networks": out})
	return nil
}

func (s *Service) handleActions(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	q := `SELECT container_uuid, request_id, action, user_id, project_id, start_time, coalesce(finish_time, ''), coalesce(message, '')
		FROM container_actions WHERE container_uuid=?`
	args := []any{ct.UUID}
	if req := r.PathValue("req"); req != "" {
		q, args = q+` AND request_id=?`, append(args, req)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id DESC`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []any{}
	for rows.Next() {
		var uuid, req, act, user, project, start, finish, msg string
		if err := rows.Scan(&uuid, &req, &act, &user, &project, &start, &finish, &msg); err != nil {
			return err
		}
		out = append(out, map[string]any{"container_uuid": uuid, "request_id": req, "action": act, "user_id": user,
			"project_id": project, "start_time": actionTime(start), "finish_time": actionTime(finish), "message": nullable(msg)})
	}
	if req := r.PathValue("req"); req != "" {
		if len(out) == 0 {
			return api.NotFound("The Action resource %s could not be found.", req).WithType("resource-not-found")
		}
		a := out[0].(map[string]any)
		a["events"] = []any{}
		api.WriteJSON(w, http.StatusOK, a)
		return nil
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"containerActions": out})
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// page cuts a listed collection (its uuids, in order) as the request's
// limit (at most 1000) and marker ask: the page is uuids[start:end], and
// next links the following page of the same list (its filters and order:
// the marker is a position in it) when there is one. missing is the error
// for a marker not in the list.
func page(r *http.Request, collection string, uuids []string, missing func(marker string) error) (start, end int, next any, err error) {
	q := r.URL.Query()
	limit := 1000
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return 0, 0, nil, api.BadRequest("Limit must be positive integer")
		}
		limit = min(n, 1000)
	}
	if m := q.Get("marker"); m != "" {
		i := slices.Index(uuids, m)
		if i < 0 {
			return 0, 0, nil, missing(m)
		}
		start = i + 1
	}
	end = min(len(uuids), start+limit)
	if end < len(uuids) && end > start {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("limit", strconv.Itoa(limit))
		nq.Set("marker", uuids[end-1])
		if nq.Get("sort_key") == "" {
			nq.Set("sort_key", "id")
		}
		if nq.Get("sort_dir") == "" {
			nq.Set("sort_dir", "asc")
		}
		next = hostURL(r) + "/v1/" + collection + "?" + nq.Encode()
	}
	return start, end, next, nil
}
