package volume

import (
	"context"
	"database/sql"
	"errors"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// Snapshot is a volume snapshot record.
type Snapshot struct {
	ID, ProjectID, UserID, VolumeID string
	Seq                             int64
	Name, Description               *string
	Size                            int64
	Status, Task                    string
	CreatedAt, UpdatedAt            string
	Metadata                        map[string]string
}

const snapshotCols = `id, seq, project_id, user_id, volume_id, name, description, size, status, coalesce(task, ''), created_at, coalesce(updated_at, '')`

func scanSnapshot(row interface{ Scan(...any) error }) (Snapshot, error) {
	var sn Snapshot
	var name, desc sql.NullString
	err := row.Scan(&sn.ID, &sn.Seq, &sn.ProjectID, &sn.UserID, &sn.VolumeID, &name, &desc, &sn.Size, &sn.Status, &sn.Task,
		&sn.CreatedAt, &sn.UpdatedAt)
	if name.Valid {
		sn.Name = &name.String
	}
	if desc.Valid {
		sn.Description = &desc.String
	}
	return sn, err
}

func snapshotNotFound(id string) error { return api.NotFound("Snapshot %s could not be found.", id) }

func (s *Service) loadSnapshot(ctx context.Context, q queryer, id string) (Snapshot, error) {
	sn, err := scanSnapshot(q.QueryRowContext(ctx, `SELECT `+snapshotCols+` FROM volume_snapshots WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sn, snapshotNotFound(id)
	}
	if err != nil {
		return sn, err
	}
	sn.Metadata, err = readMetadata(ctx, q, "volume_snapshot_metadata", "snapshot_id", id)
	return sn, err
}

func (s *Service) getSnapshot(ctx context.Context, c *api.Credentials, id string) (Snapshot, error) {
	sn, err := s.loadSnapshot(ctx, s.db, id)
	if err == nil && !visible(c, sn.ProjectID) {
		return Snapshot{}, snapshotNotFound(id)
	}
	return sn, err
}

// CreateSnapshot records a snapshot of a volume and copies its bytes in
// the background. An in-use volume needs force (the copy is then what a
// power cut would have left: crash-consistent).
func (s *Service) CreateSnapshot(ctx context.Context, c *api.Credentials, volumeID string, name, desc *string, force bool, meta map[string]string) (Snapshot, error) {
	if err := checkMetadata(meta); err != nil {
		return Snapshot{}, err
	}
	if meta == nil {
		meta = map[string]string{}
	}
	var sn Snapshot
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		v, err := s.loadVolume(ctx, tx, volumeID)
		if err != nil {
			return err
		}
		if !visible(c, v.ProjectID) {
			return volumeNotFound(volumeID)
		}
		if v.Status == stError {
			return api.BadRequest("Invalid volume: The snapshot cannot be created when the volume is in error status.")
		}
		if v.Status != stAvailable && !(force && v.Status == stInUse) {
			return api.BadRequest("Invalid volume: Volume %s status must be available, but current status is: %s.", volumeID, v.Status)
		}
		typ, err := s.loadType(ctx, tx, v.TypeID)
		if err != nil {
			return err
		}
		if err := s.checkQuota(ctx, tx, v.ProjectID, typ.Name, map[string]int64{"snapshots": 1, "gigabytes": v.Size}, 0); err != nil {
			return err
		}
		now := nowText()
		sn = Snapshot{ID: newUUID(), ProjectID: v.ProjectID, UserID: c.UserID, VolumeID: volumeID, Name: name, Description: desc,
			Size: v.Size, Status: stCreating, Task: taskCreate, CreatedAt: now, Metadata: meta}
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_snapshots(id, seq, project_id, user_id, volume_id, name, description, size,
			status, task, created_at, updated_at) VALUES (?, (SELECT coalesce(max(seq), 0)+1 FROM volume_snapshots), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sn.ID, sn.ProjectID, sn.UserID, sn.VolumeID, sn.Name, sn.Description, sn.Size, sn.Status, sn.Task, now, now); err != nil {
			return err
		}
		return writeMetadata(ctx, tx, "volume_snapshot_metadata", "snapshot_id", sn.ID, meta, false)
	})
	if err != nil {
		return Snapshot{}, err
	}
	s.spawn(sn.ID, func(ctx context.Context) { s.makeSnapshot(ctx, sn.ID) })
	return sn, nil
}

// makeSnapshot copies the volume's bytes (copy-on-write where the
// filesystem allows).
func (s *Service) makeSnapshot(ctx context.Context, id string) {
	sn, err := s.loadSnapshot(ctx, s.db, id)
	if err != nil || sn.Task != taskCreate {
		return
	}
	s.blocks.Delete(ctx, snapshotBlock(id))
	err = s.blocks.Clone(ctx, snapshotBlock(id), volumeBlock(sn.VolumeID), 0)
	if ctx.Err() != nil {
		return
	}
	status := stAvailable
	if err != nil {
		s.log.Warn("snapshot failed", "snapshot", id, "err", err)
		status = stError
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE volume_snapshots SET status=?, task=NULL, updated_at=? WHERE id=?`, status, nowText(), id); err != nil {
		s.log.Error("recording snapshot status", "snapshot", id, "err", err)
	}
}

// DeleteSnapshot deletes a snapshot in the background.
func (s *Service) DeleteSnapshot(ctx context.Context, c *api.Credentials, id string, force bool) error {
	sn, err := s.getSnapshot(ctx, c, id)
	if err != nil {
		return err
	}
	if !force && sn.Status != stAvailable && sn.Status != stError {
		return api.BadRequest("Invalid snapshot: Snapshot status must be available or error and must not be part of a group.")
	}
	var n int
	s.db.QueryRowContext(ctx, `SELECT count(*) FROM volume_volumes WHERE snapshot_id=? AND status=?`, id, stCreating).Scan(&n)
	if n > 0 {
		return api.BadRequest("Invalid snapshot: a volume is being created from it.")
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE volume_snapshots SET status=?, task=?, updated_at=? WHERE id=?`, stDeleting, taskDelete, nowText(), id); err != nil {
		return err
	}
	s.spawn(id, func(ctx context.Context) { s.destroySnapshot(ctx, id) })
	return nil
}

func (s *Service) destroySnapshot(ctx context.Context, id string) {
	if err := s.blocks.Delete(ctx, snapshotBlock(id)); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("snapshot delete failed", "snapshot", id, "err", err)
			s.db.ExecContext(ctx, `UPDATE volume_snapshots SET status=?, task=NULL, updated_at=? WHERE id=?`, stErrorDeleting, nowText(), id)
		}
		return
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM volume_snapshots WHERE id=?`, id); err != nil {
		s.log.Error("deleting snapshot record", "snapshot", id, "err", err)
	}
}

func (s *Service) snapshotView(sn Snapshot, v api.Version) map[string]any {
	m := map[string]any{
		"id": sn.ID, "name": sn.Name, "description": sn.Description, "volume_id": sn.VolumeID, "size": sn.Size,
		"status": sn.Status, "created_at": sn.CreatedAt, "updated_at": nullable(sn.UpdatedAt), "metadata": sn.Metadata,
		"os-extended-snapshot-attributes:project_id": sn.ProjectID, "os-extended-snapshot-attributes:progress": "100%",
	}
	if sn.Status == stCreating {
		m["os-extended-snapshot-attributes:progress"] = "0%"
	}
	if sn.Metadata == nil {
		m["metadata"] = map[string]string{}
	}
	if v.AtLeast(3, 14) {
		m["group_snapshot_id"] = nil
	}
	if v.AtLeast(3, 41) {
		m["user_id"] = sn.UserID
	}
	if v.AtLeast(3, 65) {
		m["consumes_quota"] = true
	}
	return m
}

type snapshotBody struct {
	Snapshot *struct {
		VolumeID    string            `json:"volume_id"`
		Name        *string           `json:"name"`
		DisplayName *string           `json:"display_name"`
		Description *string           `json:"description"`
		Force       any               `json:"force"`
		Metadata    map[string]string `json:"metadata"`
	} `json:"snapshot"`
}

func (s *Service) handleCreateSnapshot(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b snapshotBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Snapshot == nil {
		return api.BadRequest("Missing required element 'snapshot' in request body.")
	}
	if b.Snapshot.VolumeID == "" {
		return api.BadRequest("Invalid input received: 'volume_id' is a required property")
	}
	force, err := boolParam(b.Snapshot.Force)
	if err != nil {
		return err
	}
	name := b.Snapshot.Name
	if name == nil {
		name = b.Snapshot.DisplayName
	}
	c := api.CredentialsFrom(r.Context())
	sn, err := s.CreateSnapshot(r.Context(), c, b.Snapshot.VolumeID, name, b.Snapshot.Description, force, b.Snapshot.Metadata)
	if api.IsNotFound(err) {
		return api.NotFound("Volume %s could not be found.", b.Snapshot.VolumeID)
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"snapshot": s.snapshotView(sn, v)})
	return nil
}

func (s *Service) handleShowSnapshot(w http.ResponseWriter, r *http.Request, v api.Version) error {
	sn, err := s.getSnapshot(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": s.snapshotView(sn, v)})
	return nil
}

func (s *Service) handleListSnapshots(detail bool) func(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		c := api.CredentialsFrom(r.Context())
		l, err := newLister(r, c, "volume_snapshots", map[string]string{"name": "name", "status": "status", "volume_id": "volume_id"})
		if err != nil {
			return err
		}
		rows, err := s.db.QueryContext(r.Context(), `SELECT `+snapshotCols+` FROM volume_snapshots`+l.where+l.order, l.args...)
		if err != nil {
			return err
		}
		var list []Snapshot
		for rows.Next() {
			sn, err := scanSnapshot(rows)
			if err != nil {
				rows.Close()
				return err
			}
			list = append(list, sn)
		}
		rows.Close()
		out := []any{}
		page, next, err := l.page(len(list), func(i int) string { return list[i].ID })
		if err != nil {
			return err
		}
		for _, i := range page {
			sn := list[i]
			if detail {
				if sn.Metadata, err = readMetadata(r.Context(), s.db, "volume_snapshot_metadata", "snapshot_id", sn.ID); err != nil {
					return err
				}
				out = append(out, s.snapshotView(sn, v))
			} else {
				out = append(out, map[string]any{"id": sn.ID, "name": sn.Name, "status": sn.Status, "volume_id": sn.VolumeID,
					"size": sn.Size, "description": sn.Description, "created_at": sn.CreatedAt, "updated_at": nullable(sn.UpdatedAt),
					"metadata": map[string]string{}})
			}
		}
		body := map[string]any{"snapshots": out}
		if next != nil {
			body["snapshots_links"] = []any{next}
		}
		api.WriteJSON(w, http.StatusOK, body)
		return nil
	}
}

func (s *Service) handleUpdateSnapshot(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b snapshotBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Snapshot == nil {
		return api.BadRequest("Missing required element 'snapshot' in request body.")
	}
	c := api.CredentialsFrom(r.Context())
	sn, err := s.getSnapshot(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if b.Snapshot.Name != nil {
		sn.Name = b.Snapshot.Name
	} else if b.Snapshot.DisplayName != nil {
		sn.Name = b.Snapshot.DisplayName
	}
	if b.Snapshot.Description != nil {
		sn.Description = b.Snapshot.Description
	}
	sn.UpdatedAt = nowText()
	if _, err := s.db.ExecContext(r.Context(), `UPDATE volume_snapshots SET name=?, description=?, updated_at=? WHERE id=?`,
		sn.Name, sn.Description, sn.UpdatedAt, sn.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": s.snapshotView(sn, v)})
	return nil
}

func (s *Service) handleDeleteSnapshot(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if err := s.DeleteSnapshot(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"), false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// handleSnapshotAction is os-reset_status and os-force_delete (admin),
// and os-update_snapshot_status.
func (s *Service) handleSnapshotAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b map[string]map[string]any
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	c := api.CredentialsFrom(r.Context())
	id := r.PathValue("id")
	if _, err := s.getSnapshot(r.Context(), c, id); err != nil {
		return err
	}
	switch {
	case b["os-force_delete"] != nil:
		if !c.CloudAdmin() {
			return api.Forbidden("Policy doesn't allow volume_extension:snapshot_admin_actions:force_delete to be performed.")
		}
		if err := s.DeleteSnapshot(r.Context(), c, id, true); err != nil {
			return err
		}
	case b["os-reset_status"] != nil:
		if !c.CloudAdmin() {
			return api.Forbidden("Policy doesn't allow volume_extension:snapshot_admin_actions:reset_status to be performed.")
		}
		st, _ := b["os-reset_status"]["status"].(string)
		if !contains([]string{stAvailable, stError, stCreating, stDeleting, stErrorDeleting}, st) {
			return api.BadRequest("Invalid input received: '%s' is not a valid snapshot status.", st)
		}
		if _, err := s.db.ExecContext(r.Context(), `UPDATE volume_snapshots SET status=?, task=NULL, updated_at=? WHERE id=?`, st, nowText(), id); err != nil {
			return err
		}
	default:
		return api.BadRequest("Invalid input received: unknown snapshot action.")
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
