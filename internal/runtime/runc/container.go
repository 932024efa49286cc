package runc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/imagefs"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// Files and directories of a container, under containers/<id>/.
const (
	recordFile   = "record.json"  // the record: spec and image config
	startedFile  = "started.json" // when the current run was started
	deletingFile = "deleting"     // a Delete began
	shimLogFile  = "shim.log"     // the shim's own errors
	bundleDir    = "bundle"       // config.json and rootfs (the overlay)
	upperDir     = "fs/upper"
	workDir      = "fs/work"
)

// record is what a container is: fixed at Create, but for its devices,
// which SetDevices replaces, and its root device's path, which follows the
// device (see rootdev.go).
type record struct {
	Spec      runtime.Spec        `json:"spec"`
	Kind      string              `json:"image_kind"`
	Image     runtime.ImageConfig `json:"image_config"`
	CreatedAt time.Time           `json:"created_at"`
	// RootBacking is the backing file of a root device that is a loop
	// device: what the device is, whatever its number.
	RootBacking string `json:"root_backing,omitempty"`
}

func (r *Runtime) readRecord(id string) (*record, error) {
	if !runtime.ValidID(id) {
		return nil, notFound(id)
	}
	b, err := os.ReadFile(filepath.Join(r.containerDir(id), recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return &rec, nil
}

// writeNewRecord makes containers/<id> with its record in one rename, so
// that a container directory always has a record.
func (r *Runtime) writeNewRecord(rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(r.containersDir(), ".new-"+rec.Spec.ID+"-")
	if err != nil {
		return err
	}
	if err := shim.WriteFileAtomic(filepath.Join(tmp, recordFile), b, 0o600); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, r.containerDir(rec.Spec.ID)); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, os.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("%w: %s", runtime.ErrExists, rec.Spec.ID)
		}
		return err
	}
	return nil
}

// writeRecord replaces the record of an existing container, atomically
// and synced.
func (r *Runtime) writeRecord(rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return shim.WriteFileAtomic(filepath.Join(r.containerDir(rec.Spec.ID), recordFile), b, 0o600)
}

