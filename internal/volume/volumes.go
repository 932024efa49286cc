package volume

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blockdev"
	"github.com/monostack/monostack/internal/store"
)

// Volume statuses, as Cinder names them.
const (
	stCreating       = "creating"
	stAvailable      = "available"
	stReserved       = "reserved"
	stAttaching      = "attaching"
	stInUse          = "in-use"
	stDetaching      = "detaching"
	stDeleting       = "deleting"
	stExtending      = "extending"
	stError          = "error"
	stErrorDeleting  = "error_deleting"
	stErrorExtending = "error_extending"
	stErrorRestoring = "error_restoring"
	stBackingUp      = "backing-up"
	stRestoring      = "restoring-backup"
	stMaintenance    = "maintenance"
)

// Work in flight that a restart resumes (volume_volumes.task).
const (
	taskCreate  = "create"
	taskExtend  = "extend"
	taskDelete  = "delete"
	taskBackup  = "backup"
	taskRestore = "restore"
)

// Volume is a volume record.
type Volume struct {
	ID, ProjectID, UserID string
	Seq                   int64
	Name, Description     *string
	Size                  int64 // GiB
	Status, Task          string
	TypeID, AZ            string
	Bootable, ReadOnly    bool
	Multiattach           bool
	SourceVolID           string
	SnapshotID            string
	ImageID               string
	ImageMeta             map[string]string
	NewSize               int64
	Error                 string
	CreatedAt, UpdatedAt  string

	Metadata    map[string]string
	Attachments []Attachment
}

