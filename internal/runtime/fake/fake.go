// Package fake is an in-memory runtime.Runtime for tests of the layers
// above (compute, containers): it keeps images and containers in a Host
// shared by the runtimes opened on it, follows the lifecycle, errors and
// idempotence of the real runtime (it passes the same conformance suite,
// runtimetest) and runs nothing. Containers run until they are stopped or
// killed; Stop ends them with exit code 0, SIGKILL with 137. Exec answers
// with ExecFunc.
//
// Block devices for Spec.RootDevice are the Host's own (SetBlockDevice),
// each a loop device of a backing file holding the files of a tarball, so
// that root devices can be tested without root; a real block device of
// the machine is taken too, its files unknown.
package fake

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/imagefs"
)

// Host is the machine the fake runtimes share: what one runtime made, a
// new runtime of the same owner finds (a restart).
type Host struct {
	mu      sync.Mutex
	owners  map[string]*owned
	devices map[string]*blockDev
	nextPid int
}

// blockDev is a block device of the host: the loop device of backing,
// holding a filesystem with the files of tar (unknown when nil).
type blockDev struct {
	backing string
	tar     []byte
	names   map[string]bool
}

type owned struct {
	images     map[string]*image
	containers map[string]*container
}

type image struct {
	kind  string
	cfg   runtime.ImageConfig
	tar   []byte          // root filesystem tarballs, for Snapshot
	names map[string]bool // their entries; nil: not checked
}

type container struct {
	spec    runtime.Spec
	img     runtime.ImageConfig
	st      runtime.State
	console []byte
	// rootBacking is what the root device is (see runtime.Spec.RootDevice).
	rootBacking string
}

// NewHost makes an empty host.
func NewHost() *Host {
	return &Host{owners: map[string]*owned{}, devices: map[string]*blockDev{}, nextPid: 1000}
}

// SetBlockDevice makes path a block device of the host: the loop device of
// backing (a file's path, what the device is whatever its name), holding
// a filesystem with the files of the tarball rootfs (nil: files unknown,
// not checked). A path set again names the new device.
func (h *Host) SetBlockDevice(path, backing string, rootfs []byte) error {
	d := &blockDev{backing: backing, tar: rootfs}
	if rootfs != nil {
		var err error
		if d.names, err = tarNames(rootfs); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.devices[path] = d
	return nil
}

// RemoveBlockDevice makes path name no device (a loop device detached).
func (h *Host) RemoveBlockDevice(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.devices, path)
}

// blockDevice looks path up: a device of the host, or a block device of
// the machine (its files unknown, its path what it is).
func (h *Host) blockDevice(path string) (*blockDev, error) {
	if d := h.devices[path]; d != nil {
		return d, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("%w: root device %s is not a block device", runtime.ErrInvalid, path)
	}
	return &blockDev{}, nil
}

// rootInUse reports the container of any owner but except whose root is
// the device of backing (path, for a device with no backing).
func (h *Host) rootInUse(path, backing string, except *container) string {
	for _, o := range h.owners {
		for id, c := range o.containers {
			if c != except && c.spec.RootDevice != "" && ((backing != "" && c.rootBacking == backing) || (backing == "" && c.spec.RootDevice == path)) {
				return id
			}
		}
	}
	return ""
}

