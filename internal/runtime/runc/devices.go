package runc

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// SetDevices replaces the container's devices.
//
// The record (what Start, Recover and every later boot use) gets the new
// list. A container with a live init (Created, Running, Paused) is changed
// at once, from the host, with no process of its own: the device cgroup
// (v1) is written first to take away what is removed, the nodes are
// removed from and made in the container's /dev through its init's root
// (/proc/<pid>/root, walked without following symlinks, so that nothing
// the container made can send the daemon elsewhere), then the cgroup
// allows what is added. A frozen container needs nothing to run, so a
// Paused one is changed as a running one. The bundle's config.json, which
// otherwise is made again before each boot, is kept saying what the live
// container has, and the next change is worked out from it.
//
// The live container is changed before the record: a crash in between
// leaves the record as it was, and the caller's retry finds the live
// container (config.json) already changed and only writes the record.
func (r *Runtime) SetDevices(ctx context.Context, id string, devices []runtime.Device) error {
	defer r.lock(id)()
	rec, st, err := r.current(ctx, id)
	if err != nil {
		return err
	}
	if len(devices) == 0 {
		devices = nil
	} else {
		devices = slices.Clone(devices)
	}
	same := slices.Equal(rec.Spec.Devices, devices)
	live := st.Status != runtime.Stopped
	if same && !live {
		return nil
	}
	if !same {
		spec := rec.Spec
		spec.Devices = devices
		if err := spec.Validate(); err != nil {
			return err
		}
	}
	devs, err := lookupDevices(devices)
	if err != nil {
		if same {
			return nil // nothing to change that could be changed
		}
		return err
	}
	undo := func() {}
	if live {
		if undo, err = r.plugLive(ctx, id, st.Pid, devs); err != nil {
			// The init may have exited meanwhile: then it is a stopped
			// container, whose record is all there is to change.
			if now, serr := r.state(ctx, rec, nil); serr != nil || now.Status != runtime.Stopped {
				return err
			}
			undo = func() {}
		}
	}
	if same {
		return nil
	}
	next := *rec
	next.Spec.Devices = devices
	if err := r.writeRecord(&next); err != nil {
		undo()
		return err
	}
	r.log.Info("container devices set", "container", id, "devices", len(devices), "live", live)
	return nil
}

// plugLive changes the devices of the live container whose init is pid
// to devs, and config.json with them. It returns what undoes it.
func (r *Runtime) plugLive(ctx context.Context, id string, pid int, devs []hostDevice) (func(), error) {
	cfgPath := filepath.Join(r.containerDir(id), bundleDir, "config.json")
	cfg, err := readOCIConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	from := deviceState{nodes: cfg.Linux.Devices, rules: cfg.Linux.Resources.Devices}
	var to deviceState
	to.nodes, to.rules = deviceConfig(devs)
	if planDevices(from, to).empty() {
		return func() {}, nil
	}
	if pid <= 0 {
		return nil, fmt.Errorf("%w: container %s is being made; try again", runtime.ErrState, id)
	}
	cg, err := r.deviceCgroup(id)
	if err != nil {
		return nil, err
	}
	revert := func() {
		if err := r.plug(id, pid, cg, planDevices(to, from)); err != nil {
			r.log.Error("undoing a device change", "container", id, "err", err)
		}
	}
	if err := r.plug(id, pid, cg, planDevices(from, to)); err != nil {
		revert()
		return nil, fmt.Errorf("container %s: hot-plug: %w", id, err)
	}
	cfg.Linux.Devices, cfg.Linux.Resources.Devices = to.nodes, to.rules
	if err := writeOCIConfig(cfgPath, cfg); err != nil {
		revert()
		return nil, err
	}
	r.log.Info("devices plugged", "container", id, "pid", pid)
	return func() {
		revert()
		cfg.Linux.Devices, cfg.Linux.Resources.Devices = from.nodes, from.rules
		if err := writeOCIConfig(cfgPath, cfg); err != nil {
			r.log.Error("undoing a device change", "container", id, "err", err)
		}
	}, nil
}

func readOCIConfig(name string) (*specs.Spec, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if s.Linux == nil || s.Linux.Resources == nil {
		return nil, fmt.Errorf("%s: no linux resources", name)
	}
	return &s, nil
}

func writeOCIConfig(name string, s *specs.Spec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return shim.WriteFileAtomic(name, b, 0o600)
}

// deviceCgroup is the container's directory in the v1 devices hierarchy.
// Without that hierarchy (a host of cgroup v2 only, where runc gives the
// rules to an eBPF program it alone can replace), a live container cannot
// be changed.
func (r *Runtime) deviceCgroup(id string) (string, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(r.devicesCgroup, &fs); err != nil || fs.Type != unix.CGROUP_SUPER_MAGIC {
		return "", fmt.Errorf("%w: container %s: hot-plug needs the cgroup v1 devices controller; stop the server first", runtime.ErrState, id)
	}
	dir := filepath.Join(r.devicesCgroup, r.CgroupsPath(id))
	if !fileExists(filepath.Join(dir, "devices.allow")) {
		return "", fmt.Errorf("container %s has no devices cgroup at %s", id, dir)
	}
	return dir, nil
}

