package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// A server booted from a volume (block_device_mapping_v2 with a mapping of
// boot index 0 to a volume) has that volume as its root: its host mounts
// the volume's filesystem as the server's root (no copy-on-write layer over
// an image), so what the server writes stays on the volume. The volume is
// recorded in compute_volume_attachments as device /dev/vda, like the
// volumes attached later, and shows in os-extended-volumes:volumes_attached
// and in Block Storage ("Attached to <server> on /dev/vda"); it cannot be
// detached, and goes (or is deleted, delete_on_termination) with the
// server. Its image field is "", as Nova shows volume-backed servers.
//
// A mapping of an existing volume is reserved at once, so that a volume in
// use is refused with a 400 as Nova does. A mapping of an image, a
// snapshot or a blank volume is made into a volume while the server
// builds (task_state block_device_mapping), under an id chosen when the
// server is asked for, so that a build repeated after a crash finds it.
// Other mappings of volumes (boot index other than 0) are attached at
// /dev/vdb on as the server boots.

// rootDevice is the device name of a server's root volume (Nova's
// root_device_name).
const rootDevice = "/dev/vda"

// taskBlockDevices is the task_state of a build making its volumes.
const taskBlockDevices = "block_device_mapping"

// BootVolumes is implemented by Volumes that can make volumes for block
// device mappings whose source is not a volume, and tell a volume's
// state. Without it, only existing volumes can be mapped.
type BootVolumes interface {
	// CreateVolume makes volume v.ID in the project c acts for (a build
	// passes the server's project and user). A volume of that id that
	// exists is not made again.
	CreateVolume(ctx context.Context, c *api.Credentials, v NewVolume) error
	// Volume reports a volume the caller may see; a 404 otherwise.
	Volume(ctx context.Context, c *api.Credentials, id string) (VolumeInfo, error)
}

// NewVolume is a volume compute makes for a server: blank, or from an
// image or a snapshot.
type NewVolume struct {
	ID         string
	SizeGB     int64 // 0: the snapshot's size
	ImageID    string
	SnapshotID string
	VolumeType string
}

// VolumeInfo is a volume as compute needs to know it.
type VolumeInfo struct {
	ID, Status string
	SizeGB     int64
	Bootable   bool
	// Error says why a volume in status error is.
	Error string
}

// blockDevice is one volume of a server's block device mapping, as the
// create request asked for it (kept in requested, for the build).
type blockDevice struct {
	// BootIndex 0 is the root; -1 is a volume that is not booted from.
	BootIndex int `json:"boot_index"`
	// Source is volume, image, snapshot or blank.
	Source string `json:"source_type"`
	// UUID is the image or snapshot a volume is made from.
	UUID string `json:"uuid,omitempty"`
	// VolumeID is the volume: the one given, or the id of the one to make.
	VolumeID            string `json:"volume_id"`
	SizeGB              int64  `json:"volume_size,omitempty"`
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
	// Device is the device asked for ("" for the next free).
	Device     string `json:"device_name,omitempty"`
	Tag        string `json:"tag,omitempty"`
	VolumeType string `json:"volume_type,omitempty"`
}

// volumeBacked reports whether the server's root is a volume.
func (sv Server) volumeBacked() bool {
	bd := sv.Requested.BlockDevices
	return len(bd) > 0 && bd[0].BootIndex == 0
}

// bdmBody is one mapping of block_device_mapping_v2 on the wire.
type bdmBody struct {
	BootIndex           json.RawMessage `json:"boot_index"`
	SourceType          string          `json:"source_type"`
	DestinationType     string          `json:"destination_type"`
	UUID                string          `json:"uuid"`
	VolumeSize          json.RawMessage `json:"volume_size"`
	DeleteOnTermination json.RawMessage `json:"delete_on_termination"`
	DeviceName          string          `json:"device_name"`
	Tag                 string          `json:"tag"`
	VolumeType          string          `json:"volume_type"`
	GuestFormat         string          `json:"guest_format"`
	DiskBus             string          `json:"disk_bus"`
	DeviceType          string          `json:"device_type"`
	NoDevice            json.RawMessage `json:"no_device"`
}