// resolveRoot finds the device of c's root: its RootDevice while that is
// still the device it was made with, else a device of the same backing
// (which becomes its RootDevice), as the real runtime does at each mount.
func (h *Host) resolveRoot(c *container) (*blockDev, error) {
	if d, err := h.blockDevice(c.spec.RootDevice); err == nil && d.backing == c.rootBacking {
		return d, nil
	}
	if c.rootBacking != "" {
		for p, d := range h.devices {
			if d.backing == c.rootBacking {
				c.spec.RootDevice = p
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: the root device of %s is not attached", runtime.ErrInvalid, c.spec.ID)
}

// Runtime is a fake runtime of one owner on a Host.
type Runtime struct {
	h     *Host
	owner string
	// ExecFunc answers Exec in a running container; by default every
	// command exits 0 with no output.
	ExecFunc func(id string, spec runtime.ExecSpec) (runtime.ExecResult, error)
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns the runtime of owner on h.
func New(h *Host, owner string) *Runtime {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owners[owner] == nil {
		h.owners[owner] = &owned{images: map[string]*image{}, containers: map[string]*container{}}
	}
	return &Runtime{h: h, owner: owner}
}

// Leftovers describes what of owner the host still holds.
func (h *Host) Leftovers(owner string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.owners[owner]
	if o == nil {
		return ""
	}
	var left []string
	for id := range o.containers {
		left = append(left, "container "+id)
	}
	for id := range o.images {
		left = append(left, "image "+id)
	}
	slices.Sort(left)
	return strings.Join(left, ", ")
}

func (r *Runtime) own() *owned { return r.h.owners[r.owner] }

func (r *Runtime) get(id string) (*container, error) {
	c := r.own().containers[id]
	if c == nil {
		return nil, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
	}
	return c, nil
}

func stateErr(c *container, op string) error {
	return fmt.Errorf("%w: cannot %s container %s: it is %s", runtime.ErrState, op, c.spec.ID, c.st.Status)
}

// EnsureImage reads and checks the image once.
func (r *Runtime) EnsureImage(ctx context.Context, id string, format runtime.ImageFormat, open func() (io.ReadCloser, error)) (runtime.ImageConfig, error) {
	if !runtime.ValidID(id) {
		return runtime.ImageConfig{}, fmt.Errorf("%w: image id %q", runtime.ErrInvalid, id)
	}
	switch format.Kind {
	case runtime.KindRootfsTar, runtime.KindDockerArchive, runtime.KindOCILayout:
	default:
		return runtime.ImageConfig{}, fmt.Errorf("%w: image %s is %q", runtime.ErrUnsupportedImage, id, format.Kind)
	}
	r.h.mu.Lock()
	if img := r.own().images[id]; img != nil {
		r.h.mu.Unlock()
		return img.cfg, nil
	}
	r.h.mu.Unlock()
	rc, err := open()
	if err != nil {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: %w", id, err)
	}
	defer rc.Close()
	img := &image{kind: format.Kind}
	if format.Kind == runtime.KindRootfsTar {
		src, done, err := imagefs.Decompress(rc)
		if err != nil {
			return runtime.ImageConfig{}, err
		}
		img.tar, err = io.ReadAll(src)
		done()
		if err != nil {
			return runtime.ImageConfig{}, err
		}
		if img.names, err = tarNames(img.tar); err != nil {
			return runtime.ImageConfig{}, fmt.Errorf("image %s: %w", id, err)
		}
	} else if img.cfg, err = imagefs.ReadConfig(ctx, format, rc); err != nil {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: %w", id, err)
	}
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.own().images[id] = img
	return img.cfg, nil
}

func tarNames(b []byte) (map[string]bool, error) {
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tar archive: %v", runtime.ErrInvalid, err)
		}
		names["/"+strings.Trim(h.Name, "/")] = true
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: empty tar archive", runtime.ErrInvalid)
	}
	return names, nil
}

// RemoveImage removes an image no container uses.
func (r *Runtime) RemoveImage(ctx context.Context, id string) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	for cid, c := range r.own().containers {
		if c.spec.Image == id {
			return fmt.Errorf("%w: image %s is used by container %s", runtime.ErrInUse, id, cid)
		}
	}
	delete(r.own().images, id)
	return nil
}

// Images lists the images.
func (r *Runtime) Images(ctx context.Context) ([]string, error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	var out []string
	for id := range r.own().images {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

func (r *Runtime) netns(id string) string { return "/var/run/netns/ms-" + r.owner + "-" + id }

// Create makes a container, Created.
func (r *Runtime) Create(ctx context.Context, spec runtime.Spec) (runtime.State, error) {
	if err := spec.Validate(); err != nil {
		return runtime.State{}, err
	}
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	if c := r.own().containers[spec.ID]; c != nil {
		if !equalSpec(c.spec, spec) {
			return runtime.State{}, fmt.Errorf("%w: %s", runtime.ErrExists, spec.ID)
		}
		if spec.RootDevice != c.spec.RootDevice {
			d, err := r.h.blockDevice(spec.RootDevice)
			if err != nil {
				return runtime.State{}, err
			}
			if c.rootBacking == "" || d.backing != c.rootBacking {
				return runtime.State{}, fmt.Errorf("%w: %s has another root device", runtime.ErrExists, spec.ID)
			}
			if c.st.Status == runtime.Stopped {
				c.spec.RootDevice = spec.RootDevice
			}
		}
		return c.st, nil
	}
	img := &image{}
	var backing string
	if spec.RootDevice != "" {
		d, err := r.h.blockDevice(spec.RootDevice)
		if err != nil {
			return runtime.State{}, err
		}
		if id := r.h.rootInUse(spec.RootDevice, d.backing, nil); id != "" {
			return runtime.State{}, fmt.Errorf("%w: root device %s is the root of %s", runtime.ErrInUse, spec.RootDevice, id)
		}
		img.names, backing = d.names, d.backing
	} else if img = r.own().images[spec.Image]; img == nil {
		return runtime.State{}, fmt.Errorf("%w: %s", runtime.ErrImageNotFound, spec.Image)
	}
	proc, err := runtime.Resolve(spec, img.cfg, img.kind, numericUsers)
	if err != nil {
		return runtime.State{}, err
	}
	if img.names != nil && !hasExecutable(img.names, proc.Args[0], proc.Env, proc.Cwd) {
		return runtime.State{}, fmt.Errorf("%w: the image has no executable %q", runtime.ErrInvalid, proc.Args[0])
	}
	for _, m := range spec.Mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return runtime.State{}, fmt.Errorf("%w: mount source: %v", runtime.ErrInvalid, err)
		}
	}
	if err := checkDevices(spec.Devices); err != nil {
		return runtime.State{}, err
	}
	netns := r.netns(spec.ID)
	if spec.NetnsOf != "" {
		if _, ok := r.own().containers[spec.NetnsOf]; !ok {
			return runtime.State{}, fmt.Errorf("%w: container %s, whose network namespace %s joins, is not there", runtime.ErrInvalid, spec.NetnsOf, spec.ID)
		}
		netns = r.netns(spec.NetnsOf)
	}
	r.h.nextPid++
	spec.Devices = slices.Clone(spec.Devices)
	c := &container{spec: spec, img: img.cfg, rootBacking: backing, st: runtime.State{
		ID: spec.ID, Image: spec.Image, Status: runtime.Created, Pid: r.h.nextPid,
		Netns: netns, ExitCode: -1, CreatedAt: time.Now().UTC(),
	}}
	r.own().containers[spec.ID] = c
	return c.st, nil
}

// equalSpec compares specs as Create does: but for Devices, which
// SetDevices changes, and the root device's path (Create compares what the
// device is).
func equalSpec(a, b runtime.Spec) bool {
	a.Devices, b.Devices = nil, nil
	a.Resources, b.Resources = runtime.Resources{}, runtime.Resources{}
	a.RootDevice, b.RootDevice = "", ""
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// checkDevices checks that the devices are device nodes on this host, as
// the real runtime does.
func checkDevices(devs []runtime.Device) error {
	for _, d := range devs {
		var st unix.Stat_t
		if err := unix.Stat(d.HostPath, &st); err != nil || (st.Mode&unix.S_IFMT != unix.S_IFBLK && st.Mode&unix.S_IFMT != unix.S_IFCHR) {
			return fmt.Errorf("%w: %s is not a device node", runtime.ErrInvalid, d.HostPath)
		}
	}
	return nil
}

// SetDevices replaces the container's devices, in any state.
func (r *Runtime) SetDevices(ctx context.Context, id string, devices []runtime.Device) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if slices.Equal(c.spec.Devices, devices) {
		return nil
	}
	spec := c.spec
	spec.Devices = devices
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := checkDevices(devices); err != nil {
		return err
	}
	if len(devices) == 0 {
		c.spec.Devices = nil
	} else {
		c.spec.Devices = slices.Clone(devices)
	}
	return nil
}

// SetResources replaces the container's limits, in any state.
func (r *Runtime) SetResources(ctx context.Context, id string, res runtime.Resources) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	spec := c.spec
	spec.Resources = res
	if err := spec.Validate(); err != nil {
		return err
	}
	c.spec.Resources = res
	return nil
}