// containerIDs lists the containers that have a record.
func (r *Runtime) containerIDs() ([]string, error) {
	entries, err := os.ReadDir(r.containersDir())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && fileExists(filepath.Join(r.containersDir(), e.Name(), recordFile)) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// sameSpec reports whether a Create of spec b is a Create of the existing
// container of spec a. Devices are not compared: they are what SetDevices
// last set, and a caller re-creating a container from the spec it was
// first made from (before volumes were attached) must get its state. Nor
// are root devices' paths: moveRoot compares what the devices are.
func sameSpec(a, b runtime.Spec) bool {
	a.Devices, b.Devices = nil, nil
	a.Resources, b.Resources = runtime.Resources{}, runtime.Resources{}
	a.RootDevice, b.RootDevice = "", ""
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return reflect.DeepEqual(ja, jb)
}

// Create makes the container: record, root filesystem, network namespace
// and the runc container (through its shim), not started. A Create that
// fails leaves nothing behind.
func (r *Runtime) Create(ctx context.Context, spec runtime.Spec) (runtime.State, error) {
	if err := spec.Validate(); err != nil {
		return runtime.State{}, err
	}
	defer r.lock(spec.ID)()
	rec, err := r.readRecord(spec.ID)
	switch {
	case err == nil && fileExists(filepath.Join(r.containerDir(spec.ID), deletingFile)):
		// An interrupted Delete: finish it, then make the container anew.
		if err := r.remove(ctx, spec.ID); err != nil {
			return runtime.State{}, err
		}
	case err == nil:
		if !sameSpec(rec.Spec, spec) {
			return runtime.State{}, fmt.Errorf("%w: %s", runtime.ErrExists, spec.ID)
		}
		if err := r.moveRoot(ctx, rec, spec.RootDevice); err != nil {
			return runtime.State{}, err
		}
		return r.ensureCreated(ctx, rec)
	case !errors.Is(err, runtime.ErrNotFound):
		return runtime.State{}, err
	}
	if spec.RootDevice != "" {
		_, backing, err := blockDevice(spec.RootDevice)
		if err == nil {
			rec = &record{Spec: spec, RootBacking: backing, CreatedAt: time.Now().UTC()}
			err = r.writeNewRecord(rec)
		}
		if err != nil {
			return runtime.State{}, err
		}
	} else {
		unlockImage := r.lock("image/" + spec.Image)
		img, err := r.readImage(spec.Image)
		if err == nil {
			rec = &record{Spec: spec, Kind: img.Kind, Image: img.Config, CreatedAt: time.Now().UTC()}
			err = r.writeNewRecord(rec)
		}
		unlockImage()
		if err != nil {
			return runtime.State{}, err
		}
	}
	st, err := r.ensureCreated(ctx, rec)
	if err != nil {
		if rerr := r.remove(context.WithoutCancel(ctx), spec.ID); rerr != nil {
			r.log.Error("undoing a failed create", "container", spec.ID, "err", rerr)
		}
		return runtime.State{}, err
	}
	r.log.Info("container created", "container", spec.ID, "image", spec.Image, "root_device", spec.RootDevice)
	return st, nil
}

// moveRoot takes, for an existing container, the root device path of a
// Create: the same device under a new path (attached again after a host
// restart) is recorded when the container does not run; another device is
// ErrExists.
func (r *Runtime) moveRoot(ctx context.Context, rec *record, path string) error {
	if path == rec.Spec.RootDevice {
		return nil
	}
	_, backing, err := blockDevice(path)
	if err != nil {
		return err
	}
	if rec.RootBacking == "" || backing != rec.RootBacking {
		return fmt.Errorf("%w: %s has another root device", runtime.ErrExists, rec.Spec.ID)
	}
	st, err := r.state(ctx, rec, nil)
	if err != nil || st.Status != runtime.Stopped {
		return err // a live container keeps the device it has mounted
	}
	rec.Spec.RootDevice = path
	return r.writeRecord(rec)
}

// ensureCreated makes whatever of an existing container is missing: a
// container that is not running gets its root filesystem and namespace
// back, and one that never ran its runc container.
func (r *Runtime) ensureCreated(ctx context.Context, rec *record) (runtime.State, error) {
	id := rec.Spec.ID
	st, err := r.state(ctx, rec, nil)
	if err != nil {
		return st, err
	}
	if st.Status != runtime.Stopped {
		return st, r.keepNetns(rec.Spec, st.Pid)
	}
	if err := r.prepare(ctx, rec); err != nil {
		return st, err
	}
	dir := r.containerDir(id)
	neverRan := !fileExists(filepath.Join(dir, startedFile)) && !fileExists(filepath.Join(dir, shim.ExitFile))
	if neverRan && !shimAlive(dir) {
		if err := r.clearRun(ctx, id); err != nil {
			return st, err
		}
		pid, err := r.spawnShim(ctx, id)
		if err != nil {
			return st, err
		}
		st.Status, st.Pid = runtime.Created, pid
		return st, nil
	}
	return r.state(ctx, rec, nil)
}

// mountRoot mounts the container's root filesystem at bundle/rootfs, unless
// it is mounted: its root device, or an overlay of its image.
func (r *Runtime) mountRoot(rec *record) error {
	dir := r.containerDir(rec.Spec.ID)
	rootfs := filepath.Join(dir, bundleDir, "rootfs")
	if rec.Spec.RootDevice != "" {
		return r.mountRootDevice(rec, rootfs)
	}
	if _, err := r.readImage(rec.Spec.Image); err != nil {
		return err
	}
	return mountOverlay(filepath.Join(r.imageDir(rec.Spec.Image), "rootfs"), filepath.Join(dir, upperDir), filepath.Join(dir, workDir), rootfs)
}

// prepare makes the root filesystem, the namespace, the bundle's
// config.json and the shim's config of a container that does not run.
func (r *Runtime) prepare(ctx context.Context, rec *record) error {
	s := rec.Spec
	dir := r.containerDir(s.ID)
	rootfs := filepath.Join(dir, bundleDir, "rootfs")
	// The namespace first: ports are plugged into it even while the root
	// cannot be mounted (a root device not attached again yet).
	if s.NetnsOf != "" {
		if !isNetns(filepath.Join(NetnsDir, r.NetnsName(s.NetnsOf))) {
			return fmt.Errorf("%w: container %s, whose network namespace %s joins, has none", runtime.ErrInvalid, s.NetnsOf, s.ID)
		}
	} else if err := ensureNetns(r.NetnsName(s.ID), 0); err != nil {
		return err
	}
	if err := r.mountRoot(rec); err != nil {
		return err
	}
	proc, err := runtime.Resolve(s, rec.Image, rec.Kind, imagefs.Users(rootfs))
	if err != nil {
		return err
	}
	if err := imagefs.Executable(rootfs, proc.Args[0], proc.Env, proc.Cwd); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("%w: mount source: %v", runtime.ErrInvalid, err)
		}
	}
	devs, err := lookupDevices(s.Devices)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(r.ociSpec(rec, proc, devs), "", "  ")
	if err != nil {
		return err
	}
	if err := shim.ReplaceFile(filepath.Join(dir, bundleDir, "config.json"), b, 0o600); err != nil {
		return err
	}
	cfg, err := json.Marshal(shim.Config{
		Runc: r.runc, Root: r.runcRoot, ID: s.ID, Bundle: filepath.Join(dir, bundleDir),
		MaxLogBytes: runtime.LogBytesOf(s), CgroupsPath: r.CgroupsPath(s.ID), Terminal: s.Process.Terminal,
		Stdin: s.Process.OpenStdin && !s.Process.Terminal,
	})
	if err != nil {
		return err
	}
	return shim.ReplaceFile(filepath.Join(dir, shim.ConfigFile), cfg, 0o600)
}