func invalidBDM(format string, args ...any) error {
	return api.BadRequest("Block Device Mapping is Invalid: "+format, args...)
}

var errBootSequence = invalidBDM("Boot sequence for the instance and image/block device mapping combination is not valid.")

// rawInt reads an integer given as a number or a string; ok is false for
// null or nothing.
func rawInt(raw json.RawMessage) (n int64, ok bool, err error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(strings.Trim(s, `"`), 10, 64)
	return n, err == nil, err
}

// rawBool reads a boolean as Nova's schema takes it (true, "True", "1",
// "yes", "on", ...).
func rawBool(raw json.RawMessage) (bool, error) {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(string(raw)), `"`)) {
	case "", "null", "false", "0", "no", "off":
		return false, nil
	case "true", "1", "yes", "on":
		return true, nil
	}
	return false, api.BadRequest("Invalid input for field/attribute delete_on_termination. Value: %s. %s is not of type 'boolean', 'string'", raw, raw)
}

// parseBlockDevices checks block_device_mapping_v2 and returns the volumes
// the server gets, its root (boot index 0) first. withImage says the
// request has an imageRef: a mapping of that image to local of boot index
// 0 (what clients send for a server booted from an image) is then the
// image's root, not a volume, and a request with no volume of boot index 0
// boots the image.
func (s *Service) parseBlockDevices(ctx context.Context, c *api.Credentials, raw json.RawMessage, withImage bool) ([]blockDevice, error) {
	if t := strings.TrimSpace(string(raw)); t == "" || t == "null" || t == "[]" {
		return nil, nil
	}
	var body []bdmBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, api.BadRequest("Invalid input for field/attribute block_device_mapping_v2. Value: %s. It must be a list of block device mappings.", raw)
	}
	var out []blockDevice
	roots := 0
	for _, b := range body {
		bd := blockDevice{BootIndex: -1, Source: b.SourceType, Tag: b.Tag, VolumeType: b.VolumeType}
		switch b.SourceType {
		case "volume", "image", "snapshot", "blank":
		default:
			return nil, api.BadRequest("Invalid input for field/attribute source_type. Value: %s. '%s' is not one of ['volume', 'image', 'snapshot', 'blank']", b.SourceType, b.SourceType)
		}
		if n, ok, err := rawInt(b.BootIndex); err != nil {
			return nil, api.BadRequest("Invalid input for field/attribute boot_index. Value: %s. %s is not of type 'integer', 'string', 'null'", b.BootIndex, b.BootIndex)
		} else if ok && n >= 0 {
			bd.BootIndex = int(n)
		}
		dst := b.DestinationType
		if dst == "" {
			dst = "local"
			if b.SourceType == "volume" || b.SourceType == "snapshot" {
				dst = "volume"
			}
		}
		switch {
		case dst == "local" && b.SourceType == "image" && bd.BootIndex == 0 && withImage:
			roots++
			continue // the image of imageRef, booted as a server's image is
		case dst == "local" && b.SourceType == "image":
			return nil, invalidBDM("Mapping image to local is not supported.")
		case dst == "local":
			return nil, invalidBDM("Local disks (ephemeral, swap) are not supported by this cloud; map volumes.")
		case dst != "volume":
			return nil, api.BadRequest("Invalid input for field/attribute destination_type. Value: %s. '%s' is not one of ['local', 'volume']", dst, dst)
		}
		switch {
		case b.SourceType == "blank" && b.UUID != "":
			return nil, invalidBDM("Invalid device UUID.")
		case b.SourceType != "blank" && b.UUID == "":
			return nil, invalidBDM("Missing device UUID.")
		}
		size, _, err := rawInt(b.VolumeSize)
		if err != nil || size < 0 {
			return nil, api.BadRequest("Invalid input for field/attribute volume_size. Value: %s. %s is not of type 'integer', 'string'", b.VolumeSize, b.VolumeSize)
		}
		bd.SizeGB = size
		if bd.DeleteOnTermination, err = rawBool(b.DeleteOnTermination); err != nil {
			return nil, err
		}
		if d := b.DeviceName; d != "" && bd.BootIndex != 0 {
			if !strings.HasPrefix(d, "/dev/") {
				d = "/dev/" + d
			}
			if !devicePattern.MatchString(d) {
				return nil, api.BadRequest("The supplied device path (%s) is invalid.", b.DeviceName)
			}
			bd.Device = "/dev/vd" + d[len(d)-1:]
		}
		switch b.SourceType {
		case "volume":
			bd.VolumeID = b.UUID
		case "image":
			img, err := s.images.Lookup(ctx, c, b.UUID)
			if api.IsNotFound(err) {
				return nil, invalidBDM("failed to get image %s.", b.UUID)
			}
			if err != nil {
				return nil, err
			}
			if img.Status != "active" {
				return nil, api.BadRequest("Image %s is not active.", b.UUID)
			}
			if size == 0 {
				return nil, invalidBDM("Images with destination_type 'volume' need to have a non-zero size specified")
			}
			const gib = 1 << 30
			if min := max(img.MinDisk*gib, img.Size); size*gib < min {
				return nil, api.BadRequest("Volume is smaller than the minimum size specified in image metadata. Volume size is %d bytes, minimum size is %d bytes.", size*gib, min)
			}
			bd.UUID, bd.VolumeID = b.UUID, newUUID()
		case "snapshot":
			bd.UUID, bd.VolumeID = b.UUID, newUUID()
		case "blank":
			if size == 0 {
				return nil, invalidBDM("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")
			}
			if bd.BootIndex == 0 {
				return nil, errBootSequence
			}
			bd.VolumeID = newUUID()
		}
		if bd.Source != "volume" {
			if _, ok := s.volumes.(BootVolumes); !ok {
				return nil, invalidBDM("this cloud cannot make volumes for servers; map existing volumes.")
			}
		}
		if bd.BootIndex == 0 {
			roots++
		}
		out = append(out, bd)
	}
	if roots > 1 || (roots == 0 && !withImage) {
		return nil, errBootSequence
	}
	if len(out) == 0 {
		return nil, nil
	}
	if s.volumes == nil {
		return nil, api.BadRequest("Block storage is not available in this cloud.")
	}
	seen := map[string]bool{}
	for i, bd := range out {
		if seen[bd.VolumeID] {
			return nil, api.BadRequest("Invalid volume: volume %s is mapped twice.", bd.VolumeID)
		}
		seen[bd.VolumeID] = true
		if bd.BootIndex == 0 && i > 0 {
			out[0], out[i] = out[i], out[0]
		}
	}
	return out, nil
}

