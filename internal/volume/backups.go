package volume

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// Backups copy a volume's bytes into the object store, in the project's
// own account, as Cinder's Swift backup driver does: the volume cut into
// chunks (all-zero chunks are left out, so a sparse volume backs up
// small), each an object with its SHA-256 recorded in a metadata object
// that a restore reads back and checks.

// backupChunk is the size of one object of a backup.
const backupChunk = 32 << 20

// DefaultBackupContainer is the container backups go to when the request
// names none, as Cinder's default.
const DefaultBackupContainer = "volumebackups"

// Backup is a backup record.
type Backup struct {
	ID, ProjectID, UserID, VolumeID string
	SnapshotID                      string
	Seq                             int64
	Name, Description               *string
	Size, ObjectCount               int64
	Status, Task, FailReason        string
	Container, RestoreVolume        string
	CreatedAt, UpdatedAt            string
	DataTimestamp                   string
}

const backupCols = `id, seq, project_id, user_id, volume_id, coalesce(snapshot_id, ''), name, description, size, object_count, status,
	coalesce(task, ''), coalesce(fail_reason, ''), container, coalesce(restore_volume, ''), created_at, coalesce(updated_at, ''), data_timestamp`

func scanBackup(row interface{ Scan(...any) error }) (Backup, error) {
	var b Backup
	var name, desc sql.NullString
	err := row.Scan(&b.ID, &b.Seq, &b.ProjectID, &b.UserID, &b.VolumeID, &b.SnapshotID, &name, &desc, &b.Size, &b.ObjectCount,
		&b.Status, &b.Task, &b.FailReason, &b.Container, &b.RestoreVolume, &b.CreatedAt, &b.UpdatedAt, &b.DataTimestamp)
	if name.Valid {
		b.Name = &name.String
	}
	if desc.Valid {
		b.Description = &desc.String
	}
	return b, err
}

func backupNotFound(id string) error { return api.NotFound("Backup %s could not be found.", id) }

func (s *Service) loadBackup(ctx context.Context, q queryer, id string) (Backup, error) {
	b, err := scanBackup(q.QueryRowContext(ctx, `SELECT `+backupCols+` FROM volume_backups WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, backupNotFound(id)
	}
	return b, err
}

func (s *Service) getBackup(ctx context.Context, c *api.Credentials, id string) (Backup, error) {
	b, err := s.loadBackup(ctx, s.db, id)
	if err == nil && !visible(c, b.ProjectID) {
		return Backup{}, backupNotFound(id)
	}
	return b, err
}

// backupManifest is the metadata object of a backup.
type backupManifest struct {
	Version  string        `json:"version"`
	BackupID string        `json:"backup_id"`
	VolumeID string        `json:"volume_id"`
	Size     int64         `json:"size"` // bytes
	Chunks   []backupPiece `json:"objects"`
}

type backupPiece struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

func (b Backup) prefix() string { return "volume_" + b.VolumeID + "/backup_" + b.ID }
func (b Backup) manifestName() string {
	return b.prefix() + "_metadata"
}

// CreateBackup records a backup of a volume (or of one of its snapshots)
// and copies the bytes in the background. An in-use volume needs force.
func (s *Service) CreateBackup(ctx context.Context, c *api.Credentials, volumeID, snapshotID, container string, name, desc *string, force bool) (Backup, error) {
	if s.objects == nil {
		return Backup{}, api.Errorf(http.StatusServiceUnavailable, "Service cinder-backup could not be found.")
	}
	if container == "" {
		container = DefaultBackupContainer
	}
	if len(container) > 255 {
		return Backup{}, api.BadRequest("Invalid input received: container name longer than 255 characters.")
	}
	var b Backup
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		v, err := s.loadVolume(ctx, tx, volumeID)
		if err != nil {
			return err
		}
		if !visible(c, v.ProjectID) {
			return volumeNotFound(volumeID)
		}
		if snapshotID != "" {
			sn, err := s.loadSnapshot(ctx, tx, snapshotID)
			if err != nil || sn.VolumeID != volumeID || !visible(c, sn.ProjectID) {
				return snapshotNotFound(snapshotID)
			}
			if sn.Status != stAvailable {
				return api.BadRequest("Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"%s\".", sn.Status)
			}
		} else if v.Status == stInUse && !force {
			return api.BadRequest("Invalid volume: Backing up an in-use volume must use the force flag.")
		} else if v.Status != stAvailable && v.Status != stInUse {
			return api.BadRequest("Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"%s\".", v.Status)
		}
		if err := s.checkQuota(ctx, tx, v.ProjectID, "", map[string]int64{"backups": 1, "backup_gigabytes": v.Size}, 0); err != nil {
			return err
		}
		now := nowText()
		b = Backup{ID: newUUID(), ProjectID: v.ProjectID, UserID: c.UserID, VolumeID: volumeID, SnapshotID: snapshotID, Name: name,
			Description: desc, Size: v.Size, Status: stCreating, Task: taskBackup, Container: container, CreatedAt: now, DataTimestamp: now}
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_backups(id, seq, project_id, user_id, volume_id, snapshot_id, name, description,
			size, status, task, container, created_at, updated_at, data_timestamp)
			VALUES (?, (SELECT coalesce(max(seq), 0)+1 FROM volume_backups), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.ID, b.ProjectID, b.UserID, b.VolumeID, nilIfEmpty(snapshotID), name, desc, b.Size, b.Status, b.Task, container, now, now, now); err != nil {
			return err
		}
		if snapshotID == "" {
			_, err = tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, prev_status=?, updated_at=? WHERE id=?`, stBackingUp, v.Status, now, volumeID)
		}
		return err
	})
	if err != nil {
		return Backup{}, err
	}
	s.spawn(b.ID, func(ctx context.Context) { s.runBackup(ctx, b.ID) })
	return b, nil
}

