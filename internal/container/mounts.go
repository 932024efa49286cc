package container

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// Mounts give a container Cinder volumes as filesystems (Fuxi's part in
// the book): an existing volume by id or name, or a new one of a given
// size made for the container and deleted with it. The volume is in-use,
// attached to the container at the mount's destination, while the
// container exists.

// VolumeInfo is what the containers service needs of a volume.
type VolumeInfo struct {
	ID, Status string
	Size       int64
}

// Volumes is what the containers service needs of Cinder.
type Volumes interface {
	// Find returns the caller's volume named by id or name, or a 404.
	Find(ctx context.Context, c *api.Credentials, ref string) (VolumeInfo, error)
	// Create makes a volume of size GiB for the project.
	Create(ctx context.Context, c *api.Credentials, sizeGB int64, name string) (VolumeInfo, error)
	// Get returns a volume, whoever owns it.
	Get(ctx context.Context, id string) (VolumeInfo, error)
	// Reserve makes attachment attachmentID of the volume to the
	// container (repeatable after a crash) and returns the name of the
	// volume's bytes in the host's block store.
	Reserve(ctx context.Context, c *api.Credentials, volumeID, containerID, attachmentID string) (block string, err error)
	Attached(ctx context.Context, attachmentID, host, device string) error
	// Detached ends an attachment; a missing one is not an error.
	Detached(ctx context.Context, attachmentID string) error
	// Delete deletes a volume made for a container.
	Delete(ctx context.Context, volumeID string) error
}

// VolumeMount is a volume the host gives a container, or a file.
type VolumeMount struct {
	Block, Destination string
	// Data, when File, are the bytes of a file given at Destination
	// (a mount of type bind) instead of a volume.
	Data []byte
	File bool
}

// MountRequest is one mount of a create request.
type MountRequest struct {
	Source      string // a volume's id or name
	Size        int64  // GiB: a new volume
	Destination string
	// File: a file to inject (type bind), its bytes in Data.
	File bool
	Data []byte
	// Keep: a volume made for the container (Size) stays when the
	// container is deleted (a capsule volume without autoRemove).
	Keep bool
}

// MaxFileBytes bounds a file injected with a bind mount (it travels in the
// request, under the API's 1 MiB body limit, and is kept in the database).
const MaxFileBytes = 512 << 10

type mountRow struct {
	Position               int
	VolumeID, AttachmentID string
	Destination, Block     string
	AutoCreated            bool
	Keep                   bool // made for it, kept after it
	Status                 string
}

// SetVolumes gives the service Cinder; without it mounts are refused.
func (s *Service) SetVolumes(v Volumes) { s.volumes = v }

// serviceCreds act for the service itself (resuming work after a
// restart, when no caller is there).
var serviceCreds = &api.Credentials{System: true, Roles: []string{"admin", "member", "reader"}}

// checkMounts validates a create's mounts and finds their volumes,
// before anything is recorded.
func (s *Service) checkMounts(ctx context.Context, c *api.Credentials, ms []MountRequest) error {
	dests := map[string]bool{}
	for i, m := range ms {
		d := m.Destination
		if !path.IsAbs(d) || path.Clean(d) != d || d == "/" {
			return schemaError("Invalid input for field 'mounts': destination %q must be an absolute path other than /.", d)
		}
		if dests[d] {
			return schemaError("Invalid input for field 'mounts': destination %q given twice.", d)
		}
		dests[d] = true
		if m.File {
			if m.Size != 0 {
				return schemaError("Invalid input for field 'mounts': a bind mount has no size.")
			}
			continue
		}
		if s.volumes == nil {
			return api.BadRequest("Volumes cannot be mounted on this cloud (no block storage).").WithType("invalid-value")
		}
		switch {
		case m.Source != "" && m.Size != 0, m.Source == "" && m.Size <= 0:
			return schemaError("Invalid input for field 'mounts': give a source volume or a size, not both.")
		case m.Source != "":
			v, err := s.volumes.Find(ctx, c, m.Source)
			if err != nil {
				return err
			}
			if v.Status != "available" {
				return api.BadRequest("Volume %s is %s; only an available volume can be mounted.", m.Source, v.Status).WithType("invalid-volume")
			}
			ms[i].Source = v.ID
		}
	}
	return nil
}

