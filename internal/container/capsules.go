package container

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

// Capsules are Zun's pods: containers made from one template that share a
// network namespace. The first container of a capsule holds it: it gets
// the capsule's Neutron ports, and the others join its namespace
// (runtime.Spec.NetnsOf), so they reach each other on 127.0.0.1 and the
// capsule has the first one's addresses.
//
// Each container of a capsule is a container record of its own (logs,
// exec, top, stats, start, stop work on it by uuid or name), with the
// capsule's id; the containers list leaves them out, as Zun does. Deleting
// one on its own, rebuilding it or plugging its networks is refused (409):
// Zun's containers API does not see a capsule's containers at all (404),
// and here that would tear the namespace from under the others. Deleting
// the capsule deletes them (forced, the first last), then the capsule.
//
// The capsule's status is derived from its containers': Creating while
// one is being made, Error when one failed, Running while one runs (a
// pod's phase), Succeeded or Failed when all ended (all with 0, or not),
// Pending when made but not started, Deleting while it is deleted.

// Capsule statuses besides the containers' (Zun's CAPSULE_STATUSES).
const (
	capPending   = "Pending"
	capSucceeded = "Succeeded"
	capFailed    = "Failed"
)

// Capsule is a capsule record with its containers, the first first.
type Capsule struct {
	UUID, Name, ProjectID, UserID string
	Seq                           int64
	Labels, Annotations           map[string]string
	Restart                       RestartPolicy
	CPU                           float64
	Memory                        int64 // MiB
	Host, Task                    string
	CreatedAt, UpdatedAt          string

	Containers []Container
}

const capsuleCols = `uuid, seq, coalesce(name, ''), project_id, user_id, labels, annotations, restart_policy, cpu, memory,
	coalesce(host, ''), coalesce(task, ''), created_at, coalesce(updated_at, '')`

func scanCapsule(row interface{ Scan(...any) error }) (Capsule, error) {
	var cp Capsule
	var labels, annotations, rp string
	err := row.Scan(&cp.UUID, &cp.Seq, &cp.Name, &cp.ProjectID, &cp.UserID, &labels, &annotations, &rp, &cp.CPU, &cp.Memory,
		&cp.Host, &cp.Task, &cp.CreatedAt, &cp.UpdatedAt)
	if err != nil {
		return cp, err
	}
	json.Unmarshal([]byte(labels), &cp.Labels)
	json.Unmarshal([]byte(annotations), &cp.Annotations)
	json.Unmarshal([]byte(rp), &cp.Restart)
	return cp, nil
}

func capsuleNotFound(ref string) error {
	return api.NotFound("Capsule %s could not be found.", ref).WithType("capsule-not-found")
}

// capsuleContainers returns a capsule's containers with their ports, the
// first (the namespace's holder) first.
func (s *Service) capsuleContainers(ctx context.Context, id string) ([]Container, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+containerCols+` FROM container_containers WHERE capsule_id=? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	var out []Container
	for rows.Next() {
		ct, err := scanContainer(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, ct)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if err := s.fillPorts(ctx, s.db, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// capsuleFirst is the id of the container whose network namespace a
// capsule's containers share.
func (s *Service) capsuleFirst(ctx context.Context, capsule string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT uuid FROM container_containers WHERE capsule_id=? ORDER BY seq LIMIT 1`, capsule).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("capsule %s has no containers", capsule)
	}
	return id, err
}