// projectCreds are credentials of the server's project and user, for the
// calls a build makes to Block Storage on their behalf.
func projectCreds(sv Server) *api.Credentials {
	return &api.Credentials{ProjectID: sv.ProjectID, UserID: sv.UserID, Roles: []string{"member", "reader"}}
}

// reserveVolumes reserves the existing volumes a server being created maps
// (Nova makes their attachments in the API), recording each as an
// attachment of the server. The server's record does not exist yet: a
// crash before it does leaves rows that Start gives back (see
// attachVolume). On failure, what was reserved is given back.
func (s *Service) reserveVolumes(ctx context.Context, c *api.Credentials, serverID string, bds []blockDevice) (err error) {
	var done []serverVolume
	defer func() {
		if err != nil {
			s.unreserveRows(context.WithoutCancel(ctx), done)
		}
	}()
	used := []serverVolume{}
	for _, bd := range bds {
		if bd.Source != "volume" {
			continue
		}
		if bv, ok := s.volumes.(BootVolumes); ok && bd.BootIndex == 0 {
			info, err := bv.Volume(ctx, c, bd.VolumeID)
			if api.IsNotFound(err) {
				return invalidBDM("failed to get volume %s.", bd.VolumeID)
			}
			if err != nil {
				return err
			}
			if !info.Bootable {
				return api.BadRequest("Block Device %s is not bootable.", bd.VolumeID)
			}
		}
		row, err := s.recordBlockDevice(ctx, serverID, bd, used)
		if err != nil {
			return err
		}
		done = append(done, row)
		if row, err = s.reserveRow(ctx, c, row); err != nil {
			if api.IsNotFound(err) {
				return invalidBDM("failed to get volume %s.", bd.VolumeID)
			}
			return err
		}
		done[len(done)-1] = row
		used = append(used, row)
	}
	return nil
}

