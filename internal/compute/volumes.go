package compute

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Volumes is what compute needs of the Block Storage service to attach
// volumes to servers: Cinder's attachment calls.
type Volumes interface {
	// Reserve makes the attachment attachmentID of the volume to the
	// server (the volume goes to attaching) if the caller may use the
	// volume; a 404 or a 400 explains why not. Reserving an attachment
	// that exists returns it.
	Reserve(ctx context.Context, c *api.Credentials, volumeID, serverID, attachmentID string) (VolumeConnection, error)
	// Attached records the attachment as done, at device on host.
	Attached(ctx context.Context, attachmentID, host, device string) error
	// Unreserve drops an attachment that did not come to be.
	Unreserve(ctx context.Context, attachmentID string) error
	BeginDetach(ctx context.Context, attachmentID string) error
	RollDetach(ctx context.Context, attachmentID string) error
	// Detached ends an attachment: the volume is free again.
	Detached(ctx context.Context, attachmentID string) error
	// DeleteOnTermination deletes a volume whose server went away.
	DeleteOnTermination(ctx context.Context, volumeID string) error
}

// VolumeConnection is how the server's host reaches a volume.
type VolumeConnection struct {
	AttachmentID string
	// Block names the volume's bytes in the host's block store.
	Block    string
	ReadOnly bool
}

