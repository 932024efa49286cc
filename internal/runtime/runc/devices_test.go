package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

// loopDev is a loop device over a sparse file, detached at the end of the
// test.
type loopDev struct {
	path, backing string
	major, minor  uint32
}

func newLoop(t *testing.T) loopDev {
	t.Helper()
	backing := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 8<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v %s", err, out)
	}
	l := loopDev{path: strings.TrimSpace(string(out)), backing: backing}
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", l.path).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", l.path, err, out)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(l.path, &st); err != nil {
		t.Fatal(err)
	}
	l.major, l.minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	// Mode and group as udev gives block devices on most hosts (the
	// container's node must get them), put back at the end.
	if err := os.Chmod(l.path, 0o660); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(l.path, 0, 6); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Chown(l.path, int(st.Uid), int(st.Gid))
		os.Chmod(l.path, os.FileMode(st.Mode&0o7777))
	})
	return l
}

// head is the first n bytes of the loop's backing file.
func (l loopDev) head(t *testing.T, n int) string {
	t.Helper()
	b, err := os.ReadFile(l.backing)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

// rule is the loop's line in a devices.list with access acc.
func (l loopDev) rule(acc string) string { return fmt.Sprintf("b %d:%d %s", l.major, l.minor, acc) }

// deviceList is the container's devices cgroup list.
func deviceList(t *testing.T, r *Runtime, id string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.devicesCgroup, r.CgroupsPath(id), "devices.list"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// listed is the access the devices cgroup list gives l exactly ("" when
// it has no line of its own).
func (l loopDev) listed(t *testing.T, r *Runtime, id string) string {
	t.Helper()
	prefix := fmt.Sprintf("b %d:%d ", l.major, l.minor)
	for _, line := range deviceList(t, r, id) {
		if acc, ok := strings.CutPrefix(line, prefix); ok {
			return acc
		}
	}
	return ""
}

// fails execs a shell command that must fail, and returns its stderr.
func fails(t *testing.T, r runtime.Runtime, id, script string) string {
	t.Helper()
	res, err := r.Exec(context.Background(), id, runtime.ExecSpec{Args: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
	if res.ExitCode == 0 {
		t.Fatalf("%q succeeded: %s", script, res.Stdout)
	}
	return string(res.Stderr)
}

func recordDevices(t *testing.T, r *Runtime, id string) []runtime.Device {
	t.Helper()
	rec, err := r.readRecord(id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Spec.Devices
}

func needV1Devices(t *testing.T) {
	t.Helper()
	var fs unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup/devices", &fs) != nil || fs.Type != unix.CGROUP_SUPER_MAGIC {
		t.Skip("no cgroup v1 devices controller: no hot-plug into a live container")
	}
}

// TestHotplug attaches loop devices to a running and a paused machine
// container, changes and detaches them, across a stop and a start and a
// daemon restart.
func TestHotplug(t *testing.T) {
	h, r, owner := newRuntime(t)
	needV1Devices(t)
	ctx := context.Background()
	a, b := newLoop(t), newLoop(t)
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, r, spec.ID, "is up")
	id := spec.ID

	// A daemon's umask must not show on the nodes it makes.
	old := unix.Umask(0o027)
	t.Cleanup(func() { unix.Umask(old) })

	// Attach /dev/vdb to the running container.
	vdb := runtime.Device{HostPath: a.path, Path: "/dev/vdb"}
	if err := r.SetDevices(ctx, id, []runtime.Device{vdb}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, id, "sh", "-c", "echo hot-plugged > /dev/vdb && sync && head -c 11 /dev/vdb"); got != "hot-plugged" {
		t.Fatalf("read back %q", got)
	}
	if got := a.head(t, 11); got != "hot-plugged" {
		t.Fatalf("the backing file has %q", got)
	}
	if got := a.listed(t, r, id); got != "rw" {
		t.Fatalf("devices.list gives /dev/vdb %q, want rw: %v", got, deviceList(t, r, id))
	}
	// The node is as the host's, as a boot makes it.
	var host unix.Stat_t
	if err := unix.Stat(a.path, &host); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x %x %o %d %d", a.major, a.minor, host.Mode&0o777, host.Uid, host.Gid)
	if got := strings.TrimSpace(run(t, r, id, "stat", "-c", "%t %T %a %u %g", "/dev/vdb")); got != want {
		t.Fatalf("the node is %q, want %q", got, want)
	}
	// A node the guest makes itself opens too (the cgroup allows the
	// device, whatever its name).
	if got := run(t, r, id, "sh", "-c", fmt.Sprintf("mknod /dev/probe b %d %d && head -c 11 /dev/probe; rm -f /dev/probe", a.major, a.minor)); got != "hot-plugged" {
		t.Fatalf("through a node of the guest's: %q", got)
	}
	if got := recordDevices(t, r, id); !slices.Equal(got, []runtime.Device{vdb}) {
		t.Fatalf("record: %+v", got)
	}
	// The same list again changes nothing: the node is not made again.
	ino := run(t, r, id, "stat", "-c", "%i", "/dev/vdb")
	if err := r.SetDevices(ctx, id, []runtime.Device{vdb}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, id, "stat", "-c", "%i", "/dev/vdb"); got != ino {
		t.Fatalf("the same list made the node again: inode %s, was %s", got, ino)
	}

	// Attach /dev/vdc while paused.
	vdc := runtime.Device{HostPath: b.path, Path: "/dev/vdc"}
	if err := r.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDevices(ctx, id, []runtime.Device{vdb, vdc}); err != nil {
		t.Fatalf("SetDevices(paused): %v", err)
	}
	if st, err := r.State(ctx, id); err != nil || st.Status != runtime.Paused {
		t.Fatalf("after SetDevices(paused): %+v %v", st, err)
	}
	if err := r.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, id, "sh", "-c", "echo paused-plug > /dev/vdc && sync && head -c 11 /dev/vdc && head -c 11 /dev/vdb"); got != "paused-plughot-plugged" {
		t.Fatalf("read back /dev/vdc %q", got)
	}
	if got := b.head(t, 11); got != "paused-plug" {
		t.Fatalf("the backing file of /dev/vdc has %q", got)
	}

	// /dev/vdc read-only: the cgroup takes write away.
	vdcRO := vdc
	vdcRO.ReadOnly = true
	if err := r.SetDevices(ctx, id, []runtime.Device{vdb, vdcRO}); err != nil {
		t.Fatal(err)
	}
	if got := b.listed(t, r, id); got != "r" {
		t.Fatalf("devices.list gives a read-only /dev/vdc %q: %v", got, deviceList(t, r, id))
	}
	fails(t, r, id, "echo x > /dev/vdc")
	if got := run(t, r, id, "head", "-c", "11", "/dev/vdc"); got != "paused-plug" {
		t.Fatalf("read-only /dev/vdc reads %q", got)
	}

	// A stop and a start: the boot has both.
	if err := r.Stop(ctx, id, runtime.DefaultStopTimeout); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, id, "sh", "-c", "test -b /dev/vdb && test -b /dev/vdc && head -c 11 /dev/vdb && head -c 11 /dev/vdc"); got != "hot-pluggedpaused-plug" {
		t.Fatalf("after a stop and a start: %q", got)
	}
	fails(t, r, id, "echo x > /dev/vdc")
	if got, got2 := a.listed(t, r, id), b.listed(t, r, id); got != "rw" || got2 != "r" {
		t.Fatalf("after a boot, devices.list gives %q and %q: %v", got, got2, deviceList(t, r, id))
	}

	// A daemon restart: the new runtime has the devices on record, and
	// changes them.
	r2 := h.open(t, owner)
	if _, err := r2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got := recordDevices(t, r2, id); !slices.Equal(got, []runtime.Device{vdb, vdcRO}) {
		t.Fatalf("record after a restart: %+v", got)
	}
	if st, err := r2.State(ctx, id); err != nil || st.Status != runtime.Running {
		t.Fatalf("after a restart: %+v %v", st, err)
	}
	// /dev/vdb becomes b's device (the node is made again), read-write;
	// /dev/vdc goes.
	if err := r2.SetDevices(ctx, id, []runtime.Device{{HostPath: b.path, Path: "/dev/vdb"}}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r2, id, "sh", "-c", "test ! -e /dev/vdc && echo now-b > /dev/vdb && sync && head -c 5 /dev/vdb"); got != "now-b" {
		t.Fatalf("/dev/vdb as b: %q", got)
	}
	if got := b.head(t, 5); got != "now-b" {
		t.Fatalf("the backing file of b has %q", got)
	}
	if got, got2 := a.listed(t, r2, id), b.listed(t, r2, id); got != "" || got2 != "rw" {
		t.Fatalf("devices.list gives a %q and b %q: %v", got, got2, deviceList(t, r2, id))
	}
	fails(t, r2, id, fmt.Sprintf("mknod /dev/probe b %d %d; head -c 1 /dev/probe", a.major, a.minor))

	// Detach all, running.
	if err := r2.SetDevices(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	fails(t, r2, id, "test -e /dev/vdb")
	fails(t, r2, id, "head -c 1 /dev/vdb")
	if msg := fails(t, r2, id, fmt.Sprintf("rm -f /dev/probe; mknod /dev/probe b %d %d && head -c 1 /dev/probe", b.major, b.minor)); !strings.Contains(msg, "not permitted") {
		t.Fatalf("opening a detached device: %s", msg)
	}
	if got, got2 := a.listed(t, r2, id), b.listed(t, r2, id); got != "" || got2 != "" {
		t.Fatalf("devices.list still gives a %q and b %q: %v", got, got2, deviceList(t, r2, id))
	}
	if got := recordDevices(t, r2, id); len(got) != 0 {
		t.Fatalf("record after detaching all: %+v", got)
	}
	// The defaults are untouched.
	run(t, r2, id, "sh", "-c", "echo x > /dev/null && head -c 1 /dev/zero >/dev/null")
	if err := r2.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// TestHotplugCreated: a Created container (its init made, not started)
// gets the device at once, and boots with it.
func TestHotplugCreated(t *testing.T) {
	_, r, _ := newRuntime(t)
	needV1Devices(t)
	ctx := context.Background()
	a := newLoop(t)
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDevices(ctx, spec.ID, []runtime.Device{{HostPath: a.path, Path: "/dev/disk/by-id/vol"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, spec.ID, "sh", "-c", "echo created > /dev/disk/by-id/vol && sync && head -c 7 /dev/disk/by-id/vol"); got != "created" {
		t.Fatalf("read back %q", got)
	}
	if got := a.head(t, 7); got != "created" {
		t.Fatalf("the backing file has %q", got)
	}
	if err := r.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}

// TestHotplugInterrupted: a daemon that died between changing the live
// container and writing the record left them apart; the next SetDevices
// goes from what the live container has, whatever list it is given.
func TestHotplugInterrupted(t *testing.T) {
	_, r, _ := newRuntime(t)
	needV1Devices(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	st, err := r.State(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	list := []runtime.Device{{HostPath: "/dev/zero", Path: "/dev/vdb"}}
	devs, err := lookupDevices(list)
	if err != nil {
		t.Fatal(err)
	}
	interrupted := func() {
		t.Helper()
		if _, err := r.plugLive(ctx, spec.ID, st.Pid, devs); err != nil {
			t.Fatal(err)
		}
		run(t, r, spec.ID, "test", "-c", "/dev/vdb")
		if got := recordDevices(t, r, spec.ID); len(got) != 0 {
			t.Fatalf("record: %+v", got)
		}
	}
	// The caller gives up: the record's list (the same) takes the device away.
	interrupted()
	if err := r.SetDevices(ctx, spec.ID, nil); err != nil {
		t.Fatal(err)
	}
	fails(t, r, spec.ID, "test -e /dev/vdb")
	// The caller retries: the record is written, the node kept.
	interrupted()
	ino := run(t, r, spec.ID, "stat", "-c", "%i", "/dev/vdb")
	if err := r.SetDevices(ctx, spec.ID, list); err != nil {
		t.Fatal(err)
	}
	if got := recordDevices(t, r, spec.ID); !slices.Equal(got, list) {
		t.Fatalf("record: %+v", got)
	}
	if got := run(t, r, spec.ID, "stat", "-c", "%i", "/dev/vdb"); got != ino {
		t.Fatalf("the node was made again: inode %s, was %s", got, ino)
	}
}

// TestHotplugNoV1: without the v1 devices controller a live container is
// not changed (ErrState, record as it was); a stopped one is.
func TestHotplugNoV1(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	r.devicesCgroup = filepath.Join(t.TempDir(), "no-devices-hierarchy") // as on a host of cgroup v2 only
	devs := []runtime.Device{{HostPath: "/dev/zero", Path: "/dev/vdb"}}
	err := r.SetDevices(ctx, spec.ID, devs)
	if !errors.Is(err, runtime.ErrState) || !strings.Contains(err.Error(), "cgroup v1 devices controller") {
		t.Fatalf("SetDevices without v1 devices: %v", err)
	}
	if got := recordDevices(t, r, spec.ID); len(got) != 0 {
		t.Fatalf("a failed SetDevices changed the record: %+v", got)
	}
	fails(t, r, spec.ID, "test -e /dev/vdb")
	// The same (empty) list is nothing to change.
	if err := r.SetDevices(ctx, spec.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx, spec.ID, runtime.DefaultStopTimeout); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDevices(ctx, spec.ID, devs); err != nil {
		t.Fatalf("SetDevices(stopped): %v", err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, spec.ID, "sh", "-c", "head -c 3 /dev/vdb | od -An -tx1"); strings.TrimSpace(got) != "00 00 00" {
		t.Fatalf("/dev/vdb after a boot reads %q", got)
	}
}

// TestHotplugGuestSymlink: a symlink the guest puts where a device goes,
// or on its way, does not lead the daemon out of the container.
func TestHotplugGuestSymlink(t *testing.T) {
	_, r, _ := newRuntime(t)
	needV1Devices(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	run(t, r, spec.ID, "sh", "-c", "ln -s "+outside+" /dev/evil && ln -s "+outside+"/node /dev/vdb")
	// The parent is a symlink: refused.
	err := r.SetDevices(ctx, spec.ID, []runtime.Device{{HostPath: "/dev/zero", Path: "/dev/evil/vdb"}})
	if err == nil {
		t.Fatal("SetDevices through a symlinked directory succeeded")
	}
	// The node's name is a symlink: replaced, not followed.
	if err := r.SetDevices(ctx, spec.ID, []runtime.Device{{HostPath: "/dev/zero", Path: "/dev/vdb"}}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, spec.ID, "stat", "-c", "%F", "/dev/vdb"); got != "character special file\n" {
		t.Fatalf("/dev/vdb is a %q", got)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("the daemon wrote outside the container: %v", entries)
	}
	if err := r.SetDevices(ctx, spec.ID, nil); err != nil {
		t.Fatal(err)
	}
	fails(t, r, spec.ID, "test -e /dev/vdb")
}

// TestPlanDevices: the cgroup changes a device change makes, without a
// container.
func TestPlanDevices(t *testing.T) {
	dev := func(path string, major, minor int64, ro bool) hostDevice {
		return hostDevice{Device: runtime.Device{Path: path, ReadOnly: ro}, typ: "b", major: major, minor: minor, mode: 0o660}
	}
	state := func(devs ...hostDevice) deviceState {
		var s deviceState
		s.nodes, s.rules = deviceConfig(devs)
		return s
	}
	null := hostDevice{Device: runtime.Device{Path: "/dev/vdz"}, typ: "c", major: 1, minor: 3, mode: 0o666}
	rules := func(rs []cgroupRule) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.String())
		}
		return strings.Join(out, ",")
	}
	paths := func(ns []specs.LinuxDevice) string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Path)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		name                     string
		from, to                 deviceState
		deny, remove, allow, mke string
	}{
		{"same", state(dev("/dev/vdb", 7, 1, false)), state(dev("/dev/vdb", 7, 1, false)), "", "", "", ""},
		{"add", state(), state(dev("/dev/vdb", 7, 1, false)), "", "", "b 7:1 rw", "/dev/vdb"},
		{"remove", state(dev("/dev/vdb", 7, 1, false)), state(), "b 7:1 rw", "/dev/vdb", "", ""},
		{"read-only", state(dev("/dev/vdb", 7, 1, false)), state(dev("/dev/vdb", 7, 1, true)), "b 7:1 w", "", "", ""},
		{"read-write", state(dev("/dev/vdb", 7, 1, true)), state(dev("/dev/vdb", 7, 1, false)), "", "", "b 7:1 rw", ""},
		{"other device", state(dev("/dev/vdb", 7, 1, false)), state(dev("/dev/vdb", 7, 2, false)), "b 7:1 rw", "/dev/vdb", "b 7:2 rw", "/dev/vdb"},
		{"renamed", state(dev("/dev/vdb", 7, 1, false)), state(dev("/dev/vdc", 7, 1, false)), "", "/dev/vdb", "", "/dev/vdc"},
		{"shared", state(dev("/dev/vdb", 7, 1, false), dev("/dev/vdc", 7, 1, true)), state(dev("/dev/vdc", 7, 1, true)), "b 7:1 w", "/dev/vdb", "", ""},
		{"a default device", state(null), state(), "", "/dev/vdz", "", ""},
	} {
		p := planDevices(c.from, c.to)
		if rules(p.deny) != c.deny || paths(p.remove) != c.remove || rules(p.allow) != c.allow || paths(p.make) != c.mke {
			t.Errorf("%s: deny %q remove %q allow %q make %q", c.name, rules(p.deny), paths(p.remove), rules(p.allow), paths(p.make))
		}
	}
}

// TestInDevicesCgroup reads /proc/<pid>/cgroup.
func TestInDevicesCgroup(t *testing.T) {
	procCgroup := "12:pids:/x\n5:devices:/monostack-o-c1\n4:cpu,cpuacct:/x\n0::/x\n"
	if !inDevicesCgroup(procCgroup, "/monostack-o-c1") || inDevicesCgroup(procCgroup, "/monostack-o-c2") || inDevicesCgroup("0::/monostack-o-c1\n", "/monostack-o-c1") {
		t.Fatal("inDevicesCgroup")
	}
}