func (s *Service) loadCapsule(ctx context.Context, id string) (Capsule, error) {
	cp, err := scanCapsule(s.db.QueryRowContext(ctx, `SELECT `+capsuleCols+` FROM container_capsules WHERE uuid=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return cp, capsuleNotFound(id)
	}
	if err != nil {
		return cp, err
	}
	cp.Containers, err = s.capsuleContainers(ctx, id)
	return cp, err
}

// findCapsule returns the capsule a caller names by uuid or name: its
// project's, or any for an admin.
func (s *Service) findCapsule(ctx context.Context, c *api.Credentials, ref string) (Capsule, error) {
	cp, err := s.loadCapsule(ctx, ref)
	if err == nil {
		if cp.ProjectID != c.ProjectID && !c.CloudAdmin() {
			return Capsule{}, capsuleNotFound(ref)
		}
		return cp, nil
	}
	if !api.IsNotFound(err) {
		return cp, err
	}
	ids, err := s.uuidsNamed(ctx, c, "container_capsules", ref)
	if err != nil {
		return Capsule{}, err
	}
	switch len(ids) {
	case 0:
		return Capsule{}, capsuleNotFound(ref)
	case 1:
		return s.loadCapsule(ctx, ids[0])
	}
	return Capsule{}, api.Conflict("Multiple capsules exist with same name. Please use the capsule uuid instead.")
}

// capsuleStatus derives a capsule's status (and its reason) from its
// containers'.
func capsuleStatus(cp Capsule) (string, string) {
	if cp.Task == taskDelete {
		return stDeleting, ""
	}
	count := map[string]int{}
	reason, failed := "", false
	for _, ct := range cp.Containers {
		count[ct.Status]++
		if ct.Status == stError && reason == "" {
			reason = ct.StatusReason
		}
		if ct.Status == stStopped && ct.ExitCode != nil && *ct.ExitCode != 0 {
			failed = true
		}
	}
	n := len(cp.Containers)
	switch {
	case n == 0:
		return stUnknown, ""
	case count[stDeleting] > 0:
		return stDeleting, ""
	case count[stCreating] > 0:
		return stCreating, ""
	case count[stError] > 0:
		return stError, reason
	case count[stRunning]+count[stRestarting]+count[stPaused] > 0:
		return stRunning, ""
	case count[stStopped] == n && failed:
		return capFailed, ""
	case count[stStopped] == n:
		return capSucceeded, ""
	case count[stCreated] > 0:
		return capPending, ""
	}
	return stUnknown, ""
}

// capsuleTemplate is a capsule's template, validated.
type capsuleTemplate struct {
	Name                string
	Labels, Annotations map[string]string
	Restart             string // no, always, on-failure
	Containers          []capsuleContainer
	// Inits run to completion, in order, before Containers start.
	Inits []capsuleContainer
	// Volumes by name: Cinder volumes the containers mount.
	Volumes map[string]capsuleVolume
}

// all is the template's containers in the order they are made: the init
// containers, then the others.
func (t capsuleTemplate) all() []capsuleContainer {
	return append(slices.Clone(t.Inits), t.Containers...)
}

// capsuleVolume is a volume of a template (spec.volumes[].cinder): an
// existing one (VolumeID) or a new one of Size GiB, deleted with the
// capsule when AutoRemove.
type capsuleVolume struct {
	VolumeID   string
	Size       int64
	AutoRemove bool
}

// capsuleMount is one of a container's volumeMounts.
type capsuleMount struct {
	Name, Path string
}

type capsuleContainer struct {
	Name, Image, Workdir string
	Command              []string
	Env                  map[string]string
	CPU                  float64
	Memory               int64 // MiB
	Stdin, TTY           bool
	Mounts               []capsuleMount
}

// capsuleRestart maps a template's restartPolicy to Docker's.
var capsuleRestart = map[string]string{"Always": "always", "OnFailure": "on-failure", "Never": "no"}

func templateError(format string, args ...any) error {
	return api.BadRequest("Invalid capsule template: "+format+".", args...).WithType("invalid-capsule-template")
}

// decodeTemplate reads a create's template: an object, or a string of
// JSON or YAML (gophercloud sends its template file's text; Zun itself
// reads JSON only).
func decodeTemplate(raw any) (map[string]any, error) {
	text, ok := raw.(string)
	if !ok {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, schemaError("Invalid input for field 'template'. It must be an object or a string.")
		}
		return m, nil
	}
	var v any
	if err := api.Unmarshal([]byte(text), &v); err != nil {
		var y any
		if yerr := yaml.Unmarshal([]byte(text), &y); yerr != nil {
			return nil, templateError("it is neither JSON nor YAML: %v", yerr)
		}
		// As JSON: numbers as json.Number, as an object's are.
		b, jerr := json.Marshal(y)
		if jerr != nil {
			return nil, templateError("it is not a JSON-like document: %v", jerr)
		}
		v = nil
		if err := api.Unmarshal(b, &v); err != nil {
			return nil, templateError("%v", err)
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, templateError("it is not an object")
	}
	return m, nil
}

// only fails when m has a key not in keys.
func only(m map[string]any, field string, keys ...string) error {
	for k := range m {
		if !contains(keys, k) {
			return schemaError("Invalid input for field '%s'. Additional properties are not allowed ('%s' was unexpected)", field, k)
		}
	}
	return nil
}

func object(v any, field string) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, schemaError("Invalid input for field '%s'.Value: '%v'. It is not of type 'object'", field, v)
	}
	return m, nil
}

func text(v any, field string) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", schemaError("Invalid input for field '%s'.Value: '%v'. It is not of type 'string'", field, v)
	}
	return s, nil
}

func strings1(v any, field string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, schemaError("Invalid input for field '%s'.Value: '%v'. It is not of type 'array'", field, v)
	}
	out := []string{}
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, schemaError("Invalid input for field '%s'.Value: '%v'. It must be a list of strings", field, v)
		}
		out = append(out, s)
	}
	return out, nil
}

func stringMap(v any, field string) (map[string]string, error) {
	m, err := object(v, field)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, schemaError("Invalid input for field '%s'.Value: '%v'. The value of %s is not of type 'string'", field, x, k)
		}
		out[k] = s
	}
	return out, nil
}

// parseTemplate validates a capsule template as Zun's schema does, and
// refuses what this cloud cannot do yet (init containers).
func (s *Service) parseTemplate(raw any) (capsuleTemplate, error) {
	var t capsuleTemplate
	m, err := decodeTemplate(raw)
	if err != nil {
		return t, err
	}
	if err := only(m, "template", "kind", "capsuleVersion", "metadata", "restartPolicy", "spec", "availabilityZone"); err != nil {
		return t, err
	}
	for _, k := range []string{"kind", "spec", "metadata"} {
		if m[k] == nil {
			return t, schemaError("Invalid input for field 'template'. '%s' is a required property", k)
		}
	}
	if kind, _ := m["kind"].(string); kind != "capsule" && kind != "Capsule" {
		return t, templateError("kind fields need to be set as capsule or Capsule")
	}
	if v, err := text(m["capsuleVersion"], "capsuleVersion"); err != nil {
		return t, err
	} else if v != "" && v != "beta" && v != "Beta" {
		return t, schemaError("Invalid input for field 'capsuleVersion'.Value: '%s'. '%s' is not one of ['beta', 'Beta']", v, v)
	}
	if az, err := text(m["availabilityZone"], "availabilityZone"); err != nil {
		return t, err
	} else if az != "" && az != s.cfg.AvailabilityZone {
		return t, api.BadRequest("The requested availability zone %s is not available.", az)
	}
	meta, err := object(m["metadata"], "metadata")
	if err != nil {
		return t, err
	}
	if t.Name, err = text(meta["name"], "metadata.name"); err != nil {
		return t, err
	}
	if t.Name != "" && (!namePattern.MatchString(t.Name) || len(t.Name) > 255) {
		return t, schemaError("Invalid input for field 'metadata.name'.Value: '%s'. '%s' does not match '^[a-zA-Z0-9][a-zA-Z0-9_.-]+$'", t.Name, t.Name)
	}
	if t.Labels, err = stringMap(meta["labels"], "metadata.labels"); err != nil {
		return t, err
	}
	if t.Annotations, err = stringMap(meta["annotations"], "metadata.annotations"); err != nil {
		return t, err
	}
	spec, err := object(m["spec"], "spec")
	if err != nil {
		return t, err
	}
	policy := m["restartPolicy"] // deprecated, still read
	if spec["restartPolicy"] != nil {
		policy = spec["restartPolicy"]
	}
	t.Restart = "always"
	if policy != nil {
		p, _ := policy.(string)
		if capsuleRestart[p] == "" {
			return t, schemaError("Invalid input for field 'restartPolicy'.Value: '%v'. '%v' is not one of ['Always', 'OnFailure', 'Never']", policy, policy)
		}
		t.Restart = capsuleRestart[p]
	}
	if t.Volumes, err = parseCapsuleVolumes(spec["volumes"]); err != nil {
		return t, err
	}
	if x := spec["initContainers"]; x != nil {
		ics, ok := x.([]any)
		if !ok {
			return t, schemaError("Invalid input for field 'spec.initContainers'. It is not of type 'array'")
		}
		for i, x := range ics {
			ct, err := parseCapsuleContainer(x, fmt.Sprintf("spec.initContainers[%d]", i))
			if err != nil {
				return t, err
			}
			t.Inits = append(t.Inits, ct)
		}
	}
	list, ok := spec["containers"].([]any)
	if spec["containers"] == nil || !ok || len(list) == 0 {
		return t, templateError("No valid containers field")
	}
	for i, x := range list {
		ct, err := parseCapsuleContainer(x, fmt.Sprintf("spec.containers[%d]", i))
		if err != nil {
			return t, err
		}
		t.Containers = append(t.Containers, ct)
	}
	names := map[string]bool{}
	for _, ct := range t.all() {
		if ct.Name != "" {
			if names[ct.Name] {
				return t, templateError("two containers are named %s", ct.Name)
			}
			names[ct.Name] = true
		}
	}
	// Each volume is mounted, by one container (a Cinder volume attaches
	// to one consumer; upstream assumes the same).
	mountedBy := map[string]int{}
	for _, ct := range t.all() {
		for _, m := range ct.Mounts {
			if _, ok := t.Volumes[m.Name]; !ok {
				return t, templateError("volume %s is mounted but not in spec.volumes", m.Name)
			}
			mountedBy[m.Name]++
		}
	}
	for name := range t.Volumes {
		switch mountedBy[name] {
		case 0:
			return t, templateError("volume %s is mounted by no container", name)
		case 1:
		default:
			return t, templateError("volume %s is mounted by more than one container", name)
		}
	}
	return t, nil
}

// parseCapsuleVolumes reads spec.volumes: [{name, cinder: {volumeID | size,
// autoRemove}}].
func parseCapsuleVolumes(x any) (map[string]capsuleVolume, error) {
	out := map[string]capsuleVolume{}
	if x == nil {
		return out, nil
	}
	list, ok := x.([]any)
	if !ok {
		return nil, schemaError("Invalid input for field 'spec.volumes'. It is not of type 'array'")
	}
	for i, v := range list {
		field := fmt.Sprintf("spec.volumes[%d]", i)
		m, err := object(v, field)
		if err != nil {
			return nil, err
		}
		if err := only(m, field, "name", "cinder"); err != nil {
			return nil, err
		}
		name, err := text(m["name"], field+".name")
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, templateError("Volume name is needed")
		}
		if _, dup := out[name]; dup {
			return nil, templateError("two volumes are named %s", name)
		}
		if m["cinder"] == nil {
			return nil, templateError("Zun now Only support Cinder volume driver")
		}
		cm, err := object(m["cinder"], field+".cinder")
		if err != nil {
			return nil, err
		}
		if err := only(cm, field+".cinder", "volumeID", "size", "autoRemove"); err != nil {
			return nil, err
		}
		var cv capsuleVolume
		if cv.VolumeID, err = text(cm["volumeID"], field+".cinder.volumeID"); err != nil {
			return nil, err
		}
		if cm["size"] != nil {
			if cv.Size, err = integer(field+".cinder.size", cm["size"]); err != nil {
				return nil, err
			}
			if cv.Size < 1 {
				return nil, schemaError("Invalid input for field '%s.cinder.size'.Value: '%v'. It is less than the minimum of 1", field, cm["size"])
			}
		}
		switch {
		case cv.VolumeID == "" && cv.Size == 0:
			return nil, templateError("Volume size is needed")
		case cv.VolumeID != "" && cv.Size != 0:
			return nil, templateError("Volume size and uuid could not be set at the same time")
		}
		if cv.AutoRemove, err = flag(field+".cinder.autoRemove", cm["autoRemove"]); err != nil {
			return nil, err
		}
		out[name] = cv
	}
	return out, nil
}

func parseCapsuleContainer(x any, field string) (capsuleContainer, error) {
	var ct capsuleContainer
	m, err := object(x, field)
	if err != nil {
		return ct, err
	}
	if err := only(m, field, "name", "image", "command", "args", "resources", "ports", "volumeMounts", "env", "workDir",
		"imagePullPolicy", "stdin", "tty"); err != nil {
		return ct, err
	}
	if ct.Name, err = text(m["name"], field+".name"); err != nil {
		return ct, err
	}
	if ct.Name != "" && (!namePattern.MatchString(ct.Name) || len(ct.Name) > 255) {
		return ct, schemaError("Invalid input for field '%s.name'.Value: '%s'. '%s' does not match '^[a-zA-Z0-9][a-zA-Z0-9_.-]+$'", field, ct.Name, ct.Name)
	}
	if ct.Image, err = text(m["image"], field+".image"); err != nil {
		return ct, err
	}
	if strings.TrimSpace(ct.Image) == "" || len(ct.Image) > 255 {
		return ct, schemaError("Invalid input for field '%s'. 'image' is a required property", field)
	}
	cmd, err := strings1(m["command"], field+".command")
	if err != nil {
		return ct, err
	}
	args, err := strings1(m["args"], field+".args")
	if err != nil {
		return ct, err
	}
	ct.Command = append(cmd, args...)
	if ct.Workdir, err = text(m["workDir"], field+".workDir"); err != nil {
		return ct, err
	}
	if ct.Env, err = stringMap(m["env"], field+".env"); err != nil {
		return ct, err
	}
	for k, v := range ct.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return ct, schemaError("Invalid input for field '%s.env': %q is not a valid variable name.", field, k)
		}
	}
	res, err := object(m["resources"], field+".resources")
	if err != nil {
		return ct, err
	}
	if err := only(res, field+".resources", "requests"); err != nil {
		return ct, err
	}
	req, err := object(res["requests"], field+".resources.requests")
	if err != nil {
		return ct, err
	}
	if err := only(req, field+".resources.requests", "cpu", "memory"); err != nil {
		return ct, err
	}
	if ct.CPU, err = number(field+".resources.requests.cpu", req["cpu"]); err != nil {
		return ct, err
	}
	if req["cpu"] != nil && (ct.CPU < 0.1 || ct.CPU > 16) {
		return ct, schemaError("Invalid input for field '%s.resources.requests.cpu'.Value: '%v'. %v is not between the minimum of 0.1 and the maximum of 16.0", field, req["cpu"], ct.CPU)
	}
	if ct.Memory, err = integer(field+".resources.requests.memory", req["memory"]); err != nil {
		return ct, err
	}
	if min := int64(max(4, runtime.MinMemoryBytes>>20)); req["memory"] != nil && (ct.Memory < min || ct.Memory > 8192) {
		return ct, schemaError("Invalid input for field '%s.resources.requests.memory'.Value: '%v'. %d is not between the minimum of %d and the maximum of 8192", field, req["memory"], ct.Memory, min)
	}
	if ports, ok := m["ports"]; ok && ports != nil {
		l, ok := ports.([]any)
		if !ok {
			return ct, schemaError("Invalid input for field '%s.ports'. It is not of type 'array'", field)
		}
		for j, p := range l {
			pf := fmt.Sprintf("%s.ports[%d]", field, j)
			pm, err := object(p, pf)
			if err != nil {
				return ct, err
			}
			if err := only(pm, pf, "name", "containerPort", "hostPort", "protocol"); err != nil {
				return ct, err
			}
			if pm["containerPort"] == nil {
				return ct, schemaError("Invalid input for field '%s'. 'containerPort' is a required property", pf)
			}
			for _, k := range []string{"containerPort", "hostPort"} {
				if pm[k] != nil {
					if n, err := integer(pf+"."+k, pm[k]); err != nil || n > 65535 {
						return ct, schemaError("Invalid input for field '%s.%s'.Value: '%v'. It is not a port number", pf, k, pm[k])
					}
				}
			}
			if proto := pm["protocol"]; proto != nil && proto != "TCP" && proto != "UDP" {
				return ct, schemaError("Invalid input for field '%s.protocol'.Value: '%v'. '%v' is not one of ['TCP', 'UDP']", pf, proto, proto)
			}
		}
	}
	if x, ok := m["volumeMounts"]; ok && x != nil {
		l, ok := x.([]any)
		if !ok {
			return ct, schemaError("Invalid input for field '%s.volumeMounts'. It is not of type 'array'", field)
		}
		for j, v := range l {
			vf := fmt.Sprintf("%s.volumeMounts[%d]", field, j)
			vm, err := object(v, vf)
			if err != nil {
				return ct, err
			}
			if err := only(vm, vf, "name", "mountPath"); err != nil {
				return ct, err
			}
			var cm capsuleMount
			if cm.Name, err = text(vm["name"], vf+".name"); err != nil {
				return ct, err
			}
			if cm.Path, err = text(vm["mountPath"], vf+".mountPath"); err != nil {
				return ct, err
			}
			if cm.Name == "" || cm.Path == "" {
				return ct, schemaError("Invalid input for field '%s'. 'name' and 'mountPath' are required properties", vf)
			}
			ct.Mounts = append(ct.Mounts, cm)
		}
	}
	if p, err := text(m["imagePullPolicy"], field+".imagePullPolicy"); err != nil {
		return ct, err
	} else if p != "" && !contains([]string{"never", "always", "ifnotpresent"}, strings.ToLower(p)) {
		return ct, schemaError("Invalid input for field '%s.imagePullPolicy'.Value: '%s'. It is not one of never, always, ifnotpresent", field, p)
	}
	if ct.Stdin, err = flag(field+".stdin", m["stdin"]); err != nil {
		return ct, err
	}
	if ct.TTY, err = flag(field+".tty", m["tty"]); err != nil {
		return ct, err
	}
	return ct, nil
}

// CreateCapsule records a capsule and its containers and makes them (and
// runs them) in the background, the first first. Nothing is recorded when
// the template, an image or the quota refuses it.
func (s *Service) CreateCapsule(ctx context.Context, c *api.Credentials, t capsuleTemplate) (Capsule, error) {
	if s.cfg.Host == "" {
		return Capsule{}, api.Errorf(http.StatusServiceUnavailable, "There are not enough hosts available.").WithType("no-valid-host-found")
	}
	now := nowText()
	cp := Capsule{UUID: newUUID(), Name: t.Name, ProjectID: c.ProjectID, UserID: c.UserID, Labels: t.Labels,
		Annotations: t.Annotations, Restart: RestartPolicy{Name: t.Restart, MaximumRetryCount: "0"}, Host: s.cfg.Host,
		Task: taskCreate, CreatedAt: now, UpdatedAt: now}
	prefix := "capsule-" + cp.Name + "-"
	if cp.Name == "" {
		prefix = "capsule-" + cp.UUID + "-"
	}
	var network string
	// The init containers first (the first of all holds the capsule's
	// network namespace), then the others.
	all := t.all()
	isInit := func(i int) bool { return i < len(t.Inits) }
	// mounts[i]: the volumes container i mounts, checked before anything
	// is recorded.
	mounts := make([][]MountRequest, len(all))
	for i, tc := range all {
		for _, m := range tc.Mounts {
			v := t.Volumes[m.Name]
			mounts[i] = append(mounts[i], MountRequest{Source: v.VolumeID, Size: v.Size, Destination: m.Path, Keep: !v.AutoRemove})
		}
		if err := s.checkMounts(ctx, c, mounts[i]); err != nil {
			return Capsule{}, err
		}
	}
	for i, tc := range all {
		img, err := s.images.Find(ctx, c, tc.Image)
		if err != nil {
			if api.IsNotFound(err) {
				return Capsule{}, api.NotFound("Image %s could not be found.", tc.Image).WithType("image-not-found")
			}
			return Capsule{}, err
		}
		if img.Status != "active" {
			return Capsule{}, api.BadRequest("Image %s is %s, not active.", tc.Image, img.Status)
		}
		if i == 0 {
			if network, err = s.networks.Default(ctx, c.ProjectID); err != nil {
				return Capsule{}, err
			}
		}
		name := tc.Name
		if name == "" {
			name = newUUID()[:8]
		}
		ct := Container{UUID: newUUID(), Name: prefix + name, ProjectID: c.ProjectID, UserID: c.UserID, Image: tc.Image,
			ImageID: img.ID, Command: tc.Command, Entrypoint: []string{}, Workdir: tc.Workdir, Environment: tc.Env,
			Labels: map[string]string{}, CPU: tc.CPU, Memory: tc.Memory, Restart: cp.Restart, Interactive: tc.Stdin,
			TTY: tc.TTY, Host: s.cfg.Host, AZ: s.cfg.AvailabilityZone, Status: stCreating, TaskState: "container_creating",
			Task: taskCreate, Run: true, SecurityGroups: []string{}, Networks: []NetRequest{}, CapsuleID: cp.UUID,
			CreatedAt: now, UpdatedAt: now}
		if ct.Command == nil {
			ct.Command = []string{}
		}
		if ct.Environment == nil {
			ct.Environment = map[string]string{}
		}
		if i == 0 && network != "" {
			ct.Networks = []NetRequest{{Network: network}}
		}
		if isInit(i) {
			// Zun's rule: an init container of an Always capsule is
			// retried on failure (10 times), never restarted once done.
			ct.CapsuleInit = true
			if cp.Restart.Name == "always" {
				ct.Restart = RestartPolicy{Name: "on-failure", MaximumRetryCount: "10"}
			}
		}
		cp.Containers = append(cp.Containers, ct)
	}
	// What the capsule needs: its containers together, or its largest
	// init container alone (they run before, one at a time), as Zun.
	for _, ct := range cp.Containers {
		if !ct.CapsuleInit {
			cp.CPU += ct.CPU
			cp.Memory += ct.Memory
		}
	}
	for _, ct := range cp.Containers {
		if ct.CapsuleInit {
			cp.CPU, cp.Memory = max(cp.CPU, ct.CPU), max(cp.Memory, ct.Memory)
		}
	}
	if cp.Labels == nil {
		cp.Labels = map[string]string{}
	}
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		want := map[string]float64{"containers": float64(len(cp.Containers)), "cpu": cp.CPU, "memory": float64(cp.Memory)}
		if err := s.checkQuotaFor(ctx, tx, c.ProjectID, want); err != nil {
			return err
		}
		if cp.Name != "" {
			var dup int
			tx.QueryRowContext(ctx, `SELECT count(*) FROM container_capsules WHERE project_id=? AND name=?`, c.ProjectID, cp.Name).Scan(&dup)
			if dup > 0 {
				return api.Conflict("A capsule with name %s already exists.", cp.Name)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO container_capsules(uuid, seq, name, project_id, user_id, labels, annotations,
			restart_policy, cpu, memory, host, task, created_at, updated_at)
			VALUES (?, (SELECT coalesce(max(seq), 0)+1 FROM container_capsules), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			cp.UUID, nilIfEmpty(cp.Name), cp.ProjectID, cp.UserID, jsonText(cp.Labels), jsonText(cp.Annotations),
			jsonText(cp.Restart), cp.CPU, cp.Memory, cp.Host, cp.Task, now, now); err != nil {
			return err
		}
		for _, ct := range cp.Containers {
			var dup int
			tx.QueryRowContext(ctx, `SELECT count(*) FROM container_containers WHERE project_id=? AND name=?`, c.ProjectID, ct.Name).Scan(&dup)
			if dup > 0 {
				return api.Conflict("A container with name %s already exists.", ct.Name)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO container_containers(uuid, seq, name, project_id, user_id, image, image_id,
				command, entrypoint, workdir, environment, labels, cpu, memory, disk, restart_policy, auto_remove, auto_heal,
				interactive, tty, host, az, status, task_state, task, run, security_groups, networks, capsule_id, created_at,
				updated_at, capsule_init)
				VALUES (?, (SELECT coalesce(max(seq), 0)+1 FROM container_containers), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, 0,
				?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				ct.UUID, ct.Name, ct.ProjectID, ct.UserID, ct.Image, ct.ImageID, jsonText(ct.Command), jsonText(ct.Entrypoint),
				nilIfEmpty(ct.Workdir), jsonText(ct.Environment), jsonText(ct.Labels), ct.CPU, ct.Memory, jsonText(ct.Restart),
				ct.Interactive, ct.TTY, ct.Host, ct.AZ, ct.Status, ct.TaskState, ct.Task, ct.Run, jsonText(ct.SecurityGroups),
				jsonText(ct.Networks), cp.UUID, now, now, ct.CapsuleInit); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Capsule{}, err
	}
	for i, ct := range cp.Containers {
		if err := s.recordMounts(ctx, c, ct, mounts[i]); err != nil {
			for _, ct := range cp.Containers {
				s.unrecord(ctx, c, ct.UUID)
			}
			s.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM container_capsules WHERE uuid=?`, cp.UUID)
			return Capsule{}, err
		}
	}
	for _, ct := range cp.Containers {
		s.startAction(ctx, ct, "create")
	}
	s.spawn("capsule/"+cp.UUID, func(ctx context.Context) { s.buildCapsule(ctx, cp.UUID) })
	return cp, nil
}

