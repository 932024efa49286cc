// Package runtimetest is the conformance suite every runtime.Runtime runs,
// the fake and the runc one alike (in the manner of containerd's snapshots
// testsuite): Run drives a runtime through the interface only — images,
// the lifecycle and its idempotence, error classes, snapshots, a restart,
// two owners on one host, pruning — and checks what State and List report.
//
// Ids and owners are random, so that runs against a real host never
// collide with each other; every test deletes what it made at cleanup,
// even when it failed, and asks the host what of its owner is left.
package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
)

// Host is one host as the suite sees it.
type Host interface {
	// Open returns a runtime of owner on this host. Opening the same owner
	// again is the same runtime after a restart. The suite closes what it
	// opens.
	Open(t *testing.T, owner string) runtime.Runtime
	// Leftovers describes what of owner is still on the host after the
	// suite deleted everything it made ("" when nothing).
	Leftovers(owner string) string
}

// DeviceHost is a Host that can tell what devices a container has on
// record (its Spec.Devices as SetDevices last set them, what its next boot
// gets). A Host that is one lets the suite check SetDevices' effect, not
// only its errors.
type DeviceHost interface {
	Devices(owner, id string) ([]runtime.Device, error)
}

// RootDeviceHost is a Host that can make block devices holding a root
// filesystem, for containers of Spec.RootDevice. A Host that is one runs
// the suite's root device tests.
type RootDeviceHost interface {
	// RootDevice makes a block device holding an ext4 filesystem with the
	// files of the tarball rootfs and returns its path; it is removed at
	// the end of t.
	RootDevice(t *testing.T, rootfs []byte) string
}

