package runtime

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"
)

// Runtime runs a host's containers: the servers of compute and the
// containers of the containers API. It is the only thing on a host that
// makes containers, their root filesystems and their network namespaces.
//
// # Images
//
// An image is unpacked once, by EnsureImage, into a read-only cache; every
// container made from it shares that copy and writes to its own layer.
// EnsureImage is idempotent: an image already unpacked is not read again.
//
// # Containers
//
// A container is known by the id its caller gives it (a server's or a
// container's uuid) and goes through these states:
//
//	          Create            Start               Stop, Kill, or its init exits
//	(none) ──────────► Created ───────► Running ───────────────────────────────► Stopped
//	                      │              │   ▲                                     │
//	                      │        Pause │   │ Resume                              │
//	                      │              ▼   │                                     │
//	                      │             Paused                                     │
//	                      │                                                        │
//	                      └─── Stop ─────────────────────────────────────► Stopped ┘
//	                                                             Start: Running again
//
// Create makes everything a container needs before it runs: its root
// filesystem (copy-on-write over the image, or the root device mounted), a
// network namespace owned by this runtime (State.Netns, so that ports can
// be plugged in before Start) and the process, made but not started. Start runs it; starting a Stopped
// container boots it again on the same root filesystem and namespace, as a
// server powered on again keeps its disk and its ports. Delete removes all
// of it, in any state.
//
// Every call is a desired-state call and idempotent: Create of a container
// that exists with the same Spec returns its state; Start of a running
// container, Stop of a stopped one, Pause of a paused one and Delete of one
// that is gone succeed and change nothing. A call that cannot be satisfied
// in the container's state fails with ErrState (Pause of a stopped
// container, Start of a paused one, Exec in a container that is not
// running); an unknown id fails with ErrNotFound, except for Delete.
//
// # Restarts
//
// Containers outlive the runtime that made them: each is supervised by a
// process of its own, so the daemon may exit, crash or be killed and the
// containers go on running, their output still logged and their exit
// status still recorded. A new Runtime over the same state is the same
// runtime: State, List and every other call see the containers as they
// are. Recover, called once at start, repairs what a crash or a reboot
// left: it finishes interrupted deletions, stops containers whose
// supervisor died (their output and exit status could no longer be kept),
// makes again the root filesystems and namespaces of stopped containers
// that a reboot took away, and reports the pieces this runtime owns that
// belong to no container (Orphans), for RemoveOrphans. Containers the
// caller no longer knows are the caller's to Delete (see Prune).
//
// # Ownership
//
// A runtime has an owner id and touches only what carries it: its state
// directory, its runc root, its namespaces (named with the owner). Two
// runtimes of different owners on one host never see each other's
// containers.
type Runtime interface {
	// EnsureImage makes the image id available to Create, unpacking the
	// bytes open returns (described by format) unless it already is. It
	// returns what the image says about how to run it (empty for a root
	// filesystem tarball). open may be called at most once.
	EnsureImage(ctx context.Context, id string, format ImageFormat, open func() (io.ReadCloser, error)) (ImageConfig, error)
	// RemoveImage removes an unpacked image. It fails with ErrInUse while
	// a container uses it; an image that is not there is not an error.
	RemoveImage(ctx context.Context, id string) error
	// Images lists the ids of the unpacked images.
	Images(ctx context.Context) ([]string, error)

	// Create makes a container from spec, in state Created; see the
	// lifecycle above. Spec.Image must have been ensured (else
	// ErrImageNotFound); a Spec.RootDevice must be a block device (else
	// ErrInvalid). Creating an id that exists returns its state when
	// the spec is the same and fails with ErrExists when it differs.
	// Devices and Resources are left out of that comparison: they are
	// what SetDevices and SetResources last set, and a Create of an
	// existing container neither compares nor changes them (a caller
	// re-creating a server from its original spec after volumes were
	// attached gets its state, devices kept).
	Create(ctx context.Context, spec Spec) (State, error)
	// Start runs a Created or Stopped container; a Running one is left
	// alone; a Paused one is ErrState.
	Start(ctx context.Context, id string) error
	// Stop asks the container's init to exit (the image's stop signal,
	// SIGTERM by default) and kills it when it has not exited after
	// timeout; it returns when the container is Stopped. A Created
	// container is stopped at once; a Stopped one is left alone.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Kill sends sig to the container's init. With SIGKILL it returns once
	// the container is Stopped. A Stopped container is ErrState.
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	// Pause freezes every process of a Running container; Resume thaws a
	// Paused one. Each is idempotent; other states are ErrState.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// SetDevices replaces a container's devices (Spec.Devices, validated as at Create).
	// A Running or Paused container gets the added device nodes at once, with the device
	// cgroup allowing exactly them, and loses the removed ones; every later boot has the new
	// list. The same list changes nothing. Unknown id: ErrNotFound.
	//
	// A Created container (its init made, not started) is changed at once
	// too. A removed device is no longer opened by the container's
	// processes, but a descriptor opened before stays usable until it is
	// closed: the caller detaching a volume makes sure it is no longer in
	// use first. A change that cannot be made in a live container (a host
	// without the cgroup v1 devices controller) fails with ErrState and
	// changes nothing; a Stopped container can always be changed.
	SetDevices(ctx context.Context, id string, devices []Device) error
	// SetResources replaces a container's limits (Spec.Resources,
	// validated as at Create): a container whose init lives gets them at
	// once (its cgroups updated), and every later boot has them. Lowering
	// memory below what the container uses fails and changes nothing.
	// Unknown id: ErrNotFound.
	SetResources(ctx context.Context, id string, res Resources) error
	// Delete kills the container if it runs and removes it: process, root
	// filesystem with its changes, network namespace, logs. A container
	// that is not there is not an error. A RootDevice is unmounted and
	// left as it is: its filesystem is the caller's (a volume's).
	Delete(ctx context.Context, id string) error

	// State reports one container as it is now.
	State(ctx context.Context, id string) (State, error)
	// List reports every container this runtime owns, by id.
	List(ctx context.Context) ([]State, error)
	// ConsoleLog returns the last tail bytes of what the container's
	// processes wrote to their standard output and error, across its
	// boots (all that is kept when tail <= 0). At least the last
	// Spec.MaxLogBytes are kept.
	ConsoleLog(ctx context.Context, id string, tail int64) ([]byte, error)
	// Exec runs a process in a Running container and waits for it; its
	// output is returned, not streamed. Cancelling ctx kills the process.
	// ErrExec wraps a process that could not be started at all.
	Exec(ctx context.Context, id string, spec ExecSpec) (ExecResult, error)
	// Snapshot writes the container's root filesystem as it is now (the
	// image with the container's changes) to w as a tarball, which
	// EnsureImage takes back as a KindRootfsTar image. A Running container
	// is paused while it is read.
	Snapshot(ctx context.Context, id string, w io.Writer) error

	// Recover repairs and reports this runtime's containers after a
	// restart or a reboot (see Restarts above). It is idempotent and safe
	// to call at any time.
	Recover(ctx context.Context) (Recovered, error)
	// RemoveOrphans removes owned pieces that belong to no container, as
	// Recover reported them. Pieces that meanwhile belong to a container
	// are left alone.
	RemoveOrphans(ctx context.Context, orphans []Orphan) error

	// Close releases the runtime's own resources. Containers are left as
	// they are.
	Close() error
}