// buildCapsule makes a capsule's containers one after the other: the
// first's namespace must be there before the others join it, and each
// init container must have ended well before the next one is made.
func (s *Service) buildCapsule(ctx context.Context, id string) {
	cts, err := s.capsuleContainers(ctx, id)
	if err != nil {
		s.log.Error("loading a capsule's containers", "capsule", id, "err", err)
		return
	}
	initFailed := ""
	for i, ct := range cts {
		if ct.Task != taskCreate {
			if ct.CapsuleInit && initFailed == "" {
				// Made before a restart of the service: wait for its end.
				if initFailed, err = s.waitInit(ctx, ct.UUID); err != nil {
					return
				}
			}
			continue
		}
		if initFailed != "" {
			s.failCreate(ctx, ct.UUID, initFailed)
			continue
		}
		if i > 0 {
			first, err := s.loadContainer(ctx, s.db, cts[0].UUID)
			if err != nil || first.Status == stError || first.Task != "" {
				// Without the namespace's holder there is nothing to join.
				s.failCreate(ctx, ct.UUID, "The capsule's first container, whose network namespace this one joins, failed.")
				continue
			}
		}
		unlock := s.work.Lock(ct.UUID)
		s.build(ctx, ct.UUID)
		unlock()
		if ctx.Err() != nil {
			return // the next start resumes it
		}
		if ct.CapsuleInit {
			if initFailed, err = s.waitInit(ctx, ct.UUID); err != nil {
				return
			}
		}
	}
	s.db.ExecContext(ctx, `UPDATE container_capsules SET task=NULL, updated_at=? WHERE uuid=? AND task=?`, nowText(), id, taskCreate)
}

