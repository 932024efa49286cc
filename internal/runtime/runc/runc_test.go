package runc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// configDrive writes a config drive (openstack/latest/meta_data.json and
// user_data) and returns its directory.
func configDrive(t testing.TB, hostname, userData string) string {
	t.Helper()
	dir := t.TempDir()
	md := filepath.Join(dir, "openstack", "latest")
	if err := os.MkdirAll(md, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := `{"uuid": "x", "hostname": "` + hostname + `", "public_keys": {"k": "ssh-ed25519 AAAAC3 test@host\n"}}`
	if err := os.WriteFile(filepath.Join(md, "meta_data.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(md, "user_data"), []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pruneAll deletes everything of owner and checks nothing is left.
func pruneAll(t testing.TB, h *testHost, r *Runtime, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := runtime.Prune(ctx, r, func(string) bool { return false }); err != nil {
		t.Errorf("prune: %v", err)
	}
	imgs, _ := r.Images(ctx)
	for _, id := range imgs {
		if err := r.RemoveImage(ctx, id); err != nil {
			t.Errorf("remove image: %v", err)
		}
	}
	if left := h.Leftovers(owner); left != "" {
		t.Errorf("left behind: %s", left)
	}
}

func newRuntime(t *testing.T) (*testHost, *Runtime, string) {
	h := newTestHost(t)
	owner := runtimetest.NewOwner()
	r := h.open(t, owner)
	t.Cleanup(func() { pruneAll(t, h, r, owner) })
	return h, r, owner
}

func execIn(t *testing.T, r *Runtime, id string, spec runtime.ExecSpec) runtime.ExecResult {
	t.Helper()
	res, err := r.Exec(context.Background(), id, spec)
	if err != nil {
		t.Fatalf("exec %q: %v", spec.Args, err)
	}
	return res
}

// dockerCaps is the CapEff of a root process with Docker's 14 default
// capabilities: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5,
// SETGID 6, SETUID 7, SETPCAP 8, NET_BIND_SERVICE 10, NET_RAW 13,
// SYS_CHROOT 18, MKNOD 27, AUDIT_WRITE 29, SETFCAP 31.
const dockerCaps = 0xa80425fb

const userData = `#!/bin/sh
echo user-data-ran-as-$(id -u)
echo from-user-data > /root/from-user-data
`

// TestMachine boots the default image as a server does, with a config
// drive, and checks it from inside: the init ran the user data, the limits
// and the isolation are what the spec and the defaults say.
func TestMachine(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Hostname = "vm-one"
	spec.Mounts = []runtime.Mount{{Source: configDrive(t, "vm-one", userData), Destination: "/mnt/config", ReadOnly: true}}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	id := spec.ID
	console := waitConsole(t, r, id, "monostack-init: user data exited 0")
	for _, want := range []string{"monostack-init: vm-one is up", "user-data-ran-as-0"} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, console)
		}
	}
	if got := run(t, r, id, "cat", "/root/.ssh/authorized_keys"); strings.TrimSpace(got) != "ssh-ed25519 AAAAC3 test@host" {
		t.Errorf("authorized_keys = %q", got)
	}

	t.Run("Limits", func(t *testing.T) {
		if got := run(t, r, id, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"); strings.TrimSpace(got) != strconv.Itoa(64<<20) {
			t.Errorf("memory limit inside = %q, want %d", got, 64<<20)
		}
		if got := run(t, r, id, "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"); strings.TrimSpace(got) != "128" {
			t.Errorf("pids limit inside = %q", got)
		}
		if got := run(t, r, id, "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max"); !strings.HasPrefix(strings.TrimSpace(got), "50000") {
			t.Errorf("cpu quota inside = %q, want 50000 (0.5 vcpu)", got)
		}
	})
	t.Run("Isolation", func(t *testing.T) {
		ps := run(t, r, id, "ps", "-o", "pid,args")
		if n := len(strings.Split(strings.TrimSpace(ps), "\n")) - 1; n > 4 {
			t.Errorf("the container sees %d processes:\n%s", n, ps)
		}
		if got := run(t, r, id, "cat", "/proc/1/cmdline"); !strings.Contains(got, "/sbin/init") {
			t.Errorf("pid 1 is %q", got)
		}
		if got := run(t, r, id, "cat", "/proc/1/oom_score_adj"); strings.TrimSpace(got) != "0" {
			t.Errorf("the init's oom_score_adj is %q (the shim's -998 leaked?)", got)
		}
		if got := run(t, r, id, "hostname"); strings.TrimSpace(got) != "vm-one" {
			t.Errorf("hostname = %q", got)
		}
		if got := run(t, r, id, "ls", "/sys/class/net"); strings.TrimSpace(got) != "lo" {
			t.Errorf("network interfaces: %q", got)
		}
		if got := run(t, r, id, "cat", "/sys/class/net/lo/flags"); !strings.HasSuffix(strings.TrimSpace(got), "9") {
			t.Errorf("lo flags = %q (not up)", got)
		}
		// The host's files are not there.
		exe, _ := os.Executable()
		for _, p := range []string{exe, "/work", filepath.Dir(r.root)} {
			if res := execIn(t, r, id, runtime.ExecSpec{Args: []string{"test", "-e", p}}); res.ExitCode == 0 {
				t.Errorf("the host's %s is visible inside", p)
			}
		}
		if res := execIn(t, r, id, runtime.ExecSpec{Args: []string{"touch", "/mnt/config/x"}}); res.ExitCode == 0 {
			t.Error("the config drive is writable")
		}
	})
	t.Run("Privileges", func(t *testing.T) {
		status := run(t, r, id, "cat", "/proc/self/status")
		field := func(name string) string {
			for _, l := range strings.Split(status, "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok && k == name {
					return strings.TrimSpace(v)
				}
			}
			return ""
		}
		for _, f := range []string{"CapEff", "CapPrm", "CapBnd"} {
			v, err := strconv.ParseUint(field(f), 16, 64)
			if err != nil || v != dockerCaps {
				t.Errorf("%s = %s, want %x", f, field(f), dockerCaps)
			}
		}
		if field("CapInh") != "0000000000000000" || field("CapAmb") != "0000000000000000" {
			t.Errorf("inheritable/ambient caps: %s %s", field("CapInh"), field("CapAmb"))
		}
		if field("NoNewPrivs") != "1" {
			t.Errorf("NoNewPrivs = %s", field("NoNewPrivs"))
		}
		if field("Seccomp") != "2" {
			t.Errorf("Seccomp = %s, want 2 (filter)", field("Seccomp"))
		}
		// Seccomp: no new user namespace (which would give back caps).
		if res := execIn(t, r, id, runtime.ExecSpec{Args: []string{"unshare", "-U", "true"}}); res.ExitCode == 0 {
			t.Error("unshare -U succeeded in a container")
		}
		// Masked and read-only /proc (masked files that this kernel has
		// read as empty).
		for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list"} {
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if got := run(t, r, id, "sh", "-c", "wc -c < "+p); strings.TrimSpace(got) != "0" {
				t.Errorf("%s has %s bytes inside", p, got)
			}
		}
		if res := execIn(t, r, id, runtime.ExecSpec{Args: []string{"sh", "-c", "echo 1 > /proc/sys/vm/drop_caches"}}); res.ExitCode == 0 {
			t.Error("/proc/sys is writable")
		}
		// The device cgroup: a node can be made, not opened.
		if res := execIn(t, r, id, runtime.ExecSpec{Args: []string{"sh", "-c", "mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk"}}); res.ExitCode == 0 {
			t.Error("a host block device could be read")
		}
		if got := run(t, r, id, "sh", "-c", "head -c 4 /dev/zero | wc -c"); strings.TrimSpace(got) != "4" {
			t.Errorf("/dev/zero: %q", got)
		}
		// A non-root user has no capabilities at all.
		res := execIn(t, r, id, runtime.ExecSpec{Args: []string{"sh", "-c", "id -u; grep CapEff /proc/self/status"}, User: "nobody"})
		if !strings.Contains(string(res.Stdout), "65534") || !strings.Contains(string(res.Stdout), "0000000000000000") {
			t.Errorf("as nobody: %s %s", res.Stdout, res.Stderr)
		}
	})
	t.Run("Exec", func(t *testing.T) {
		res := execIn(t, r, id, runtime.ExecSpec{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
		if res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
			t.Errorf("exec = %d %q %q", res.ExitCode, res.Stdout, res.Stderr)
		}
		res = execIn(t, r, id, runtime.ExecSpec{Args: []string{"sh", "-c", "echo $FOO; pwd; cat"}, Env: []string{"FOO=bar"}, Cwd: "/tmp", Stdin: strings.NewReader("from stdin")})
		if string(res.Stdout) != "bar\n/tmp\nfrom stdin" {
			t.Errorf("exec env/cwd/stdin: %q", res.Stdout)
		}
		if _, err := r.Exec(ctx, id, runtime.ExecSpec{Args: []string{"/no/such/program"}}); !errors.Is(err, runtime.ErrExec) {
			t.Errorf("exec of a missing program: %v", err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := r.Exec(short, id, runtime.ExecSpec{Args: []string{"sleep", "1234"}}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("exec past its context: %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("a cancelled exec took %v", time.Since(start))
		}
		if ps := run(t, r, id, "ps", "-o", "args"); strings.Contains(ps, "sleep 1234") {
			t.Errorf("the cancelled exec's process lives on:\n%s", ps)
		}
	})
	t.Run("Snapshot", func(t *testing.T) {
		run(t, r, id, "sh", "-c", "echo snapshot-marker > /root/marker")
		var buf bytes.Buffer
		if err := r.Snapshot(ctx, id, &buf); err != nil {
			t.Fatal(err)
		}
		img := "snap-" + runtimetest.NewID()
		if _, err := r.EnsureImage(ctx, img, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, runtimetest.Opener(buf.Bytes(), nil)); err != nil {
			t.Fatal(err)
		}
		s2 := runtimetest.MachineSpec(img)
		if _, err := r.Create(ctx, s2); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, s2.ID); err != nil {
			t.Fatal(err)
		}
		waitConsole(t, r, s2.ID, "is up")
		if got := run(t, r, s2.ID, "cat", "/root/marker", "/root/from-user-data"); got != "snapshot-marker\nfrom-user-data\n" {
			t.Errorf("the snapshot's files: %q", got)
		}
		if got := run(t, r, s2.ID, "sh", "-c", "ls -l /bin/sh; stat -c %a /tmp"); !strings.Contains(got, "-> busybox") || !strings.Contains(got, "1777") {
			t.Errorf("the snapshot's links and modes: %q", got)
		}
		if err := r.Delete(ctx, s2.ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PauseResume", func(t *testing.T) {
		if err := r.Pause(ctx, id); err != nil {
			t.Fatal(err)
		}
		state, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", r.CgroupsPath(id), "freezer.state"))
		if strings.TrimSpace(string(state)) != "FROZEN" {
			t.Errorf("freezer.state of a paused container = %q", state)
		}
		if err := r.Resume(ctx, id); err != nil {
			t.Fatal(err)
		}
		run(t, r, id, "true")
	})
	start := time.Now()
	if err := r.Stop(ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v: the init did not act on SIGTERM", d)
	}
	st, _ := r.State(ctx, id)
	if st.Status != runtime.Stopped || st.ExitCode != 0 {
		t.Errorf("after Stop: %+v", st)
	}
	waitConsole(t, r, id, "monostack-init: stopping")
}

// TestStopTimeout: an init that ignores SIGTERM is killed after the
// timeout.
func TestStopTimeout(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Process = runtime.Process{Args: []string{"sleep", "3600"}} // PID 1 without a handler: SIGTERM is ignored
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	// The init starts with no signal ignored (nothing leaks from the shim).
	for _, l := range strings.Split(run(t, r, spec.ID, "cat", "/proc/1/status"), "\n") {
		if strings.HasPrefix(l, "SigIgn:") && strings.TrimSpace(strings.TrimPrefix(l, "SigIgn:")) != "0000000000000000" {
			t.Errorf("the init ignores signals: %s", l)
		}
	}
	start := time.Now()
	if err := r.Stop(ctx, spec.ID, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Errorf("Stop took %v", d)
	}
	st, _ := r.State(ctx, spec.ID)
	if st.Status != runtime.Stopped || st.ExitCode != 137 {
		t.Errorf("after Stop: %+v", st)
	}
}

// TestDockerImage runs a docker archive's entrypoint and command, with its
// environment, working directory, layers (whiteouts and opaque directories
// applied) and stop signal.
func TestDockerImage(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	b, f := runtimetest.DockerArchive(t, runtimetest.DefaultImage(t))
	img := "docker-" + runtimetest.NewID()
	if _, err := r.EnsureImage(ctx, img, f, runtimetest.Opener(b, nil)); err != nil {
		t.Fatal(err)
	}
	spec := runtime.Spec{ID: "c-" + runtimetest.NewID(), Image: img}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	console := waitConsole(t, r, spec.ID, "kept")
	for _, want := range []string{runtimetest.Marker + " in /srv", runtimetest.Greeting, "hello from the top layer"} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, console)
		}
	}
	if strings.Contains(console, "gone") {
		t.Errorf("the opaque /home still shows the lower layer's entries:\n%s", console)
	}
	if res := execIn(t, r, spec.ID, runtime.ExecSpec{Args: []string{"test", "-e", "/etc/os-release"}}); res.ExitCode == 0 {
		t.Error("a whited-out file is there")
	}
	time.Sleep(100 * time.Millisecond) // the trap is set right after the listing

	if err := r.Stop(ctx, spec.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, r, spec.ID, "stopped-by-SIGINT")
	if st, _ := r.State(ctx, spec.ID); st.ExitCode != 0 {
		t.Errorf("exit code %d", st.ExitCode)
	}
}