// unreserveRows gives back the volumes of rows and removes the rows.
func (s *Service) unreserveRows(ctx context.Context, rows []serverVolume) {
	for _, row := range rows {
		if row.Status != "reserving" {
			if err := s.volumes.Unreserve(ctx, row.AttachmentID); err != nil {
				s.log.Warn("giving back a volume", "server", row.ServerID, "volume", row.VolumeID, "err", err)
				continue
			}
		}
		s.db.ExecContext(ctx, `DELETE FROM compute_volume_attachments WHERE id=?`, row.ID)
	}
}

// recordBlockDevice records a mapped volume as an attachment of the server
// (status reserving), at /dev/vda for the root, else at the device asked
// for or the next free one after used.
func (s *Service) recordBlockDevice(ctx context.Context, serverID string, bd blockDevice, used []serverVolume) (serverVolume, error) {
	device := rootDevice
	if bd.BootIndex != 0 {
		var err error
		if device, err = nextDevice(used); err != nil {
			return serverVolume{}, err
		}
		free := bd.Device != ""
		for _, u := range used {
			free = free && u.Device != bd.Device
		}
		if free {
			device = bd.Device
		}
	}
	row := serverVolume{ID: newUUID(), ServerID: serverID, VolumeID: bd.VolumeID, AttachmentID: newUUID(), Device: device,
		Tag: bd.Tag, Status: "reserving", DeleteOnTermination: bd.DeleteOnTermination}
	_, err := s.db.ExecContext(ctx, `INSERT INTO compute_volume_attachments(id, server_id, volume_id, attachment_id, device, block,
		read_only, tag, delete_on_termination, status, created_at) VALUES (?, ?, ?, ?, ?, '', 0, ?, ?, ?, ?)`,
		row.ID, row.ServerID, row.VolumeID, row.AttachmentID, row.Device, nilIfEmpty(row.Tag), row.DeleteOnTermination, row.Status, nowText())
	return row, err
}

// reserveRow reserves a recorded volume in Block Storage; the row goes to
// attaching with the volume's block. A failure removes the row.
func (s *Service) reserveRow(ctx context.Context, c *api.Credentials, row serverVolume) (serverVolume, error) {
	conn, err := s.volumes.Reserve(ctx, c, row.VolumeID, row.ServerID, row.AttachmentID)
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
	}
	return row, err
}

// errDeleted: the server went away while its build waited.
var errDeleted = errors.New("the server was deleted")

// prepareBlockDevices makes the volumes a building server maps and
// reserves them all (those reserved by the API already are left). It is
// safe to run again after a crash: volumes are made under the ids chosen
// at create, and recorded attachments are kept.
func (s *Service) prepareBlockDevices(ctx context.Context, sv Server) error {
	c := projectCreds(sv)
	for _, bd := range sv.Requested.BlockDevices {
		rows, err := s.serverVolumes(ctx, s.db, sv.ID)
		if err != nil {
			return err
		}
		var have *serverVolume
		for i := range rows {
			if rows[i].VolumeID == bd.VolumeID {
				have = &rows[i]
			}
		}
		if have != nil && have.Status == "reserving" { // a crash between recording and reserving
			s.unreserveRows(ctx, []serverVolume{*have})
			have = nil
		}
		if have != nil {
			continue
		}
		if bd.Source != "volume" {
			if err := s.makeVolume(ctx, c, sv, bd); err != nil {
				return err
			}
		}
		row, err := s.recordBlockDevice(ctx, sv.ID, bd, rows)
		if err != nil {
			return err
		}
		if _, err := s.reserveRow(ctx, c, row); err != nil {
			return fmt.Errorf("volume %s: %w", bd.VolumeID, err)
		}
	}
	return nil
}