// waitInit waits until an init container has ended: "" when it exited 0,
// otherwise why the capsule's other containers will not be made (it
// failed, with no restart left). An error: the service is stopping.
func (s *Service) waitInit(ctx context.Context, id string) (string, error) {
	for {
		ct, err := s.loadContainer(ctx, s.db, id)
		if err == nil {
			// What its host says now, this container only.
			s.syncOne(ctx, ct)
			ct, err = s.loadContainer(ctx, s.db, id)
		}
		if err != nil {
			if api.IsNotFound(err) {
				return "An init container of the capsule was deleted.", nil
			}
			return "", err
		}
		if ct.Task == "" {
			switch {
			case ct.Status == stError:
				return fmt.Sprintf("The capsule's init container %s failed: %s", ct.Name, ct.StatusReason), nil
			case ct.Status == stStopped && ct.ExitCode != nil && *ct.ExitCode == 0:
				return "", nil
			case ct.Status == stStopped && ct.ExitCode != nil && !s.shouldRestart(ct, *ct.ExitCode):
				return fmt.Sprintf("The capsule's init container %s exited with code %d.", ct.Name, *ct.ExitCode), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DeleteCapsule deletes a capsule in the background: its containers
// (forced), then the capsule.
func (s *Service) DeleteCapsule(ctx context.Context, c *api.Credentials, ref string) error {
	cp, err := s.findCapsule(ctx, c, ref)
	if err != nil {
		return err
	}
	now := nowText()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE container_capsules SET task=?, updated_at=? WHERE uuid=?`, taskDelete, now, cp.UUID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE container_containers SET status=?, task=?, task_state='container_deleting',
			updated_at=? WHERE capsule_id=?`, stDeleting, taskDelete, now, cp.UUID)
		return err
	})
	if err != nil {
		return err
	}
	for _, ct := range cp.Containers {
		s.startAction(ctx, ct, "delete")
	}
	s.spawn("capsule/"+cp.UUID, func(ctx context.Context) { s.destroyCapsule(ctx, cp.UUID) })
	return nil
}

// destroyCapsule deletes a deleting capsule's containers, the first (the
// namespace's holder) last, then the capsule's record once none is left.
func (s *Service) destroyCapsule(ctx context.Context, id string) {
	cts, err := s.capsuleContainers(ctx, id)
	if err != nil {
		s.log.Error("loading a capsule's containers", "capsule", id, "err", err)
		return
	}
	for i := len(cts) - 1; i >= 0; i-- {
		if cts[i].Task != taskDelete {
			continue
		}
		unlock := s.work.Lock(cts[i].UUID)
		s.destroy(ctx, cts[i].UUID)
		unlock()
		if ctx.Err() != nil {
			return // the next start resumes it
		}
	}
	var left int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM container_containers WHERE capsule_id=?`, id).Scan(&left); err != nil {
		s.log.Error("counting a capsule's containers", "capsule", id, "err", err)
		return
	}
	if left > 0 {
		// A container's delete failed: it is Error (and so is the
		// capsule); another delete tries again.
		s.db.ExecContext(ctx, `UPDATE container_capsules SET task=NULL, updated_at=? WHERE uuid=?`, nowText(), id)
		return
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM container_capsules WHERE uuid=?`, id); err != nil {
		s.log.Error("deleting capsule record", "capsule", id, "err", err)
	}
}