// TestOOM: a container that outgrows its memory is killed and says so.
func TestOOM(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Resources.MemoryBytes = 8 << 20
	spec.Process = runtime.Process{Args: []string{"sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"}}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	var st runtime.State
	if !poll(ctx, 30*time.Second, func() bool {
		st, _ = r.State(ctx, spec.ID)
		return st.Status == runtime.Stopped
	}) {
		t.Fatalf("still %s", st.Status)
	}
	if st.ExitCode != 137 || !st.OOMKilled {
		t.Errorf("after running out of memory: %+v", st)
	}
}

// TestConsoleRotation: the console keeps the last MaxLogBytes, and no more
// than twice that.
func TestConsoleRotation(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.MaxLogBytes = 4096
	spec.Process = runtime.Process{Args: []string{"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; echo last-line; exec sleep 3600"}}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	all := waitConsole(t, r, spec.ID, "last-line")
	if len(all) < 4096 || len(all) > 8192 {
		t.Errorf("kept %d bytes of console, want 4096 to 8192", len(all))
	}
	if !strings.Contains(all, "line-2999\nlast-line\n") {
		t.Errorf("the end is missing: %q", all[len(all)-100:])
	}
	tail, err := r.ConsoleLog(ctx, spec.ID, 10)
	if err != nil || string(tail) != "last-line\n" {
		t.Errorf("tail 10 = %q %v", tail, err)
	}
	for _, f := range []string{shim.ConsoleFile, shim.ConsoleFile + ".1"} {
		if st, err := os.Stat(filepath.Join(r.containerDir(spec.ID), f)); err != nil || st.Size() > 4096 {
			t.Errorf("%s: %v %v", f, st.Size(), err)
		}
	}
}

