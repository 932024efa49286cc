package volume

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// Attachment statuses (attach_status).
const (
	attReserved  = "reserved"
	attAttaching = "attaching"
	attAttached  = "attached"
	attDetaching = "detaching"
)

const attachmentCols = `id, volume_id, project_id, server_id, coalesce(host, ''), coalesce(device, ''), mode, status,
	coalesce(connector, ''), created_at, coalesce(attached_at, ''), coalesce(updated_at, '')`

func scanAttachment(row interface{ Scan(...any) error }) (Attachment, error) {
	var a Attachment
	var conn string
	err := row.Scan(&a.ID, &a.VolumeID, &a.ProjectID, &a.ServerID, &a.Host, &a.Device, &a.Mode, &a.Status, &conn,
		&a.CreatedAt, &a.AttachedAt, &a.UpdatedAt)
	if conn != "" {
		json.Unmarshal([]byte(conn), &a.Connector)
	}
	return a, err
}

func (s *Service) attachmentsOf(ctx context.Context, q queryer, volumeID string) ([]Attachment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+attachmentCols+` FROM volume_attachments WHERE volume_id=? ORDER BY created_at`, volumeID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		a, err := scanAttachment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func attachmentNotFound(id string) error {
	return api.NotFound("Volume attachment could not be found with filter: attachment_id = %s.", id)
}

func (s *Service) loadAttachment(ctx context.Context, q queryer, id string) (Attachment, error) {
	a, err := scanAttachment(q.QueryRowContext(ctx, `SELECT `+attachmentCols+` FROM volume_attachments WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, attachmentNotFound(id)
	}
	return a, err
}

// Connection is how a host reaches an attached volume (Cinder's
// connection_info): the attachment made for the server and the name of
// the volume's bytes in the host's block store.
type Connection struct {
	AttachmentID string
	VolumeID     string
	Block        string
	ReadOnly     bool
}

// Reserve makes an attachment of a volume to a server, the volume going
// to attaching: the first step of Nova's attach. It refuses a volume that
// is not available (or in-use and multiattach) or already attached to the
// server.
//
// The caller names the attachment (attachmentID, "" for a new id), so that
// a Reserve repeated after a crash finds the one it made.
func (s *Service) Reserve(ctx context.Context, c *api.Credentials, volumeID, serverID, attachmentID string) (Connection, error) {
	// An empty connector, as os-reserve: the volume goes to attaching (a
	// nil one is the attachments API's reserved, waiting for a connector).
	return s.reserve(ctx, c, volumeID, serverID, map[string]any{}, "rw", attachmentID)
}

func (s *Service) reserve(ctx context.Context, c *api.Credentials, volumeID, serverID string, connector map[string]any, mode, attachmentID string) (Connection, error) {
	var conn Connection
	if attachmentID == "" {
		attachmentID = newUUID()
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if a, err := s.loadAttachment(ctx, tx, attachmentID); err == nil {
			if !visible(c, a.ProjectID) {
				return volumeNotFound(volumeID)
			}
			if a.VolumeID != volumeID || a.ServerID != serverID {
				return api.Conflict("Attachment %s exists for another volume or server.", attachmentID)
			}
			conn = Connection{AttachmentID: a.ID, VolumeID: volumeID, Block: volumeBlock(volumeID), ReadOnly: a.Mode == "ro"}
			return nil
		}
		v, err := s.loadVolume(ctx, tx, volumeID)
		if err != nil {
			return err
		}
		if !visible(c, v.ProjectID) {
			return volumeNotFound(volumeID)
		}
		for _, a := range v.Attachments {
			if a.ServerID == serverID {
				return api.BadRequest("Invalid volume: volume %s already attached to server %s.", volumeID, serverID)
			}
		}
		if !(v.Status == stAvailable || v.Status == stReserved || (v.Multiattach && v.Status == stInUse)) || (v.Status == stReserved && !v.Multiattach) {
			return api.BadRequest("Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", volumeID, v.Status)
		}
		if v.ReadOnly {
			mode = "ro"
		}
		status, volStatus := attAttaching, stAttaching
		if connector == nil {
			status, volStatus = attReserved, stReserved
		}
		if v.Status == stInUse {
			volStatus = stInUse
		}
		now := nowText()
		conn = Connection{AttachmentID: attachmentID, VolumeID: volumeID, Block: volumeBlock(volumeID), ReadOnly: mode == "ro"}
		var connText any
		if connector != nil {
			connText = jsonText(connector)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_attachments(id, volume_id, project_id, server_id, mode, status, connector,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, conn.AttachmentID, volumeID, v.ProjectID, serverID, mode, status,
			connText, now, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, updated_at=? WHERE id=?`, volStatus, now, volumeID)
		return err
	})
	return conn, err
}