// deviceState is what a container has of devices: nodes in its /dev and
// device-cgroup rules, in the form of its OCI config.
type deviceState struct {
	nodes []specs.LinuxDevice
	rules []specs.LinuxDeviceCgroup
}

// cgroupRule is one device-cgroup exception: a device and access bits.
type cgroupRule struct {
	typ          string // "b" or "c"
	major, minor int64
	access       access
}

func (c cgroupRule) String() string {
	return fmt.Sprintf("%s %d:%d %s", c.typ, c.major, c.minor, c.access)
}

// access is a set of device-cgroup permissions.
type access uint8

const (
	accRead access = 1 << iota
	accWrite
	accMknod
)

func parseAccess(s string) access {
	var a access
	for _, c := range s {
		switch c {
		case 'r':
			a |= accRead
		case 'w':
			a |= accWrite
		case 'm':
			a |= accMknod
		}
	}
	return a
}

func (a access) String() string {
	var b strings.Builder
	for i, c := range "rwm" {
		if a&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

type ruleKey struct {
	typ          string
	major, minor int64
}

// runcAllowedRules are the exceptions runc 1.1 adds to every container's
// rules of its own (beyond what defaultDeviceRules already gives): they
// are never taken away.
var runcAllowedRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(200)), Access: "rwm"}, // /dev/net/tun
}

// ruleAccess is the access each device (by exact major:minor; wildcards
// are left out) has under rules and runc's own.
func ruleAccess(rules []specs.LinuxDeviceCgroup) map[ruleKey]access {
	m := map[ruleKey]access{}
	for _, rl := range append(slices.Clone(rules), runcAllowedRules...) {
		if !rl.Allow || rl.Major == nil || rl.Minor == nil || *rl.Major < 0 || *rl.Minor < 0 || (rl.Type != "b" && rl.Type != "c") {
			continue
		}
		m[ruleKey{rl.Type, *rl.Major, *rl.Minor}] |= parseAccess(rl.Access)
	}
	return m
}

// devicePlan is how to go from one deviceState to another, in this order:
// deny, remove nodes, allow, make nodes.
type devicePlan struct {
	deny   []cgroupRule // access to take away
	remove []specs.LinuxDevice
	allow  []cgroupRule // the whole access a device is to have
	make   []specs.LinuxDevice
}

func (p devicePlan) empty() bool {
	return len(p.deny)+len(p.remove)+len(p.allow)+len(p.make) == 0
}

func sameNode(a, b specs.LinuxDevice) bool {
	eq := func(x, y *uint32) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return a.Path == b.Path && a.Type == b.Type && a.Major == b.Major && a.Minor == b.Minor &&
		((a.FileMode == nil && b.FileMode == nil) || (a.FileMode != nil && b.FileMode != nil && *a.FileMode == *b.FileMode)) &&
		eq(a.UID, b.UID) && eq(a.GID, b.GID)
}

func planDevices(from, to deviceState) devicePlan {
	var p devicePlan
	fromNodes, toNodes := map[string]specs.LinuxDevice{}, map[string]specs.LinuxDevice{}
	for _, n := range from.nodes {
		fromNodes[n.Path] = n
	}
	for _, n := range to.nodes {
		toNodes[n.Path] = n
	}
	for _, n := range from.nodes {
		if t, ok := toNodes[n.Path]; !ok || !sameNode(n, t) {
			p.remove = append(p.remove, n)
		}
	}
	for _, n := range to.nodes {
		if f, ok := fromNodes[n.Path]; !ok || !sameNode(n, f) {
			p.make = append(p.make, n)
		}
	}
	fromAcc, toAcc := ruleAccess(from.rules), ruleAccess(to.rules)
	keys := map[ruleKey]bool{}
	for k := range fromAcc {
		keys[k] = true
	}
	for k := range toAcc {
		keys[k] = true
	}
	sorted := make([]ruleKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.SortFunc(sorted, func(a, b ruleKey) int {
		return cmp.Or(strings.Compare(a.typ, b.typ), cmp.Compare(a.major, b.major), cmp.Compare(a.minor, b.minor))
	})
	for _, k := range sorted {
		a, b := fromAcc[k], toAcc[k]
		if drop := a &^ b; drop != 0 {
			p.deny = append(p.deny, cgroupRule{k.typ, k.major, k.minor, drop})
		}
		if b&^a != 0 {
			p.allow = append(p.allow, cgroupRule{k.typ, k.major, k.minor, b})
		}
	}
	return p
}

// plug carries out p in the live container whose init is pid and whose
// devices cgroup is cg.
func (r *Runtime) plug(id string, pid int, cg string, p devicePlan) error {
	for _, rl := range p.deny {
		if err := writeCgroup(filepath.Join(cg, "devices.deny"), rl.String()); err != nil {
			return err
		}
	}
	root := -1
	if len(p.remove)+len(p.make) > 0 {
		var err error
		if root, err = r.openRoot(id, pid); err != nil {
			return err
		}
		defer unix.Close(root)
	}
	for _, n := range p.remove {
		if err := removeNode(root, n.Path); err != nil {
			return err
		}
	}
	for _, rl := range p.allow {
		if err := writeCgroup(filepath.Join(cg, "devices.allow"), rl.String()); err != nil {
			return err
		}
	}
	for _, n := range p.make {
		if err := makeNode(root, n); err != nil {
			return err
		}
	}
	return nil
}

func writeCgroup(name, line string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", line, name, err)
	}
	return nil
}

