package runc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/imagefs"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// RootDevice makes the conformance suite's root devices: a loop device
// over a sparse file made an ext4 filesystem of rootfs by mkfs.ext4 -d.
func (h *testHost) RootDevice(t *testing.T, rootfs []byte) string {
	dev, _ := ext4Device(t, rootfs)
	return dev
}

// ext4Device makes a 256 MiB ext4 filesystem of the tarball rootfs in a
// file and attaches it to a loop device, detached at the end of t. It
// returns the device and the file.
func ext4Device(t testing.TB, rootfs []byte) (dev, file string) {
	t.Helper()
	if _, err := imagefs.Mkfs(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	file = ext4File(t, dir, rootfs)
	return attachLoop(t, file, ""), file
}

func ext4File(t testing.TB, dir string, rootfs []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "disk-*.img")
	if err == nil {
		err = f.Truncate(256 << 20)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imagefs.MakeExt4(context.Background(), f.Name(), "root", dir, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, bytes.NewReader(rootfs)); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// attachLoop attaches file to a loop device (at dev, or the first free
// one) until the end of t.
func attachLoop(t testing.TB, file, dev string) string {
	t.Helper()
	args := []string{"--find", "--show", file}
	if dev != "" {
		args = []string{dev, file}
	}
	out, err := exec.Command("losetup", args...).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v %s", err, out)
	}
	if dev == "" {
		dev = strings.TrimSpace(string(out))
	}
	t.Cleanup(func() { detachLoop(dev) })
	return dev
}

func detachLoop(dev string) { exec.Command("losetup", "-d", dev).Run() }

// debugfsCat reads a file of the ext4 filesystem in file, unmounted.
func debugfsCat(t testing.TB, file, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, file).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}

// TestRootDevice boots the default image from an ext4 loop device: what
// the server writes is on the device, across a stop and a start, and
// after Delete, which leaves the device mounted nowhere.
func TestRootDevice(t *testing.T) {
	h, r, owner := newRuntime(t)
	ctx := context.Background()
	dev, file := ext4Device(t, runtimetest.DefaultImage(t))
	spec := runtimetest.MachineSpec("")
	spec.RootDevice = dev
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, r, spec.ID, "is up")
	rdev, _, err := blockDevice(dev)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(r.containerDir(spec.ID), bundleDir, "rootfs")
	if at, _ := mountsOf(rdev); len(at) != 1 || at[0] != rootfs {
		t.Fatalf("the device is mounted at %v, want %s", at, rootfs)
	}
	if got := run(t, r, spec.ID, "sh", "-c", "echo kept > /root/file && cat /proc/self/mountinfo | grep ' / / '"); !strings.Contains(got, "ext4") {
		t.Fatalf("the root is not the ext4 device: %s", got)
	}
	if err := r.Stop(ctx, spec.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, spec.ID, "cat", "/root/file"); got != "kept\n" {
		t.Fatalf("after a stop and a start: %q", got)
	}
	if err := r.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if at, _ := mountsOf(rdev); len(at) != 0 {
		t.Fatalf("the device is still mounted at %v after Delete", at)
	}
	if left := h.Leftovers(owner); left != "" {
		t.Fatalf("left: %s", left)
	}
	if got := debugfsCat(t, file, "/root/file"); got != "kept\n" {
		t.Fatalf("the device holds %q after Delete", got)
	}
}

// reboot takes from container id what a host restart takes: its process,
// shim, runc state, mounts and namespace.
func reboot(t testing.TB, r *Runtime, id string) {
	t.Helper()
	ctx := context.Background()
	dir := r.containerDir(id)
	if pid, ok := shim.Alive(dir); ok {
		syscall.Kill(pid, syscall.SIGKILL)
		poll(ctx, 5*time.Second, func() bool { return !shimAlive(dir) })
	}
	if r.runcExists(id) {
		if _, err := r.runcCmd(ctx, "delete", "--force", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := unmountAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := deleteNetns(r.NetnsName(id)); err != nil {
		t.Fatal(err)
	}
}

// TestRootDeviceReboot: after a host restart the loop devices come back
// in another order. A root device path that now names another file is
// never mounted; the device of the recorded file is found wherever it is;
// a device not attached at all fails the boot until it is (the namespace
// is made again meanwhile, for the ports).
func TestRootDeviceReboot(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	img := runtimetest.DefaultImage(t)
	dev, file := ext4Device(t, img)
	other := ext4File(t, t.TempDir(), img)
	spec := runtimetest.MachineSpec("")
	spec.RootDevice = dev
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, r, spec.ID, "is up")
	run(t, r, spec.ID, "sh", "-c", "echo survives > /root/file")
	rootfs := filepath.Join(r.containerDir(spec.ID), bundleDir, "rootfs")

	// The reboot: the old path now holds another filesystem, and the
	// volume's file is not attached.
	reboot(t, r, spec.ID)
	detachLoop(dev)
	attachLoop(t, other, dev)
	r2, err := New(testConfig(filepath.Dir(r.root), r.owner, testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Recover(ctx); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Recover with the root device gone: %v", err)
	}
	if isMountPoint(rootfs) {
		t.Fatal("Recover mounted another filesystem as the root")
	}
	if !isNetns(filepath.Join(NetnsDir, r2.NetnsName(spec.ID))) {
		t.Fatal("Recover did not make the namespace again, for the ports, while the root device is away")
	}
	if err := r2.Start(ctx, spec.ID); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Start with the root device gone: %v", err)
	}
	// The volume's file attached again, elsewhere: Recover finds it.
	moved := attachLoop(t, file, "")
	if _, err := r2.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if !isMountPoint(rootfs) {
		t.Fatal("Recover did not mount the root device again")
	}
	if rec, err := r2.readRecord(spec.ID); err != nil || rec.Spec.RootDevice != moved {
		t.Fatalf("the record's root device is %q (%v), want %s", rec.Spec.RootDevice, err, moved)
	}
	if err := r2.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r2, spec.ID, "cat", "/root/file"); got != "survives\n" {
		t.Fatalf("after the reboot: %q", got)
	}
	// A Create of the spec with the new path is the same container; with
	// the other filesystem's device it is another.
	spec.RootDevice = moved
	if st, err := r2.Create(ctx, spec); err != nil || st.Status != runtime.Running {
		t.Fatalf("Create with the moved device: %+v, %v", st, err)
	}
	spec.RootDevice = dev
	if _, err := r2.Create(ctx, spec); !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("Create with another device: %v", err)
	}
	if err := r2.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}