// makeVolume has Block Storage make a mapped volume and waits until it is
// available.
func (s *Service) makeVolume(ctx context.Context, c *api.Credentials, sv Server, bd blockDevice) error {
	bv := s.volumes.(BootVolumes) // checked when the server was asked for
	nv := NewVolume{ID: bd.VolumeID, SizeGB: bd.SizeGB, VolumeType: bd.VolumeType}
	switch bd.Source {
	case "image":
		nv.ImageID = bd.UUID
	case "snapshot":
		nv.SnapshotID = bd.UUID
	}
	if err := bv.CreateVolume(ctx, c, nv); err != nil {
		return fmt.Errorf("creating volume %s: %s", bd.VolumeID, api.AsError(err).Message)
	}
	start := time.Now()
	deadline := start.Add(s.cfg.BuildTimeout)
	for attempts := 1; ; attempts++ {
		info, err := bv.Volume(ctx, c, bd.VolumeID)
		if err != nil {
			return fmt.Errorf("volume %s: %w", bd.VolumeID, err)
		}
		switch {
		case info.Status == "available":
			return nil
		case info.Status != "creating" && info.Status != "downloading" || time.Now().After(deadline):
			msg := fmt.Sprintf("Volume %s did not finish being created even after we waited %d seconds or %d attempts. And its status is %s.",
				bd.VolumeID, int(time.Since(start).Seconds()), attempts, info.Status)
			if info.Error != "" {
				msg += " (" + info.Error + ")"
			}
			return errors.New(msg)
		}
		if cur, err := s.loadServer(ctx, s.db, sv.ID); err != nil || cur.Deleted || cur.TaskState == taskDeleting {
			return errDeleted
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// attachBlockDevices ends a build's attachments once the host runs the
// server: the data volumes are given to it, and Block Storage records
// every volume attached (in-use, on its device).
func (s *Service) attachBlockDevices(ctx context.Context, sv Server) error {
	rows, err := s.serverVolumes(ctx, s.db, sv.ID)
	if err != nil {
		return err
	}
	if hv := hostVolumes(rows, ""); len(hv) > 0 {
		if err := s.setVolumes(ctx, sv.Host, sv.ID, hv, nil); err != nil {
			return fmt.Errorf("attaching volumes: %w", err)
		}
	}
	for _, row := range rows {
		if row.Status != "attaching" {
			continue
		}
		if err := s.volumes.Attached(ctx, row.AttachmentID, sv.Host, row.Device); err != nil {
			return fmt.Errorf("volume %s: %w", row.VolumeID, err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE compute_volume_attachments SET status='attached' WHERE id=?`, row.ID); err != nil {
			return err
		}
	}
	return nil
}

// rootVolume is the host's view of a server's root volume, or nil.
func rootVolume(rows []serverVolume) *HostVolume {
	for _, r := range rows {
		if r.Device == rootDevice && (r.Status == "attaching" || r.Status == "attached") {
			return &HostVolume{Block: r.Block, Device: r.Device, ReadOnly: r.ReadOnly}
		}
	}
	return nil
}

// deleteUnattached deletes the volumes made for a server that never got
// recorded as its attachments (a build that failed while they were made)
// and were to be deleted with it; rows are the server's attachments
// before its volumes were released.
func (s *Service) deleteUnattached(ctx context.Context, sv Server, rows []serverVolume) {
	recorded := map[string]bool{}
	for _, r := range rows {
		recorded[r.VolumeID] = true
	}
	for _, bd := range sv.Requested.BlockDevices {
		if bd.Source == "volume" || !bd.DeleteOnTermination || recorded[bd.VolumeID] || s.volumes == nil {
			continue
		}
		if err := s.volumes.DeleteOnTermination(ctx, bd.VolumeID); err != nil {
			s.log.Warn("deleting a volume made for a server", "server", sv.ID, "volume", bd.VolumeID, "err", err)
		}
	}
}