// Errors, for errors.Is. Implementations wrap them with detail.
var (
	// ErrNotFound: no container with that id.
	ErrNotFound = errors.New("container not found")
	// ErrImageNotFound: the image has not been ensured.
	ErrImageNotFound = errors.New("image not found")
	// ErrExists: a container with that id exists with another spec.
	ErrExists = errors.New("container exists with another spec")
	// ErrInvalid: a spec, an image or an argument that cannot be used.
	ErrInvalid = errors.New("invalid")
	// ErrUnsupportedImage: image data of a kind this runtime cannot unpack.
	ErrUnsupportedImage = errors.New("unsupported image")
	// ErrState: the call cannot be made in the container's state.
	ErrState = errors.New("not possible in the container's state")
	// ErrInUse: an image still used by a container, or a root device
	// mounted elsewhere.
	ErrInUse = errors.New("in use")
	// ErrExec: an Exec whose process could not be started.
	ErrExec = errors.New("cannot exec")
)

// Status is where a container is in its lifecycle.
type Status string

// The statuses of a container.
const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "stopped"
)

// Spec is what a container is made from. It is fixed at Create, but for
// Devices, which SetDevices replaces.
type Spec struct {
	// ID names the container: letters, digits, '_', '.', '-', at most 128,
	// starting with a letter or digit (a uuid fits).
	ID string `json:"id"`
	// Hostname inside the container; the first 12 characters of ID when
	// empty.
	Hostname string `json:"hostname,omitempty"`
	// Image is the id of an ensured image, whose copy-on-write layer is
	// the container's root filesystem. Empty when RootDevice is set.
	Image string `json:"image"`
	// RootDevice is the host path of a block device holding an ext4
	// filesystem that is the container's root instead of an image (a
	// server booted from a volume): it is mounted as is, and what the
	// container writes goes to the device and lasts beyond the
	// container. The container runs the Process as for a root filesystem
	// image (/sbin/init unless Args say otherwise). Exactly one of Image
	// and RootDevice is set.
	//
	// The device must not be mounted elsewhere. The runtime records
	// which device it is (a loop device's backing file) at Create and
	// checks it at every mount, so that a device number that came to
	// name something else (a host restarted, its loop devices attached
	// again in another order) is never mounted in its place: a loop
	// device of the same backing file is used instead, or the mount
	// fails. Like Devices, RootDevice is left out of the comparison of
	// Create when it names the same device under another path, and such
	// a Create of a container that is not running records the new path.
	RootDevice string `json:"root_device,omitempty"`
	// NetnsOf, if set, is the id of another container of this runtime
	// whose network namespace this one joins instead of having its own
	// (a capsule's containers share one, as a pod's do). That container
	// must exist first; State.Netns is then its namespace.
	NetnsOf string  `json:"netns_of,omitempty"`
	Process Process `json:"process"`
	// Resources are the container's cgroup limits.
	Resources Resources `json:"resources"`
	// Mounts are host directories or files bound into the container (the
	// config drive at /mnt/config, say).
	Mounts []Mount `json:"mounts,omitempty"`
	// Devices are host device nodes given to the container (a volume's
	// block device as /dev/vdb, say), with a device-cgroup rule allowing
	// them. SetDevices changes them, in a running container too.
	Devices []Device `json:"devices,omitempty"`
	// MaxLogBytes is how much of the console output is kept at least;
	// DefaultMaxLogBytes when 0.
	MaxLogBytes int64 `json:"max_log_bytes,omitempty"`
}