// recordMounts makes the volumes to be created and the mount rows of a
// new container (in its create transaction's wake: the rows first, then
// the reservations, so that a crash leaves rows that build resumes).
func (s *Service) recordMounts(ctx context.Context, c *api.Credentials, ct Container, ms []MountRequest) error {
	for i, m := range ms {
		if m.File {
			continue // recorded with the container (recordFiles)
		}
		row := mountRow{Position: i, VolumeID: m.Source, AttachmentID: newUUID(), Destination: m.Destination, Status: "reserving"}
		if m.Size > 0 {
			v, err := s.volumes.Create(ctx, c, m.Size, fmt.Sprintf("%s-%d", ct.Name, i))
			if err != nil {
				return err
			}
			row.VolumeID, row.AutoCreated, row.Keep = v.ID, true, m.Keep
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO container_mounts(container_uuid, position, volume_id, attachment_id, destination,
			auto_created, keep, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ct.UUID, row.Position, row.VolumeID, row.AttachmentID, row.Destination,
			row.AutoCreated, row.Keep, row.Status); err != nil {
			return err
		}
		if !row.AutoCreated {
			if _, err := s.volumes.Reserve(ctx, c, row.VolumeID, ct.UUID, row.AttachmentID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) mountsOf(ctx context.Context, id string) ([]mountRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT position, volume_id, attachment_id, destination, block, auto_created, keep, status
		FROM container_mounts WHERE container_uuid=? ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mountRow
	for rows.Next() {
		var m mountRow
		if err := rows.Scan(&m.Position, &m.VolumeID, &m.AttachmentID, &m.Destination, &m.Block, &m.AutoCreated, &m.Keep, &m.Status); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// prepareMounts reserves a building container's volumes (waiting for
// those made for it) and returns what its host mounts.
func (s *Service) prepareMounts(ctx context.Context, ct Container) ([]VolumeMount, error) {
	ms, err := s.mountsOf(ctx, ct.UUID)
	if err != nil {
		return nil, err
	}
	out, err := s.filesOf(ctx, ct.UUID)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.AutoCreated {
			if err := s.waitVolume(ctx, m.VolumeID); err != nil {
				return nil, err
			}
		}
		block, err := s.volumes.Reserve(ctx, serviceCreds, m.VolumeID, ct.UUID, m.AttachmentID)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.VolumeID, err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE container_mounts SET block=? WHERE container_uuid=? AND position=?`,
			block, ct.UUID, m.Position); err != nil {
			return nil, err
		}
		out = append(out, VolumeMount{Block: block, Destination: m.Destination})
	}
	return out, nil
}

func (s *Service) waitVolume(ctx context.Context, id string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := s.volumes.Get(ctx, id)
		if err != nil {
			return err
		}
		switch v.Status {
		case "available":
			return nil
		case "creating":
		default:
			return fmt.Errorf("volume %s is %s", id, v.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("volume %s is still creating", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// mountsAttached records the volumes as attached at their destinations.
func (s *Service) mountsAttached(ctx context.Context, ct Container) error {
	ms, err := s.mountsOf(ctx, ct.UUID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.volumes.Attached(ctx, m.AttachmentID, ct.Host, m.Destination); err != nil {
			return err
		}
		s.db.ExecContext(ctx, `UPDATE container_mounts SET status='attached' WHERE container_uuid=? AND position=?`, ct.UUID, m.Position)
	}
	return nil
}

// releaseMounts gives a deleted container's volumes back (after its host
// let them go): detached, and deleted when made for it (unless kept; but
// when unmade, the create failing before it was answered, even then).
func (s *Service) releaseMounts(ctx context.Context, ct Container, unmade bool) error {
	ms, err := s.mountsOf(ctx, ct.UUID)
	if err != nil || len(ms) == 0 {
		return err
	}
	var blocks []string
	for _, m := range ms {
		if m.Block != "" {
			blocks = append(blocks, m.Block)
		}
	}
	if ct.Host != "" && len(blocks) > 0 {
		if err := s.hosts.Release(ctx, ct.Host, ct.UUID, blocks); err != nil {
			return err
		}
	}
	var errs []error
	for _, m := range ms {
		if err := s.volumes.Detached(ctx, m.AttachmentID); err != nil {
			errs = append(errs, err)
			continue
		}
		if m.AutoCreated && (!m.Keep || unmade) {
			if err := s.volumes.Delete(ctx, m.VolumeID); err != nil && !api.IsNotFound(err) {
				errs = append(errs, err)
				continue
			}
		}
		s.db.ExecContext(ctx, `DELETE FROM container_mounts WHERE container_uuid=? AND position=?`, ct.UUID, m.Position)
	}
	return errors.Join(errs...)
}

// unrecord undoes a create that failed before it was answered.
func (s *Service) unrecord(ctx context.Context, c *api.Credentials, id string) {
	ctx = context.WithoutCancel(ctx)
	ct, err := s.loadContainer(ctx, s.db, id)
	if err != nil {
		return
	}
	ct.Host = "" // nothing was made on the host yet
	s.releaseMounts(ctx, ct, true)
	s.dropRecord(ctx, id)
}

// recordFiles records a new container's injected files, in its create
// transaction.
func recordFiles(ctx context.Context, tx *sql.Tx, id string, ms []MountRequest) error {
	for i, m := range ms {
		if !m.File {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO container_files(container_uuid, position, destination, data) VALUES (?, ?, ?, ?)`,
			id, i, m.Destination, m.Data); err != nil {
			return err
		}
	}
	return nil
}

// filesOf returns the files a container is given.
func (s *Service) filesOf(ctx context.Context, id string) ([]VolumeMount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT destination, data FROM container_files WHERE container_uuid=? ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VolumeMount
	for rows.Next() {
		m := VolumeMount{File: true}
		if err := rows.Scan(&m.Destination, &m.Data); err != nil {
			return nil, err
		}
		if m.Data == nil {
			m.Data = []byte{}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