// HostVolume is a volume a host gives a server, as a device node.
type HostVolume struct {
	Block    string `json:"block"`
	Device   string `json:"device"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// VolumeHosts is implemented by Hosts that attach volumes.
type VolumeHosts interface {
	// SetVolumes makes the server's volumes on host exactly attach (each at
	// its device) and releases the host's hold on the detach ones. A
	// server that is gone from the host is not an error.
	SetVolumes(ctx context.Context, host, serverID string, attach []HostVolume, detach []string) error
}

// SetVolumes gives compute the Block Storage service; without one,
// os-volume_attachments answers that volumes are not available.
func (s *Service) SetVolumes(v Volumes) { s.volumes = v }

// serverVolume is a row of compute_volume_attachments.
type serverVolume struct {
	ID, ServerID, VolumeID, AttachmentID string
	Device, Block, Tag, Status           string
	ReadOnly, DeleteOnTermination        bool
}

const serverVolumeCols = `id, server_id, volume_id, attachment_id, device, block, coalesce(tag, ''), status, read_only, delete_on_termination`

func scanServerVolume(row interface{ Scan(...any) error }) (serverVolume, error) {
	var sv serverVolume
	err := row.Scan(&sv.ID, &sv.ServerID, &sv.VolumeID, &sv.AttachmentID, &sv.Device, &sv.Block, &sv.Tag, &sv.Status,
		&sv.ReadOnly, &sv.DeleteOnTermination)
	return sv, err
}

func (s *Service) serverVolumes(ctx context.Context, q queryer, serverID string) ([]serverVolume, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+serverVolumeCols+` FROM compute_volume_attachments WHERE server_id=? ORDER BY device`, serverID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []serverVolume
	for rows.Next() {
		v, err := scanServerVolume(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// devicePattern is the device names a client may ask for: Nova's sdX, vdX,
// xvdX and hdX (vda is the root); each is given as the vdX of its letter.
var devicePattern = regexp.MustCompile(`^/dev/(s|v|xv|h)d[b-z]$`)

// nextDevice is the first free /dev/vdX (vda is the root) of a server.
func nextDevice(used []serverVolume) (string, error) {
	taken := map[string]bool{}
	for _, u := range used {
		taken[u.Device] = true
	}
	for c := 'b'; c <= 'z'; c++ {
		if d := "/dev/vd" + string(c); !taken[d] {
			return d, nil
		}
	}
	return "", api.Conflict("The server has no free device name for another volume.")
}

// attachable are the vm_states a volume may be attached in.
var attachable = []string{vmActive, vmPaused, vmStopped, vmSuspended}

type volumeAttachmentBody struct {
	VolumeAttachment *struct {
		VolumeID            string  `json:"volumeId"`
		Device              *string `json:"device"`
		Tag                 *string `json:"tag"`
		DeleteOnTermination *bool   `json:"delete_on_termination"`
	} `json:"volumeAttachment"`
}

func (s *Service) handleAttachVolume(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	var b volumeAttachmentBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.VolumeAttachment == nil || b.VolumeAttachment.VolumeID == "" {
		return api.BadRequest("Invalid input for field/attribute volumeAttachment. 'volumeId' is a required property")
	}
	ba := b.VolumeAttachment
	if ba.Tag != nil && !v.AtLeast(2, 49) {
		return api.BadRequest("Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('tag' was unexpected)")
	}
	if ba.DeleteOnTermination != nil && !v.AtLeast(2, 79) {
		return api.BadRequest("Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('delete_on_termination' was unexpected)")
	}
	if ba.Device != nil && *ba.Device != "" && !devicePattern.MatchString(*ba.Device) {
		return api.BadRequest("The supplied device path (%s) is invalid.", *ba.Device)
	}
	if s.volumes == nil {
		return api.Errorf(http.StatusConflict, "Block storage is not available in this cloud.")
	}
	sv, err := s.getServer(ctx, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := canAttach(c, sv); err != nil {
		return err
	}
	unlock := s.lockServer(sv.ID)
	defer unlock()
	// A worker had the server while this request waited (a delete that
	// already released its volumes, say): check it again.
	if sv, err = s.getServer(ctx, c, sv.ID); err != nil {
		return err
	}
	if err := canAttach(c, sv); err != nil {
		return err
	}
	have, err := s.serverVolumes(ctx, s.db, sv.ID)
	if err != nil {
		return err
	}
	for _, h := range have {
		if h.VolumeID == ba.VolumeID {
			return api.BadRequest("Invalid volume: volume %s already attached to server %s.", ba.VolumeID, sv.ID)
		}
	}
	device, err := nextDevice(have)
	if err != nil {
		return err
	}
	if ba.Device != nil && *ba.Device != "" {
		want := "/dev/vd" + (*ba.Device)[len(*ba.Device)-1:]
		free := true
		for _, h := range have {
			free = free && h.Device != want
		}
		if free {
			device = want
		}
	}
	// The row is recorded first ("reserving"), then the volume reserved
	// under the row's attachment id: a crash in between leaves a row that
	// Start rolls back, never a reservation nobody knows of.
	row := serverVolume{ID: newUUID(), ServerID: sv.ID, VolumeID: ba.VolumeID, AttachmentID: newUUID(), Device: device, Status: "reserving"}
	if ba.Tag != nil {
		row.Tag = *ba.Tag
	}
	if ba.DeleteOnTermination != nil {
		row.DeleteOnTermination = *ba.DeleteOnTermination
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO compute_volume_attachments(id, server_id, volume_id, attachment_id, device, block,
		read_only, tag, delete_on_termination, status, created_at) VALUES (?, ?, ?, ?, ?, '', 0, ?, ?, ?, ?)`,
		row.ID, row.ServerID, row.VolumeID, row.AttachmentID, row.Device, nilIfEmpty(row.Tag), row.DeleteOnTermination, row.Status, nowText())
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return api.Conflict("Volume %s is being attached to server %s already.", ba.VolumeID, sv.ID)
	}
	if err != nil {
		return err
	}
	conn, err := s.volumes.Reserve(ctx, c, ba.VolumeID, sv.ID, row.AttachmentID)
	if err == nil {
		row.Block, row.ReadOnly, row.Status = conn.Block, conn.ReadOnly, "attaching"
		_, err = s.db.ExecContext(ctx, `UPDATE compute_volume_attachments SET block=?, read_only=?, status=? WHERE id=?`,
			row.Block, row.ReadOnly, row.Status, row.ID)
		if err != nil {
			s.volumes.Unreserve(context.WithoutCancel(ctx), row.AttachmentID)
		}
	}
	if err != nil {
		s.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM compute_volume_attachments WHERE id=?`, row.ID)
		if api.IsNotFound(err) {
			return api.NotFound("Volume %s could not be found.", ba.VolumeID)
		}
		return err
	}
	if err := s.startAction(ctx, r, sv, "attach_volume"); err != nil {
		s.log.Warn("recording instance action", "server", sv.ID, "err", err)
	}
	s.spawn(sv.ID, func(ctx context.Context) { s.attachVolume(ctx, row.ServerID, row.VolumeID) })
	api.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": volumeAttachmentView(row, v)})
	return nil
}

// canAttach refuses an attach to a locked or busy server, or one in a
// vm_state volumes may not be attached in.
func canAttach(c *api.Credentials, sv Server) error {
	if sv.Locked && !isAdmin(c) {
		return api.Conflict("Instance %s is locked", sv.ID)
	}
	if sv.TaskState != "" {
		return api.Conflict("Cannot 'attach_volume' instance %s while it is in task_state %s", sv.ID, sv.TaskState)
	}
	if !contains(attachable, sv.VMState) {
		return api.Conflict("Cannot 'attach_volume' instance %s while it is in vm_state %s", sv.ID, sv.VMState)
	}
	return nil
}

func volumeAttachmentView(a serverVolume, v api.Version) map[string]any {
	m := map[string]any{"device": a.Device, "serverId": a.ServerID, "volumeId": a.VolumeID}
	if !v.AtLeast(2, 89) {
		m["id"] = a.VolumeID
	}
	if v.AtLeast(2, 70) {
		m["tag"] = nilIfEmpty(a.Tag)
	}
	if v.AtLeast(2, 79) {
		m["delete_on_termination"] = a.DeleteOnTermination
	}
	if v.AtLeast(2, 89) {
		m["attachment_id"] = a.AttachmentID
		m["bdm_uuid"] = a.ID
	}
	return m
}

// hostVolumes are the volumes a server's host should give it as devices:
// not its root volume, which is its root filesystem (see rootVolume).
func hostVolumes(rows []serverVolume, except string) []HostVolume {
	var out []HostVolume
	for _, r := range rows {
		if r.VolumeID != except && r.Device != rootDevice && (r.Status == "attaching" || r.Status == "attached") {
			out = append(out, HostVolume{Block: r.Block, Device: r.Device, ReadOnly: r.ReadOnly})
		}
	}
	return out
}

func (s *Service) setVolumes(ctx context.Context, host, serverID string, attach []HostVolume, detach []string) error {
	vh, ok := s.hosts.(VolumeHosts)
	if !ok {
		return fmt.Errorf("the hosts of this cloud do not attach volumes")
	}
	if host == "" {
		return errNoHost
	}
	return vh.SetVolumes(ctx, host, serverID, attach, detach)
}

// attachVolume has the server's host attach an attaching volume, then
// tells Block Storage; a failure gives the volume back.
func (s *Service) attachVolume(ctx context.Context, serverID, volumeID string) {
	row, err := scanServerVolume(s.db.QueryRowContext(ctx, `SELECT `+serverVolumeCols+` FROM compute_volume_attachments
		WHERE server_id=? AND volume_id=?`, serverID, volumeID))
	if err != nil || row.Status != "attaching" {
		return
	}
	sv, err := s.loadServer(ctx, s.db, serverID)
	if api.IsNotFound(err) {
		// Reserved for a server whose create did not get to record it.
		s.unreserveRows(ctx, []serverVolume{row})
		return
	}
	if err != nil || sv.Deleted || sv.VMState == vmBuilding {
		return // a building server's build attaches its volumes
	}
	all, err := s.serverVolumes(ctx, s.db, serverID)
	if err == nil {
		err = s.setVolumes(ctx, sv.Host, serverID, hostVolumes(all, ""), nil)
	}
	if err == nil {
		err = s.volumes.Attached(ctx, row.AttachmentID, sv.Host, row.Device)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("attaching a volume failed", "server", serverID, "volume", volumeID, "err", err)
		s.setVolumes(ctx, sv.Host, serverID, hostVolumes(all, volumeID), s.releasable(ctx, serverID, row))
		s.volumes.Unreserve(ctx, row.AttachmentID)
		s.db.ExecContext(ctx, `DELETE FROM compute_volume_attachments WHERE id=?`, row.ID)
		s.finishAction(ctx, serverID, "attach_volume", err)
		return
	}
	s.db.ExecContext(ctx, `UPDATE compute_volume_attachments SET status='attached' WHERE id=?`, row.ID)
	s.finishAction(ctx, serverID, "attach_volume", nil)
}

func (s *Service) handleListVolumeAttachments(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	sv, err := s.getServer(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return err
	}
	rows, err := s.serverVolumes(ctx, s.db, sv.ID)
	if err != nil {
		return err
	}
	page, err := api.ParsePage(r, 0, 1000)
	if err != nil {
		return err
	}
	if off := r.URL.Query().Get("offset"); off != "" {
		var n int
		if _, err := fmt.Sscan(off, &n); err != nil || n < 0 {
			return api.BadRequest("offset must be a non-negative integer, not %q.", off)
		}
		rows = rows[min(n, len(rows)):]
	}
	if page.Limit > 0 && len(rows) > page.Limit {
		rows = rows[:page.Limit]
	}
	out := []any{}
	for _, row := range rows {
		out = append(out, volumeAttachmentView(row, v))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachments": out})
	return nil
}

func (s *Service) findVolumeAttachment(r *http.Request) (Server, serverVolume, error) {
	ctx := r.Context()
	sv, err := s.getServer(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return sv, serverVolume{}, err
	}
	vid := r.PathValue("volume")
	row, err := scanServerVolume(s.db.QueryRowContext(ctx, `SELECT `+serverVolumeCols+` FROM compute_volume_attachments
		WHERE server_id=? AND volume_id=?`, sv.ID, vid))
	if errors.Is(err, sql.ErrNoRows) {
		return sv, row, api.NotFound("Volume %s is not attached to %s", vid, sv.ID)
	}
	return sv, row, err
}

func (s *Service) handleShowVolumeAttachment(w http.ResponseWriter, r *http.Request, v api.Version) error {
	_, row, err := s.findVolumeAttachment(r)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": volumeAttachmentView(row, v)})
	return nil
}

func (s *Service) handleDetachVolume(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	sv, row, err := s.findVolumeAttachment(r)
	if err != nil {
		return err
	}
	if row.Status == "attaching" && s.waitServer(ctx, sv.ID, 5*time.Second) {
		// An attach was still in flight (the volume may already have
		// shown in-use): its worker held the server's lock. Look again.
		if sv, row, err = s.findVolumeAttachment(r); err != nil {
			return err
		}
	}
	if row.Device == rootDevice {
		return api.Forbidden("Can't detach root device volume")
	}
	if sv.Locked && !isAdmin(c) {
		return api.Conflict("Instance %s is locked", sv.ID)
	}
	if sv.TaskState != "" {
		return api.Conflict("Cannot 'detach_volume' instance %s while it is in task_state %s", sv.ID, sv.TaskState)
	}
	if !contains(attachable, sv.VMState) {
		return api.Conflict("Cannot 'detach_volume' instance %s while it is in vm_state %s", sv.ID, sv.VMState)
	}
	if row.Status != "attached" {
		return api.BadRequest("Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
	}
	// The row first, then the volume: a crash in between leaves a row
	// that Start finishes detaching.
	res, err := s.db.ExecContext(ctx, `UPDATE compute_volume_attachments SET status='detaching' WHERE id=? AND status='attached'`, row.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Conflict("Volume %s is being detached from %s already.", row.VolumeID, sv.ID)
	}
	if err := s.volumes.BeginDetach(ctx, row.AttachmentID); err != nil {
		s.db.ExecContext(context.WithoutCancel(ctx), `UPDATE compute_volume_attachments SET status='attached' WHERE id=?`, row.ID)
		return err
	}
	if err := s.startAction(ctx, r, sv, "detach_volume"); err != nil {
		s.log.Warn("recording instance action", "server", sv.ID, "err", err)
	}
	s.spawn(sv.ID, func(ctx context.Context) { s.detachVolume(ctx, row.ServerID, row.VolumeID) })
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// detachVolume has the host remove a detaching volume, then frees it in
// Block Storage; a host failure leaves it attached, a Block Storage one
// detaching (Start finishes it).
func (s *Service) detachVolume(ctx context.Context, serverID, volumeID string) {
	row, err := scanServerVolume(s.db.QueryRowContext(ctx, `SELECT `+serverVolumeCols+` FROM compute_volume_attachments
		WHERE server_id=? AND volume_id=?`, serverID, volumeID))
	if err != nil || row.Status != "detaching" {
		return
	}
	sv, err := s.loadServer(ctx, s.db, serverID)
	if err != nil {
		return
	}
	all, err := s.serverVolumes(ctx, s.db, serverID)
	if err == nil {
		err = s.setVolumes(ctx, sv.Host, serverID, hostVolumes(all, volumeID), s.releasable(ctx, serverID, row))
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("detaching a volume failed", "server", serverID, "volume", volumeID, "err", err)
		s.db.ExecContext(ctx, `UPDATE compute_volume_attachments SET status='attached' WHERE id=?`, row.ID)
		s.volumes.RollDetach(ctx, row.AttachmentID)
		s.finishAction(ctx, serverID, "detach_volume", err)
		return
	}
	if err := s.volumes.Detached(ctx, row.AttachmentID); err != nil && !api.IsNotFound(err) {
		if ctx.Err() != nil {
			return
		}
		// The host let go but Block Storage still holds the volume: the row
		// stays detaching for the next Start (or the server's delete) to
		// finish, rather than leaving a volume nobody will free.
		s.log.Warn("recording a detach failed", "server", serverID, "volume", volumeID, "err", err)
		s.finishAction(ctx, serverID, "detach_volume", err)
		return
	}
	s.db.ExecContext(ctx, `DELETE FROM compute_volume_attachments WHERE id=?`, row.ID)
	s.finishAction(ctx, serverID, "detach_volume", nil)
}

// releaseVolumes frees the volumes of a server being deleted (after its
// host removed it): the host's hold on them, their attachments, and the
// volumes marked delete_on_termination.
func (s *Service) releaseVolumes(ctx context.Context, sv Server) error {
	rows, err := s.serverVolumes(ctx, s.db, sv.ID)
	if err != nil || len(rows) == 0 {
		return err
	}
	var blocks []string
	for _, r := range rows {
		blocks = append(blocks, s.releasable(ctx, sv.ID, r)...)
	}
	if sv.Host != "" {
		if err := s.setVolumes(ctx, sv.Host, sv.ID, nil, blocks); err != nil {
			return fmt.Errorf("detaching volumes: %w", err)
		}
	}
	var errs []error
	for _, r := range rows {
		if s.volumes != nil {
			if err := s.volumes.Detached(ctx, r.AttachmentID); err != nil {
				errs = append(errs, err)
				continue
			}
			if r.DeleteOnTermination {
				if err := s.volumes.DeleteOnTermination(ctx, r.VolumeID); err != nil {
					s.log.Warn("deleting a volume on termination", "volume", r.VolumeID, "err", err)
				}
			}
		}
		s.db.ExecContext(ctx, `DELETE FROM compute_volume_attachments WHERE id=?`, r.ID)
	}
	return errors.Join(errs...)
}

// replugVolumes gives a server its attached volumes again after its host
// made it anew (a rebuild).
func (s *Service) replugVolumes(ctx context.Context, sv Server) error {
	rows, err := s.serverVolumes(ctx, s.db, sv.ID)
	if err != nil || len(rows) == 0 {
		return err
	}
	return s.setVolumes(ctx, sv.Host, sv.ID, hostVolumes(rows, ""), nil)
}

// resumeVolumes finishes attaches and detaches a restart interrupted.
func (s *Service) resumeVolumes(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, server_id, volume_id, attachment_id, status FROM compute_volume_attachments
		WHERE status IN ('reserving', 'attaching', 'detaching')`)
	if err != nil {
		return err
	}
	type pending struct{ id, server, volume, attachment, status string }
	var todo []pending
	for rows.Next() {
		var p pending
		rows.Scan(&p.id, &p.server, &p.volume, &p.attachment, &p.status)
		todo = append(todo, p)
	}
	rows.Close()
	for _, p := range todo {
		if s.volumes == nil {
			continue
		}
		switch p.status {
		case "reserving":
			// An attach whose request never got its answer: undone.
			if err := s.volumes.Unreserve(ctx, p.attachment); err != nil {
				s.log.Warn("rolling back an interrupted attach", "server", p.server, "volume", p.volume, "err", err)
				continue
			}
			s.db.ExecContext(ctx, `DELETE FROM compute_volume_attachments WHERE id=?`, p.id)
		case "attaching":
			s.spawn(p.server, func(ctx context.Context) { s.attachVolume(ctx, p.server, p.volume) })
		default:
			s.spawn(p.server, func(ctx context.Context) { s.detachVolume(ctx, p.server, p.volume) })
		}
	}
	return nil
}