// Run runs the suite; newHost is called once per test.
func Run(t *testing.T, newHost func(t *testing.T) Host) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Host)
	}{
		{"Images", testImages},
		{"ContainerImages", testContainerImages},
		{"CreateInvalid", testCreateInvalid},
		{"Lifecycle", testLifecycle},
		{"CreateIdempotent", testCreateIdempotent},
		{"StopCreated", testStopCreated},
		{"NotFound", testNotFound},
		{"StateErrors", testStateErrors},
		{"SetDevices", testSetDevices},
		{"SetResources", testSetResources},
		{"SharedNetns", testSharedNetns},
		{"SetDevicesInvalid", testSetDevicesInvalid},
		{"Snapshot", testSnapshot},
		{"RootDevice", testRootDevice},
		{"RootDeviceInvalid", testRootDeviceInvalid},
		{"Restart", testRestart},
		{"Ownership", testOwnership},
		{"Prune", testPrune},
		{"Parallel", testParallel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newHost(t))
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// open opens owner's runtime on h and, at cleanup, deletes every
// container and image it has and checks that nothing of owner is left.
func open(t *testing.T, h Host, owner string) runtime.Runtime {
	t.Helper()
	rt := h.Open(t, owner)
	t.Cleanup(func() { cleanup(t, h, owner) })
	return rt
}

func cleanup(t *testing.T, h Host, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt := h.Open(t, owner)
	defer rt.Close()
	if _, err := runtime.Prune(ctx, rt, func(string) bool { return false }); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	imgs, err := rt.Images(ctx)
	if err != nil {
		t.Errorf("cleanup: images: %v", err)
	}
	for _, id := range imgs {
		if err := rt.RemoveImage(ctx, id); err != nil {
			t.Errorf("cleanup: remove image %s: %v", id, err)
		}
	}
	if left := h.Leftovers(owner); left != "" {
		t.Errorf("left behind for owner %s: %s", owner, left)
	}
}

// withImage ensures the default image in rt and returns its id.
func withImage(t *testing.T, ctx context.Context, rt runtime.Runtime) string {
	t.Helper()
	id := "img-" + NewID()
	if _, err := rt.EnsureImage(ctx, id, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, Opener(DefaultImage(t), nil)); err != nil {
		t.Fatalf("EnsureImage: %v", err)
	}
	return id
}

// MachineSpec is the spec of a machine container of image (it boots the
// image's /sbin/init) with small limits.
func MachineSpec(image string) runtime.Spec {
	return runtime.Spec{
		ID:          "c-" + NewID(),
		Hostname:    "vm-test",
		Image:       image,
		Process:     runtime.Process{Init: true},
		Resources:   runtime.Resources{MemoryBytes: 64 << 20, VCPUs: 0.5, Pids: 128},
		MaxLogBytes: 64 << 10,
	}
}

func mustState(t *testing.T, ctx context.Context, rt runtime.Runtime, id string, want runtime.Status) runtime.State {
	t.Helper()
	st, err := rt.State(ctx, id)
	if err != nil {
		t.Fatalf("State(%s): %v", id, err)
	}
	if st.Status != want {
		t.Fatalf("State(%s) = %s, want %s (%+v)", id, st.Status, want, st)
	}
	if st.ID != id {
		t.Fatalf("State(%s).ID = %s", id, st.ID)
	}
	return st
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func ids(states []runtime.State) []string {
	var out []string
	for _, s := range states {
		out = append(out, s.ID)
	}
	slices.Sort(out)
	return out
}

func testImages(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	img := DefaultImage(t)
	id := "img-" + NewID()
	opens := 0
	for i := 0; i < 2; i++ {
		cfg, err := rt.EnsureImage(ctx, id, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, Opener(img, &opens))
		if err != nil {
			t.Fatalf("EnsureImage #%d: %v", i, err)
		}
		if len(cfg.Entrypoint)+len(cfg.Cmd)+len(cfg.Env) != 0 {
			t.Fatalf("a rootfs tarball has a config: %+v", cfg)
		}
	}
	if opens != 1 {
		t.Fatalf("open called %d times, want 1 (the image is unpacked once)", opens)
	}
	if got, err := rt.Images(ctx); err != nil || !slices.Equal(got, []string{id}) {
		t.Fatalf("Images = %v, %v", got, err)
	}

	_, err := rt.EnsureImage(ctx, "img-"+NewID(), runtime.ImageFormat{Kind: "raw"}, Opener(img, nil))
	wantErr(t, "EnsureImage(raw)", err, runtime.ErrUnsupportedImage)
	_, err = rt.EnsureImage(ctx, "../escape", runtime.ImageFormat{Kind: runtime.KindRootfsTar}, Opener(img, nil))
	wantErr(t, "EnsureImage(bad id)", err, runtime.ErrInvalid)
	boom := errors.New("boom")
	_, err = rt.EnsureImage(ctx, "img-"+NewID(), runtime.ImageFormat{Kind: runtime.KindRootfsTar}, func() (io.ReadCloser, error) { return nil, boom })
	wantErr(t, "EnsureImage(open fails)", err, boom)
	_, err = rt.EnsureImage(ctx, "img-"+NewID(), runtime.ImageFormat{Kind: runtime.KindRootfsTar}, Opener(bytes.Repeat([]byte("not a tarball "), 100), nil))
	if err == nil {
		t.Fatal("EnsureImage of bytes that are not a tarball succeeded")
	}
	bad, f := OCILayout(t, img, true)
	_, err = rt.EnsureImage(ctx, "img-"+NewID(), f, Opener(bad, nil))
	wantErr(t, "EnsureImage(OCI layer with a wrong digest)", err, runtime.ErrInvalid)
	if got, _ := rt.Images(ctx); !slices.Equal(got, []string{id}) {
		t.Fatalf("failed EnsureImages left images: %v", got)
	}

	// Removal: not while a container uses it; an absent image is fine.
	spec := MachineSpec(id)
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	wantErr(t, "RemoveImage(in use)", rt.RemoveImage(ctx, id), runtime.ErrInUse)
	if err := rt.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := rt.RemoveImage(ctx, id); err != nil {
			t.Fatalf("RemoveImage #%d: %v", i, err)
		}
	}
	if got, _ := rt.Images(ctx); len(got) != 0 {
		t.Fatalf("Images after RemoveImage = %v", got)
	}
	_, err = rt.Create(ctx, MachineSpec(id))
	wantErr(t, "Create of a removed image", err, runtime.ErrImageNotFound)
}

func testContainerImages(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	rootfs := DefaultImage(t)
	docker, df := DockerArchive(t, rootfs)
	oci, of := OCILayout(t, rootfs, false)
	for _, c := range []struct {
		name string
		b    []byte
		f    runtime.ImageFormat
	}{{"docker", docker, df}, {"oci", oci, of}} {
		id := c.name + "-" + NewID()
		cfg, err := rt.EnsureImage(ctx, id, c.f, Opener(c.b, nil))
		if err != nil {
			t.Fatalf("EnsureImage(%s): %v", c.name, err)
		}
		if !slices.Equal(cfg.Entrypoint, WantImageConfig.Entrypoint) || !slices.Equal(cfg.Cmd, WantImageConfig.Cmd) ||
			!slices.Equal(cfg.Env, WantImageConfig.Env) || cfg.WorkingDir != WantImageConfig.WorkingDir || cfg.StopSignal != WantImageConfig.StopSignal {
			t.Fatalf("%s config = %+v, want %+v", c.name, cfg, WantImageConfig)
		}
		// No process in the spec: the image's entrypoint and command.
		spec := runtime.Spec{ID: "c-" + NewID(), Image: id}
		if _, err := rt.Create(ctx, spec); err != nil {
			t.Fatalf("Create(%s): %v", c.name, err)
		}
		if err := rt.Start(ctx, spec.ID); err != nil {
			t.Fatalf("Start(%s): %v", c.name, err)
		}
		mustState(t, ctx, rt, spec.ID, runtime.Running)
		if err := rt.Stop(ctx, spec.ID, 3*time.Second); err != nil {
			t.Fatalf("Stop(%s): %v", c.name, err)
		}
		mustState(t, ctx, rt, spec.ID, runtime.Stopped)
	}
}

func testCreateInvalid(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	img := withImage(t, ctx, rt)
	base := MachineSpec(img)
	cases := map[string]func(s *runtime.Spec){
		"empty id":        func(s *runtime.Spec) { s.ID = "" },
		"id with a slash": func(s *runtime.Spec) { s.ID = "a/b" },
		"id of dots":      func(s *runtime.Spec) { s.ID = ".." },
		"bad hostname":    func(s *runtime.Spec) { s.Hostname = "no spaces allowed" },
		"negative memory": func(s *runtime.Spec) { s.Resources.MemoryBytes = -1 },
		"tiny memory":     func(s *runtime.Spec) { s.Resources.MemoryBytes = 1024 },
		"negative vcpus":  func(s *runtime.Spec) { s.Resources.VCPUs = -1 },
		"negative pids":   func(s *runtime.Spec) { s.Resources.Pids = -5 },
		"relative mount":  func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/tmp", Destination: "mnt"}} },
		"mount on /proc":  func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/tmp", Destination: "/proc/x"}} },
		"mount source missing": func(s *runtime.Spec) {
			s.Mounts = []runtime.Mount{{Source: "/nonexistent/" + NewID(), Destination: "/mnt/x"}}
		},
		"device outside /dev":  func(s *runtime.Spec) { s.Devices = []runtime.Device{{HostPath: "/dev/null", Path: "/etc/vdb"}} },
		"bad env":              func(s *runtime.Spec) { s.Process.Env = []string{"NOEQUALS"} },
		"relative cwd":         func(s *runtime.Spec) { s.Process.Cwd = "srv" },
		"bad user":             func(s *runtime.Spec) { s.Process.User = "a:b:c" },
		"no such command":      func(s *runtime.Spec) { s.Process = runtime.Process{Args: []string{"/no/such/program"}} },
		"no such command path": func(s *runtime.Spec) { s.Process = runtime.Process{Args: []string{"no-such-program-" + NewID()[:6]}} },
	}
	for name, mutate := range cases {
		s := base
		s.ID = "c-" + NewID()
		mutate(&s)
		_, err := rt.Create(ctx, s)
		wantErr(t, "Create("+name+")", err, runtime.ErrInvalid)
	}
	s := base
	s.Image = "img-" + NewID()
	_, err := rt.Create(ctx, s)
	wantErr(t, "Create(unknown image)", err, runtime.ErrImageNotFound)
	if l, err := rt.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("failed creates left containers: %v %v", ids(l), err)
	}
}