// Resources returns the limits container id has now.
func (r *Runtime) Resources(id string) (runtime.Resources, error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return runtime.Resources{}, err
	}
	return c.spec.Resources, nil
}

// Devices returns the devices container id has now (its Spec.Devices as
// SetDevices last set them).
func (r *Runtime) Devices(id string) ([]runtime.Device, error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(c.spec.Devices), nil
}

// numericUsers resolves "root" and numeric users only.
func numericUsers(user string) (uint32, uint32, []uint32, error) {
	u, g, hasG := strings.Cut(user, ":")
	if u == "root" {
		u = "0"
	}
	if g == "root" {
		g = "0"
	}
	if hasG {
		user = u + ":" + g
	} else {
		user = u
	}
	return runtime.LookupUser(user, nil)
}

func hasExecutable(names map[string]bool, name string, env []string, cwd string) bool {
	if strings.Contains(name, "/") {
		if !strings.HasPrefix(name, "/") {
			name = strings.TrimSuffix(cwd, "/") + "/" + name
		}
		return names[name]
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, d := range strings.Split(v, ":") {
				if names[strings.TrimSuffix(d, "/")+"/"+name] {
					return true
				}
			}
		}
	}
	return false
}

// Start runs a Created or Stopped container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	switch c.st.Status {
	case runtime.Running:
		return nil
	case runtime.Paused:
		return stateErr(c, "start")
	case runtime.Stopped:
		if c.spec.RootDevice != "" {
			if _, err := r.h.resolveRoot(c); err != nil {
				return err
			}
		}
		r.h.nextPid++
		c.st.Pid = r.h.nextPid
	}
	c.st.Status, c.st.StartedAt, c.st.FinishedAt, c.st.ExitCode, c.st.OOMKilled = runtime.Running, time.Now().UTC(), time.Time{}, -1, false
	c.console = append(c.console, "fake: "+id+" started\n"...)
	if max := runtime.LogBytesOf(c.spec); int64(len(c.console)) > max {
		c.console = c.console[int64(len(c.console))-max:]
	}
	return nil
}

