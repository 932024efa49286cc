package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/lockmap"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// Config configures a Runtime.
type Config struct {
	// Owner names this runtime's objects on the host: letters, digits and
	// '_' (no '-', so that one owner's names are never a prefix of
	// another's), at most 32.
	Owner string
	// StateDir holds images, containers and their logs (for example
	// <data-dir>/runtime). It must be on a filesystem overlayfs can use
	// as an upper layer (ext4, xfs, btrfs; not overlayfs or tmpfs on old
	// kernels).
	StateDir string
	// RunDir holds runc's state (--root RunDir/runc); by default
	// /run/monostack/<Owner>.
	RunDir string
	// Runc is the runc binary; "runc" from PATH by default.
	Runc string
	// ShimBinary is the program that runs shims, normally this very
	// binary (os.Executable()), with ShimArgs before "--dir DIR": by
	// default ["shim"], for `monostack shim --dir DIR`.
	ShimBinary string
	ShimArgs   []string
	// NoSeccomp leaves out the seccomp filter (for debugging).
	NoSeccomp bool
	// Logger; nothing is logged when nil.
	Logger *slog.Logger
}

var ownerPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// Runtime is the runc runtime. Make one with New.
type Runtime struct {
	owner     string
	root      string // StateDir
	runDir    string
	runcRoot  string
	runc      string
	shimBin   string
	shimArgs  []string
	noSeccomp bool
	swap      bool   // the memory cgroup limits memory+swap
	nofile    uint64 // the containers' RLIMIT_NOFILE
	log       *slog.Logger
	// devicesCgroup is the mount point of the cgroup v1 devices
	// hierarchy, which hot-plug writes to.
	devicesCgroup string

	locks lockmap.Map // per container and per image
}

var _ runtime.Runtime = (*Runtime)(nil)

// New makes a runtime over cfg.StateDir. It changes nothing on the host
// but its own directories; call Recover to repair after a restart.
func New(cfg Config) (*Runtime, error) {
	if !ownerPattern.MatchString(cfg.Owner) {
		return nil, fmt.Errorf("%w: owner %q: letters, digits and '_', at most 32", runtime.ErrInvalid, cfg.Owner)
	}
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("%w: no state directory", runtime.ErrInvalid)
	}
	root, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		owner:     cfg.Owner,
		root:      root,
		runDir:    cfg.RunDir,
		noSeccomp: cfg.NoSeccomp,
		shimArgs:  cfg.ShimArgs,
		log:       cfg.Logger,

		devicesCgroup: "/sys/fs/cgroup/devices",
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.runDir == "" {
		r.runDir = filepath.Join("/run/monostack", cfg.Owner)
	}
	r.runcRoot = filepath.Join(r.runDir, "runc")
	bin := cfg.Runc
	if bin == "" {
		bin = "runc"
	}
	if r.runc, err = exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("runc: %w", err)
	}
	if r.runc, err = filepath.Abs(r.runc); err != nil {
		return nil, err
	}
	r.shimBin = cfg.ShimBinary
	if r.shimBin == "" {
		if r.shimBin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("shim binary: %w", err)
		}
	}
	if r.shimArgs == nil {
		r.shimArgs = []string{"shim"}
	}
	for _, d := range []string{r.imagesDir(), r.containersDir(), r.runcRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// Open files: 65536, or what we may give (runc cannot raise a hard
	// limit above its own).
	r.nofile = 65536
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Max < r.nofile {
		r.nofile = rl.Max
	}
	r.swap = fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") || fileExists("/sys/fs/cgroup/cgroup.controllers")
	return r, nil
}

// Close releases nothing: the runtime keeps no handles. Containers go on.
func (r *Runtime) Close() error { return nil }

// Owner is the runtime's owner id.
func (r *Runtime) Owner() string { return r.owner }

// RuncRoot is runc's --root for this runtime.
func (r *Runtime) RuncRoot() string { return r.runcRoot }

// NetnsName is the name of the network namespace of container id.
func (r *Runtime) NetnsName(id string) string { return netnsPrefix(r.owner) + id }

// netnsFor is the name of the network namespace a container runs in: its
// own, or the one of the container it joins (Spec.NetnsOf).
func (r *Runtime) netnsFor(s runtime.Spec) string {
	if s.NetnsOf != "" {
		return r.NetnsName(s.NetnsOf)
	}
	return r.NetnsName(s.ID)
}

