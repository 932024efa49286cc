package container

import (
	"context"
	"encoding/base64"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

// The rest of the container actions: copying files in and out (appcontainer
// cp), rebuilding from an image, and plugging networks in and out.

// execInput is implemented by Hosts that can feed a process a standard
// input (put_archive).
type execInput interface {
	ExecInput(ctx context.Context, host, id string, args []string, stdin []byte) (runtime.ExecResult, error)
}

// archiveStates are the statuses get_archive and put_archive work in; the
// container must be running for the tar inside it to run.
var archiveStates = []string{stRunning}

// handleGetArchive answers a path of the container as a base64 tarball
// with its stat, made by the container's own tar (as docker cp reads
// through the container).
func (s *Service) handleGetArchive(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	p := r.URL.Query().Get("path")
	if !path.IsAbs(p) {
		return schemaError("Invalid input for query parameters 'path'. Value: '%s'. It must be an absolute path.", p)
	}
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	if !contains(archiveStates, ct.Status) {
		return invalidState(ct.UUID, "get_archive", ct.Status)
	}
	p = path.Clean(p)
	st, err := s.hosts.Exec(ctx, ct.Host, ct.UUID, []string{"stat", "-c", "%s|%f|%Y", p}, nil, "", "")
	if err != nil {
		return hostError(err, ct, "get_archive")
	}
	if st.ExitCode != 0 {
		return api.NotFound("Could not find the file %s in container %s.", p, ct.UUID).WithType("not-found")
	}
	f := strings.Split(strings.TrimSpace(string(st.Stdout)), "|")
	size, mode, mtime := int64(0), int64(0), int64(0)
	if len(f) == 3 {
		size, _ = strconv.ParseInt(f[0], 10, 64)
		mode, _ = strconv.ParseInt(f[1], 16, 64)
		mtime, _ = strconv.ParseInt(f[2], 10, 64)
	}
	dir, base := path.Split(p)
	if base == "" {
		dir, base = "/", "."
	}
	res, err := s.hosts.Exec(ctx, ct.Host, ct.UUID, []string{"tar", "-c", "-C", dir, base}, nil, "", "")
	if err != nil {
		return hostError(err, ct, "get_archive")
	}
	if res.ExitCode != 0 || res.Truncated {
		return api.Conflict("Reading %s failed: %s", p, strings.TrimSpace(string(res.Stderr))).WithType("conflict")
	}
	var data string
	if v.AtLeast(1, 25) {
		data = base64.StdEncoding.EncodeToString(res.Stdout)
	} else {
		data = string(res.Stdout)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "stat": map[string]any{
		"name": base, "size": size, "mode": mode & 0o7777, "mtime": time.Unix(mtime, 0).Format(time.RFC3339), "linkTarget": "",
	}})
	return nil
}

// handlePutArchive unpacks a base64 tarball at a path of the container.
func (s *Service) handlePutArchive(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	p := r.URL.Query().Get("path")
	var body struct {
		Data string `json:"data"`
	}
	if err := api.DecodeJSON(r, &body); err != nil {
		return err
	}
	if !path.IsAbs(p) {
		return schemaError("Invalid input for query parameters 'path'. Value: '%s'. It must be an absolute path.", p)
	}
	tarball := []byte(body.Data)
	if v.AtLeast(1, 25) {
		var err error
		if tarball, err = base64.StdEncoding.DecodeString(body.Data); err != nil {
			return schemaError("Invalid input for field 'data': it is not base64.")
		}
	}
	ct, err := s.find(ctx, api.CredentialsFrom(ctx), r.PathValue("c"))
	if err != nil {
		return err
	}
	if !contains(archiveStates, ct.Status) {
		return invalidState(ct.UUID, "put_archive", ct.Status)
	}
	ei, ok := s.hosts.(execInput)
	if !ok {
		return api.Conflict("Files cannot be copied into containers on this cloud.")
	}
	s.startAction(ctx, ct, "put_archive")
	res, err := ei.ExecInput(ctx, ct.Host, ct.UUID, []string{"tar", "-x", "-C", path.Clean(p)}, tarball)
	if err == nil && res.ExitCode != 0 {
		err = api.BadRequest("Unpacking into %s failed: %s", p, strings.TrimSpace(string(res.Stderr))).WithType("invalid-value")
	}
	s.finishAction(ctx, ct.UUID, err, "put_archive")
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, nil)
	return nil
}