// volumesAttachedView is a server's os-extended-volumes:volumes_attached.
func volumesAttachedView(rows []serverVolume, v api.Version) []any {
	out := []any{}
	for _, r := range rows {
		m := map[string]any{"id": r.VolumeID}
		if v.AtLeast(2, 3) {
			m["delete_on_termination"] = r.DeleteOnTermination
		}
		out = append(out, m)
	}
	return out
}

// waitServer waits, at most d, until no worker holds the server's lock;
// it reports whether that happened.
func (s *Service) waitServer(ctx context.Context, id string, d time.Duration) bool {
	got := make(chan struct{})
	go func() {
		s.lockServer(id)()
		close(got)
	}()
	select {
	case <-got:
		return true
	case <-time.After(d):
	case <-ctx.Done():
	}
	return false
}

// releasable is the block a server's host may let go of when the server
// gives the volume up: none while another server still has the volume
// attached (a multiattach volume shares one block device on the host).
func (s *Service) releasable(ctx context.Context, serverID string, row serverVolume) []string {
	var others int
	s.db.QueryRowContext(ctx, `SELECT count(*) FROM compute_volume_attachments WHERE volume_id=? AND server_id<>?`,
		row.VolumeID, serverID).Scan(&others)
	if others > 0 || row.Block == "" {
		return nil
	}
	return []string{row.Block}
}