// resumeCapsules resumes the capsules' work a previous run left.
func (s *Service) resumeCapsules(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT uuid, task FROM container_capsules WHERE task IS NOT NULL`)
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
			s.spawn("capsule/"+id, func(ctx context.Context) { s.buildCapsule(ctx, id) })
		case taskDelete:
			s.spawn("capsule/"+id, func(ctx context.Context) { s.destroyCapsule(ctx, id) })
		}
	}
	return rows.Err()
}

// inCapsule refuses what a capsule's container cannot do on its own.
func inCapsule(ct Container, action string) error {
	if ct.CapsuleID == "" {
		return nil
	}
	msg := "Cannot %s container %s: it belongs to capsule %s."
	if action == "delete" {
		msg += " Delete the capsule instead."
	}
	return api.Conflict(msg, action, ct.UUID, ct.CapsuleID).WithType("invalid-state-exception")
}

// capsuleView is a capsule as the API shows it: Zun's view from 1.32,
// the legacy one before (meta_name, meta_labels, restart_policy as a
// string), which gophercloud, sending no version, reads.
func (s *Service) capsuleView(r *http.Request, cp Capsule, legacy bool) map[string]any {
	c := api.CredentialsFrom(r.Context())
	status, reason := capsuleStatus(cp)
	containers, inits := []any{}, []any{}
	addresses := map[string]any{}
	for i, ct := range cp.Containers {
		view := s.containerView(r, ct, false)
		if i == 0 {
			addresses = view["addresses"].(map[string]any)
		}
		if ct.CapsuleInit {
			inits = append(inits, view)
		} else {
			containers = append(containers, view)
		}
	}
	var name any
	if cp.Name != "" {
		name = cp.Name
	}
	m := map[string]any{
		"uuid": cp.UUID, "links": links(r, "capsules", cp.UUID), "user_id": cp.UserID, "project_id": cp.ProjectID,
		"created_at": viewTime(cp.CreatedAt), "updated_at": viewTime(cp.UpdatedAt), "addresses": addresses,
		"status": status, "status_reason": nullable(reason), "annotations": cp.Annotations,
		"memory": strconv.FormatInt(cp.Memory, 10), "cpu": cp.CPU, "containers": containers, "init_containers": inits,
	}
	if legacy {
		m["meta_name"], m["meta_labels"], m["restart_policy"] = name, cp.Labels, cp.Restart.Name
		m["volumes_info"], m["containers_uuids"], m["init_containers_uuids"], m["capsule_version"] = map[string]any{}, []string{}, []string{}, ""
	} else {
		m["name"], m["labels"], m["restart_policy"] = name, cp.Labels, cp.Restart
	}
	if c != nil && c.CloudAdmin() {
		m["host"] = nullable(cp.Host)
	}
	return m
}