// keepNetns makes sure a container that has its own namespace still has
// it under its name (after a reboot, from its init's); one that joins
// another's has nothing of its own to keep.
func (r *Runtime) keepNetns(s runtime.Spec, pid int) error {
	if s.NetnsOf != "" {
		return nil
	}
	return ensureNetns(r.NetnsName(s.ID), pid)
}

func netnsPrefix(owner string) string { return "ms-" + owner + "-" }

// CgroupsPath is the cgroup of container id, under each hierarchy.
func (r *Runtime) CgroupsPath(id string) string { return "/monostack-" + r.owner + "-" + id }

func (r *Runtime) imagesDir() string             { return filepath.Join(r.root, "images") }
func (r *Runtime) containersDir() string         { return filepath.Join(r.root, "containers") }
func (r *Runtime) imageDir(id string) string     { return filepath.Join(r.imagesDir(), id) }
func (r *Runtime) containerDir(id string) string { return filepath.Join(r.containersDir(), id) }

// lock serialises the calls on one container (or image: "image/" + id)
// within this process.
func (r *Runtime) lock(key string) func() { return r.locks.Lock(key) }

// runcCmd runs runc with args and returns its stdout; a failure carries
// runc's error message.
func (r *Runtime) runcCmd(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--root", r.runcRoot, "--log-format", "json"}, args...)
	cmd := exec.CommandContext(ctx, r.runc, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		msg := runcMessage(stderr.Bytes())
		if msg == "" {
			msg = err.Error()
		}
		return out, fmt.Errorf("runc %s: %s", args[0], msg)
	}
	return out, nil
}

// runcMessage is the last error runc logged (JSON lines) in b, or b.
func runcMessage(b []byte) string {
	msg := ""
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &e) == nil {
			if e.Level == "error" || e.Level == "fatal" {
				msg = e.Msg
			}
			continue
		}
		if s := strings.TrimSpace(string(line)); s != "" {
			msg = s
		}
	}
	return msg
}

// runcState is `runc state`: what runc knows of a container.
type runcState struct {
	ID      string    `json:"id"`
	Pid     int       `json:"pid"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
}

// runcExists reports whether runc has container id (in its state dir).
func (r *Runtime) runcExists(id string) bool {
	return fileExists(filepath.Join(r.runcRoot, id, "state.json"))
}

// state asks runc about container id; ok is false when runc has none.
// It reads runc's files (readState) and runs `runc state` only when it
// cannot make sense of them.
func (r *Runtime) runcState(ctx context.Context, id string) (runcState, bool, error) {
	if st, ok, err := r.readState(id); err == nil {
		return st, ok, nil
	}
	if !r.runcExists(id) {
		return runcState{}, false, nil
	}
	out, err := r.runcCmd(ctx, "state", id)
	if err != nil {
		if !r.runcExists(id) { // gone meanwhile
			return runcState{}, false, nil
		}
		return runcState{}, false, err
	}
	var st runcState
	if err := json.Unmarshal(out, &st); err != nil {
		return st, false, fmt.Errorf("runc state %s: %w", id, err)
	}
	return st, true, nil
}

// runcList is `runc list`: every container in this runtime's runc root.
func (r *Runtime) runcList(ctx context.Context) (map[string]runcState, error) {
	out, err := r.runcCmd(ctx, "list", "--format", "json")
	// runc lists its root's directories, then reads each: one removed in
	// between (a shim deleting its exited container) fails the whole list
	// with ENOENT. The next try does not see it.
	for try := 0; err != nil && strings.Contains(err.Error(), "no such file or directory") && try < 5; try++ {
		out, err = r.runcCmd(ctx, "list", "--format", "json")
	}
	if err != nil {
		return nil, err
	}
	var list []runcState
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	m := make(map[string]runcState, len(list))
	for _, s := range list {
		m[s.ID] = s
	}
	return m, nil
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func notFound(id string) error {
	return fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
}

func stateErr(id string, st runtime.Status, op string) error {
	return fmt.Errorf("%w: cannot %s container %s: it is %s", runtime.ErrState, op, id, st)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// poll calls done with growing pauses until it is true, ctx ends or
// timeout passes; it reports whether done became true.
func poll(ctx context.Context, timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := 2 * time.Millisecond
	for {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if sleepCtx(ctx, wait) != nil {
			return done()
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// shimAlive reports whether the shim of container dir runs.
func shimAlive(dir string) bool {
	_, ok := shim.Alive(dir)
	return ok
}
