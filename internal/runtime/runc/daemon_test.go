package runc

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// daemonMain is a stand-in for the monostack daemon, run as a separate
// process so that a test can kill -9 it: it starts a machine container
// with the given config drive, prints "ready <id>" and waits to be killed.
func daemonMain(args []string) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	base := fs.String("base", "", "")
	owner := fs.String("owner", "", "")
	image := fs.String("image", "", "root filesystem tarball")
	drive := fs.String("config-drive", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Println("error", err)
		return 1
	}
	r, err := New(testConfig(*base, *owner, slog.New(slog.DiscardHandler)))
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	img := "img-" + runtimetest.NewID()
	open := func() (io.ReadCloser, error) { return os.Open(*image) }
	if _, err := r.EnsureImage(ctx, img, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, open); err != nil {
		return fail(err)
	}
	spec := runtimetest.MachineSpec(img)
	spec.Hostname = "daemon-vm"
	spec.Mounts = []runtime.Mount{{Source: *drive, Destination: "/mnt/config", ReadOnly: true}}
	if _, err := r.Create(ctx, spec); err != nil {
		return fail(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		return fail(err)
	}
	fmt.Println("ready", spec.ID)
	select {}
}

// TestDaemonKilled: a daemon killed with SIGKILL leaves its container
// running under its shim, still logging; a new runtime over the same state
// re-attaches, stops it and records its exit.
func TestDaemonKilled(t *testing.T) {
	h := newTestHost(t)
	owner := runtimetest.NewOwner()
	imgPath := t.TempDir() + "/image.tar"
	if err := os.WriteFile(imgPath, runtimetest.DefaultImage(t), 0o644); err != nil {
		t.Fatal(err)
	}
	drive := configDrive(t, "daemon-vm", "#!/bin/sh\n(while :; do echo tick; sleep 1; done) &\n")
	exe, _ := os.Executable()
	cmd := exec.Command(exe, daemonCommand, "--base", h.base, "--owner", owner, "--image", imgPath, "--config-drive", drive)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		lines <- l
	}()
	var id string
	select {
	case l := <-lines:
		f := strings.Fields(l)
		if len(f) != 2 || f[0] != "ready" {
			t.Fatalf("daemon: %q", l)
		}
		id = f[1]
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not start its container")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	r := h.open(t, owner)
	t.Cleanup(func() { pruneAll(t, h, r, owner) })
	ctx := context.Background()
	rec, err := r.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(rec.Containers) != 1 || rec.Containers[0].ID != id || rec.Containers[0].Status != runtime.Running || len(rec.Orphans) != 0 {
		t.Fatalf("Recover after the daemon's death: %+v", rec)
	}
	// Still supervised: its output still reaches the log.
	before := strings.Count(waitConsole(t, r, id, "tick"), "tick")
	time.Sleep(2500 * time.Millisecond)
	after := strings.Count(waitConsole(t, r, id, "tick"), "tick")
	if after <= before {
		t.Fatalf("the console stopped growing after the daemon died (%d then %d ticks)", before, after)
	}
	if err := r.Stop(ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := r.State(ctx, id)
	if err != nil || st.Status != runtime.Stopped || st.ExitCode != 0 {
		t.Fatalf("after Stop: %+v %v", st, err)
	}
	waitConsole(t, r, id, "monostack-init: stopping")
}

// TestShimKilled: a container whose shim died cannot be supervised any
// more; Recover kills it and records it stopped with 137.
func TestShimKilled(t *testing.T) {
	h := newTestHost(t)
	owner := runtimetest.NewOwner()
	r := h.open(t, owner)
	t.Cleanup(func() { pruneAll(t, h, r, owner) })
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	dir := r.containerDir(spec.ID)
	pid, ok := shim.Alive(dir)
	if !ok {
		t.Fatal("no shim")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if !poll(ctx, 5*time.Second, func() bool { return !shimAlive(dir) }) {
		t.Fatal("the shim survived SIGKILL")
	}
	r2 := h.open(t, owner)
	rec, err := r2.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(rec.Containers) != 1 || rec.Containers[0].Status != runtime.Stopped || rec.Containers[0].ExitCode != 137 {
		t.Fatalf("Recover = %+v", rec)
	}
	if r2.runcExists(spec.ID) {
		t.Fatal("the runc container is still there")
	}
	// And it starts again, supervised.
	if err := r2.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if !shimAlive(dir) {
		t.Fatal("no shim after Start")
	}
}

// TestReboot: after a reboot nothing of a container but its directory is
// left (no process, no shim, no runc state, no mount, no namespace).
// Recover records it stopped and gives it back its root filesystem and
// namespace, and it boots again with its files.
func TestReboot(t *testing.T) {
	h := newTestHost(t)
	owner := runtimetest.NewOwner()
	r := h.open(t, owner)
	t.Cleanup(func() { pruneAll(t, h, r, owner) })
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	st, err := r.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, r, spec.ID, "is up")
	run(t, r, spec.ID, "sh", "-c", "echo survives > /root/file")
	// The reboot.
	dir := r.containerDir(spec.ID)
	pid, _ := shim.Alive(dir)
	syscall.Kill(pid, syscall.SIGKILL)
	poll(ctx, 5*time.Second, func() bool { return !shimAlive(dir) })
	if _, err := r.runcCmd(ctx, "delete", "--force", spec.ID); err != nil {
		t.Fatal(err)
	}
	if err := unmountAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := deleteNetns(r.NetnsName(spec.ID)); err != nil {
		t.Fatal(err)
	}

	r2 := h.open(t, owner)
	rec, err := r2.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Containers) != 1 || rec.Containers[0].Status != runtime.Stopped || rec.Containers[0].ExitCode != -1 || len(rec.Orphans) != 0 {
		t.Fatalf("Recover after a reboot: %+v", rec)
	}
	if !isNetns(st.Netns) || !isMountPoint(dir+"/"+bundleDir+"/rootfs") {
		t.Fatal("Recover did not make the namespace and the root filesystem again")
	}
	if err := r2.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r2, spec.ID, "cat", "/root/file"); got != "survives\n" {
		t.Fatalf("after the reboot: %q", got)
	}
	// Both boots are in the console.
	if !poll(ctx, 10*time.Second, func() bool {
		b, _ := r2.ConsoleLog(ctx, spec.ID, 0)
		return strings.Count(string(b), "is up") == 2
	}) {
		b, _ := r2.ConsoleLog(ctx, spec.ID, 0)
		t.Fatalf("the console does not show two boots:\n%s", b)
	}
}

// TestNetnsRenamed: a running container whose namespace lost its name
// gets it back (the same namespace) from Recover.
func TestNetnsRenamed(t *testing.T) {
	h := newTestHost(t)
	owner := runtimetest.NewOwner()
	r := h.open(t, owner)
	t.Cleanup(func() { pruneAll(t, h, r, owner) })
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	st, err := r.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(st.Netns, &before); err != nil {
		t.Fatal(err)
	}
	if err := deleteNetns(r.NetnsName(spec.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(st.Netns, &after); err != nil {
		t.Fatalf("no namespace after Recover: %v", err)
	}
	if before.Ino != after.Ino {
		t.Fatal("Recover named a new namespace, not the container's")
	}
}
