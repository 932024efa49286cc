package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/monostack/monostack/internal/blockdev"
	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// Images opens an image's bytes for the agent (over the Image API in a
// scaled-out cloud; in-process for `monostack up`).
type Images interface {
	OpenImage(ctx context.Context, id string) (io.ReadCloser, runtime.ImageFormat, error)
}

// ServerRequest is the desired state of one server on a host.
type ServerRequest struct {
	Spec runtime.Spec `json:"spec"`
	// ConfigDrive holds the config drive's files by path
	// ("openstack/latest/meta_data.json"); it is mounted read-only at
	// /mnt/config.
	ConfigDrive map[string][]byte `json:"config_drive,omitempty"`
	// Running: start the server when it is not running (false: create it
	// and leave it created or stopped, so that ports can be plugged first).
	Running bool `json:"running"`
	// VolumeMounts are volumes given to the container as filesystems
	// (formatted on first use), mounted at Create.
	VolumeMounts []VolumeMount `json:"volume_mounts,omitempty"`
	// RootVolume, for a server booted from a volume, is the volume of the
	// host's block store whose filesystem is the server's root: the agent
	// attaches it and gives its device as Spec.RootDevice (Spec.Image is
	// then empty).
	RootVolume *VolumeDevice `json:"root_volume,omitempty"`
	// Files are injected into the container at Create (files.go).
	Files []FileMount `json:"files,omitempty"`
}

// ServerAction is a power action on a server.
type ServerAction struct {
	ID      string        `json:"id"`
	Action  string        `json:"action"` // start, stop, reboot, kill, pause, resume, delete
	Timeout time.Duration `json:"timeout,omitempty"`
	Signal  int           `json:"signal,omitempty"`
}

// ConsoleRequest asks for the tail of a server's console.
type ConsoleRequest struct {
	ID   string `json:"id"`
	Tail int64  `json:"tail"`
	// Logs, when set, asks for the lines it chooses (timestamps, since,
	// streams, tail in lines) instead of the last Tail bytes.
	Logs *shim.LogOptions `json:"logs,omitempty"`
}

func computeSubject(host, verb string) string { return "agent." + host + ".compute." + verb }

// ComputeAgent serves compute commands with a runtime.
type ComputeAgent struct {
	host     string
	b        *bus.Bus
	rt       runtime.Runtime
	images   Images
	driveDir string
	blocks   blockdev.Store
	stops    []func()
}

// SetBlocks gives the agent the host's block store, whose volumes it
// attaches to servers. Call it before Start.
func (a *ComputeAgent) SetBlocks(b blockdev.Store) { a.blocks = b }

// NewCompute makes the compute side of host's agent; config drives are
// written under driveDir.
func NewCompute(host string, b *bus.Bus, rt runtime.Runtime, images Images, driveDir string) *ComputeAgent {
	return &ComputeAgent{host: host, b: b, rt: rt, images: images, driveDir: driveDir}
}

// Start subscribes to the host's compute commands.
func (a *ComputeAgent) Start() error {
	subs := []func() (func(), error){
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "ensure"), func(r ServerRequest) string { return r.Spec.ID }, a.ensure)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "action"), func(r ServerAction) string { return r.ID }, a.action)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "list"), unkeyed[struct{}], a.list)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "console"), unkeyed[ConsoleRequest], a.console)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "snapshot"), func(r SnapshotRequest) string { return r.ID }, a.snapshot)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "volumes"), func(r VolumesRequest) string { return r.ID }, a.volumes)
		},
	}
	subs = append(subs, a.containerSubs()...)
	for _, s := range subs {
		stop, err := s()
		if err != nil {
			a.Close()
			return err
		}
		a.stops = append(a.stops, stop)
	}
	return nil
}

// unkeyed: requests that only read run side by side, even for one server.
func unkeyed[Req any](Req) string { return "" }

// Close stops taking commands; containers keep running under their shims.
func (a *ComputeAgent) Close() error {
	for _, s := range a.stops {
		s()
	}
	a.stops = nil
	return a.rt.Close()
}