// endVolumeWork puts a volume back in the status it had before a backup
// or a restore.
func (s *Service) endVolumeWork(ctx context.Context, volumeID, fallback string) {
	s.db.ExecContext(ctx, `UPDATE volume_volumes SET status=coalesce(prev_status, ?), prev_status=NULL, updated_at=? WHERE id=? AND status IN (?, ?)`,
		fallback, nowText(), volumeID, stBackingUp, stRestoring)
}

func (s *Service) setBackup(ctx context.Context, id, status, reason string, objects int64) {
	_, err := s.db.ExecContext(ctx, `UPDATE volume_backups SET status=?, task=NULL, fail_reason=?, object_count=?, updated_at=? WHERE id=?`,
		status, nilIfEmpty(reason), objects, nowText(), id)
	if err != nil {
		s.log.Error("recording backup status", "backup", id, "err", err)
	}
}

// runBackup copies the volume's bytes into the object store.
func (s *Service) runBackup(ctx context.Context, id string) {
	b, err := s.loadBackup(ctx, s.db, id)
	if err != nil || b.Task != taskBackup {
		return
	}
	block := volumeBlock(b.VolumeID)
	if b.SnapshotID != "" {
		block = snapshotBlock(b.SnapshotID)
	}
	m, err := s.writeBackup(ctx, b, block)
	if ctx.Err() != nil {
		return
	}
	if b.SnapshotID == "" {
		s.endVolumeWork(ctx, b.VolumeID, stAvailable)
	}
	if err != nil {
		s.log.Warn("backup failed", "backup", id, "err", err)
		s.setBackup(ctx, id, stError, err.Error(), 0)
		return
	}
	s.setBackup(ctx, id, stAvailable, "", int64(len(m.Chunks))+1)
}