// Attached records that the host attached the volume at device: the
// attachment is attached and the volume in-use.
func (s *Service) Attached(ctx context.Context, attachmentID, host, device string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := s.loadAttachment(ctx, tx, attachmentID)
		if err != nil {
			return err
		}
		now := nowText()
		if _, err := tx.ExecContext(ctx, `UPDATE volume_attachments SET status=?, host=?, device=?, attached_at=coalesce(attached_at, ?), updated_at=?
			WHERE id=?`, attAttached, host, device, now, now, attachmentID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, updated_at=? WHERE id=?`, stInUse, now, a.VolumeID)
		return err
	})
}

// Unreserve drops an attachment that did not come to be (or ends one that
// was detached): the volume is available again, or stays in-use when
// other attachments remain. A missing attachment is not an error.
func (s *Service) Unreserve(ctx context.Context, attachmentID string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := s.loadAttachment(ctx, tx, attachmentID)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM volume_attachments WHERE id=?`, attachmentID); err != nil {
			return err
		}
		return s.settleStatus(ctx, tx, a.VolumeID)
	})
}

// Detached is Unreserve by another name: the host removed the volume.
func (s *Service) Detached(ctx context.Context, attachmentID string) error {
	return s.Unreserve(ctx, attachmentID)
}

// settleStatus sets an attaching or detaching volume's status from its
// remaining attachments.
func (s *Service) settleStatus(ctx context.Context, tx queryer, volumeID string) error {
	var attached, other int
	tx.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE status IN (?, ?)), count(*) FILTER (WHERE status NOT IN (?, ?))
		FROM volume_attachments WHERE volume_id=?`, attAttached, attDetaching, attAttached, attDetaching, volumeID).Scan(&attached, &other)
	st := stAvailable
	switch {
	case attached > 0:
		st = stInUse
	case other > 0:
		st = stReserved
	}
	_, err := tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, updated_at=? WHERE id=? AND status IN (?, ?, ?, ?, ?)`,
		st, nowText(), volumeID, stAttaching, stDetaching, stInUse, stReserved, stAvailable)
	return err
}

// BeginDetach moves an attached volume to detaching.
func (s *Service) BeginDetach(ctx context.Context, attachmentID string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := s.loadAttachment(ctx, tx, attachmentID)
		if err != nil {
			return err
		}
		v, err := s.loadVolume(ctx, tx, a.VolumeID)
		if err != nil {
			return err
		}
		if v.Status != stInUse && v.Status != stDetaching && v.Status != stAttaching && v.Status != stReserved {
			return api.BadRequest("Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
		}
		now := nowText()
		if _, err := tx.ExecContext(ctx, `UPDATE volume_attachments SET status=?, updated_at=? WHERE id=?`, attDetaching, now, attachmentID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, updated_at=? WHERE id=?`, stDetaching, now, a.VolumeID)
		return err
	})
}

// RollDetach undoes BeginDetach after the host failed to detach.
func (s *Service) RollDetach(ctx context.Context, attachmentID string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := s.loadAttachment(ctx, tx, attachmentID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE volume_attachments SET status=?, updated_at=? WHERE id=?`, attAttached, nowText(), attachmentID); err != nil {
			return err
		}
		return s.settleStatus(ctx, tx, a.VolumeID)
	})
}

// VolumeName returns a volume's name for a caller (Nova shows it nowhere,
// but checks the volume exists before its own bookkeeping).
func (s *Service) CheckVolume(ctx context.Context, c *api.Credentials, id string) error {
	_, err := s.getVolume(ctx, c, id)
	return err
}