func (a *ComputeAgent) ensure(ctx context.Context, req ServerRequest) (runtime.State, error) {
	spec := req.Spec
	if v := req.RootVolume; v != nil {
		dev, err := a.attachRoot(ctx, spec.ID, *v)
		if err != nil {
			return runtime.State{}, err
		}
		spec.Image, spec.RootDevice = "", dev
	} else if err := a.ensureImage(ctx, spec.Image); err != nil {
		return runtime.State{}, err
	}
	if len(req.ConfigDrive) > 0 {
		dir, err := a.writeDrive(spec.ID, req.ConfigDrive)
		if err != nil {
			return runtime.State{}, err
		}
		spec.Mounts = append(spec.Mounts, runtime.Mount{Source: dir, Destination: "/mnt/config", ReadOnly: true})
	}
	st, err := a.rt.State(ctx, spec.ID)
	if errors.Is(err, runtime.ErrNotFound) {
		if len(req.VolumeMounts) > 0 {
			mounts, err := a.mountVolumes(ctx, spec.ID, req.VolumeMounts)
			if err != nil {
				return runtime.State{}, err
			}
			spec.Mounts = append(spec.Mounts, mounts...)
		}
		if len(req.Files) > 0 {
			mounts, err := a.writeFiles(spec.ID, req.Files)
			if err != nil {
				return runtime.State{}, err
			}
			spec.Mounts = append(spec.Mounts, mounts...)
		}
		st, err = a.rt.Create(ctx, spec)
	} else if err == nil && spec.RootDevice != "" {
		// Created again: the runtime takes the root device's path, which
		// changes when the volume is attached again (after a host
		// restart).
		st, err = a.rt.Create(ctx, spec)
	}
	if err != nil {
		return st, err
	}
	if req.Running && (st.Status == runtime.Created || st.Status == runtime.Stopped) {
		if err := a.rt.Start(ctx, spec.ID); err != nil {
			return st, err
		}
		return a.rt.State(ctx, spec.ID)
	}
	return st, nil
}

// ensureImage unpacks image id into the runtime unless it is there.
func (a *ComputeAgent) ensureImage(ctx context.Context, id string) error {
	have, err := a.rt.Images(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(have, id) {
		return nil
	}
	rc, format, err := a.images.OpenImage(ctx, id)
	if err != nil {
		return fmt.Errorf("image %s: %w", id, err)
	}
	_, err = a.rt.EnsureImage(ctx, id, format, func() (io.ReadCloser, error) { return rc, nil })
	rc.Close()
	if err != nil {
		return fmt.Errorf("image %s: %w", id, err)
	}
	return nil
}

// writeDrive writes the config drive's files into a directory of its own,
// once: the directory is bind-mounted into the server, so it is never
// replaced while the server exists (a new directory would not be seen).
func (a *ComputeAgent) writeDrive(id string, files map[string][]byte) (string, error) {
	dir := filepath.Join(a.driveDir, id)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	for name, data := range files {
		clean := filepath.Clean("/" + name)
		if strings.Contains(name, "..") {
			return "", fmt.Errorf("config drive: bad path %q", name)
		}
		p := filepath.Join(tmp, clean)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return "", err
		}
	}
	os.RemoveAll(dir)
	return dir, os.Rename(tmp, dir)
}

func (a *ComputeAgent) action(ctx context.Context, act ServerAction) (runtime.State, error) {
	timeout := act.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var err error
	switch act.Action {
	case "start":
		if err = a.reattachRoot(ctx, act.ID); err == nil {
			err = a.rt.Start(ctx, act.ID)
		}
	case "stop":
		err = a.rt.Stop(ctx, act.ID, timeout)
	case "reboot":
		if err = a.rt.Stop(ctx, act.ID, timeout); err == nil {
			if err = a.reattachRoot(ctx, act.ID); err == nil {
				err = a.rt.Start(ctx, act.ID)
			}
		}
	case "kill":
		err = a.rt.Kill(ctx, act.ID, syscall.Signal(act.Signal))
	case "pause":
		err = a.rt.Pause(ctx, act.ID)
	case "resume":
		err = a.rt.Resume(ctx, act.ID)
	case "delete":
		if err = a.rt.Delete(ctx, act.ID); err == nil || errors.Is(err, runtime.ErrNotFound) {
			os.RemoveAll(filepath.Join(a.driveDir, act.ID))
			if err := a.removeFiles(act.ID); err != nil {
				return runtime.State{}, err
			}
			if err := a.unmountVolumes(act.ID); err != nil {
				return runtime.State{}, err
			}
			if err := a.forgetRoot(act.ID); err != nil {
				return runtime.State{}, err
			}
			return runtime.State{ID: act.ID, Status: runtime.Stopped}, nil
		}
	default:
		return runtime.State{}, fmt.Errorf("unknown action %q", act.Action)
	}
	if err != nil {
		return runtime.State{}, err
	}
	return a.rt.State(ctx, act.ID)
}

func (a *ComputeAgent) list(ctx context.Context, _ struct{}) ([]runtime.State, error) {
	return a.rt.List(ctx)
}

func (a *ComputeAgent) console(ctx context.Context, req ConsoleRequest) ([]byte, error) {
	if req.Logs == nil {
		return a.rt.ConsoleLog(ctx, req.ID, req.Tail)
	}
	if lr, ok := a.rt.(logReader); ok {
		s, err := lr.Logs(ctx, req.ID, *req.Logs)
		return []byte(s), err
	}
	// A runtime without an index of its logs: all of it as stdout, of
	// no known time.
	b, err := a.rt.ConsoleLog(ctx, req.ID, 0)
	if err != nil {
		return nil, err
	}
	return []byte(shim.FormatLogs([]shim.Part{{Stream: shim.Stdout, Data: b}}, *req.Logs)), nil
}

// logReader is a runtime that reads its consoles as docker logs does.
type logReader interface {
	Logs(ctx context.Context, id string, opts shim.LogOptions) (string, error)
}