func testLifecycle(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	spec := MachineSpec(withImage(t, ctx, rt))
	before := time.Now().Add(-time.Second)
	st, err := rt.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if st.Status != runtime.Created || st.ID != spec.ID || st.Image != spec.Image || st.Netns == "" || st.CreatedAt.Before(before) {
		t.Fatalf("Create returned %+v", st)
	}
	if got := mustState(t, ctx, rt, spec.ID, runtime.Created); got.Netns != st.Netns {
		t.Fatalf("netns changed: %s then %s", st.Netns, got.Netns)
	}
	if l, err := rt.List(ctx); err != nil || !slices.Equal(ids(l), []string{spec.ID}) {
		t.Fatalf("List = %v, %v", ids(l), err)
	}
	if _, err := rt.ConsoleLog(ctx, spec.ID, 0); err != nil {
		t.Fatalf("ConsoleLog of a created container: %v", err)
	}

	for i := 0; i < 2; i++ {
		if err := rt.Start(ctx, spec.ID); err != nil {
			t.Fatalf("Start #%d: %v", i, err)
		}
	}
	st = mustState(t, ctx, rt, spec.ID, runtime.Running)
	if st.Pid <= 0 || st.StartedAt.Before(before) {
		t.Fatalf("running state %+v", st)
	}

	for i := 0; i < 2; i++ {
		if err := rt.Pause(ctx, spec.ID); err != nil {
			t.Fatalf("Pause #%d: %v", i, err)
		}
	}
	mustState(t, ctx, rt, spec.ID, runtime.Paused)
	wantErr(t, "Start(paused)", rt.Start(ctx, spec.ID), runtime.ErrState)
	for i := 0; i < 2; i++ {
		if err := rt.Resume(ctx, spec.ID); err != nil {
			t.Fatalf("Resume #%d: %v", i, err)
		}
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)

	for i := 0; i < 2; i++ {
		if err := rt.Stop(ctx, spec.ID, 3*time.Second); err != nil {
			t.Fatalf("Stop #%d: %v", i, err)
		}
	}
	st = mustState(t, ctx, rt, spec.ID, runtime.Stopped)
	if st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) || st.Pid != 0 {
		t.Fatalf("stopped state %+v", st)
	}

	// A stopped container boots again, on the same namespace.
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	st2 := mustState(t, ctx, rt, spec.ID, runtime.Running)
	if st2.Netns != st.Netns || !st2.StartedAt.After(st.StartedAt) {
		t.Fatalf("restarted state %+v after %+v", st2, st)
	}
	if err := rt.Kill(ctx, spec.ID, syscall.SIGKILL); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	st = mustState(t, ctx, rt, spec.ID, runtime.Stopped)
	if st.ExitCode != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit code after SIGKILL = %d, want 137", st.ExitCode)
	}

	for i := 0; i < 2; i++ {
		if err := rt.Delete(ctx, spec.ID); err != nil {
			t.Fatalf("Delete #%d: %v", i, err)
		}
	}
	_, err = rt.State(ctx, spec.ID)
	wantErr(t, "State after Delete", err, runtime.ErrNotFound)
	if l, err := rt.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after Delete = %v, %v", ids(l), err)
	}
	// Deleting a running container.
	spec.ID = "c-" + NewID()
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if err := rt.Delete(ctx, spec.ID); err != nil {
		t.Fatalf("Delete(running): %v", err)
	}
	_, err = rt.State(ctx, spec.ID)
	wantErr(t, "State after Delete(running)", err, runtime.ErrNotFound)
}