// spawnShim starts the container's shim, detached, and waits until it
// has made the runc container; it returns the init's pid.
func (r *Runtime) spawnShim(ctx context.Context, id string) (int, error) {
	dir := r.containerDir(id)
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer pr.Close()
	logf, err := os.OpenFile(filepath.Join(dir, shimLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		pw.Close()
		return 0, err
	}
	cmd := exec.Command(r.shimBin, append(slices.Clone(r.shimArgs), "--dir", dir)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	err = cmd.Start()
	pw.Close()
	logf.Close()
	if err != nil {
		return 0, fmt.Errorf("start shim: %w", err)
	}
	reapLater(cmd.Process) // reap it whenever it ends

	type answer struct {
		ready shim.Ready
		err   error
	}
	ac := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadBytes('\n')
		var a answer
		if len(line) > 0 {
			a.err = json.Unmarshal(line, &a.ready)
		} else {
			a.err = err
		}
		ac <- a
	}()
	var a answer
	select {
	case a = <-ac:
	case <-ctx.Done():
		return 0, ctx.Err() // the shim goes on; the container's state says how it ended
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("the shim of %s did not answer", id)
	}
	switch {
	case a.err != nil && !errors.Is(a.err, io.EOF):
		return 0, fmt.Errorf("shim of %s: %w", id, a.err)
	case a.ready.Error != "":
		return 0, fmt.Errorf("creating container %s: %s", id, a.ready.Error)
	case a.ready.Pid == 0:
		return 0, fmt.Errorf("the shim of %s exited: %s", id, lastLine(filepath.Join(dir, shimLogFile)))
	}
	return a.ready.Pid, nil
}

// lastLine is the last line of a small log file.
func lastLine(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// clearRun removes what is left of a container's previous run: waits for
// its shim to finish, removes the runc container and the run's files.
func (r *Runtime) clearRun(ctx context.Context, id string) error {
	dir := r.containerDir(id)
	if err := r.waitShim(ctx, dir); err != nil {
		return err
	}
	if r.runcExists(id) {
		if _, err := r.runcCmd(ctx, "delete", "--force", id); err != nil && r.runcExists(id) {
			return err
		}
	}
	for _, f := range []string{shim.ExitFile, startedFile, shim.InitPidFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// waitShim waits for the shim of dir to exit, killing it if it takes too
// long (it has nothing to keep once its container is gone).
func (r *Runtime) waitShim(ctx context.Context, dir string) error {
	if poll(ctx, 10*time.Second, func() bool { return !shimAlive(dir) }) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if pid, ok := shim.Alive(dir); ok {
		r.log.Warn("killing a shim that does not exit", "dir", dir, "pid", pid)
		unix.Kill(pid, unix.SIGKILL)
	}
	if !poll(ctx, 5*time.Second, func() bool { return !shimAlive(dir) }) {
		return fmt.Errorf("the shim of %s does not exit", dir)
	}
	return nil
}

// state works out a container's state from its files and runc (from
// listed when not nil, else by asking runc).
func (r *Runtime) state(ctx context.Context, rec *record, listed map[string]runcState) (runtime.State, error) {
	id := rec.Spec.ID
	dir := r.containerDir(id)
	st := runtime.State{
		ID: id, Image: rec.Spec.Image, Netns: filepath.Join(NetnsDir, r.netnsFor(rec.Spec)),
		CreatedAt: rec.CreatedAt, ExitCode: -1,
	}
	exit, err := shim.ReadExit(dir)
	hasExit := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	started := readStarted(dir)
	if !hasExit {
		var rs runcState
		var ok bool
		if listed != nil {
			rs, ok = listed[id]
		} else if rs, ok, err = r.runcState(ctx, id); err != nil {
			return st, err
		}
		if ok {
			switch rs.Status {
			case "created":
				st.Status, st.Pid = runtime.Created, rs.Pid
				return st, nil
			case "running":
				st.Status, st.Pid, st.StartedAt = runtime.Running, rs.Pid, started
				return st, nil
			case "paused", "pausing":
				st.Status, st.Pid, st.StartedAt = runtime.Paused, rs.Pid, started
				return st, nil
			}
		}
		if !ok && shimAlive(dir) {
			// A shim and no runc container yet: it is being made.
			st.Status = runtime.Created
			return st, nil
		}
		// The init has exited; a live shim is about to record how.
		if shimAlive(dir) {
			poll(ctx, 5*time.Second, func() bool {
				return fileExists(filepath.Join(dir, shim.ExitFile)) || !shimAlive(dir)
			})
		}
		// Read again in any case: the shim may have recorded the exit and
		// gone between the first read and the check that it is alive.
		exit, err = shim.ReadExit(dir)
		hasExit = err == nil
	}
	st.Status, st.StartedAt = runtime.Stopped, started
	if hasExit {
		st.ExitCode, st.OOMKilled, st.FinishedAt = exit.ExitCode, exit.OOMKilled, exit.FinishedAt
	}
	return st, nil
}

func readStarted(dir string) time.Time {
	var s struct {
		StartedAt time.Time `json:"started_at"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, startedFile)); err == nil {
		json.Unmarshal(b, &s)
	}
	return s.StartedAt
}

func writeStarted(dir string, t time.Time) error {
	b, _ := json.Marshal(map[string]time.Time{"started_at": t})
	return shim.ReplaceFile(filepath.Join(dir, startedFile), b, 0o600)
}

// current reads a container's record and works out its state; the caller
// holds the container's lock.
func (r *Runtime) current(ctx context.Context, id string) (*record, runtime.State, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, runtime.State{}, err
	}
	st, err := r.state(ctx, rec, nil)
	return rec, st, err
}

// Start runs a Created container, or makes a Stopped one again and runs it.
func (r *Runtime) Start(ctx context.Context, id string) error {
	defer r.lock(id)()
	rec, st, err := r.current(ctx, id)
	if err != nil {
		return err
	}
	switch st.Status {
	case runtime.Running:
		return nil
	case runtime.Paused:
		return stateErr(id, st.Status, "start")
	case runtime.Stopped:
		if err := r.prepare(ctx, rec); err != nil {
			return err
		}
		if err := r.clearRun(ctx, id); err != nil {
			return err
		}
		if _, err := r.spawnShim(ctx, id); err != nil {
			return err
		}
	}
	dir := r.containerDir(id)
	if err := writeStarted(dir, time.Now().UTC()); err != nil {
		return err
	}
	if _, err := r.runcCmd(ctx, "start", id); err != nil {
		os.Remove(filepath.Join(dir, startedFile))
		return err
	}
	r.log.Info("container started", "container", id)
	return nil
}

// exited reports whether the container's current run is over: its exit
// is recorded, or its shim is gone and runc has no live process.
func (r *Runtime) exited(ctx context.Context, id string) bool {
	dir := r.containerDir(id)
	if fileExists(filepath.Join(dir, shim.ExitFile)) {
		return true
	}
	if shimAlive(dir) {
		return false
	}
	rs, ok, err := r.runcState(ctx, id)
	return err == nil && (!ok || rs.Status == "stopped")
}

func (r *Runtime) waitExit(ctx context.Context, id string, timeout time.Duration) bool {
	return poll(ctx, timeout, func() bool { return r.exited(ctx, id) })
}

// signal sends sig to the container's init; an init that has exited
// meanwhile is not an error.
func (r *Runtime) signal(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := r.runcCmd(ctx, "kill", id, strconv.Itoa(int(sig)))
	if err != nil && r.exited(ctx, id) {
		return nil
	}
	return err
}

// killWait kills the container's init and waits until its exit is
// recorded.
func (r *Runtime) killWait(ctx context.Context, id string, paused bool) error {
	if err := r.signal(ctx, id, unix.SIGKILL); err != nil {
		// The init may have exited on the stop signal in the meantime:
		// then it is stopped, which is what was asked.
		if r.waitExit(ctx, id, time.Second) {
			return nil
		}
		return err
	}
	if paused { // a frozen task dies only once thawed
		r.runcCmd(ctx, "resume", id)
	}
	if !r.waitExit(ctx, id, 30*time.Second) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("container %s did not exit after SIGKILL", id)
	}
	return nil
}

// StopSignal is the signal Stop sends first: the image's STOPSIGNAL, or
// SIGTERM.
func StopSignal(img runtime.ImageConfig) syscall.Signal {
	s := strings.ToUpper(strings.TrimSpace(img.StopSignal))
	if s == "" {
		return unix.SIGTERM
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if sig := unix.SignalNum(s); sig != 0 {
		return sig
	}
	return unix.SIGTERM
}

// Stop stops the container: its stop signal, then SIGKILL after timeout.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	defer r.lock(id)()
	rec, st, err := r.current(ctx, id)
	if err != nil {
		return err
	}
	switch st.Status {
	case runtime.Stopped:
		return nil
	case runtime.Created:
		return r.killWait(ctx, id, false)
	}
	if err := r.signal(ctx, id, StopSignal(rec.Image)); err != nil {
		return err
	}
	if st.Status == runtime.Paused {
		r.runcCmd(ctx, "resume", id)
	}
	if r.waitExit(ctx, id, timeout) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.log.Info("container did not stop in time; killing it", "container", id, "timeout", timeout)
	return r.killWait(ctx, id, false)
}

// Kill signals the container's init.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	defer r.lock(id)()
	_, st, err := r.current(ctx, id)
	if err != nil {
		return err
	}
	if st.Status == runtime.Stopped {
		return stateErr(id, st.Status, "signal")
	}
	if sig == unix.SIGKILL {
		return r.killWait(ctx, id, st.Status == runtime.Paused)
	}
	return r.signal(ctx, id, sig)
}

// Pause freezes a running container (runc pause: the cgroup freezer).
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.freeze(ctx, id, true)
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.freeze(ctx, id, false)
}

func (r *Runtime) freeze(ctx context.Context, id string, pause bool) error {
	defer r.lock(id)()
	_, st, err := r.current(ctx, id)
	if err != nil {
		return err
	}
	from, to, op := runtime.Running, runtime.Paused, "pause"
	if !pause {
		from, to, op = runtime.Paused, runtime.Running, "resume"
	}
	switch st.Status {
	case to:
		return nil
	case from:
		_, err := r.runcCmd(ctx, op, id)
		return err
	}
	return stateErr(id, st.Status, op)
}

// Delete removes the container and everything it has.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	if !runtime.ValidID(id) {
		return nil // cannot exist
	}
	defer r.lock(id)()
	return r.remove(ctx, id)
}

// remove deletes container id piece by piece; each step tolerates the
// piece being gone, so an interrupted remove is finished by the next.
func (r *Runtime) remove(ctx context.Context, id string) error {
	dir := r.containerDir(id)
	hasDir := fileExists(dir)
	if hasDir {
		if err := os.WriteFile(filepath.Join(dir, deletingFile), nil, 0o600); err != nil {
			return err
		}
	}
	if r.runcExists(id) {
		if rs, ok, _ := r.runcState(ctx, id); ok && rs.Status == "paused" {
			r.runcCmd(ctx, "resume", id)
		}
		if _, err := r.runcCmd(ctx, "delete", "--force", id); err != nil && r.runcExists(id) {
			return err
		}
	}
	if hasDir {
		if err := r.waitShim(ctx, dir); err != nil {
			return err
		}
	}
	if r.runcExists(id) { // the shim's own delete lost a race or failed
		if _, err := r.runcCmd(ctx, "delete", "--force", id); err != nil && r.runcExists(id) {
			return err
		}
	}
	if err := removeCgroups(r.CgroupsPath(id)); err != nil {
		return err
	}
	if err := deleteNetns(r.NetnsName(id)); err != nil {
		return err
	}
	if !hasDir {
		return nil
	}
	if err := unmountAll(dir); err != nil {
		return err
	}
	trash, err := os.MkdirTemp(r.containersDir(), ".trash-"+id+"-")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(trash, "c")); err != nil {
		os.Remove(trash)
		return err
	}
	if err := removeTree(trash); err != nil {
		return err
	}
	r.log.Info("container deleted", "container", id)
	return nil
}

// removeCgroups removes the container's (empty) cgroup from every
// hierarchy, where runc did not already.
func removeCgroups(path string) error {
	dirs := []string{filepath.Join("/sys/fs/cgroup", path)}
	if hs, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, h := range hs {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", h.Name(), path))
		}
	}
	var errs []error
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// State reports the container.
func (r *Runtime) State(ctx context.Context, id string) (runtime.State, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return runtime.State{}, err
	}
	return r.state(ctx, rec, nil)
}

// List reports every container of this runtime.
func (r *Runtime) List(ctx context.Context) ([]runtime.State, error) {
	ids, err := r.containerIDs()
	if err != nil {
		return nil, err
	}
	out := make([]runtime.State, 0, len(ids))
	for _, id := range ids {
		rec, err := r.readRecord(id)
		if errors.Is(err, runtime.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		st, err := r.state(ctx, rec, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// ConsoleLog returns the end of the container's console output.
func (r *Runtime) ConsoleLog(ctx context.Context, id string, tail int64) ([]byte, error) {
	if _, err := r.readRecord(id); err != nil {
		return nil, err
	}
	return shim.ReadConsole(filepath.Join(r.containerDir(id), shim.ConsoleFile), tail)
}