// TestDevice gives a container a loop device as /dev/vdb.
func TestDevice(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
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
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Devices = []runtime.Device{{HostPath: loop, Path: "/dev/vdb"}}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, r, spec.ID, "sh", "-c", "echo written-inside > /dev/vdb && sync && head -c 14 /dev/vdb"); got != "written-inside" {
		t.Errorf("read back %q", got)
	}
	b := make([]byte, 14)
	f, err := os.Open(backing)
	if err != nil {
		t.Fatal(err)
	}
	f.Read(b)
	f.Close()
	if string(b) != "written-inside" {
		t.Errorf("the backing file has %q", b)
	}
	if err := r.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteLeavesNothing checks, piece by piece, that Delete of a running
// container removes it all.
func TestDeleteLeavesNothing(t *testing.T) {
	h, r, owner := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	st, err := r.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	dir := r.containerDir(spec.ID)
	cg := filepath.Join("/sys/fs/cgroup/memory", r.CgroupsPath(spec.ID))
	rootfs := filepath.Join(dir, bundleDir, "rootfs")
	if !isNetns(st.Netns) || !isMountPoint(rootfs) || !fileExists(cg) || !shimAlive(dir) || !r.runcExists(spec.ID) {
		t.Fatalf("a running container lacks a piece: netns %v mount %v cgroup %v shim %v runc %v",
			isNetns(st.Netns), isMountPoint(rootfs), fileExists(cg), shimAlive(dir), r.runcExists(spec.ID))
	}
	shimPid, _ := shim.Alive(dir)
	if err := r.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if fileExists(st.Netns) || fileExists(dir) || fileExists(cg) || r.runcExists(spec.ID) || fileExists("/proc/"+strconv.Itoa(shimPid)+"/cmdline") {
		t.Fatalf("after Delete: netns %v dir %v cgroup %v runc %v shim %v",
			fileExists(st.Netns), fileExists(dir), fileExists(cg), r.runcExists(spec.ID), fileExists("/proc/"+strconv.Itoa(shimPid)))
	}
	if left := h.Leftovers(owner); left != "" {
		t.Fatalf("left: %s", left)
	}
}