// handleRebuild makes the container again from its image (or a new one),
// keeping its name, ports and volumes: the root filesystem is fresh.
func (s *Service) handleRebuild(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	ct, err := s.find(ctx, c, r.PathValue("c"))
	if err != nil {
		return err
	}
	if err := inCapsule(ct, "rebuild"); err != nil {
		return err
	}
	if ct.TaskState != "" || !contains([]string{stCreated, stRunning, stStopped, stError}, ct.Status) {
		return invalidState(ct.UUID, "rebuild", ct.Status)
	}
	imageRef, imageID := ct.Image, ct.ImageID
	if ref := r.URL.Query().Get("image"); ref != "" {
		img, err := s.images.Find(ctx, c, ref)
		if api.IsNotFound(err) {
			return api.NotFound("Image %s could not be found.", ref).WithType("image-not-found")
		}
		if err != nil {
			return err
		}
		imageRef, imageID = ref, img.ID
	}
	wasRunning := ct.Status == stRunning
	res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status='Rebuilding', task_state='container_rebuilding',
		image=?, image_id=?, updated_at=? WHERE uuid=? AND (task_state IS NULL OR task_state='') AND task IS NULL`,
		imageRef, imageID, nowText(), ct.UUID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return invalidState(ct.UUID, "rebuild", ct.Status)
	}
	s.startAction(ctx, ct, "rebuild")
	s.spawn(ct.UUID, func(ctx context.Context) { s.rebuild(ctx, ct.UUID, wasRunning) })
	api.WriteJSON(w, http.StatusAccepted, nil)
	return nil
}

func (s *Service) rebuild(ctx context.Context, id string, run bool) {
	ct, err := s.loadContainer(ctx, s.db, id)
	if err != nil || ct.TaskState != "container_rebuilding" {
		return
	}
	_, err = s.hosts.Action(ctx, ct.Host, id, "delete", 0, 0)
	var mounts []VolumeMount
	if err == nil {
		mounts, err = s.prepareMounts(ctx, ct)
	}
	if err == nil {
		_, err = s.hosts.Ensure(ctx, ct.Host, s.spec(ct), false, mounts)
	}
	if err == nil {
		for _, p := range ct.Ports {
			if err = s.networks.BindPort(ctx, p.PortID, ct.Host, ct.UUID); err != nil {
				break
			}
		}
		s.waitPorts(ctx, ct.Ports)
	}
	if err == nil && run {
		_, err = s.hosts.Ensure(ctx, ct.Host, s.spec(ct), true, mounts)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("container rebuild failed", "container", id, "err", err)
		// Unless a delete (force) took the container over meanwhile.
		if res, err2 := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, status_reason=?, task_state=NULL,
			updated_at=? WHERE uuid=? AND task IS NULL`, stError, "Rebuilding the container failed: "+err.Error(), nowText(), id); err2 == nil {
			if n, _ := res.RowsAffected(); n > 0 {
				s.finishAction(ctx, id, err, "rebuild")
			}
		}
		return
	}
	status, started := stCreated, any(nil)
	if run {
		status, started = stRunning, nowText()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE container_containers SET status=?, status_reason=NULL, task_state=NULL, exit_code=NULL,
		user_stopped=0, started_at=coalesce(?, started_at), updated_at=? WHERE uuid=? AND task IS NULL`, status, started, nowText(), id)
	if err != nil {
		return
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.finishAction(ctx, id, nil, "rebuild")
	}
}

// handleNetworkAttach plugs another port (on a network, or a given port)
// into a container: it appears as the next ethN.
func (s *Service) handleNetworkAttach(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	q := r.URL.Query()
	netRef, portID, fixedIP := q.Get("network"), q.Get("port"), q.Get("fixed_ip")
	if (netRef == "") == (portID == "") {
		return api.BadRequest("Either network or port should be provided.").WithType("invalid-value")
	}
	ct, err := s.find(ctx, c, r.PathValue("c"))
	if err != nil {
		return err
	}
	if err := inCapsule(ct, "network_attach"); err != nil {
		return err
	}
	if ct.TaskState != "" || !contains([]string{stCreated, stRunning, stStopped, stPaused}, ct.Status) {
		return invalidState(ct.UUID, "network_attach", ct.Status)
	}
	nr := NetRequest{Port: portID, FixedIP: fixedIP}
	if netRef != "" {
		if nr.Network, err = s.networks.Resolve(ctx, c, netRef); err != nil {
			return err
		}
		for _, p := range ct.Ports {
			if p.NetworkID == nr.Network {
				return api.BadRequest("Container %s is already connected to network %s.", ct.UUID, netRef).WithType("invalid-value")
			}
		}
	}
	s.startAction(ctx, ct, "network_attach")
	err = s.attachPort(ctx, ct, nr)
	s.finishAction(ctx, ct.UUID, err, "network_attach")
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, nil)
	return nil
}

func (s *Service) attachPort(ctx context.Context, ct Container, nr NetRequest) error {
	defer s.work.Lock(ct.UUID)()
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
	var pos int
	s.db.QueryRowContext(ctx, `SELECT coalesce(max(position), -1)+1 FROM container_ports WHERE container_uuid=?`, ct.UUID).Scan(&pos)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO container_ports(container_uuid, position, port_id, network_id, owned, addresses, mac)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, ct.UUID, pos, cp.PortID, cp.NetworkID, cp.Owned, jsonText(cp.Addresses), cp.MAC); err != nil {
		if owned {
			s.networks.DeletePort(context.WithoutCancel(ctx), p.ID)
		}
		return err
	}
	if err := s.networks.BindPort(ctx, cp.PortID, ct.Host, ct.UUID); err != nil {
		return err
	}
	s.waitPorts(ctx, []containerPort{cp})
	return nil
}

// handleNetworkDetach unplugs a container's port on a network (or a given
// port); a port made for it is deleted.
func (s *Service) handleNetworkDetach(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	q := r.URL.Query()
	netRef, portID := q.Get("network"), q.Get("port")
	if (netRef == "") == (portID == "") {
		return api.BadRequest("Either network or port should be provided.").WithType("invalid-value")
	}
	ct, err := s.find(ctx, c, r.PathValue("c"))
	if err != nil {
		return err
	}
	if err := inCapsule(ct, "network_detach"); err != nil {
		return err
	}
	if ct.TaskState != "" || !contains([]string{stCreated, stRunning, stStopped, stPaused}, ct.Status) {
		return invalidState(ct.UUID, "network_detach", ct.Status)
	}
	var netID string
	if netRef != "" {
		if netID, err = s.networks.Resolve(ctx, c, netRef); err != nil {
			return err
		}
	}
	var target *containerPort
	for i, p := range ct.Ports {
		if p.PortID == portID || (netID != "" && p.NetworkID == netID) {
			target = &ct.Ports[i]
			break
		}
	}
	if target == nil {
		return api.BadRequest("Container %s is not connected to %s%s.", ct.UUID, netRef, portID).WithType("invalid-value")
	}
	s.startAction(ctx, ct, "network_detach")
	if target.Owned {
		err = s.networks.DeletePort(ctx, target.PortID)
	} else {
		err = s.networks.BindPort(ctx, target.PortID, "", "")
	}
	if err == nil || api.IsNotFound(err) {
		_, err = s.db.ExecContext(ctx, `DELETE FROM container_ports WHERE container_uuid=? AND port_id=?`, ct.UUID, target.PortID)
	}
	s.finishAction(ctx, ct.UUID, err, "network_detach")
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusAccepted, nil)
	return nil
}