// Logs returns the lines of a container's console that opts choose.
func (c *ComputeClient) Logs(ctx context.Context, host, id string, opts shim.LogOptions) ([]byte, error) {
	return bus.Call[ConsoleRequest, []byte](ctx, c.Bus, computeSubject(host, "console"), ConsoleRequest{ID: id, Logs: &opts})
}

// SnapshotRequest asks for a server's root filesystem as a tarball.
type SnapshotRequest struct {
	ID string `json:"id"`
}

// snapshot writes the server's root filesystem to a file next to the
// config drives and answers its path; the caller reads it and removes it.
// (The bus carries no large payloads; a remote agent would upload the
// snapshot over the Image API instead.)
func (a *ComputeAgent) snapshot(ctx context.Context, req SnapshotRequest) (string, error) {
	dir := filepath.Join(filepath.Dir(a.driveDir), "snapshots")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, req.ID+"-*.tar")
	if err != nil {
		return "", err
	}
	err = a.rt.Snapshot(ctx, req.ID, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// ComputeClient sends a host's agent compute commands over the bus.
type ComputeClient struct{ Bus *bus.Bus }

// Ensure makes the server on host match req and returns its state.
func (c *ComputeClient) Ensure(ctx context.Context, host string, req ServerRequest) (runtime.State, error) {
	return bus.Call[ServerRequest, runtime.State](ctx, c.Bus, computeSubject(host, "ensure"), req)
}

// Action runs a power action on a server of host.
func (c *ComputeClient) Action(ctx context.Context, host string, act ServerAction) (runtime.State, error) {
	return bus.Call[ServerAction, runtime.State](ctx, c.Bus, computeSubject(host, "action"), act)
}

// List returns the servers the host's runtime has.
func (c *ComputeClient) List(ctx context.Context, host string) ([]runtime.State, error) {
	return bus.Call[struct{}, []runtime.State](ctx, c.Bus, computeSubject(host, "list"), struct{}{})
}

// Console returns the tail of a server's console log.
func (c *ComputeClient) Console(ctx context.Context, host, id string, tail int64) ([]byte, error) {
	return bus.Call[ConsoleRequest, []byte](ctx, c.Bus, computeSubject(host, "console"), ConsoleRequest{ID: id, Tail: tail})
}

// Snapshot asks the host for a server's root filesystem and returns the
// path of the tarball the agent wrote (same host only).
func (c *ComputeClient) Snapshot(ctx context.Context, host, id string) (string, error) {
	return bus.Call[SnapshotRequest, string](ctx, c.Bus, computeSubject(host, "snapshot"), SnapshotRequest{ID: id})
}

// VolumesRequest is the desired set of a server's volumes: each of Attach
// at its device, and the host's hold on the Detach ones released.
type VolumesRequest struct {
	ID     string         `json:"id"`
	Attach []VolumeDevice `json:"attach,omitempty"`
	Detach []string       `json:"detach,omitempty"`
}

// VolumeDevice is a volume given to a server as a device node.
type VolumeDevice struct {
	// Block names the volume in the host's block store.
	Block string `json:"block"`
	// Device is its path in the server (/dev/vdb).
	Device   string `json:"device"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// volumes attaches each volume to a block device of the host (idempotent:
// an attached volume keeps its device), gives the server exactly those
// devices, then detaches the released volumes' devices. A server that is
// gone (deleted with its volumes) only has its volumes released.
func (a *ComputeAgent) volumes(ctx context.Context, req VolumesRequest) (struct{}, error) {
	if a.blocks == nil {
		return struct{}{}, errors.New("this host has no block store")
	}
	var devs []runtime.Device
	for _, v := range req.Attach {
		dev, err := a.blocks.Attach(ctx, v.Block, v.ReadOnly)
		if err != nil {
			return struct{}{}, fmt.Errorf("volume %s: %w", v.Block, err)
		}
		devs = append(devs, runtime.Device{HostPath: dev, Path: v.Device, ReadOnly: v.ReadOnly})
	}
	err := a.rt.SetDevices(ctx, req.ID, devs)
	if errors.Is(err, runtime.ErrNotFound) && len(req.Attach) == 0 {
		// The server or container is gone: release what it held,
		// filesystems of its volumes included.
		err = a.unmountVolumes(req.ID)
	}
	if err != nil {
		return struct{}{}, err
	}
	var errs []error
	for _, b := range req.Detach {
		if err := a.blocks.Detach(ctx, b); err != nil && !errors.Is(err, blockdev.ErrNotFound) {
			errs = append(errs, fmt.Errorf("volume %s: %w", b, err))
		}
	}
	return struct{}{}, errors.Join(errs...)
}

// SetVolumes makes a server's volumes on host what req says.
func (c *ComputeClient) SetVolumes(ctx context.Context, host string, req VolumesRequest) error {
	_, err := bus.Call[VolumesRequest, struct{}](ctx, c.Bus, computeSubject(host, "volumes"), req)
	return err
}