// Process is what the container runs as its init (PID 1).
//
// A machine container (Init) runs the image's /sbin/init, as a server
// boots; so does a container of a root filesystem image that gives no
// command. Otherwise the command is Docker's: the image's Entrypoint
// followed by Cmd (or the image's Cmd), unless Args replaces the whole
// command line.
type Process struct {
	Init bool     `json:"init,omitempty"`
	Args []string `json:"args,omitempty"`
	Cmd  []string `json:"cmd,omitempty"`
	// Env adds to the image's environment ("KEY=value"), replacing a key
	// the image sets.
	Env []string `json:"env,omitempty"`
	// Cwd is the working directory; the image's, or "/".
	Cwd string `json:"cwd,omitempty"`
	// User is "user", "uid", "user:group" or "uid:gid", names looked up in
	// the image's /etc/passwd and /etc/group; the image's, or root.
	User string `json:"user,omitempty"`
	// Terminal gives the init a terminal (a pty) as its standard input,
	// output and error, as `docker run -it` does: what it writes is
	// logged as ever, and a runtime that is a Terminals lets callers
	// attach to it (AttachTerminal) to type into it.
	Terminal bool `json:"terminal,omitempty"`
	// OpenStdin keeps the init's standard input open, a pipe that callers
	// attached to it (AttachTerminal) type into, as `docker run -i`
	// without `-t` does: no terminal, and what the init writes to its
	// stdout and stderr is logged and sent to the attached callers as it
	// comes. Unattached, the init waits on its input. Terminal wins over
	// it.
	OpenStdin bool `json:"open_stdin,omitempty"`
}

// Resources are a container's limits. Zero means the default.
type Resources struct {
	// MemoryBytes limits memory (and memory plus swap to the same: no
	// swap); unlimited when 0. At least MinMemoryBytes.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// VCPUs limits CPU time to this many CPUs (CFS quota over a 100 ms
	// period) and weighs the CPU share; unlimited when 0.
	VCPUs float64 `json:"vcpus,omitempty"`
	// Pids limits the number of tasks; DefaultPidsLimit when 0.
	Pids int64 `json:"pids,omitempty"`
}