func (s *Service) writeBackup(ctx context.Context, b Backup, block string) (backupManifest, error) {
	m := backupManifest{Version: "1.0.0", BackupID: b.ID, VolumeID: b.VolumeID, Chunks: []backupPiece{}}
	f, err := s.blocks.Open(ctx, block, false)
	if err != nil {
		return m, err
	}
	defer f.Close()
	info, err := s.blocks.Info(ctx, block)
	if err != nil {
		return m, err
	}
	m.Size = info.Size
	buf := make([]byte, backupChunk)
	for off, n := int64(0), 0; off < info.Size; off += int64(n) {
		want := min(int64(backupChunk), info.Size-off)
		n, err = f.ReadAt(buf[:want], off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == want) {
			return m, err
		}
		chunk := buf[:n]
		if allZero(chunk) {
			continue
		}
		sum := sha256.Sum256(chunk)
		p := backupPiece{Name: fmt.Sprintf("%s-%05d", b.prefix(), len(m.Chunks)+1), Offset: off, Length: int64(n), SHA256: hex.EncodeToString(sum[:])}
		if err := s.objects.PutObject(ctx, b.ProjectID, b.Container, p.Name, bytes.NewReader(chunk)); err != nil {
			return m, err
		}
		m.Chunks = append(m.Chunks, p)
	}
	body, _ := json.Marshal(m)
	return m, s.objects.PutObject(ctx, b.ProjectID, b.Container, b.manifestName(), bytes.NewReader(body))
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// DeleteBackup deletes a backup's objects and record in the background.
func (s *Service) DeleteBackup(ctx context.Context, c *api.Credentials, id string, force bool) error {
	b, err := s.getBackup(ctx, c, id)
	if err != nil {
		return err
	}
	if !force && b.Status != stAvailable && b.Status != stError {
		return api.BadRequest("Invalid backup: Backup status must be available or error, but the current status is \"%s\".", b.Status)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE volume_backups SET status=?, task=?, updated_at=? WHERE id=?`, stDeleting, taskDelete, nowText(), id); err != nil {
		return err
	}
	s.spawn(id, func(ctx context.Context) { s.destroyBackup(ctx, id) })
	return nil
}

func (s *Service) destroyBackup(ctx context.Context, id string) {
	b, err := s.loadBackup(ctx, s.db, id)
	if err != nil || b.Task != taskDelete {
		return
	}
	if err := s.deleteBackupObjects(ctx, b); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("backup delete failed", "backup", id, "err", err)
			s.setBackup(ctx, id, stErrorDeleting, err.Error(), b.ObjectCount)
		}
		return
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM volume_backups WHERE id=?`, id); err != nil {
		s.log.Error("deleting backup record", "backup", id, "err", err)
	}
}

func (s *Service) deleteBackupObjects(ctx context.Context, b Backup) error {
	m, err := s.readManifest(ctx, b)
	if api.IsNotFound(err) {
		return nil // never written, or already deleted
	}
	if err != nil {
		return err
	}
	for _, p := range m.Chunks {
		if err := s.objects.DeleteObject(ctx, b.ProjectID, b.Container, p.Name); err != nil {
			return err
		}
	}
	return s.objects.DeleteObject(ctx, b.ProjectID, b.Container, b.manifestName())
}

func (s *Service) readManifest(ctx context.Context, b Backup) (backupManifest, error) {
	var m backupManifest
	rc, err := s.objects.GetObject(ctx, b.ProjectID, b.Container, b.manifestName())
	if err != nil {
		return m, err
	}
	defer rc.Close()
	err = json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(&m)
	return m, err
}

// Restore writes a backup onto a volume: an existing available one at
// least as large, or a new one made for it.
func (s *Service) Restore(ctx context.Context, c *api.Credentials, id, volumeID string, name *string) (Backup, Volume, error) {
	var b Backup
	var v Volume
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if b, err = s.loadBackup(ctx, tx, id); err != nil {
			return err
		}
		if !visible(c, b.ProjectID) {
			return backupNotFound(id)
		}
		if b.Status != stAvailable {
			return api.BadRequest("Invalid backup: Backup status must be available, but the current status is \"%s\".", b.Status)
		}
		now := nowText()
		if volumeID != "" {
			if v, err = s.loadVolume(ctx, tx, volumeID); err != nil {
				return err
			}
			if !visible(c, v.ProjectID) {
				return volumeNotFound(volumeID)
			}
			if v.Status != stAvailable {
				return api.BadRequest("Invalid volume: Volume to be restored to must be available, but the current status is \"%s\".", v.Status)
			}
			if v.Size < b.Size {
				return api.BadRequest("Invalid volume: volume size %d is too small to restore backup of size %d.", v.Size, b.Size)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, prev_status=?, updated_at=? WHERE id=?`, stRestoring, stAvailable, now, v.ID); err != nil {
				return err
			}
			v.Status = stRestoring
		} else {
			typ, err := s.loadType(ctx, tx, DefaultTypeName)
			if err != nil {
				return err
			}
			if err := s.checkQuota(ctx, tx, b.ProjectID, typ.Name, map[string]int64{"volumes": 1, "gigabytes": b.Size}, b.Size); err != nil {
				return err
			}
			if name == nil {
				n := "restore_backup_" + b.ID
				name = &n
			}
			v = Volume{ID: newUUID(), ProjectID: b.ProjectID, UserID: c.UserID, Name: name, Size: b.Size, Status: stRestoring,
				TypeID: typ.ID, AZ: s.cfg.AvailabilityZone, CreatedAt: now}
			if _, err := tx.ExecContext(ctx, `INSERT INTO volume_volumes(id, seq, project_id, user_id, name, size, status, prev_status,
				type_id, az, created_at, updated_at) VALUES (?, (SELECT coalesce(max(seq), 0)+1 FROM volume_volumes), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				v.ID, v.ProjectID, v.UserID, v.Name, v.Size, v.Status, stAvailable, v.TypeID, v.AZ, now, now); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_backups SET status='restoring', task=?, restore_volume=?, updated_at=? WHERE id=?`,
			taskRestore, v.ID, now, id)
		return err
	})
	if err != nil {
		return b, v, err
	}
	s.spawn(id, func(ctx context.Context) { s.runRestore(ctx, id) })
	return b, v, nil
}

// runRestore writes a backup's chunks onto its restore volume, checking
// each chunk's SHA-256; the rest of the volume is zeroed.
func (s *Service) runRestore(ctx context.Context, id string) {
	b, err := s.loadBackup(ctx, s.db, id)
	if err != nil || b.Task != taskRestore {
		return
	}
	err = s.writeRestore(ctx, b)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("restore failed", "backup", id, "volume", b.RestoreVolume, "err", err)
		s.db.ExecContext(ctx, `UPDATE volume_volumes SET status=?, prev_status=NULL, updated_at=? WHERE id=?`, stErrorRestoring, nowText(), b.RestoreVolume)
	} else {
		s.endVolumeWork(ctx, b.RestoreVolume, stAvailable)
	}
	s.setBackup(ctx, id, stAvailable, "", b.ObjectCount)
}

func (s *Service) writeRestore(ctx context.Context, b Backup) error {
	m, err := s.readManifest(ctx, b)
	if err != nil {
		return err
	}
	v, err := s.loadVolume(ctx, s.db, b.RestoreVolume)
	if err != nil {
		return err
	}
	block := volumeBlock(v.ID)
	// A fresh, all-zero volume of the volume's size: chunks left out of
	// the backup are zero, and a restore over an existing volume replaces
	// all of it. (Delete then Create keeps this idempotent after a crash.)
	if err := s.blocks.Delete(ctx, block); err != nil {
		return err
	}
	if err := s.blocks.Create(ctx, block, v.Size*GiB); err != nil {
		return err
	}
	f, err := s.blocks.Open(ctx, block, true)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range m.Chunks {
		rc, err := s.objects.GetObject(ctx, b.ProjectID, b.Container, p.Name)
		if err != nil {
			return fmt.Errorf("chunk %s: %w", p.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, p.Length+1))
		rc.Close()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != p.Length || hex.EncodeToString(sum[:]) != p.SHA256 {
			return fmt.Errorf("chunk %s is corrupt: its length or SHA-256 differs from the backup's record", p.Name)
		}
		if _, err := f.WriteAt(data, p.Offset); err != nil {
			return err
		}
	}
	return f.Sync()
}

func (s *Service) backupView(r *http.Request, b Backup, v api.Version) map[string]any {
	m := map[string]any{
		"id": b.ID, "name": b.Name, "description": b.Description, "volume_id": b.VolumeID, "snapshot_id": nullable(b.SnapshotID),
		"status": b.Status, "size": b.Size, "object_count": b.ObjectCount, "availability_zone": s.cfg.AvailabilityZone,
		"container": b.Container, "created_at": b.CreatedAt, "updated_at": nullable(b.UpdatedAt), "data_timestamp": b.DataTimestamp,
		"fail_reason": nullable(b.FailReason), "has_dependent_backups": false, "is_incremental": false,
		"links": s.links(r, "backups", b.ID),
	}
	c := api.CredentialsFrom(r.Context())
	if v.AtLeast(3, 18) && c != nil && c.CloudAdmin() {
		m["os-backup-project-attr:project_id"] = b.ProjectID
	}
	if v.AtLeast(3, 43) {
		m["metadata"] = map[string]string{}
	}
	if v.AtLeast(3, 56) {
		m["user_id"] = b.UserID
	}
	if v.AtLeast(3, 64) {
		m["encryption_key_id"] = nil
	}
	return m
}

func (s *Service) backupRoutes(h func(string, api.Rule, handler)) {
	const p = "/v3/{project_id}"
	h("GET "+p+"/backups", reader, s.handleListBackups(false))
	h("GET "+p+"/backups/detail", reader, s.handleListBackups(true))
	h("POST "+p+"/backups", member, s.handleCreateBackup)
	h("GET "+p+"/backups/{id}", reader, s.handleShowBackup)
	h("DELETE "+p+"/backups/{id}", member, s.handleDeleteBackup)
	h("POST "+p+"/backups/{id}/restore", member, s.handleRestoreBackup)
	h("POST "+p+"/backups/{id}/action", member, s.handleBackupAction)
}

func (s *Service) handleCreateBackup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var body struct {
		Backup *struct {
			VolumeID    string  `json:"volume_id"`
			SnapshotID  string  `json:"snapshot_id"`
			Container   *string `json:"container"`
			Name        *string `json:"name"`
			Description *string `json:"description"`
			Incremental any     `json:"incremental"`
			Force       any     `json:"force"`
		} `json:"backup"`
	}
	if err := api.DecodeJSON(r, &body); err != nil {
		return err
	}
	if body.Backup == nil || body.Backup.VolumeID == "" {
		return api.BadRequest("Invalid input received: 'volume_id' is a required property")
	}
	force, err := boolParam(body.Backup.Force)
	if err != nil {
		return err
	}
	if inc, err := boolParam(body.Backup.Incremental); err != nil {
		return err
	} else if inc {
		return api.BadRequest("Invalid backup: Incremental backups are not supported; make a full backup.")
	}
	container := ""
	if body.Backup.Container != nil {
		container = *body.Backup.Container
	}
	c := api.CredentialsFrom(r.Context())
	b, err := s.CreateBackup(r.Context(), c, body.Backup.VolumeID, body.Backup.SnapshotID, container, body.Backup.Name, body.Backup.Description, force)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"backup": map[string]any{"id": b.ID, "name": b.Name, "links": s.links(r, "backups", b.ID)}})
	return nil
}

func (s *Service) handleShowBackup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	b, err := s.getBackup(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"backup": s.backupView(r, b, v)})
	return nil
}

func (s *Service) handleListBackups(detail bool) func(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		c := api.CredentialsFrom(r.Context())
		l, err := newLister(r, c, "volume_backups", map[string]string{"name": "name", "status": "status", "volume_id": "volume_id"})
		if err != nil {
			return err
		}
		rows, err := s.db.QueryContext(r.Context(), `SELECT `+backupCols+` FROM volume_backups`+l.where+l.order, l.args...)
		if err != nil {
			return err
		}
		var list []Backup
		for rows.Next() {
			b, err := scanBackup(rows)
			if err != nil {
				rows.Close()
				return err
			}
			list = append(list, b)
		}
		rows.Close()
		page, next, err := l.page(len(list), func(i int) string { return list[i].ID })
		if err != nil {
			return err
		}
		out := []any{}
		for _, i := range page {
			if detail {
				out = append(out, s.backupView(r, list[i], v))
			} else {
				out = append(out, map[string]any{"id": list[i].ID, "name": list[i].Name, "links": s.links(r, "backups", list[i].ID)})
			}
		}
		body := map[string]any{"backups": out}
		if next != nil {
			body["backups_links"] = []any{next}
		}
		api.WriteJSON(w, http.StatusOK, body)
		return nil
	}
}

func (s *Service) handleDeleteBackup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if err := s.DeleteBackup(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"), false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) handleRestoreBackup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var body struct {
		Restore *struct {
			VolumeID string  `json:"volume_id"`
			Name     *string `json:"name"`
		} `json:"restore"`
	}
	if err := api.DecodeJSON(r, &body); err != nil {
		return err
	}
	if body.Restore == nil {
		return api.BadRequest("Missing required element 'restore' in request body.")
	}
	b, vol, err := s.Restore(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"), body.Restore.VolumeID, body.Restore.Name)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"restore": map[string]any{"backup_id": b.ID, "volume_id": vol.ID, "volume_name": vol.Name}})
	return nil
}

// handleBackupAction is os-reset_status and os-force_delete (admin).
func (s *Service) handleBackupAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var body map[string]map[string]any
	if err := api.DecodeJSON(r, &body); err != nil {
		return err
	}
	c := api.CredentialsFrom(r.Context())
	if !c.CloudAdmin() {
		return api.Forbidden("Policy doesn't allow backup:backup-admin-actions to be performed.")
	}
	id := r.PathValue("id")
	if _, err := s.getBackup(r.Context(), c, id); err != nil {
		return err
	}
	switch {
	case body["os-force_delete"] != nil:
		if err := s.DeleteBackup(r.Context(), c, id, true); err != nil {
			return err
		}
	case body["os-reset_status"] != nil:
		st, _ := body["os-reset_status"]["status"].(string)
		if st != stAvailable && st != stError {
			return api.BadRequest("Invalid input received: Backup status must be available or error.")
		}
		s.setBackup(r.Context(), id, st, "", 0)
	default:
		return api.BadRequest("Invalid input received: unknown backup action.")
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