// Attachment is a volume's attachment to a server.
type Attachment struct {
	ID, VolumeID, ProjectID, ServerID string
	Host, Device, Mode, Status        string
	Connector                         map[string]any
	CreatedAt, AttachedAt, UpdatedAt  string
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

const volumeCols = `id, seq, project_id, user_id, name, description, size, status, coalesce(task, ''), type_id, az, bootable, readonly,
	multiattach, coalesce(source_volid, ''), coalesce(snapshot_id, ''), coalesce(image_id, ''), coalesce(image_meta, ''),
	coalesce(new_size, 0), coalesce(error, ''), created_at, coalesce(updated_at, '')`

func scanVolume(row interface{ Scan(...any) error }) (Volume, error) {
	var v Volume
	var name, desc sql.NullString
	var meta string
	err := row.Scan(&v.ID, &v.Seq, &v.ProjectID, &v.UserID, &name, &desc, &v.Size, &v.Status, &v.Task, &v.TypeID, &v.AZ,
		&v.Bootable, &v.ReadOnly, &v.Multiattach, &v.SourceVolID, &v.SnapshotID, &v.ImageID, &meta, &v.NewSize, &v.Error,
		&v.CreatedAt, &v.UpdatedAt)
	if err != nil {
		return v, err
	}
	if name.Valid {
		v.Name = &name.String
	}
	if desc.Valid {
		v.Description = &desc.String
	}
	if meta != "" {
		json.Unmarshal([]byte(meta), &v.ImageMeta)
	}
	return v, nil
}

func volumeNotFound(id string) error { return api.NotFound("Volume %s could not be found.", id) }

// loadVolume reads a volume with its metadata and attachments.
func (s *Service) loadVolume(ctx context.Context, q queryer, id string) (Volume, error) {
	v, err := scanVolume(q.QueryRowContext(ctx, `SELECT `+volumeCols+` FROM volume_volumes WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, volumeNotFound(id)
	}
	if err != nil {
		return v, err
	}
	return v, s.fillVolume(ctx, q, &v)
}

func (s *Service) fillVolume(ctx context.Context, q queryer, v *Volume) error {
	var err error
	if v.Metadata, err = readMetadata(ctx, q, "volume_metadata", "volume_id", v.ID); err != nil {
		return err
	}
	v.Attachments, err = s.attachmentsOf(ctx, q, v.ID)
	return err
}

// Get returns a volume the caller may see (a 404 otherwise).
func (s *Service) Get(ctx context.Context, c *api.Credentials, id string) (Volume, error) {
	return s.getVolume(ctx, c, id)
}

// getVolume is loadVolume for a caller: another project's volume is a 404
// unless the caller is a cloud admin.
func (s *Service) getVolume(ctx context.Context, c *api.Credentials, id string) (Volume, error) {
	v, err := s.loadVolume(ctx, s.db, id)
	if err != nil {
		return v, err
	}
	if !visible(c, v.ProjectID) {
		return Volume{}, volumeNotFound(id)
	}
	return v, nil
}

func visible(c *api.Credentials, project string) bool {
	return c != nil && (c.ProjectID == project || c.CloudAdmin())
}

func readMetadata(ctx context.Context, q queryer, table, col, id string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM `+table+` WHERE `+col+`=?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}

// NewVolume is a volume create request.
type NewVolume struct {
	// ID names the new volume; "" for a new id. A caller that must find
	// its volume again after a crash (compute making a server's boot
	// volume) names it, and a Create of an id that exists returns that
	// volume when it is the same project's.
	ID                string
	ProjectID, UserID string
	Name, Description *string
	Size              int64 // GiB; 0: the source's size
	Type              string
	AZ                string
	Metadata          map[string]string
	SnapshotID        string
	SourceVolID       string
	ImageID           string
	Multiattach       bool
	Bootable          bool
	creds             *api.Credentials
}

// Create records a volume in status creating and makes its bytes in the
// background (available, or error when that fails).
func (s *Service) Create(ctx context.Context, c *api.Credentials, n NewVolume) (Volume, error) {
	n.creds = c
	if n.ID != "" {
		v, err := s.loadVolume(ctx, s.db, n.ID)
		switch {
		case err == nil && v.ProjectID == n.ProjectID:
			return v, nil
		case err == nil:
			return Volume{}, api.Conflict("Volume %s exists.", n.ID)
		case !api.IsNotFound(err):
			return Volume{}, err
		}
	}
	if n.AZ != "" && n.AZ != s.cfg.AvailabilityZone {
		return Volume{}, api.BadRequest("Availability zone '%s' is invalid.", n.AZ)
	}
	var image Image
	var source Volume
	var snap Snapshot
	switch {
	case n.SnapshotID != "":
		var err error
		if snap, err = s.getSnapshot(ctx, c, n.SnapshotID); err != nil {
			return Volume{}, err
		}
		if snap.Status != stAvailable {
			return Volume{}, api.BadRequest("Invalid snapshot: Originating snapshot status must be one of 'available' values")
		}
		if n.Size == 0 {
			n.Size = snap.Size
		}
		if n.Size < snap.Size {
			return Volume{}, api.BadRequest("Invalid input received: Volume size '%d'GB cannot be smaller than the snapshot size %dGB. They must be >= original snapshot size.", n.Size, snap.Size)
		}
		if src, err := s.loadVolume(ctx, s.db, snap.VolumeID); err == nil && n.Type == "" {
			n.Type = src.TypeID
		}
	case n.SourceVolID != "":
		var err error
		if source, err = s.getVolume(ctx, c, n.SourceVolID); err != nil {
			return Volume{}, err
		}
		if source.Status != stAvailable && source.Status != stInUse {
			return Volume{}, api.BadRequest("Invalid volume: Unable to clone volumes that are in an error state or not available/in-use.")
		}
		if n.Size == 0 {
			n.Size = source.Size
		}
		if n.Size < source.Size {
			return Volume{}, api.BadRequest("Invalid input received: Clones currently must be >= original volume size.")
		}
		if n.Type == "" {
			n.Type = source.TypeID
		}
	case n.ImageID != "":
		if s.images == nil {
			return Volume{}, api.BadRequest("Invalid input received: volumes from images are not available.")
		}
		var err error
		if image, err = s.images.Lookup(ctx, c, n.ImageID); err != nil {
			if api.IsNotFound(err) {
				return Volume{}, api.BadRequest("Invalid image identifier or unable to access requested image.")
			}
			return Volume{}, err
		}
		if image.Status != "active" {
			return Volume{}, api.BadRequest("Invalid image identifier or unable to access requested image.")
		}
		need := max(image.MinDisk, (image.Size+GiB-1)/GiB, 1)
		if n.Size == 0 {
			n.Size = need
		}
		if n.Size < need {
			return Volume{}, api.BadRequest("Invalid input received: Size of specified image %d GB is larger than volume size %d GB.", need, n.Size)
		}
	}
	if n.Size <= 0 {
		return Volume{}, api.BadRequest("Invalid input for field/attribute size. Value: %d. %d is less than the minimum of 1", n.Size, n.Size)
	}
	if n.Size > s.cfg.MaxSizeGB {
		return Volume{}, api.BadRequest("Invalid input received: Volume size %d GB is over the largest a volume may be, %d GB.", n.Size, s.cfg.MaxSizeGB)
	}
	if err := checkMetadata(n.Metadata); err != nil {
		return Volume{}, err
	}
	typ, err := s.resolveType(ctx, c, n.Type)
	if err != nil {
		return Volume{}, err
	}
	if typ.multiattach() {
		n.Multiattach = true
	}
	v := Volume{ID: newUUID(), ProjectID: n.ProjectID, UserID: n.UserID, Name: n.Name, Description: n.Description, Size: n.Size,
		Status: stCreating, Task: taskCreate, TypeID: typ.ID, AZ: s.cfg.AvailabilityZone, Multiattach: n.Multiattach,
		SourceVolID: n.SourceVolID, SnapshotID: n.SnapshotID, ImageID: n.ImageID, CreatedAt: nowText(), Metadata: n.Metadata,
		Bootable: n.Bootable || n.ImageID != ""}
	if n.ID != "" {
		v.ID = n.ID
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	if n.ImageID != "" {
		v.ImageMeta = map[string]string{"image_id": image.ID, "image_name": image.Name, "size": fmt.Sprint(image.Size),
			"disk_format": image.DiskFormat, "container_format": image.ContainerFormat, "checksum": image.Checksum,
			"min_disk": fmt.Sprint(image.MinDisk)}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkQuota(ctx, tx, v.ProjectID, typ.Name, map[string]int64{"volumes": 1, "gigabytes": v.Size}, v.Size); err != nil {
			return err
		}
		var meta any
		if v.ImageMeta != nil {
			meta = jsonText(v.ImageMeta)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO volume_volumes(id, seq, project_id, user_id, name, description, size, status, task,
			type_id, az, bootable, multiattach, source_volid, snapshot_id, image_id, image_meta, created_at, updated_at)
			VALUES (?, (SELECT coalesce(max(seq), 0)+1 FROM volume_volumes), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.ProjectID, v.UserID, v.Name, v.Description, v.Size, v.Status, v.Task, v.TypeID, v.AZ, v.Bootable, v.Multiattach,
			nilIfEmpty(v.SourceVolID), nilIfEmpty(v.SnapshotID), nilIfEmpty(v.ImageID), meta, v.CreatedAt, v.CreatedAt)
		if err != nil {
			return err
		}
		return writeMetadata(ctx, tx, "volume_metadata", "volume_id", v.ID, v.Metadata, true)
	})
	if err != nil {
		return Volume{}, err
	}
	s.spawn(v.ID, func(ctx context.Context) { s.build(ctx, v.ID) })
	return v, nil
}

// build makes a creating volume's bytes: empty, or copied from a snapshot,
// a volume or an image. It is idempotent (a restart runs it again).
func (s *Service) build(ctx context.Context, id string) {
	v, err := s.loadVolume(ctx, s.db, id)
	if err != nil || v.Task != taskCreate {
		return
	}
	size := v.Size * GiB
	block := volumeBlock(id)
	switch {
	case v.SnapshotID != "":
		s.blocks.Delete(ctx, block) // a clone interrupted by a crash is made again
		err = s.blocks.Clone(ctx, block, snapshotBlock(v.SnapshotID), size)
	case v.SourceVolID != "":
		s.blocks.Delete(ctx, block)
		err = s.blocks.Clone(ctx, block, volumeBlock(v.SourceVolID), size)
	case v.ImageID != "":
		s.blocks.Delete(ctx, block)
		err = s.writeImage(ctx, block, v.ImageID, size)
	default:
		err = s.blocks.Create(ctx, block, size)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("volume create failed", "volume", id, "err", err)
		s.blocks.Delete(context.WithoutCancel(ctx), block)
		s.finish(ctx, id, stError, err.Error())
		return
	}
	s.finish(ctx, id, stAvailable, "")
}

// finish ends the volume's task with a status.
func (s *Service) finish(ctx context.Context, id, status, errText string) {
	_, err := s.db.ExecContext(ctx, `UPDATE volume_volumes SET status=?, task=NULL, error=?, updated_at=? WHERE id=?`,
		status, nilIfEmpty(errText), nowText(), id)
	if err != nil {
		s.log.Error("recording volume status", "volume", id, "err", err)
	}
}

// deletable are the statuses a volume may be deleted from (without force).
var deletable = []string{stAvailable, stError, stErrorRestoring, stErrorExtending, "error_managing"}

// Delete deletes a volume in the background. cascade deletes its
// snapshots too; force (admin) deletes whatever its status, but not while
// it is attached.
func (s *Service) Delete(ctx context.Context, c *api.Credentials, id string, cascade, force bool) error {
	var snaps []string
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		v, err := s.loadVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if !visible(c, v.ProjectID) {
			return volumeNotFound(id)
		}
		if len(v.Attachments) > 0 || (!force && !contains(deletable, v.Status)) {
			return api.BadRequest("Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.")
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, status FROM volume_snapshots WHERE volume_id=?`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var sid, st string
			rows.Scan(&sid, &st)
			if st != stAvailable && st != stError {
				rows.Close()
				return api.BadRequest("Invalid volume: Snapshot %s is %s; it cannot be deleted with the volume.", sid, st)
			}
			snaps = append(snaps, sid)
		}
		rows.Close()
		if len(snaps) > 0 && !cascade {
			return api.BadRequest("Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE volume_snapshots SET status=?, task=? WHERE volume_id=?`, stDeleting, taskDelete, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, task=?, updated_at=? WHERE id=?`, stDeleting, taskDelete, nowText(), id)
		return err
	})
	if err != nil {
		return err
	}
	s.spawn(id, func(ctx context.Context) { s.destroy(ctx, id) })
	return nil
}

// destroy removes a deleting volume's bytes, its snapshots' and then its
// record.
func (s *Service) destroy(ctx context.Context, id string) {
	v, err := s.loadVolume(ctx, s.db, id)
	if err != nil || v.Task != taskDelete {
		return
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM volume_snapshots WHERE volume_id=? AND task=?`, id, taskDelete)
	if err != nil {
		return
	}
	var snaps []string
	for rows.Next() {
		var sid string
		rows.Scan(&sid)
		snaps = append(snaps, sid)
	}
	rows.Close()
	for _, sid := range snaps {
		s.destroySnapshot(ctx, sid)
	}
	if err := s.blocks.Delete(ctx, volumeBlock(id)); err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("volume delete failed", "volume", id, "err", err)
		s.finish(ctx, id, stErrorDeleting, err.Error())
		return
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM volume_volumes WHERE id=?`, id); err != nil {
		s.log.Error("deleting volume record", "volume", id, "err", err)
	}
}

// Extend grows a volume to newSize GiB in the background. Attached
// volumes may grow too (3.42): the device sees the new size.
func (s *Service) Extend(ctx context.Context, c *api.Credentials, id string, newSize int64, attachedOK bool) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		v, err := s.loadVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if !visible(c, v.ProjectID) {
			return volumeNotFound(id)
		}
		if v.Status != stAvailable && !(attachedOK && v.Status == stInUse) {
			if v.Status == stInUse {
				return api.BadRequest("Invalid volume: Volume %s status must be '{'status': 'available'}' to extend, currently in-use.", id)
			}
			return api.BadRequest("Invalid volume: Volume %s status must be '{'status': 'available'}' to extend, currently %s.", id, v.Status)
		}
		if newSize <= v.Size {
			return api.BadRequest("Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", v.Size, newSize)
		}
		if newSize > s.cfg.MaxSizeGB {
			return api.BadRequest("Invalid input received: Volume size %d GB is over the largest a volume may be, %d GB.", newSize, s.cfg.MaxSizeGB)
		}
		typ, err := s.loadType(ctx, tx, v.TypeID)
		if err != nil {
			return err
		}
		if err := s.checkQuota(ctx, tx, v.ProjectID, typ.Name, map[string]int64{"gigabytes": newSize - v.Size}, newSize); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_volumes SET status=?, task=?, new_size=?, prev_status=?, updated_at=? WHERE id=?`,
			stExtending, taskExtend, newSize, v.Status, nowText(), id)
		return err
	})
	if err != nil {
		return err
	}
	s.spawn(id, func(ctx context.Context) { s.extend(ctx, id) })
	return nil
}

func (s *Service) extend(ctx context.Context, id string) {
	v, err := s.loadVolume(ctx, s.db, id)
	if err != nil || v.Task != taskExtend {
		return
	}
	var back string
	s.db.QueryRowContext(ctx, `SELECT coalesce(prev_status, ?) FROM volume_volumes WHERE id=?`, stAvailable, id).Scan(&back)
	err = s.blocks.Extend(ctx, volumeBlock(id), v.NewSize*GiB)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("volume extend failed", "volume", id, "err", err)
		s.finish(ctx, id, stErrorExtending, err.Error())
		return
	}
	_, err = s.db.ExecContext(ctx, `UPDATE volume_volumes SET size=new_size, new_size=NULL, prev_status=NULL, status=?, task=NULL, error=NULL, updated_at=? WHERE id=?`,
		back, nowText(), id)
	if err != nil {
		s.log.Error("recording volume extend", "volume", id, "err", err)
	}
}

// Start resumes, in the background, the work a previous run left.
func (s *Service) Start(ctx context.Context) error {
	type pending struct{ kind, id, task string }
	var todo []pending
	for _, t := range []struct{ kind, table string }{{"volume", "volume_volumes"}, {"snapshot", "volume_snapshots"}, {"backup", "volume_backups"}} {
		rows, err := s.db.QueryContext(ctx, `SELECT id, task FROM `+t.table+` WHERE task IS NOT NULL`)
		if err != nil {
			return err
		}
		for rows.Next() {
			p := pending{kind: t.kind}
			rows.Scan(&p.id, &p.task)
			todo = append(todo, p)
		}
		rows.Close()
	}
	for _, p := range todo {
		s.log.Info("resuming volume work", p.kind, p.id, "task", p.task)
		id := p.id
		switch p.kind + "/" + p.task {
		case "volume/" + taskCreate:
			s.spawn(id, func(ctx context.Context) { s.build(ctx, id) })
		case "volume/" + taskDelete:
			s.spawn(id, func(ctx context.Context) { s.destroy(ctx, id) })
		case "volume/" + taskExtend:
			s.spawn(id, func(ctx context.Context) { s.extend(ctx, id) })
		case "snapshot/" + taskCreate:
			s.spawn(id, func(ctx context.Context) { s.makeSnapshot(ctx, id) })
		case "snapshot/" + taskDelete:
			s.spawn(id, func(ctx context.Context) { s.destroySnapshot(ctx, id) })
		case "backup/" + taskBackup:
			s.spawn(id, func(ctx context.Context) { s.runBackup(ctx, id) })
		case "backup/" + taskRestore:
			s.spawn(id, func(ctx context.Context) { s.runRestore(ctx, id) })
		case "backup/" + taskDelete:
			s.spawn(id, func(ctx context.Context) { s.destroyBackup(ctx, id) })
		}
	}
	return s.reconcileBlocks(ctx)
}

// reconcileBlocks removes bytes no record owns: what a crash between
// making a volume's file and recording it left, or between deleting a
// record and its file (the record goes last, so this is only the first).
func (s *Service) reconcileBlocks(ctx context.Context) error {
	if _, err := s.blocks.Recover(ctx); err != nil {
		return err
	}
	infos, err := s.blocks.List(ctx)
	if err != nil {
		return err
	}
	for _, in := range infos {
		kind, id, ok := strings.Cut(in.ID, "-")
		if !ok {
			continue
		}
		var n int
		switch kind {
		case "volume":
			err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM volume_volumes WHERE id=?`, id).Scan(&n)
		case "snapshot":
			err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM volume_snapshots WHERE id=?`, id).Scan(&n)
		default:
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			s.log.Info("removing the bytes of a volume that is not recorded", "block", in.ID)
			if err := s.blocks.Delete(ctx, in.ID); err != nil && !errors.Is(err, blockdev.ErrNotFound) {
				s.log.Warn("removing orphaned volume bytes", "block", in.ID, "err", err)
			}
		}
	}
	return nil
}

func writeMetadata(ctx context.Context, q queryer, table, col, id string, m map[string]string, replace bool) error {
	if replace {
		if _, err := q.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+col+`=?`, id); err != nil {
			return err
		}
	}
	for k, v := range m {
		if _, err := q.ExecContext(ctx, `INSERT INTO `+table+`(`+col+`, key, value) VALUES (?, ?, ?)
			ON CONFLICT DO UPDATE SET value=excluded.value`, id, k, v); err != nil {
			return store.Translate(err)
		}
	}
	return nil
}

func checkMetadata(m map[string]string) error {
	for k, v := range m {
		if k == "" || len(k) > 255 {
			return api.BadRequest("Invalid input received: Metadata property key blank or longer than 255 characters.")
		}
		if len(v) > 255 {
			return api.BadRequest("Invalid input received: Metadata property value longer than 255 characters.")
		}
	}
	return nil
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

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