// Mount binds a host path into the container.
type Mount struct {
	// Source is the host path (absolute).
	Source string `json:"source"`
	// Destination is the path in the container (absolute; not /, and not
	// under /proc or /sys).
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`
}

// Device gives the container a host device node.
type Device struct {
	// HostPath is the device node on the host (/dev/loop3, say).
	HostPath string `json:"host_path"`
	// Path is its name in the container, under /dev (/dev/vdb, say).
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Defaults and bounds of a Spec.
const (
	DefaultMaxLogBytes = 1 << 20
	MaxMaxLogBytes     = 1 << 30
	DefaultPidsLimit   = 4096
	MinMemoryBytes     = 4 << 20
	// DefaultStopTimeout is a reasonable timeout for Stop.
	DefaultStopTimeout = 10 * time.Second
)

// State is a container as it is.
type State struct {
	ID     string `json:"id"`
	Image  string `json:"image"`
	Status Status `json:"status"`
	// Pid is the init's pid on the host (Created, Running, Paused).
	Pid int `json:"pid,omitempty"`
	// Netns is the path of the container's network namespace
	// (/var/run/netns/NAME), for the datapath.
	Netns string `json:"netns"`
	// ExitCode of a Stopped container that ran: its init's exit status,
	// or 128+signal when a signal ended it; -1 when it is not known (a
	// container stopped by a reboot).
	ExitCode int `json:"exit_code"`
	// OOMKilled: the kernel's out-of-memory killer acted in the container
	// during its last run.
	OOMKilled  bool      `json:"oom_killed,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// ExecSpec is a process to run in a running container. It runs with the
// container's capabilities and restrictions.
type ExecSpec struct {
	Args []string
	// Env adds to the container's environment.
	Env []string
	// Cwd: the container's working directory when empty.
	Cwd string
	// User as in Process.User; the container's user when empty.
	User string
	// Stdin, if not nil, is the process's standard input.
	Stdin io.Reader
}

// ExecResult is how an exec'd process ended and what it wrote. Output
// beyond MaxExecOutput per stream is dropped (Truncated).
type ExecResult struct {
	ExitCode  int
	Stdout    []byte
	Stderr    []byte
	Truncated bool
}

// MaxExecOutput is the most of each of stdout and stderr an Exec keeps.
const MaxExecOutput = 16 << 20

// Image kinds, as the Image service finds them (internal/image).
const (
	KindRootfsTar     = "rootfs-tar"
	KindDockerArchive = "docker-archive"
	KindOCILayout     = "oci-layout"
)

// ImageFormat says what an image's bytes are. It has the shape (and JSON
// form) of what the Image service records about them.
type ImageFormat struct {
	Kind string `json:"kind,omitempty"`
	// Compression of the whole file: "" or "gzip" (also found from the
	// bytes themselves).
	Compression string `json:"compression,omitempty"`
	// Config is the path in the tarball of the image config (docker, OCI).
	Config string `json:"config,omitempty"`
	// Layers are the paths in the tarball of the layers, bottom first.
	Layers []string `json:"layers,omitempty"`
}

// ImageConfig is what an image says about how to run it (the "config" of
// a Docker or OCI image config).
type ImageConfig struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	StopSignal string   `json:"stop_signal,omitempty"`
}

// Recovered is what Recover found.
type Recovered struct {
	// Containers are all the containers the runtime owns, as they are
	// after repair.
	Containers []State
	// Orphans are owned pieces that belong to no container.
	Orphans []Orphan
}

// Orphan is one owned piece of host state that belongs to no container.
type Orphan struct {
	// Kind is what it is: OrphanNetns, OrphanMount, OrphanProcess (a runc
	// container), OrphanDir.
	Kind string `json:"kind"`
	// ID is the container id it was made for.
	ID string `json:"id"`
	// Path is where it is (a namespace or mount path, a directory), if it
	// has one.
	Path string `json:"path,omitempty"`
}

// Orphan kinds.
const (
	OrphanNetns   = "netns"
	OrphanMount   = "mount"
	OrphanProcess = "process"
	OrphanDir     = "dir"
)

// Prune recovers rt, deletes the containers for which keep is false and
// removes the orphans. It returns the ids it deleted.
func Prune(ctx context.Context, rt Runtime, keep func(id string) bool) ([]string, error) {
	rec, err := rt.Recover(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, c := range rec.Containers {
		if keep(c.ID) {
			continue
		}
		if err := rt.Delete(ctx, c.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, c.ID)
	}
	if len(rec.Orphans) > 0 {
		errs = append(errs, rt.RemoveOrphans(ctx, rec.Orphans))
	}
	return deleted, errors.Join(errs...)
}
