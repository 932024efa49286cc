package container

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

// Container statuses, as Zun names them.
const (
	stCreating   = "Creating"
	stCreated    = "Created"
	stRunning    = "Running"
	stStopped    = "Stopped"
	stPaused     = "Paused"
	stRestarting = "Restarting"
	stDeleting   = "Deleting"
	stError      = "Error"
	stUnknown    = "Unknown"
)

// Work in flight that a restart resumes (container_containers.task).
const (
	taskCreate = "create"
	taskDelete = "delete"
)

// RestartPolicy is Docker's: no, on-failure[:N], always, unless-stopped.
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount string `json:"MaximumRetryCount"`
}

func (p RestartPolicy) maxRetries() int {
	var n int
	fmt.Sscan(p.MaximumRetryCount, &n)
	return n
}

// NetRequest is one network a container asks for.
type NetRequest struct {
	Network string `json:"network,omitempty"`
	Port    string `json:"port,omitempty"`
	FixedIP string `json:"v4-fixed-ip,omitempty"`
}

// Container is a container record.
type Container struct {
	UUID, Name, ProjectID, UserID string
	Seq                           int64
	Image, ImageID                string
	Command, Entrypoint           []string
	Workdir                       string
	Environment, Labels           map[string]string
	CPU                           float64
	Memory                        int64 // MiB; 0: unlimited
	Disk                          int64
	Restart                       RestartPolicy
	RestartCount                  int
	AutoRemove, AutoHeal          bool
	Interactive, TTY              bool
	Hostname, Host, AZ            string
	Status, StatusReason          string
	StatusDetail                  string
	TaskState, Task               string
	Run, UserStopped              bool
	ExitCode                      *int
	SecurityGroups                []string
	Networks                      []NetRequest
	StartedAt, FinishedAt         string
	CreatedAt, UpdatedAt          string
	// CapsuleID is the capsule the container belongs to ("": none).
	CapsuleID string
	// CapsuleInit: one of the capsule's init containers.
	CapsuleInit bool

	Ports []containerPort
}

type containerPort struct {
	PortID, NetworkID, MAC string
	Owned                  bool
	Addresses              []address
}