// DeleteOnTermination deletes a volume whose server was deleted with
// delete_on_termination set.
func (s *Service) DeleteOnTermination(ctx context.Context, volumeID string) error {
	admin := &api.Credentials{System: true, Roles: []string{"admin", "member", "reader"}}
	err := s.Delete(ctx, admin, volumeID, true, false)
	if api.IsNotFound(err) {
		return nil
	}
	return err
}

// attachmentView is an attachment in the v3 attachments API.
func (s *Service) attachmentView(a Attachment, v api.Version, withConnection bool) map[string]any {
	status := a.Status
	m := map[string]any{"id": a.ID, "status": status, "instance": a.ServerID, "volume_id": a.VolumeID,
		"attached_at": nullable(a.AttachedAt), "detached_at": nil, "attach_mode": a.Mode}
	if withConnection {
		m["connection_info"] = nil
		if a.Connector != nil {
			m["connection_info"] = s.connectionInfo(a)
		}
	}
	return m
}

func (s *Service) connectionInfo(a Attachment) map[string]any {
	return map[string]any{"driver_volume_type": "monostack_loopfile", "attachment_id": a.ID,
		"data": map[string]any{"volume_id": a.VolumeID, "block": volumeBlock(a.VolumeID), "access_mode": a.Mode}}
}

type attachmentBody struct {
	Attachment *struct {
		VolumeUUID   string         `json:"volume_uuid"`
		InstanceUUID string         `json:"instance_uuid"`
		Connector    map[string]any `json:"connector"`
		Mode         string         `json:"mode"`
	} `json:"attachment"`
}

func (s *Service) handleCreateAttachment(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b attachmentBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Attachment == nil || b.Attachment.VolumeUUID == "" {
		return api.BadRequest("Invalid input received: volume_uuid is a required property.")
	}
	mode := b.Attachment.Mode
	if mode == "" {
		mode = "rw"
	}
	if mode != "rw" && mode != "ro" {
		return api.BadRequest("Invalid input received: Invalid attachment mode '%s' for volume %s.", mode, b.Attachment.VolumeUUID)
	}
	c := api.CredentialsFrom(r.Context())
	conn, err := s.reserve(r.Context(), c, b.Attachment.VolumeUUID, b.Attachment.InstanceUUID, b.Attachment.Connector, mode, "")
	if err != nil {
		return err
	}
	a, err := s.loadAttachment(r.Context(), s.db, conn.AttachmentID)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"attachment": s.attachmentView(a, v, true)})
	return nil
}

func (s *Service) getAttachment(r *http.Request) (Attachment, error) {
	c := api.CredentialsFrom(r.Context())
	a, err := s.loadAttachment(r.Context(), s.db, r.PathValue("id"))
	if err == nil && !visible(c, a.ProjectID) {
		return Attachment{}, attachmentNotFound(r.PathValue("id"))
	}
	return a, err
}

func (s *Service) handleShowAttachment(w http.ResponseWriter, r *http.Request, v api.Version) error {
	a, err := s.getAttachment(r)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"attachment": s.attachmentView(a, v, true)})
	return nil
}

func (s *Service) handleListAttachments(detail bool) func(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		c := api.CredentialsFrom(r.Context())
		l, err := newLister(r, c, "volume_attachments", map[string]string{"volume_id": "volume_id", "instance_id": "server_id", "status": "status"})
		if err != nil {
			return err
		}
		rows, err := s.db.QueryContext(r.Context(), `SELECT `+attachmentCols+`, 0 AS seq FROM volume_attachments`+l.where+` ORDER BY created_at DESC, id`, l.args...)
		if err != nil {
			return err
		}
		var list []Attachment
		for rows.Next() {
			var a Attachment
			var conn string
			var seq int
			if err := rows.Scan(&a.ID, &a.VolumeID, &a.ProjectID, &a.ServerID, &a.Host, &a.Device, &a.Mode, &a.Status, &conn,
				&a.CreatedAt, &a.AttachedAt, &a.UpdatedAt, &seq); err != nil {
				rows.Close()
				return err
			}
			list = append(list, a)
		}
		rows.Close()
		page, next, err := l.page(len(list), func(i int) string { return list[i].ID })
		if err != nil {
			return err
		}
		out := []any{}
		for _, i := range page {
			a := list[i]
			if detail {
				out = append(out, s.attachmentView(a, v, false))
			} else {
				out = append(out, map[string]any{"id": a.ID, "status": a.Status, "instance": a.ServerID, "volume_id": a.VolumeID})
			}
		}
		body := map[string]any{"attachments": out}
		if next != nil {
			body["attachments_links"] = []any{next}
		}
		api.WriteJSON(w, http.StatusOK, body)
		return nil
	}
}