func testCreateIdempotent(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	spec := MachineSpec(withImage(t, ctx, rt))
	st1, err := rt.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := rt.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create again: %v", err)
	}
	if st1.Status != st2.Status || st1.Netns != st2.Netns || !st1.CreatedAt.Equal(st2.CreatedAt) {
		t.Fatalf("Create again returned %+v, first %+v", st2, st1)
	}
	other := spec
	other.Process.Env = append(other.Process.Env, "ANOTHER=spec")
	_, err = rt.Create(ctx, other)
	wantErr(t, "Create with another spec", err, runtime.ErrExists)
	// Limits are not part of the comparison: SetResources changes them.
	other = spec
	other.Resources.MemoryBytes *= 2
	if _, err := rt.Create(ctx, other); err != nil {
		t.Fatalf("Create with other limits: %v", err)
	}
	// Create of a running container changes nothing.
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	pid := mustState(t, ctx, rt, spec.ID, runtime.Running).Pid
	if st, err := rt.Create(ctx, spec); err != nil || st.Status != runtime.Running || st.Pid != pid {
		t.Fatalf("Create of a running container: %+v %v", st, err)
	}
}

func testStopCreated(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	spec := MachineSpec(withImage(t, ctx, rt))
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := rt.Stop(ctx, spec.ID, time.Second); err != nil {
		t.Fatalf("Stop(created): %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Stopped)
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start after stopping a created container: %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)
}

func testNotFound(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	id := "c-" + NewID()
	_, err := rt.State(ctx, id)
	wantErr(t, "State", err, runtime.ErrNotFound)
	wantErr(t, "Start", rt.Start(ctx, id), runtime.ErrNotFound)
	wantErr(t, "Stop", rt.Stop(ctx, id, time.Second), runtime.ErrNotFound)
	wantErr(t, "Kill", rt.Kill(ctx, id, syscall.SIGTERM), runtime.ErrNotFound)
	wantErr(t, "Pause", rt.Pause(ctx, id), runtime.ErrNotFound)
	wantErr(t, "Resume", rt.Resume(ctx, id), runtime.ErrNotFound)
	_, err = rt.ConsoleLog(ctx, id, 0)
	wantErr(t, "ConsoleLog", err, runtime.ErrNotFound)
	_, err = rt.Exec(ctx, id, runtime.ExecSpec{Args: []string{"true"}})
	wantErr(t, "Exec", err, runtime.ErrNotFound)
	wantErr(t, "Snapshot", rt.Snapshot(ctx, id, io.Discard), runtime.ErrNotFound)
	wantErr(t, "SetDevices", rt.SetDevices(ctx, id, nil), runtime.ErrNotFound)
	wantErr(t, "SetDevices(path)", rt.SetDevices(ctx, "../x", nil), runtime.ErrNotFound)
	for _, bad := range []string{id, "", "../x", "a/b"} {
		if err := rt.Delete(ctx, bad); err != nil {
			t.Fatalf("Delete(%q) of nothing: %v", bad, err)
		}
	}
	_, err = rt.State(ctx, "../../etc")
	wantErr(t, "State(path)", err, runtime.ErrNotFound)
}

func testStateErrors(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	spec := MachineSpec(withImage(t, ctx, rt))
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Pause(created)", rt.Pause(ctx, spec.ID), runtime.ErrState)
	wantErr(t, "Resume(created)", rt.Resume(ctx, spec.ID), runtime.ErrState)
	_, err := rt.Exec(ctx, spec.ID, runtime.ExecSpec{Args: []string{"true"}})
	wantErr(t, "Exec(created)", err, runtime.ErrState)
	if err := rt.Stop(ctx, spec.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Pause(stopped)", rt.Pause(ctx, spec.ID), runtime.ErrState)
	wantErr(t, "Resume(stopped)", rt.Resume(ctx, spec.ID), runtime.ErrState)
	wantErr(t, "Kill(stopped)", rt.Kill(ctx, spec.ID, syscall.SIGTERM), runtime.ErrState)
	_, err = rt.Exec(ctx, spec.ID, runtime.ExecSpec{Args: []string{"true"}})
	wantErr(t, "Exec(stopped)", err, runtime.ErrState)
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	_, err = rt.Exec(ctx, spec.ID, runtime.ExecSpec{})
	wantErr(t, "Exec(no args)", err, runtime.ErrInvalid)
}

func testSnapshot(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	spec := MachineSpec(withImage(t, ctx, rt))
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rt.Snapshot(ctx, spec.ID, &buf); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)
	names := TarNames(t, buf.Bytes())
	for _, want := range []string{"bin/busybox", "sbin/init", "etc/passwd"} {
		if !names[want] {
			t.Fatalf("snapshot lacks %s (%d entries)", want, len(names))
		}
	}
	// The snapshot is an image that boots.
	img2 := "snap-" + NewID()
	if _, err := rt.EnsureImage(ctx, img2, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, Opener(buf.Bytes(), nil)); err != nil {
		t.Fatalf("EnsureImage(snapshot): %v", err)
	}
	spec2 := MachineSpec(img2)
	if _, err := rt.Create(ctx, spec2); err != nil {
		t.Fatalf("Create from the snapshot: %v", err)
	}
	if err := rt.Start(ctx, spec2.ID); err != nil {
		t.Fatalf("Start from the snapshot: %v", err)
	}
	mustState(t, ctx, rt, spec2.ID, runtime.Running)
	// A stopped container can be snapshotted too.
	if err := rt.Stop(ctx, spec.ID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := rt.Snapshot(ctx, spec.ID, &buf); err != nil {
		t.Fatalf("Snapshot(stopped): %v", err)
	}
	if !TarNames(t, buf.Bytes())["sbin/init"] {
		t.Fatal("snapshot of a stopped container lacks sbin/init")
	}
}

func testRestart(t *testing.T, h Host) {
	ctx := ctxOf(t)
	owner := NewOwner()
	rt := open(t, h, owner)
	img := withImage(t, ctx, rt)
	running, created, stopped := MachineSpec(img), MachineSpec(img), MachineSpec(img)
	for _, s := range []runtime.Spec{running, created, stopped} {
		if _, err := rt.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []runtime.Spec{running, stopped} {
		if err := rt.Start(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Just started: an init that has not yet set up its signal handler
	// ignores SIGTERM (it is PID 1), so the timeout may run out.
	if err := rt.Stop(ctx, stopped.ID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	pid := mustState(t, ctx, rt, running.ID, runtime.Running).Pid
	rt.Close()

	rt2 := h.Open(t, owner)
	defer rt2.Close()
	rec, err := rt2.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(rec.Orphans) != 0 {
		t.Fatalf("Recover found orphans: %+v", rec.Orphans)
	}
	got := map[string]runtime.State{}
	for _, s := range rec.Containers {
		got[s.ID] = s
	}
	if len(got) != 3 || got[running.ID].Status != runtime.Running || got[running.ID].Pid != pid ||
		got[created.ID].Status != runtime.Created || got[stopped.ID].Status != runtime.Stopped {
		t.Fatalf("recovered %+v", rec.Containers)
	}
	// The new runtime drives the old containers.
	if err := rt2.Start(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if err := rt2.Stop(ctx, running.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	mustState(t, ctx, rt2, running.ID, runtime.Stopped)
	if err := rt2.Start(ctx, stopped.ID); err != nil {
		t.Fatal(err)
	}
	mustState(t, ctx, rt2, stopped.ID, runtime.Running)
	if _, err := rt2.Recover(ctx); err != nil {
		t.Fatalf("Recover again: %v", err)
	}
}

func testOwnership(t *testing.T, h Host) {
	ctx := ctxOf(t)
	a := open(t, h, NewOwner())
	b := open(t, h, NewOwner())
	specA := MachineSpec(withImage(t, ctx, a))
	if _, err := a.Create(ctx, specA); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx, specA.ID); err != nil {
		t.Fatal(err)
	}
	if l, err := b.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("owner B lists %v, %v", ids(l), err)
	}
	_, err := b.State(ctx, specA.ID)
	wantErr(t, "B.State(A's)", err, runtime.ErrNotFound)
	if err := b.Delete(ctx, specA.ID); err != nil {
		t.Fatalf("B.Delete(A's): %v", err)
	}
	if _, err := runtime.Prune(ctx, b, func(string) bool { return false }); err != nil {
		t.Fatalf("B.Prune: %v", err)
	}
	mustState(t, ctx, a, specA.ID, runtime.Running)
	rec, err := b.Recover(ctx)
	if err != nil || len(rec.Containers)+len(rec.Orphans) != 0 {
		t.Fatalf("B.Recover = %+v, %v", rec, err)
	}
}

func testPrune(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	img := withImage(t, ctx, rt)
	keep, drop := MachineSpec(img), MachineSpec(img)
	for _, s := range []runtime.Spec{keep, drop} {
		if _, err := rt.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := runtime.Prune(ctx, rt, func(id string) bool { return id == keep.ID })
	if err != nil || !slices.Equal(deleted, []string{drop.ID}) {
		t.Fatalf("Prune = %v, %v", deleted, err)
	}
	if l, _ := rt.List(ctx); !slices.Equal(ids(l), []string{keep.ID}) {
		t.Fatalf("after Prune: %v", ids(l))
	}
}

func testParallel(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	img := withImage(t, ctx, rt)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := MachineSpec(img)
			if _, err := rt.Create(ctx, s); err != nil {
				errs <- err
				return
			}
			if err := rt.Start(ctx, s.ID); err != nil {
				errs <- err
				return
			}
			if err := rt.Delete(ctx, s.ID); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if l, err := rt.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List = %v, %v", ids(l), err)
	}
}

// Host devices every Linux host has, to give containers in the SetDevices
// tests (character devices: a container given them can do no harm).
var (
	devVdb   = runtime.Device{HostPath: "/dev/null", Path: "/dev/vdb"}
	devVdcRO = runtime.Device{HostPath: "/dev/zero", Path: "/dev/vdc", ReadOnly: true}
)

// checkDevices checks, when the host can tell, that container id of owner
// has want on record.
func checkDevices(t *testing.T, h Host, owner, id string, want []runtime.Device) {
	t.Helper()
	dh, ok := h.(DeviceHost)
	if !ok {
		return
	}
	got, err := dh.Devices(owner, id)
	if err != nil {
		t.Fatalf("Devices(%s): %v", id, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("devices of %s = %+v, want %+v", id, got, want)
	}
}

// testSetDevices: SetDevices in every state is idempotent, keeps the
// container as it is, lasts across a stop and a start and a restart, and
// is not undone by a Create of the original spec.
func testSetDevices(t *testing.T, h Host) {
	ctx := ctxOf(t)
	owner := NewOwner()
	rt := open(t, h, owner)
	spec := MachineSpec(withImage(t, ctx, rt))
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	checkDevices(t, h, owner, spec.ID, nil)
	one := []runtime.Device{devVdb}
	two := []runtime.Device{devVdb, devVdcRO}

	// Created.
	for i := 0; i < 2; i++ {
		if err := rt.SetDevices(ctx, spec.ID, one); err != nil {
			t.Fatalf("SetDevices(created) #%d: %v", i, err)
		}
	}
	mustState(t, ctx, rt, spec.ID, runtime.Created)
	checkDevices(t, h, owner, spec.ID, one)
	// Create of the spec it was made from: its state, devices kept; of
	// another spec: still ErrExists.
	if st, err := rt.Create(ctx, spec); err != nil || st.Status != runtime.Created {
		t.Fatalf("Create of the original spec after SetDevices: %+v, %v", st, err)
	}
	withDevs := spec
	withDevs.Devices = two
	if _, err := rt.Create(ctx, withDevs); err != nil {
		t.Fatalf("Create with other devices: %v", err)
	}
	checkDevices(t, h, owner, spec.ID, one)
	other := spec
	other.Process.Env = append(other.Process.Env, "ANOTHER=spec")
	_, err := rt.Create(ctx, other)
	wantErr(t, "Create with another spec after SetDevices", err, runtime.ErrExists)

	// Running.
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	pid := mustState(t, ctx, rt, spec.ID, runtime.Running).Pid
	for i := 0; i < 2; i++ {
		if err := rt.SetDevices(ctx, spec.ID, two); err != nil {
			t.Fatalf("SetDevices(running) #%d: %v", i, err)
		}
	}
	if st := mustState(t, ctx, rt, spec.ID, runtime.Running); st.Pid != pid {
		t.Fatalf("SetDevices changed the init: pid %d, was %d", st.Pid, pid)
	}
	checkDevices(t, h, owner, spec.ID, two)

	// Paused.
	if err := rt.Pause(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := rt.SetDevices(ctx, spec.ID, one); err != nil {
			t.Fatalf("SetDevices(paused) #%d: %v", i, err)
		}
	}
	mustState(t, ctx, rt, spec.ID, runtime.Paused)
	checkDevices(t, h, owner, spec.ID, one)
	if err := rt.Resume(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}

	// Stopped, then booted again.
	if err := rt.Stop(ctx, spec.ID, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, devs := range [][]runtime.Device{nil, nil, two} {
		if err := rt.SetDevices(ctx, spec.ID, devs); err != nil {
			t.Fatalf("SetDevices(stopped, %d devices): %v", len(devs), err)
		}
		checkDevices(t, h, owner, spec.ID, devs)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Stopped)
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start after SetDevices: %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)
	checkDevices(t, h, owner, spec.ID, two)

	// A restart: the new runtime has the devices, and changes them.
	rt.Close()
	rt2 := h.Open(t, owner)
	defer rt2.Close()
	if _, err := rt2.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	checkDevices(t, h, owner, spec.ID, two)
	if err := rt2.SetDevices(ctx, spec.ID, []runtime.Device{}); err != nil {
		t.Fatalf("SetDevices(empty) after a restart: %v", err)
	}
	mustState(t, ctx, rt2, spec.ID, runtime.Running)
	checkDevices(t, h, owner, spec.ID, nil)

	if err := rt2.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SetDevices after Delete", rt2.SetDevices(ctx, spec.ID, one), runtime.ErrNotFound)
}

// testSetDevicesInvalid: devices Create would refuse are ErrInvalid and
// change nothing, in a stopped and in a running container.
func testSetDevicesInvalid(t *testing.T, h Host) {
	ctx := ctxOf(t)
	owner := NewOwner()
	rt := open(t, h, owner)
	spec := MachineSpec(withImage(t, ctx, rt))
	spec.Mounts = []runtime.Mount{{Source: t.TempDir(), Destination: "/dev/disk", ReadOnly: true}}
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	one := []runtime.Device{devVdb}
	if err := rt.SetDevices(ctx, spec.ID, one); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]runtime.Device{
		"path outside /dev":    {devVdb, {HostPath: "/dev/zero", Path: "/etc/vdc"}},
		"relative path":        {{HostPath: "/dev/null", Path: "dev/vdb"}},
		"unclean path":         {{HostPath: "/dev/null", Path: "/dev/../etc/vdb"}},
		"path under /dev/pts":  {{HostPath: "/dev/null", Path: "/dev/pts/9"}},
		"path twice":           {devVdb, {HostPath: "/dev/zero", Path: "/dev/vdb"}},
		"path of a mount":      {{HostPath: "/dev/null", Path: "/dev/disk"}},
		"relative host path":   {{HostPath: "dev/null", Path: "/dev/vdb"}},
		"missing host device":  {{HostPath: "/dev/no-such-device-" + NewID()[:8], Path: "/dev/vdb"}},
		"host path not a node": {{HostPath: "/etc/passwd", Path: "/dev/vdb"}},
	}
	try := func(state string) {
		t.Helper()
		for name, devs := range cases {
			wantErr(t, "SetDevices("+state+", "+name+")", rt.SetDevices(ctx, spec.ID, devs), runtime.ErrInvalid)
			checkDevices(t, h, owner, spec.ID, one)
		}
	}
	try("created")
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	pid := mustState(t, ctx, rt, spec.ID, runtime.Running).Pid
	try("running")
	if st := mustState(t, ctx, rt, spec.ID, runtime.Running); st.Pid != pid {
		t.Fatalf("a failed SetDevices changed the init: pid %d, was %d", st.Pid, pid)
	}
	if err := rt.Stop(ctx, spec.ID, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	try("stopped")
	// The container still boots with what it had.
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start after failed SetDevices: %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)
}

// rootDevice makes a block device holding the default image, or skips
// the test on a host that cannot. Call it before open, so that the
// device goes after the containers that use it.
func rootDevice(t *testing.T, h Host) string {
	t.Helper()
	rh, ok := h.(RootDeviceHost)
	if !ok {
		t.Skip("this host makes no block devices")
	}
	return rh.RootDevice(t, DefaultImage(t))
}

// testRootDevice: a container whose root is a block device goes through
// the lifecycle as one of an image, across a restart; its device is its
// own while it exists and free again once it is deleted.
func testRootDevice(t *testing.T, h Host) {
	ctx := ctxOf(t)
	dev := rootDevice(t, h)
	owner := NewOwner()
	rt := open(t, h, owner)
	spec := MachineSpec("")
	spec.RootDevice = dev
	st, err := rt.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if st.Status != runtime.Created || st.Image != "" || st.Netns == "" {
		t.Fatalf("Create returned %+v", st)
	}
	if st2, err := rt.Create(ctx, spec); err != nil || st2.Status != runtime.Created || !st2.CreatedAt.Equal(st.CreatedAt) {
		t.Fatalf("Create again: %+v, %v", st2, err)
	}
	// One device, one container.
	other := MachineSpec("")
	other.RootDevice = dev
	_, err = rt.Create(ctx, other)
	wantErr(t, "Create of another container on the same device", err, runtime.ErrInUse)
	if _, err := rt.State(ctx, other.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("a refused Create left a container: %v", err)
	}

	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start: %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)
	var buf bytes.Buffer
	if err := rt.Snapshot(ctx, spec.ID, &buf); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	for _, want := range []string{"bin/busybox", "sbin/init", "etc/passwd"} {
		if !TarNames(t, buf.Bytes())[want] {
			t.Fatalf("the snapshot of a root device lacks %s", want)
		}
	}
	if err := rt.Stop(ctx, spec.ID, 3*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Stopped)
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)

	// A restart: the new runtime has it, running, and boots it again.
	rt.Close()
	rt2 := h.Open(t, owner)
	defer rt2.Close()
	rec, err := rt2.Recover(ctx)
	if err != nil || len(rec.Orphans) != 0 {
		t.Fatalf("Recover: %+v, %v", rec, err)
	}
	mustState(t, ctx, rt2, spec.ID, runtime.Running)
	if err := rt2.Stop(ctx, spec.ID, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := rt2.Recover(ctx); err != nil {
		t.Fatalf("Recover of a stopped container: %v", err)
	}
	if err := rt2.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start after a restart: %v", err)
	}
	mustState(t, ctx, rt2, spec.ID, runtime.Running)

	for i := 0; i < 2; i++ {
		if err := rt2.Delete(ctx, spec.ID); err != nil {
			t.Fatalf("Delete #%d: %v", i, err)
		}
	}
	_, err = rt2.State(ctx, spec.ID)
	wantErr(t, "State after Delete", err, runtime.ErrNotFound)
	// The device is free again, its filesystem still whole.
	if _, err := rt2.Create(ctx, other); err != nil {
		t.Fatalf("Create on the device after Delete: %v", err)
	}
	if err := rt2.Start(ctx, other.ID); err != nil {
		t.Fatalf("Start on the device after Delete: %v", err)
	}
	mustState(t, ctx, rt2, other.ID, runtime.Running)
}

// testRootDeviceInvalid: root devices that are not block devices, or a
// spec with both an image and a root device, are ErrInvalid and leave
// nothing.
func testRootDeviceInvalid(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	img := withImage(t, ctx, rt)
	cases := map[string]func(*runtime.Spec){
		"missing device":     func(s *runtime.Spec) { s.RootDevice = "/dev/no-such-device-" + NewID()[:8] },
		"character device":   func(s *runtime.Spec) { s.RootDevice = "/dev/null" },
		"regular file":       func(s *runtime.Spec) { s.RootDevice = "/etc/passwd" },
		"relative path":      func(s *runtime.Spec) { s.RootDevice = "dev/loop0" },
		"image and device":   func(s *runtime.Spec) { s.Image, s.RootDevice = img, "/dev/null" },
		"neither":            func(s *runtime.Spec) {},
		"directory as a dev": func(s *runtime.Spec) { s.RootDevice = "/dev" },
	}
	for name, mutate := range cases {
		spec := MachineSpec("")
		mutate(&spec)
		_, err := rt.Create(ctx, spec)
		wantErr(t, "Create("+name+")", err, runtime.ErrInvalid)
	}
	if l, err := rt.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("failed creates left containers: %v %v", ids(l), err)
	}
}

// testSetResources: limits change in every state, bad ones are refused
// and change nothing, and the container keeps working across a restart.
func testSetResources(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	wantErr(t, "SetResources(unknown)", rt.SetResources(ctx, NewID(), runtime.Resources{}), runtime.ErrNotFound)
	spec := MachineSpec(withImage(t, ctx, rt))
	spec.Resources = runtime.Resources{MemoryBytes: 64 << 20, VCPUs: 0.5}
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	for name, res := range map[string]runtime.Resources{
		"memory under the minimum": {MemoryBytes: 1},
		"negative vcpus":           {VCPUs: -1},
		"negative pids":            {Pids: -1},
	} {
		wantErr(t, "SetResources("+name+")", rt.SetResources(ctx, spec.ID, res), runtime.ErrInvalid)
	}
	if err := rt.SetResources(ctx, spec.ID, runtime.Resources{MemoryBytes: 96 << 20}); err != nil {
		t.Fatalf("SetResources(created): %v", err)
	}
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	pid := mustState(t, ctx, rt, spec.ID, runtime.Running).Pid
	if err := rt.SetResources(ctx, spec.ID, runtime.Resources{MemoryBytes: 128 << 20, VCPUs: 1}); err != nil {
		t.Fatalf("SetResources(running): %v", err)
	}
	if st := mustState(t, ctx, rt, spec.ID, runtime.Running); st.Pid != pid {
		t.Fatalf("SetResources restarted the init: pid %d, was %d", st.Pid, pid)
	}
	// Creating again with the first spec keeps the container as it is.
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatalf("Create with the first spec after SetResources: %v", err)
	}
	if err := rt.Stop(ctx, spec.ID, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.SetResources(ctx, spec.ID, runtime.Resources{}); err != nil {
		t.Fatalf("SetResources(stopped): %v", err)
	}
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	mustState(t, ctx, rt, spec.ID, runtime.Running)
	if err := rt.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}

// testSharedNetns: a container made with NetnsOf runs in the other's
// network namespace; one naming a container that is not there is
// refused; deleting the joiner leaves the other's namespace alone.
func testSharedNetns(t *testing.T, h Host) {
	ctx := ctxOf(t)
	rt := open(t, h, NewOwner())
	img := withImage(t, ctx, rt)
	first := MachineSpec(img)
	st1, err := rt.Create(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	lonely := MachineSpec(img)
	lonely.NetnsOf = NewID()
	_, err = rt.Create(ctx, lonely)
	wantErr(t, "Create joining a container that is not there", err, runtime.ErrInvalid)
	self := MachineSpec(img)
	self.NetnsOf = self.ID
	_, err = rt.Create(ctx, self)
	wantErr(t, "Create joining itself", err, runtime.ErrInvalid)
	second := MachineSpec(img)
	second.NetnsOf = first.ID
	st2, err := rt.Create(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Netns != st1.Netns {
		t.Fatalf("the joiner's namespace %s, the first's %s", st2.Netns, st1.Netns)
	}
	for _, id := range []string{first.ID, second.ID} {
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Delete(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if st := mustState(t, ctx, rt, first.ID, runtime.Running); st.Netns != st1.Netns {
		t.Fatalf("after the joiner's delete the first's namespace is %s, was %s", st.Netns, st1.Netns)
	}
	if err := rt.Delete(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
}