func (c *container) exit(code int) {
	c.st.Status, c.st.Pid, c.st.ExitCode, c.st.FinishedAt = runtime.Stopped, 0, code, time.Now().UTC()
}

// Stop stops a container: exit 0 if it ran, 137 if it was only created.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	switch c.st.Status {
	case runtime.Stopped:
	case runtime.Created:
		c.exit(128 + int(syscall.SIGKILL))
	default:
		c.exit(0)
	}
	return nil
}

// Kill ends the container with SIGKILL; other signals change nothing.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if c.st.Status == runtime.Stopped {
		return stateErr(c, "signal")
	}
	if sig == syscall.SIGKILL {
		c.exit(128 + int(sig))
	}
	return nil
}

// Pause pauses a running container.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.move(id, runtime.Running, runtime.Paused, "pause")
}

// Resume resumes a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.move(id, runtime.Paused, runtime.Running, "resume")
}

func (r *Runtime) move(id string, from, to runtime.Status, op string) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	switch c.st.Status {
	case to:
		return nil
	case from:
		c.st.Status = to
		return nil
	}
	return stateErr(c, op)
}

// Delete removes a container.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	delete(r.own().containers, id)
	return nil
}

// State reports a container.
func (r *Runtime) State(ctx context.Context, id string) (runtime.State, error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return runtime.State{}, err
	}
	return c.st, nil
}

// List reports every container of the owner.
func (r *Runtime) List(ctx context.Context) ([]runtime.State, error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	out := []runtime.State{}
	for _, c := range r.own().containers {
		out = append(out, c.st)
	}
	slices.SortFunc(out, func(a, b runtime.State) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// ConsoleLog returns the end of what the fake wrote for the container.
func (r *Runtime) ConsoleLog(ctx context.Context, id string, tail int64) ([]byte, error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return nil, err
	}
	b := c.console
	if tail > 0 && int64(len(b)) > tail {
		b = b[int64(len(b))-tail:]
	}
	return slices.Clone(b), nil
}

// Exec answers with ExecFunc in a running container.
func (r *Runtime) Exec(ctx context.Context, id string, spec runtime.ExecSpec) (runtime.ExecResult, error) {
	if err := spec.Validate(); err != nil {
		return runtime.ExecResult{}, err
	}
	r.h.mu.Lock()
	c, err := r.get(id)
	if err == nil && c.st.Status != runtime.Running {
		err = stateErr(c, "exec in")
	}
	f := r.ExecFunc
	r.h.mu.Unlock()
	if err != nil {
		return runtime.ExecResult{}, err
	}
	if f == nil {
		return runtime.ExecResult{}, nil
	}
	return f(id, spec)
}

// Snapshot writes the image the container was made from (the fake keeps
// no changes): the root filesystem tarball (or its root device's files),
// or an empty root for docker and OCI images.
func (r *Runtime) Snapshot(ctx context.Context, id string, w io.Writer) error {
	r.h.mu.Lock()
	c, err := r.get(id)
	var b []byte
	if err == nil {
		if img := r.own().images[c.spec.Image]; img != nil {
			b = img.tar
		} else if d := r.h.devices[c.spec.RootDevice]; d != nil && c.spec.RootDevice != "" {
			b = d.tar
		}
	}
	r.h.mu.Unlock()
	if err != nil {
		return err
	}
	if b == nil {
		tw := tar.NewWriter(w)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755})
		return tw.Close()
	}
	_, err = w.Write(b)
	return err
}

// Recover reports the containers; the fake has no orphans.
func (r *Runtime) Recover(ctx context.Context) (runtime.Recovered, error) {
	l, err := r.List(ctx)
	return runtime.Recovered{Containers: l}, err
}

// RemoveOrphans has nothing to remove.
func (r *Runtime) RemoveOrphans(ctx context.Context, orphans []runtime.Orphan) error { return nil }

// Close does nothing: the host keeps the containers.
func (r *Runtime) Close() error { return nil }