type address struct {
	Addr     string `json:"addr"`
	Version  int    `json:"version"`
	SubnetID string `json:"subnet_id"`
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

const containerCols = `uuid, seq, name, project_id, user_id, image, image_id, command, entrypoint, coalesce(workdir, ''), environment,
	labels, coalesce(cpu, 0), coalesce(memory, 0), coalesce(disk, 0), restart_policy, restart_count, auto_remove, auto_heal,
	interactive, tty, coalesce(hostname, ''), coalesce(host, ''), az, status, coalesce(status_reason, ''),
	coalesce(status_detail, ''), coalesce(task_state, ''), coalesce(task, ''), run, user_stopped, exit_code, security_groups,
	networks, coalesce(started_at, ''), coalesce(finished_at, ''), created_at, coalesce(updated_at, ''), coalesce(capsule_id, ''),
	capsule_init`

func scanContainer(row interface{ Scan(...any) error }) (Container, error) {
	var c Container
	var cmd, ep, env, labels, rp, sgs, nets string
	var exit sql.NullInt64
	err := row.Scan(&c.UUID, &c.Seq, &c.Name, &c.ProjectID, &c.UserID, &c.Image, &c.ImageID, &cmd, &ep, &c.Workdir, &env,
		&labels, &c.CPU, &c.Memory, &c.Disk, &rp, &c.RestartCount, &c.AutoRemove, &c.AutoHeal, &c.Interactive, &c.TTY,
		&c.Hostname, &c.Host, &c.AZ, &c.Status, &c.StatusReason, &c.StatusDetail, &c.TaskState, &c.Task, &c.Run,
		&c.UserStopped, &exit, &sgs, &nets, &c.StartedAt, &c.FinishedAt, &c.CreatedAt, &c.UpdatedAt, &c.CapsuleID,
		&c.CapsuleInit)
	if err != nil {
		return c, err
	}
	json.Unmarshal([]byte(cmd), &c.Command)
	json.Unmarshal([]byte(ep), &c.Entrypoint)
	json.Unmarshal([]byte(env), &c.Environment)
	json.Unmarshal([]byte(labels), &c.Labels)
	json.Unmarshal([]byte(rp), &c.Restart)
	json.Unmarshal([]byte(sgs), &c.SecurityGroups)
	json.Unmarshal([]byte(nets), &c.Networks)
	if exit.Valid {
		n := int(exit.Int64)
		c.ExitCode = &n
	}
	return c, nil
}

func notFound(ref string) error { return api.NotFound("Container %s could not be found.", ref) }

func (s *Service) loadContainer(ctx context.Context, q queryer, id string) (Container, error) {
	c, err := scanContainer(q.QueryRowContext(ctx, `SELECT `+containerCols+` FROM container_containers WHERE uuid=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFound(id)
	}
	if err != nil {
		return c, err
	}
	return c, s.fillPorts(ctx, q, &c)
}

func (s *Service) fillPorts(ctx context.Context, q queryer, c *Container) error {
	rows, err := q.QueryContext(ctx, `SELECT port_id, network_id, mac, owned, addresses FROM container_ports WHERE container_uuid=? ORDER BY position`, c.UUID)
	if err != nil {
		return err
	}
	defer rows.Close()
	c.Ports = nil
	for rows.Next() {
		var p containerPort
		var addrs string
		if err := rows.Scan(&p.PortID, &p.NetworkID, &p.MAC, &p.Owned, &addrs); err != nil {
			return err
		}
		json.Unmarshal([]byte(addrs), &p.Addresses)
		c.Ports = append(c.Ports, p)
	}
	return rows.Err()
}

// find returns the container a caller names by uuid or by name: its
// project's, or any for an admin (all_projects); others are 404.
func (s *Service) find(ctx context.Context, c *api.Credentials, ref string) (Container, error) {
	ct, err := s.loadContainer(ctx, s.db, ref)
	if err == nil {
		if ct.ProjectID != c.ProjectID && !c.CloudAdmin() {
			return Container{}, notFound(ref)
		}
		return ct, nil
	}
	if !api.IsNotFound(err) {
		return ct, err
	}
	ids, err := s.uuidsNamed(ctx, c, "container_containers", ref)
	if err != nil {
		return Container{}, err
	}
	switch len(ids) {
	case 0:
		return Container{}, notFound(ref)
	case 1:
		return s.loadContainer(ctx, s.db, ids[0])
	}
	return Container{}, api.Conflict("Multiple containers exist with same name. Please use the container uuid instead.")
}

// uuidsNamed lists the uuids of the rows of table (containers or
// capsules) named name that c may see: its project's, or any for an admin.
func (s *Service) uuidsNamed(ctx context.Context, c *api.Credentials, table, name string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT uuid, project_id FROM `+table+` WHERE name=?`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id, project string
		if err := rows.Scan(&id, &project); err != nil {
			return nil, err
		}
		if project == c.ProjectID || c.CloudAdmin() {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// randomName is a Docker-like name for a container made without one.
func randomName() string { return "zun-" + newUUID()[:8] }

// NewContainer is a create request.
type NewContainer struct {
	Name           string
	Image          string
	Command        []string
	Entrypoint     []string
	Workdir        string
	Environment    map[string]string
	Labels         map[string]string
	CPU            float64
	Memory         int64
	Disk           int64
	Restart        RestartPolicy
	AutoRemove     bool
	AutoHeal       bool
	Interactive    bool
	TTY            bool
	Hostname       string
	AZ             string
	SecurityGroups []string
	Networks       []NetRequest
	Mounts         []MountRequest
	Run            bool
}

// Zun's default_memory (MiB) and default_cpu.
const (
	DefaultMemoryMB = 512
	DefaultCPU      = 1.0
)

// Create records a container and makes it (and runs it, for run) in the
// background.

func (s *Service) Create(ctx context.Context, c *api.Credentials, n NewContainer) (Container, error) {
	if n.Name == "" {
		n.Name = randomName()
	}
	if !namePattern.MatchString(n.Name) || len(n.Name) > 255 {
		return Container{}, api.BadRequest("Invalid input for field 'name': %q must be a string of letters, digits, '_', '.' or '-' of at least two characters, starting with a letter or digit.", n.Name)
	}
	if n.AZ != "" && n.AZ != s.cfg.AvailabilityZone {
		return Container{}, api.BadRequest("The requested availability zone %s is not available.", n.AZ)
	}
	// Zun's defaults (default_memory, default_cpu) for what the request
	// leaves out: a container is limited unless someone says otherwise.
	if n.Memory == 0 {
		n.Memory = DefaultMemoryMB
	}
	if n.CPU == 0 {
		n.CPU = DefaultCPU
	}
	if n.Memory < runtime.MinMemoryBytes>>20 {
		return Container{}, api.BadRequest("Invalid input for field 'memory': the memory of a container must be at least %d MiB.", runtime.MinMemoryBytes>>20)
	}
	if n.CPU < 0 || n.CPU > 1024 {
		return Container{}, api.BadRequest("Invalid input for field 'cpu': %v is not between 0 and 1024.", n.CPU)
	}
	switch n.Restart.Name {
	case "", "no", "always", "unless-stopped":
		if n.Restart.MaximumRetryCount != "" && n.Restart.MaximumRetryCount != "0" {
			return Container{}, api.BadRequest("Invalid input for field 'restart_policy': maximum retry count not valid with restart policy of %s.", n.Restart.Name)
		}
	case "on-failure":
		var k int
		if _, err := fmt.Sscan(n.Restart.MaximumRetryCount, &k); n.Restart.MaximumRetryCount != "" && (err != nil || k < 0) {
			return Container{}, api.BadRequest("Invalid input for field 'restart_policy': MaximumRetryCount %q is not a non-negative integer.", n.Restart.MaximumRetryCount)
		}
	default:
		return Container{}, api.BadRequest("Invalid input for field 'restart_policy': %q is not one of no, always, on-failure, unless-stopped.", n.Restart.Name)
	}
	if n.Restart.Name == "" {
		n.Restart.Name = "no"
	}
	if n.Restart.MaximumRetryCount == "" {
		n.Restart.MaximumRetryCount = "0"
	}
	if (n.Restart.Name == "always" || n.Restart.Name == "unless-stopped" || n.Restart.Name == "on-failure") && n.AutoRemove {
		return Container{}, api.Conflict("Conflicting options: auto_remove and restart policy.")
	}
	for k, v := range n.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return Container{}, api.BadRequest("Invalid input for field 'environment': %q is not a valid variable name.", k)
		}
	}
	if s.cfg.Host == "" {
		return Container{}, api.Errorf(http.StatusServiceUnavailable, "There are not enough hosts available.").WithType("no-valid-host-found")
	}
	img, err := s.images.Find(ctx, c, n.Image)
	if err != nil {
		if api.IsNotFound(err) {
			return Container{}, api.NotFound("Image %s could not be found.", n.Image).WithType("image-not-found")
		}
		return Container{}, err
	}
	if img.Status != "active" {
		return Container{}, api.BadRequest("Image %s is %s, not active.", n.Image, img.Status)
	}
	for i, nr := range n.Networks {
		if nr.Network != "" {
			id, err := s.networks.Resolve(ctx, c, nr.Network)
			if err != nil {
				return Container{}, err
			}
			n.Networks[i].Network = id
		}
	}
	if len(n.Networks) == 0 {
		id, err := s.networks.Default(ctx, c.ProjectID)
		if err != nil {
			return Container{}, err
		}
		if id != "" {
			n.Networks = []NetRequest{{Network: id}}
		}
	}
	if n.SecurityGroups == nil {
		n.SecurityGroups = []string{}
	}
	if err := s.checkMounts(ctx, c, n.Mounts); err != nil {
		return Container{}, err
	}
	now := nowText()
	ct := Container{UUID: newUUID(), Name: n.Name, ProjectID: c.ProjectID, UserID: c.UserID, Image: n.Image, ImageID: img.ID,
		Command: n.Command, Entrypoint: n.Entrypoint, Workdir: n.Workdir, Environment: n.Environment, Labels: n.Labels,
		CPU: n.CPU, Memory: n.Memory, Disk: n.Disk, Restart: n.Restart, AutoRemove: n.AutoRemove, AutoHeal: n.AutoHeal,
		Interactive: n.Interactive, TTY: n.TTY, Hostname: n.Hostname, Host: s.cfg.Host, AZ: s.cfg.AvailabilityZone,
		Status: stCreating, TaskState: "container_creating", Task: taskCreate, Run: n.Run, SecurityGroups: n.SecurityGroups,
		Networks: n.Networks, CreatedAt: now, UpdatedAt: now}
	if ct.Command == nil {
		ct.Command = []string{}
	}
	if ct.Entrypoint == nil {
		ct.Entrypoint = []string{}
	}
	if ct.Environment == nil {
		ct.Environment = map[string]string{}
	}
	if ct.Labels == nil {
		ct.Labels = map[string]string{}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkQuota(ctx, tx, c.ProjectID, ct); err != nil {
			return err
		}
		var dup int
		tx.QueryRowContext(ctx, `SELECT count(*) FROM container_containers WHERE project_id=? AND name=?`, c.ProjectID, ct.Name).Scan(&dup)
		if dup > 0 {
			return api.Conflict("A container with name %s already exists.", ct.Name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO container_containers(uuid, seq, name, project_id, user_id, image, image_id, command,
			entrypoint, workdir, environment, labels, cpu, memory, disk, restart_policy, auto_remove, auto_heal, interactive, tty,
			hostname, host, az, status, task_state, task, run, security_groups, networks, created_at, updated_at)
			VALUES (?, (SELECT coalesce(max(seq), 0)+1 FROM container_containers), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
			?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ct.UUID, ct.Name, ct.ProjectID, ct.UserID, ct.Image, ct.ImageID, jsonText(ct.Command), jsonText(ct.Entrypoint),
			nilIfEmpty(ct.Workdir), jsonText(ct.Environment), jsonText(ct.Labels), ct.CPU, ct.Memory, ct.Disk, jsonText(ct.Restart),
			ct.AutoRemove, ct.AutoHeal, ct.Interactive, ct.TTY, nilIfEmpty(ct.Hostname), ct.Host, ct.AZ, ct.Status, ct.TaskState,
			ct.Task, ct.Run, jsonText(ct.SecurityGroups), jsonText(ct.Networks), now, now)
		if err != nil {
			return err
		}
		return recordFiles(ctx, tx, ct.UUID, n.Mounts)
	})
	if err != nil {
		return Container{}, err
	}
	if err := s.recordMounts(ctx, c, ct, n.Mounts); err != nil {
		s.unrecord(ctx, c, ct.UUID)
		return Container{}, err
	}
	action := "create"
	if n.Run {
		action = "run"
	}
	s.startAction(ctx, ct, action)
	s.spawn(ct.UUID, func(ctx context.Context) { s.build(ctx, ct.UUID) })
	return ct, nil
}

// spec is the runtime spec of a container.
func (s *Service) spec(ct Container) runtime.Spec {
	// As Zun asks Docker: tty gives the init a terminal, interactive keeps
	// its stdin open (`docker run -i`); attach (interactive.go) connects
	// to either.
	proc := runtime.Process{Cwd: ct.Workdir, Terminal: ct.TTY, OpenStdin: ct.Interactive}
	switch {
	case len(ct.Entrypoint) > 0:
		proc.Args = append(append([]string{}, ct.Entrypoint...), ct.Command...)
	case len(ct.Command) > 0:
		proc.Cmd = ct.Command
	}
	for k, v := range ct.Environment {
		proc.Env = append(proc.Env, k+"="+v)
	}
	hostname := ct.Hostname
	if hostname == "" {
		hostname = ct.UUID[:12]
	}
	return runtime.Spec{ID: ct.UUID, Hostname: hostname, Image: ct.ImageID, Process: proc,
		Resources:   runtime.Resources{MemoryBytes: ct.Memory << 20, VCPUs: ct.CPU},
		MaxLogBytes: 4 << 20}
}

// build makes a creating container: its ports, the container on its host
// with the ports plugged, and runs it when asked to.
func (s *Service) build(ctx context.Context, id string) {
	ct, err := s.loadContainer(ctx, s.db, id)
	if err != nil || ct.Task != taskCreate {
		return
	}
	// recorded reports whether the container is still being created: a
	// delete (force) may have taken it over meanwhile, and then it is
	// deleted, not left in Error (nor is the delete's action closed).
	recorded := func(res sql.Result, err error) bool {
		if err != nil {
			s.log.Error("recording container create", "container", id, "err", err)
			return false
		}
		n, _ := res.RowsAffected()
		return n > 0
	}
	fail := func(err error) {
		s.log.Warn("container create failed", "container", id, "err", err)
		s.failCreate(ctx, id, err.Error())
	}
	if err := s.plugPorts(ctx, &ct); err != nil {
		if ctx.Err() == nil {
			fail(fmt.Errorf("allocating the network: %w", err))
		}
		return
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	mounts, err := s.prepareMounts(bctx, ct)
	if err != nil {
		if ctx.Err() == nil {
			fail(err)
		}
		return
	}
	spec := s.spec(ct)
	if ct.CapsuleID != "" {
		// A capsule's containers share the network namespace of its
		// first, which holds the capsule's ports.
		first, err := s.capsuleFirst(ctx, ct.CapsuleID)
		if err != nil {
			fail(err)
			return
		}
		if first != ct.UUID {
			spec.NetnsOf = first
		}
	}
	_, err = s.hosts.Ensure(bctx, ct.Host, spec, false, mounts)
	if err == nil {
		for _, p := range ct.Ports {
			if err = s.networks.BindPort(bctx, p.PortID, ct.Host, ct.UUID); err != nil {
				break
			}
		}
	}
	if err == nil {
		s.waitPorts(bctx, ct.Ports)
		if ct.Run {
			_, err = s.hosts.Ensure(bctx, ct.Host, spec, true, mounts)
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = s.mountsAttached(ctx, ct)
	}
	if err != nil {
		fail(err)
		return
	}
	status := stCreated
	var started any
	if ct.Run {
		// Running even if it already ended: the watcher records how it
		// ended and applies the restart policy.
		status, started = stRunning, nowText()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, status_reason=NULL, task=NULL, task_state=NULL,
		started_at=coalesce(?, started_at), updated_at=? WHERE uuid=? AND task=?`, status, started, nowText(), id, taskCreate)
	if err != nil {
		// Never leave it Creating: say it failed, so a delete cleans up.
		fail(fmt.Errorf("recording the container's state: %w", err))
		return
	}
	if !recorded(res, nil) {
		return
	}
	s.finishAction(ctx, id, nil, "create", "run")
	if ct.Run {
		s.syncNow(ctx)
	}
}

// failCreate ends a container's create in Error with reason, and closes
// the create's action, unless a delete (force) took the container over
// meanwhile: it is then deleted, not left in Error.
func (s *Service) failCreate(ctx context.Context, id, reason string) {
	res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, status_reason=?, task=NULL, task_state=NULL,
		updated_at=? WHERE uuid=? AND task=?`, stError, reason, nowText(), id, taskCreate)
	if err != nil {
		s.log.Error("recording container create", "container", id, "err", err)
		return
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.finishAction(ctx, id, errors.New(reason), "create", "run")
	}
}

// plugPorts makes the container's ports (once: a restart reuses them).
func (s *Service) plugPorts(ctx context.Context, ct *Container) error {
	if len(ct.Ports) > 0 || len(ct.Networks) == 0 {
		return nil
	}
	for i, nr := range ct.Networks {
		var p Port
		var err error
		owned := nr.Port == ""
		if owned {
			p, err = s.networks.CreatePort(ctx, ct.ProjectID, nr.Network, ct.UUID, nr.FixedIP, ct.SecurityGroups)
		} else {
			p, _, err = s.networks.GetPort(ctx, nr.Port)
		}
		if err != nil {
			return err
		}
		cp := newContainerPort(p, owned)
		if _, err := s.db.ExecContext(ctx, `INSERT INTO container_ports(container_uuid, position, port_id, network_id, owned, addresses, mac)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, ct.UUID, i, cp.PortID, cp.NetworkID, cp.Owned, jsonText(cp.Addresses), cp.MAC); err != nil {
			if owned {
				// Unrecorded, the port would outlive the container.
				s.networks.DeletePort(context.WithoutCancel(ctx), p.ID)
			}
			return err
		}
		ct.Ports = append(ct.Ports, cp)
	}
	return nil
}

// waitPorts waits, a bounded time, until the ports are plugged.
func (s *Service) waitPorts(ctx context.Context, ports []containerPort) {
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range ports {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			_, status, err := s.networks.GetPort(ctx, p.PortID)
			if err != nil || status == "ACTIVE" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (s *Service) setStatus(ctx context.Context, id, status, reason string, exit *int) {
	_, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, status_reason=?, task=NULL, task_state=NULL,
		exit_code=coalesce(?, exit_code), updated_at=? WHERE uuid=?`, status, nilIfEmpty(reason), exit, nowText(), id)
	if err != nil {
		s.log.Error("recording container status", "container", id, "err", err)
	}
}

// Delete deletes a container in the background. A running container needs
// force (killed) or stop (stopped first).
func (s *Service) Delete(ctx context.Context, c *api.Credentials, ref string, force, stop bool) error {
	ct, err := s.find(ctx, c, ref)
	if err != nil {
		return err
	}
	// Zun's policy: forcing is the admin's (it kills whatever the
	// container is doing); a member stops it (stop) or stops it first.
	if force && !c.CloudAdmin() {
		return api.Forbidden("Policy doesn't allow container:delete_force to be performed.").WithType("policy-not-authorized")
	}
	// Without force, only a container at rest (or, with stop, a live one):
	// not one being made, rebuilt or deleted.
	if err := inCapsule(ct, "delete"); err != nil {
		return err
	}
	allowed := []string{stCreated, stStopped, stError, stUnknown}
	if stop {
		allowed = append(allowed, stRunning, stPaused, stRestarting)
	}
	if !force && !contains(allowed, ct.Status) {
		return invalidState(ct.UUID, "delete", ct.Status)
	}
	// stop: a running container is stopped (gracefully) before it is
	// deleted; destroy reads that from the task state, across a restart.
	taskState := "container_deleting"
	if stop && (ct.Status == stRunning || ct.Status == stRestarting) {
		taskState = "container_stopping"
	}
	res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, task=?, task_state=?, updated_at=?
		WHERE uuid=?`, stDeleting, taskDelete, taskState, nowText(), ct.UUID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(ref)
	}
	s.startAction(ctx, ct, "delete")
	s.spawn(ct.UUID, func(ctx context.Context) { s.destroy(ctx, ct.UUID) })
	return nil
}

// destroy removes a deleting container from its host, its ports, then its
// record.
func (s *Service) destroy(ctx context.Context, id string) {
	ct, err := s.loadContainer(ctx, s.db, id)
	if err != nil || ct.Task != taskDelete {
		return
	}
	if ct.Host != "" && ct.TaskState == "container_stopping" {
		if _, err := s.hosts.Action(ctx, ct.Host, id, "stop", 0, 0); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("stopping a container before deleting it", "container", id, "err", err)
		}
		s.db.ExecContext(ctx, `UPDATE container_containers SET task_state='container_deleting' WHERE uuid=? AND task=?`, id, taskDelete)
	}
	var errs []error
	if ct.Host != "" {
		if _, err := s.hosts.Action(ctx, ct.Host, id, "delete", 0, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := s.releaseMounts(ctx, ct, false); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		for _, p := range ct.Ports {
			var err error
			if p.Owned {
				err = s.networks.DeletePort(ctx, p.PortID)
			} else {
				err = s.networks.BindPort(ctx, p.PortID, "", "")
			}
			if err != nil && !api.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("container delete failed", "container", id, "err", err)
		s.setStatus(ctx, id, stError, "Deleting the container failed: "+err.Error(), nil)
		s.finishAction(ctx, id, err, "delete")
		return
	}
	if err := s.dropRecord(ctx, id); err != nil {
		s.log.Error("deleting container record", "container", id, "err", err)
	}
}

// dropRecord deletes a container's record and its actions (which no API
// call reaches once it is gone; its ports, mounts and files go by cascade).
func (s *Service) dropRecord(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM container_actions WHERE container_uuid=?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM container_containers WHERE uuid=?`, id)
		return err
	})
}

// Start resumes the work a previous run left and starts watching the
// containers' states.
func (s *Service) Start(ctx context.Context) error {
	// An action (stop, pause, reboot, a restart policy's start, ...) that
	// was running when the service went away is not resumed: its task
	// state would refuse every other action for good. The watcher records
	// what the host did of it (a rebooting container is Restarting until
	// then). A rebuild cut short left the container half made: Error,
	// which a rebuild or a delete starts from.
	if _, err := s.db.ExecContext(ctx, `UPDATE container_containers SET task_state=NULL,
		status=CASE WHEN status='Rebuilding' THEN 'Error' ELSE status END,
		status_reason=CASE WHEN status='Rebuilding' THEN 'The rebuild was interrupted by a restart of the service.' ELSE status_reason END
		WHERE task IS NULL AND task_state IS NOT NULL`); err != nil {
		return err
	}
	// A capsule's containers are made and deleted in order, by their
	// capsule's work.
	rows, err := s.db.QueryContext(ctx, `SELECT uuid, task FROM container_containers WHERE task IS NOT NULL AND capsule_id IS NULL`)
	if err != nil {
		return err
	}
	type pending struct{ id, task string }
	var todo []pending
	for rows.Next() {
		var p pending
		rows.Scan(&p.id, &p.task)
		todo = append(todo, p)
	}
	rows.Close()
	for _, p := range todo {
		id := p.id
		switch p.task {
		case taskCreate:
			s.spawn(id, func(ctx context.Context) { s.build(ctx, id) })
		case taskDelete:
			s.spawn(id, func(ctx context.Context) { s.destroy(ctx, id) })
		default:
			s.db.ExecContext(ctx, `UPDATE container_containers SET task=NULL, task_state=NULL WHERE uuid=?`, id)
		}
	}
	if err := s.resumeCapsules(ctx); err != nil {
		return err
	}
	s.work.Go(s.watch)
	return nil
}

// startAction records a container action (the action log).
func (s *Service) startAction(ctx context.Context, ct Container, action string) {
	c := api.CredentialsFrom(ctx)
	user, project := ct.UserID, ct.ProjectID
	if c != nil {
		user, project = c.UserID, c.ProjectID
	}
	reqID := api.RequestID(ctx)
	if reqID == "" {
		reqID = "req-" + newUUID()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO container_actions(container_uuid, request_id, action, user_id, project_id, start_time)
		VALUES (?, ?, ?, ?, ?, ?)`, ct.UUID, reqID, action, user, project, nowText())
	if err != nil {
		s.log.Warn("recording container action", "container", ct.UUID, "err", err)
	}
}

// finishAction closes the newest open action of the container named
// actions (the one that ends: another may have started meanwhile, an exec
// during a pause or a delete during a create).
func (s *Service) finishAction(ctx context.Context, id string, failure error, actions ...string) {
	var msg any
	if failure != nil {
		msg = failure.Error()
	}
	args, named := []any{nowText(), msg, id}, ""
	if len(actions) > 0 {
		named = " AND action IN (?" + strings.Repeat(", ?", len(actions)-1) + ")"
	}
	for _, a := range actions {
		args = append(args, a)
	}
	s.db.ExecContext(ctx, `UPDATE container_actions SET finish_time=?, message=? WHERE id=(SELECT max(id) FROM container_actions
		WHERE container_uuid=? AND finish_time IS NULL`+named+`)`, args...)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// newContainerPort is a port as a container records it.
func newContainerPort(p Port, owned bool) containerPort {
	cp := containerPort{PortID: p.ID, NetworkID: p.NetworkID, MAC: p.MAC, Owned: owned}
	for j, a := range p.Addresses {
		ver := 4
		if a.Addr().Is6() {
			ver = 6
		}
		sub := ""
		if j < len(p.SubnetIDs) {
			sub = p.SubnetIDs[j]
		}
		cp.Addresses = append(cp.Addresses, address{Addr: a.Addr().String(), Version: ver, SubnetID: sub})
	}
	return cp
}