// openRoot opens (O_PATH) the root directory of the container's init,
// pid, once sure that pid is that init: a process in the container's
// devices cgroup (a pid reused meanwhile is not). Reading through the
// /proc/<pid> directory handle fails if the process is gone.
func (r *Runtime) openRoot(id string, pid int) (int, error) {
	proc, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("the init of %s (pid %d): %w", id, pid, err)
	}
	defer unix.Close(proc)
	fd, err := unix.Openat(proc, "cgroup", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("the init of %s (pid %d): %w", id, pid, err)
	}
	f := os.NewFile(uintptr(fd), "cgroup")
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return -1, fmt.Errorf("the init of %s (pid %d): %w", id, pid, err)
	}
	if !inDevicesCgroup(string(b), r.CgroupsPath(id)) {
		return -1, fmt.Errorf("pid %d is not the init of %s (not in its devices cgroup)", pid, id)
	}
	root, err := unix.Openat(proc, "root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("the root of %s (pid %d): %w", id, pid, err)
	}
	return root, nil
}

// inDevicesCgroup reports whether /proc/<pid>/cgroup (procCgroup) puts the
// process in cgroup path of the v1 devices hierarchy.
func inDevicesCgroup(procCgroup, path string) bool {
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "devices") {
			return parts[2] == path
		}
	}
	return false
}

// openDirIn opens (O_PATH) the directory dir, a clean absolute path in
// the container whose root is root, one component at a time and never
// following a symlink; mkdir makes missing directories (0755, as runc
// does for a device's parents).
func openDirIn(root int, dir string, mkdir bool) (int, error) {
	fd, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		if c == "" {
			continue
		}
		next, err := unix.Openat(fd, c, flags, 0)
		if errors.Is(err, unix.ENOENT) && mkdir {
			if err = unix.Mkdirat(fd, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = unix.Openat(fd, c, flags, 0)
			}
		}
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("%s in the container: %w", dir, err)
		}
		fd = next
	}
	return fd, nil
}

func nodeType(typ string) (uint32, error) {
	switch typ {
	case "b":
		return unix.S_IFBLK, nil
	case "c", "u":
		return unix.S_IFCHR, nil
	}
	return 0, fmt.Errorf("device type %q", typ)
}

// makeNode makes the device node n in the container whose root is root,
// replacing whatever other than a directory is at its path, with n's
// mode and owner (as runc makes the nodes of a boot).
func makeNode(root int, n specs.LinuxDevice) error {
	typ, err := nodeType(n.Type)
	if err != nil {
		return err
	}
	perm := uint32(0o660)
	if n.FileMode != nil {
		perm = uint32(n.FileMode.Perm())
	}
	uid, gid := 0, 0
	if n.UID != nil {
		uid = int(*n.UID)
	}
	if n.GID != nil {
		gid = int(*n.GID)
	}
	rdev := unix.Mkdev(uint32(n.Major), uint32(n.Minor))
	dir, err := openDirIn(root, path.Dir(n.Path), true)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	base := path.Base(n.Path)
	var st unix.Stat_t
	err = unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == typ && st.Rdev == rdev && st.Mode&0o7777 == perm && int(st.Uid) == uid && int(st.Gid) == gid:
		return nil // there already
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return fmt.Errorf("%w: %s is a directory in the container", runtime.ErrInvalid, n.Path)
	case err == nil:
		if err := unix.Unlinkat(dir, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("replace %s in the container: %w", n.Path, err)
		}
	case !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s in the container: %w", n.Path, err)
	}
	if err := unix.Mknodat(dir, base, typ|perm, int(rdev)); err != nil {
		return fmt.Errorf("mknod %s in the container: %w", n.Path, err)
	}
	// The umask took bits off: set mode and owner on the node just made
	// (through a handle on it, not its path, which the container could
	// change meanwhile).
	fd, err := unix.Openat(dir, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s in the container: %w", n.Path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != typ || st.Rdev != rdev {
		return fmt.Errorf("%s in the container was replaced while it was made", n.Path)
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %s in the container: %w", n.Path, err)
	}
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), perm); err != nil {
		return fmt.Errorf("chmod %s in the container: %w", n.Path, err)
	}
	return nil
}

// removeNode removes the device node at p in the container whose root is
// root; anything else there (a file the container made) is left, and so
// is a missing one.
func removeNode(root int, p string) error {
	dir, err := openDirIn(root, path.Dir(p), false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	base := path.Base(p)
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("%s in the container: %w", p, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFBLK && t != unix.S_IFCHR {
		return nil
	}
	if err := unix.Unlinkat(dir, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s in the container: %w", p, err)
	}
	return nil
}