// TestOrphans: pieces whose container record is lost are reported and
// removed, and another owner's are not touched.
func TestOrphans(t *testing.T) {
	h, r, owner := newRuntime(t)
	ctx := context.Background()
	other := h.open(t, runtimetest.NewOwner())
	t.Cleanup(func() { pruneAll(t, h, other, other.Owner()) })
	img := defaultImage(t, r)
	spec := runtimetest.MachineSpec(img)
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	otherSpec := runtimetest.MachineSpec(defaultImage(t, other))
	if _, err := other.Create(ctx, otherSpec); err != nil {
		t.Fatal(err)
	}
	// The record is lost: everything else of the container is an orphan.
	if err := os.Remove(filepath.Join(r.containerDir(spec.ID), recordFile)); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, o := range rec.Orphans {
		if o.ID != spec.ID {
			t.Errorf("orphan of another container: %+v", o)
		}
		kinds[o.Kind] = true
	}
	for _, k := range []string{runtime.OrphanNetns, runtime.OrphanProcess, runtime.OrphanMount, runtime.OrphanDir} {
		if !kinds[k] {
			t.Errorf("no %s orphan in %+v", k, rec.Orphans)
		}
	}
	if err := r.RemoveOrphans(ctx, rec.Orphans); err != nil {
		t.Fatal(err)
	}
	if rec, err := r.Recover(ctx); err != nil || len(rec.Orphans)+len(rec.Containers) != 0 {
		t.Fatalf("after RemoveOrphans: %+v %v", rec, err)
	}
	if err := r.RemoveImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if left := h.Leftovers(owner); left != "" {
		t.Fatalf("left: %s", left)
	}
	if st, err := other.State(ctx, otherSpec.ID); err != nil || st.Status != runtime.Created {
		t.Fatalf("the other owner's container: %+v %v", st, err)
	}
}
