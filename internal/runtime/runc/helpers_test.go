package runc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// The test binary is its own shim (as monostack is, with `monostack shim`)
// and, for the kill -9 test, its own daemon.
const (
	shimCommand   = "__runtime_shim"
	daemonCommand = "__runtime_daemon"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case shimCommand:
			os.Exit(shim.Main(os.Args[2:]))
		case daemonCommand:
			os.Exit(daemonMain(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

// needHost skips tests that need root, runc and busybox.
func needHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the runc runtime needs root (namespaces, overlayfs, cgroups)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed (apt-get install runc)")
	}
	if !runtimetest.HaveBusybox() {
		t.Skip("busybox-static is not installed: no default image to run")
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is the config of owner's runtime under base (runc's state
// too, not in /run): the test binary is the shim.
func testConfig(base, owner string, log *slog.Logger) Config {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return Config{
		Owner:      owner,
		StateDir:   filepath.Join(base, owner),
		RunDir:     filepath.Join(base, owner+".run"),
		ShimBinary: exe,
		ShimArgs:   []string{shimCommand},
		Logger:     log,
	}
}

// testHost is the conformance suite's view of this machine: every owner's
// state under one temporary directory.
type testHost struct {
	base string
}

// newTestHost makes a host whose owners are all swept at the end of t,
// whatever happened: containers, shims, mounts, namespaces, cgroups, runc
// state (CI runs on this machine next).
func newTestHost(t testing.TB) *testHost {
	needHost(t)
	h := &testHost{base: t.TempDir()}
	t.Cleanup(func() { sweepAll(t, h.base) })
	return h
}

func (h *testHost) Open(t *testing.T, owner string) runtime.Runtime {
	return h.open(t, owner)
}

func (h *testHost) open(t testing.TB, owner string) *Runtime {
	r, err := New(testConfig(h.base, owner, testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Devices reads the devices of container id in owner's record.
func (h *testHost) Devices(owner, id string) ([]runtime.Device, error) {
	r, err := New(testConfig(h.base, owner, nil))
	if err != nil {
		return nil, err
	}
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	return rec.Spec.Devices, nil
}

func (h *testHost) Leftovers(owner string) string {
	return leftovers(owner, filepath.Join(h.base, owner))
}

// leftovers describes what of owner is on the host (its state in
// stateDir, as testConfig puts it).
func leftovers(owner, stateDir string) string {
	var left []string
	runDir := stateDir + ".run"
	if out, err := exec.Command("runc", "--root", filepath.Join(runDir, "runc"), "list", "-q").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		left = append(left, "runc containers: "+strings.Join(strings.Fields(string(out)), ","))
	}
	if names, _ := listNetns(netnsPrefix(owner)); len(names) > 0 {
		left = append(left, "netns: "+strings.Join(names, ","))
	}
	if ms, _ := mountsUnder(stateDir); len(ms) > 0 {
		left = append(left, "mounts: "+strings.Join(ms, ","))
	}
	if cgs, _ := filepath.Glob("/sys/fs/cgroup/*/monostack-" + owner + "-*"); len(cgs) > 0 {
		left = append(left, "cgroups: "+strings.Join(cgs, ","))
	}
	if cgs, _ := filepath.Glob("/sys/fs/cgroup/monostack-" + owner + "-*"); len(cgs) > 0 {
		left = append(left, "cgroups: "+strings.Join(cgs, ","))
	}
	if pids := shimPids(stateDir); len(pids) > 0 {
		left = append(left, fmt.Sprintf("shim processes: %v", pids))
	}
	if entries, _ := os.ReadDir(filepath.Join(stateDir, "containers")); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		left = append(left, "container dirs: "+strings.Join(names, ","))
	}
	return strings.Join(left, "; ")
}

// shimPids lists the processes whose command line names a directory under
// stateDir (shims run with --dir <stateDir>/containers/<id>).
func shimPids(stateDir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(stateDir+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sweepAll removes, by force, everything of every owner under base: the
// last line of defence when a test failed half-way.
func sweepAll(t testing.TB, base string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		owner := e.Name()
		if !ownerPattern.MatchString(owner) {
			continue
		}
		sweep(t, owner, filepath.Join(base, owner))
	}
}

func sweep(t testing.TB, owner, stateDir string) {
	runDir := stateDir + ".run"
	runcRoot := filepath.Join(runDir, "runc")
	if left := leftovers(owner, stateDir); left != "" {
		t.Logf("sweeping what owner %s left: %s", owner, left)
	}
	if out, err := exec.Command("runc", "--root", runcRoot, "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			exec.Command("runc", "--root", runcRoot, "resume", id).Run()
			exec.Command("runc", "--root", runcRoot, "delete", "--force", id).Run()
		}
	}
	for _, pid := range shimPids(stateDir) {
		unix.Kill(pid, unix.SIGKILL)
	}
	time.Sleep(50 * time.Millisecond)
	unmountAll(stateDir)
	if names, _ := listNetns(netnsPrefix(owner)); len(names) > 0 {
		for _, n := range names {
			deleteNetns(n)
		}
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/monostack-" + owner + "-*")
	cgs2, _ := filepath.Glob("/sys/fs/cgroup/monostack-" + owner + "-*")
	for _, cg := range append(cgs, cgs2...) {
		unix.Rmdir(cg)
	}
	os.RemoveAll(runDir)
}

// defaultImage ensures the default image in r and returns its id.
func defaultImage(t testing.TB, r runtime.Runtime) string {
	t.Helper()
	id := "img-" + runtimetest.NewID()
	if _, err := r.EnsureImage(context.Background(), id, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, runtimetest.Opener(runtimetest.DefaultImage(t), nil)); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitConsole waits until the container's console shows want.
func waitConsole(t testing.TB, r runtime.Runtime, id, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := r.ConsoleLog(context.Background(), id, 0)
		if err != nil {
			t.Fatalf("ConsoleLog: %v", err)
		}
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("console of %s never showed %q:\n%s", id, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run execs args in container id and returns its stdout, failing the
// test unless it exits 0.
func run(t testing.TB, r runtime.Runtime, id string, args ...string) string {
	t.Helper()
	res, err := r.Exec(context.Background(), id, runtime.ExecSpec{Args: args})
	if err != nil {
		t.Fatalf("exec %q: %v", args, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exec %q: exit %d\nstdout: %s\nstderr: %s", args, res.ExitCode, res.Stdout, res.Stderr)
	}
	return string(res.Stdout)
}