// handleUpdateAttachment gives a reserved attachment its connector: the
// volume goes to attaching and the answer carries the connection info.
func (s *Service) handleUpdateAttachment(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b attachmentBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Attachment == nil || b.Attachment.Connector == nil {
		return api.BadRequest("Invalid input received: connector is a required property.")
	}
	a, err := s.getAttachment(r)
	if err != nil {
		return err
	}
	now := nowText()
	err = s.db.Tx(r.Context(), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(r.Context(), `UPDATE volume_attachments SET connector=?, status=?, updated_at=? WHERE id=?`,
			jsonText(b.Attachment.Connector), attAttaching, now, a.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(r.Context(), `UPDATE volume_volumes SET status=?, updated_at=? WHERE id=? AND status=?`, stAttaching, now, a.VolumeID, stReserved)
		return err
	})
	if err != nil {
		return err
	}
	a.Connector, a.Status = b.Attachment.Connector, attAttaching
	api.WriteJSON(w, http.StatusOK, map[string]any{"attachment": s.attachmentView(a, v, true)})
	return nil
}

// handleAttachmentAction is os-complete (3.44): the attachment is in use.
func (s *Service) handleAttachmentAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b map[string]any
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if _, ok := b["os-complete"]; !ok {
		return api.BadRequest("Invalid input received: unknown attachment action.")
	}
	a, err := s.getAttachment(r)
	if err != nil {
		return err
	}
	if err := s.Attached(r.Context(), a.ID, a.Host, a.Device); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleDeleteAttachment(w http.ResponseWriter, r *http.Request, v api.Version) error {
	a, err := s.getAttachment(r)
	if err != nil {
		return err
	}
	if err := s.Unreserve(r.Context(), a.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"attachments": []any{}})
	return nil
}

// VolumeRef is what the containers service needs of a volume.
type VolumeRef struct {
	ID, Name, Status string
	Size             int64
}

// FindVolume returns the volume a caller names by id or by name (its
// project's), as Zun's mounts name them; none is a 404, several a 409.
func (s *Service) FindVolume(ctx context.Context, c *api.Credentials, ref string) (VolumeRef, error) {
	v, err := s.getVolume(ctx, c, ref)
	if api.IsNotFound(err) {
		rows, qerr := s.db.QueryContext(ctx, `SELECT id FROM volume_volumes WHERE name=? AND project_id=?`, ref, c.ProjectID)
		if qerr != nil {
			return VolumeRef{}, qerr
		}
		var ids []string
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		switch len(ids) {
		case 0:
			return VolumeRef{}, volumeNotFound(ref)
		case 1:
			v, err = s.loadVolume(ctx, s.db, ids[0])
		default:
			return VolumeRef{}, api.Conflict("Multiple volumes named %s; use an id.", ref)
		}
	}
	if err != nil {
		return VolumeRef{}, err
	}
	out := VolumeRef{ID: v.ID, Status: v.Status, Size: v.Size}
	if v.Name != nil {
		out.Name = *v.Name
	}
	return out, nil
}

// GetVolume returns a volume whoever owns it (for services acting on
// volumes they were given).
func (s *Service) GetVolume(ctx context.Context, id string) (VolumeRef, error) {
	v, err := s.loadVolume(ctx, s.db, id)
	if err != nil {
		return VolumeRef{}, err
	}
	out := VolumeRef{ID: v.ID, Status: v.Status, Size: v.Size}
	if v.Name != nil {
		out.Name = *v.Name
	}
	return out, nil
}
