package app

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/monostack/monostack/internal/agent"
	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blockdev/loopfile"
	"github.com/monostack/monostack/internal/compute"
	"github.com/monostack/monostack/internal/config"
	"github.com/monostack/monostack/internal/image"
	"github.com/monostack/monostack/internal/objectstore"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/volume"
)

// volumesDir holds the volumes' files, under the data dir.
const volumesDir = "volumes"

// volumeImages is the volume service's view of the Image service.
type volumeImages struct{ img *image.Service }

func (a volumeImages) Lookup(ctx context.Context, c *api.Credentials, id string) (volume.Image, error) {
	im, err := a.img.Lookup(ctx, c, id)
	if err != nil {
		return volume.Image{}, err
	}
	f := im.Format
	out := volume.Image{ID: im.ID, Status: im.Status, MinDisk: im.MinDisk, DiskFormat: im.DiskFormat,
		ContainerFormat: im.ContainerFormat, Checksum: im.Checksum,
		Format: runtime.ImageFormat{Kind: f.Kind, Compression: f.Compression, Config: f.Config, Layers: f.Layers}}
	if im.Name != nil {
		out.Name = *im.Name
	}
	if im.Size != nil {
		out.Size = *im.Size
	}
	return out, nil
}

func (a volumeImages) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, _, err := a.img.Open(ctx, id)
	return rc, err
}

// computeVolumes is compute's view of the volume service.
type computeVolumes struct{ vol *volume.Service }

func (a computeVolumes) Reserve(ctx context.Context, c *api.Credentials, volumeID, serverID, attachmentID string) (compute.VolumeConnection, error) {
	conn, err := a.vol.Reserve(ctx, c, volumeID, serverID, attachmentID)
	return compute.VolumeConnection{AttachmentID: conn.AttachmentID, Block: conn.Block, ReadOnly: conn.ReadOnly}, err
}

func (a computeVolumes) Attached(ctx context.Context, attachmentID, host, device string) error {
	return a.vol.Attached(ctx, attachmentID, host, device)
}
func (a computeVolumes) Unreserve(ctx context.Context, id string) error {
	return a.vol.Unreserve(ctx, id)
}
func (a computeVolumes) BeginDetach(ctx context.Context, id string) error {
	return a.vol.BeginDetach(ctx, id)
}
func (a computeVolumes) RollDetach(ctx context.Context, id string) error {
	return a.vol.RollDetach(ctx, id)
}
func (a computeVolumes) Detached(ctx context.Context, id string) error {
	return a.vol.Detached(ctx, id)
}
func (a computeVolumes) DeleteOnTermination(ctx context.Context, id string) error {
	return a.vol.DeleteOnTermination(ctx, id)
}

// CreateVolume and Volume make computeVolumes a compute.BootVolumes: the
// volumes of a server's block device mapping.
func (a computeVolumes) CreateVolume(ctx context.Context, c *api.Credentials, v compute.NewVolume) error {
	name := "" // as Nova names the volumes it makes
	_, err := a.vol.Create(ctx, c, volume.NewVolume{ID: v.ID, ProjectID: c.ProjectID, UserID: c.UserID, Name: &name,
		Size: v.SizeGB, ImageID: v.ImageID, SnapshotID: v.SnapshotID, Type: v.VolumeType})
	return err
}

func (a computeVolumes) Volume(ctx context.Context, c *api.Credentials, id string) (compute.VolumeInfo, error) {
	v, err := a.vol.Get(ctx, c, id)
	return compute.VolumeInfo{ID: v.ID, Status: v.Status, SizeGB: v.Size, Bootable: v.Bootable, Error: v.Error}, err
}

// SetVolumes makes computeHosts a compute.VolumeHosts: the agent attaches
// the volumes' loop devices and gives them to the server.
func (h *computeHosts) SetVolumes(ctx context.Context, host, serverID string, attach []compute.HostVolume, detach []string) error {
	req := agent.VolumesRequest{ID: serverID, Detach: detach}
	for _, v := range attach {
		req.Attach = append(req.Attach, agent.VolumeDevice{Block: v.Block, Device: v.Device, ReadOnly: v.ReadOnly})
	}
	return h.client.SetVolumes(ctx, host, req)
}

// openBlocks is this host's block store: the volumes' sparse files under
// the data dir, given to servers as loop devices.
func openBlocks(cfg config.Config, log *slog.Logger) (*loopfile.Store, error) {
	return loopfile.New(filepath.Join(cfg.DataDir, volumesDir), log.With("component", "blockdev"))
}

// startVolume runs the Block Storage service over blocks and registers it
// in the catalog as volumev3 and block-storage.
func startVolume(ctx context.Context, c *cloud, cfg config.Config, blocks *loopfile.Store, img *image.Service, obj *objectstore.Service, log *slog.Logger) (*volume.Service, error) {
	// Backups go to the object store, in the project's own account.
	// Volumes from root filesystem images are made in tmp/volume first.
	vcfg := volume.Config{Host: "monostack", TempDir: filepath.Join(cfg.DataDir, "tmp", "volume")}
	svc, err := volume.New(ctx, c.db, vcfg, blocks, volumeImages{img}, obj, log.With("service", "volume"))
	if err != nil {
		return nil, err
	}
	c.onClose(svc.Close)
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	url := cfg.BaseURL() + "/volume/v3/%(project_id)s"
	if err := c.identity.EnsureService(ctx, "volumev3", "cinderv3", "Cinder Volume Service V3", url); err != nil {
		return nil, err
	}
	if err := c.identity.EnsureService(ctx, "block-storage", "cinder", "Cinder Volume Service", url); err != nil {
		return nil, err
	}
	return svc, nil
}
