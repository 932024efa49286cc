package container

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/fake"
	"github.com/monostack/monostack/internal/runtime/shim"
	"github.com/monostack/monostack/internal/testcloud"
)

// The harness: a real identity service and SQLite store (testcloud), the
// containers service mounted at /container, and in-memory fakes of what it
// drives: Glance images, Neutron ports, and a host that runs containers on
// internal/runtime/fake (real lifecycle, idempotence and errors; nothing
// runs).

// rootfsTar is a root filesystem tarball with the executables the tests'
// commands name (the fake runtime checks that they exist).
func rootfsTar(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, d := range []string{"bin/", "sbin/", "etc/"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755})
	}
	for _, f := range []string{"bin/sh", "bin/sleep", "bin/echo", "bin/true", "sbin/init"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f, Mode: 0o755, Size: 2})
		tw.Write([]byte("#!"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fakeImages keeps Glance images (root filesystem tarballs) in memory.
type fakeImages struct {
	mu     sync.Mutex
	images []Image
	data   map[string][]byte
	owner  map[string]string // private images' projects
}

func (f *fakeImages) add(im Image, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images = append(f.images, im)
	f.data[im.ID] = data
}

func (f *fakeImages) visible(c *api.Credentials, im Image) bool {
	p := f.owner[im.ID]
	return p == "" || p == c.ProjectID || c.CloudAdmin()
}

func (f *fakeImages) Find(ctx context.Context, c *api.Credentials, ref string) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, im := range f.images {
		if (im.ID == ref || im.Name == ref) && f.visible(c, im) {
			return im, nil
		}
	}
	return Image{}, api.NotFound("No image found with name or ID %s.", ref)
}

func (f *fakeImages) List(ctx context.Context, c *api.Credentials) ([]Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Image
	for _, im := range f.images {
		if f.visible(c, im) {
			out = append(out, im)
		}
	}
	return out, nil
}

func (f *fakeImages) Commit(ctx context.Context, c *api.Credentials, project, name, tag string, write func(w io.Writer) error) (string, error) {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return "", err
	}
	im := Image{ID: newUUID(), Name: name, Status: "active", ContainerFormat: "bare", DiskFormat: "raw", Size: int64(b.Len()), Rootfs: true}
	f.add(im, b.Bytes())
	f.mu.Lock()
	f.owner[im.ID] = project
	f.mu.Unlock()
	return im.ID, nil
}

// get returns an image and the project it is private to.
func (f *fakeImages) get(id string) (Image, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, im := range f.images {
		if im.ID == id {
			return im, f.owner[id]
		}
	}
	return Image{}, ""
}

func (f *fakeImages) open(id string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.data[id]
	return b, ok
}

// fakeNetworks keeps networks and ports in memory. A port is ACTIVE once
// bound to a host.
type fakeNetworks struct {
	mu    sync.Mutex
	nets  map[string]fakeNet
	ports map[string]fakePort
	next  int
}

type fakeNet struct {
	name, project string
	shared        bool
}

type fakePort struct {
	Port
	project, device, host string
	groups                []string
}

func (f *fakeNetworks) Resolve(ctx context.Context, c *api.Credentials, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.nets {
		if (id == ref || n.name == ref) && (n.shared || n.project == c.ProjectID || c.CloudAdmin()) {
			return id, nil
		}
	}
	return "", api.NotFound("Network %s could not be found.", ref)
}

func (f *fakeNetworks) Default(ctx context.Context, project string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.nets {
		if n.project == project {
			return id, nil
		}
	}
	return "", nil
}

func (f *fakeNetworks) CreatePort(ctx context.Context, project, networkID, deviceID, fixedIP string, groups []string) (Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nets[networkID]; !ok {
		return Port{}, api.NotFound("Network %s could not be found.", networkID)
	}
	f.next++
	ip := fmt.Sprintf("10.0.0.%d", f.next+2)
	if fixedIP != "" {
		ip = fixedIP
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return Port{}, api.BadRequest("Invalid fixed IP address %q.", fixedIP)
	}
	p := fakePort{Port: Port{ID: newUUID(), NetworkID: networkID, MAC: fmt.Sprintf("fa:16:3e:00:00:%02x", f.next),
		Addresses: []netip.Prefix{netip.PrefixFrom(addr, 24)}, SubnetIDs: []string{"subnet-" + networkID[:8]}},
		project: project, device: deviceID, groups: groups}
	f.ports[p.ID] = p
	return p.Port, nil
}

func (f *fakeNetworks) GetPort(ctx context.Context, id string) (Port, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[id]
	if !ok {
		return Port{}, "", api.NotFound("Port %s could not be found.", id)
	}
	status := "DOWN"
	if p.host != "" {
		status = "ACTIVE"
	}
	return p.Port, status, nil
}

func (f *fakeNetworks) BindPort(ctx context.Context, id, host, containerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[id]
	if !ok {
		return api.NotFound("Port %s could not be found.", id)
	}
	p.host, p.device = host, containerID
	f.ports[id] = p
	return nil
}

func (f *fakeNetworks) DeletePort(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ports[id]; !ok {
		return api.NotFound("Port %s could not be found.", id)
	}
	delete(f.ports, id)
	return nil
}

func (f *fakeNetworks) SecurityGroupID(ctx context.Context, project, ref string) (string, error) {
	if ref == "nosuch" {
		return "", api.NotFound("Security group %s could not be found.", ref)
	}
	return "sg-" + strings.TrimPrefix(ref, "sg-"), nil
}

func (f *fakeNetworks) SetPortSecurityGroups(ctx context.Context, id string, groups []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[id]
	if !ok {
		return api.NotFound("Port %s could not be found.", id)
	}
	p.groups = groups
	f.ports[id] = p
	return nil
}

// portsOf lists the ports whose device is the container.
func (f *fakeNetworks) portsOf(device string) []fakePort {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakePort
	for _, p := range f.ports {
		if p.device == device {
			out = append(out, p)
		}
	}
	return out
}

func (f *fakeNetworks) port(id string) (fakePort, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[id]
	return p, ok
}

func (f *fakeNetworks) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ports)
}

// gate stops a host operation until it is opened (then it returns err) or
// the caller's context ends: a daemon killed in the middle of the work.
type gate struct {
	once    sync.Once
	reached chan struct{}
	open    chan struct{}
	err     error
}

// fakeHosts is the one host "host1", running containers on a fake runtime
// the way the agent does (internal/agent: ensure, action, ...). On top of
// the fake's lifecycle it lets containers' processes exit on their own:
// exit(id, code) ends one now, and a container whose command is
// `sh -c "exit N"` exits with N right after each start (at the host's
// next List, as a real process would run a moment first).
type fakeHosts struct {
	fh     *fake.Host
	rt     *fake.Runtime
	images *fakeImages

	mu       sync.Mutex
	calls    []string // "ensure ID running=B", "ACTION ID"
	specs    map[string]runtime.Spec
	starts   map[string]int
	exitCode map[string]int // a Stopped container's exit code, overriding the fake's
	logOpts  LogOptions     // what the last Logs asked for
	pending  map[string]int // exits at the next List
	lists    int
	gates    map[string]*gate // by operation: ensure, list, start, stop, delete, ...
	failWith map[string]error // by operation
	released []string
	stdin    [][]byte // what ExecInput was given
	mounts   map[string][]VolumeMount
}

const hostName = "host1"

func newFakeHosts(images *fakeImages) *fakeHosts {
	fh := fake.NewHost()
	h := &fakeHosts{fh: fh, rt: fake.New(fh, "zun"), images: images, specs: map[string]runtime.Spec{}, starts: map[string]int{},
		exitCode: map[string]int{}, pending: map[string]int{}, gates: map[string]*gate{}, failWith: map[string]error{},
		mounts: map[string][]VolumeMount{}}
	h.rt.ExecFunc = func(id string, spec runtime.ExecSpec) (runtime.ExecResult, error) {
		switch spec.Args[0] {
		case "echo":
			return runtime.ExecResult{Stdout: []byte(strings.Join(spec.Args[1:], " ") + "\n")}, nil
		case "false":
			return runtime.ExecResult{ExitCode: 1}, nil
		case "warn":
			return runtime.ExecResult{ExitCode: 2, Stdout: []byte("out\n"), Stderr: []byte("err\n")}, nil
		case "stat":
			return runtime.ExecResult{Stdout: []byte("6|81a4|1700000000\n")}, nil
		case "tar":
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "hosts", Mode: 0o644, Size: 6})
			tw.Write([]byte("hello\n"))
			tw.Close()
			return runtime.ExecResult{Stdout: b.Bytes()}, nil
		case "nosuch":
			return runtime.ExecResult{}, fmt.Errorf("%w: exec: \"nosuch\": executable file not found in $PATH", runtime.ErrExec)
		}
		return runtime.ExecResult{}, nil
	}
	return h
}

// hold makes the next calls of op wait (see gate); release opens it.
func (h *fakeHosts) hold(op string) *gate {
	g := &gate{reached: make(chan struct{}), open: make(chan struct{})}
	h.mu.Lock()
	h.gates[op] = g
	h.mu.Unlock()
	return g
}

// release opens op's gate (its waiting call returns err) and removes it.
func (h *fakeHosts) release(op string, err error) {
	h.mu.Lock()
	g := h.gates[op]
	delete(h.gates, op)
	h.mu.Unlock()
	if g != nil {
		g.err = err
		close(g.open)
	}
}

func (h *fakeHosts) wait(ctx context.Context, op string) error {
	h.mu.Lock()
	g, failure := h.gates[op], h.failWith[op]
	h.mu.Unlock()
	if failure != nil {
		return failure
	}
	if g == nil {
		return nil
	}
	g.once.Do(func() { close(g.reached) })
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-g.open:
		return g.err
	}
}

func (h *fakeHosts) fail(op string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.failWith, op)
	} else {
		h.failWith[op] = err
	}
}

func (h *fakeHosts) record(call string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, call)
}

// callsOf lists the calls made for container id, without the id.
func (h *fakeHosts) callsOf(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.calls {
		if op, rest, _ := strings.Cut(c, " "); strings.HasPrefix(rest, id) {
			out = append(out, op+strings.TrimPrefix(rest, id))
		}
	}
	return out
}

func (h *fakeHosts) startsOf(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.starts[id]
}

func (h *fakeHosts) listCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lists
}

func (h *fakeHosts) spec(id string) runtime.Spec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.specs[id]
}

// started notes that id's process started (again): a command
// `sh -c "exit N"` exits with N at the next List.
func (h *fakeHosts) started(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starts[id]++
	delete(h.exitCode, id)
	cmd := h.specs[id].Process.Cmd
	var n int
	if len(cmd) == 3 && cmd[0] == "sh" && cmd[1] == "-c" {
		if _, err := fmt.Sscanf(cmd[2], "exit %d", &n); err == nil {
			h.pending[id] = n
		}
	}
}

// exit ends a running container's process with code, as if it exited on
// its own.
func (h *fakeHosts) exit(t testing.TB, id string, code int) {
	t.Helper()
	if err := h.rt.Kill(context.Background(), id, syscall.SIGKILL); err != nil {
		t.Fatalf("ending %s: %v", id, err)
	}
	h.mu.Lock()
	h.exitCode[id] = code
	h.mu.Unlock()
}

func (h *fakeHosts) fix(st runtime.State) runtime.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	if code, ok := h.exitCode[st.ID]; ok && st.Status == runtime.Stopped {
		st.ExitCode = code
	}
	return st
}

func (h *fakeHosts) state(ctx context.Context, id string) (runtime.State, error) {
	st, err := h.rt.State(ctx, id)
	return h.fix(st), err
}

func checkHost(host string) error {
	if host != hostName {
		return fmt.Errorf("no host %q", host)
	}
	return nil
}

func (h *fakeHosts) Ensure(ctx context.Context, host string, spec runtime.Spec, running bool, mounts []VolumeMount) (runtime.State, error) {
	h.record(fmt.Sprintf("ensure %s running=%v", spec.ID, running))
	if err := checkHost(host); err != nil {
		return runtime.State{}, err
	}
	if err := h.wait(ctx, "ensure"); err != nil {
		return runtime.State{}, err
	}
	h.mu.Lock()
	h.specs[spec.ID] = spec
	h.mounts[spec.ID] = mounts
	h.mu.Unlock()
	have, _ := h.rt.Images(ctx)
	if !slices.Contains(have, spec.Image) {
		data, ok := h.images.open(spec.Image)
		if !ok {
			return runtime.State{}, fmt.Errorf("image %s: not found", spec.Image)
		}
		_, err := h.rt.EnsureImage(ctx, spec.Image, runtime.ImageFormat{Kind: runtime.KindRootfsTar},
			func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return runtime.State{}, err
		}
	}
	st, err := h.rt.State(ctx, spec.ID)
	if errors.Is(err, runtime.ErrNotFound) {
		st, err = h.rt.Create(ctx, spec)
	}
	if err != nil {
		return st, err
	}
	if running && (st.Status == runtime.Created || st.Status == runtime.Stopped) {
		if err := h.rt.Start(ctx, spec.ID); err != nil {
			return st, err
		}
		h.started(spec.ID)
	}
	return h.state(ctx, spec.ID)
}

func (h *fakeHosts) Release(ctx context.Context, host, id string, blocks []string) error {
	h.mu.Lock()
	h.released = append(h.released, blocks...)
	h.mu.Unlock()
	return nil
}

func (h *fakeHosts) Action(ctx context.Context, host, id, action string, timeout time.Duration, signal int) (runtime.State, error) {
	h.record(action + " " + id)
	if err := checkHost(host); err != nil {
		return runtime.State{}, err
	}
	if err := h.wait(ctx, action); err != nil {
		return runtime.State{}, err
	}
	var err error
	switch action {
	case "start":
		before, _ := h.rt.State(ctx, id)
		if err = h.rt.Start(ctx, id); err == nil && before.Status != runtime.Running {
			h.started(id)
		}
	case "stop":
		err = h.rt.Stop(ctx, id, timeout)
	case "reboot":
		if err = h.rt.Stop(ctx, id, timeout); err == nil {
			// "rebooting": stopped, not started again yet.
			if err = h.wait(ctx, "rebooting"); err != nil {
				return runtime.State{}, err
			}
			if err = h.rt.Start(ctx, id); err == nil {
				h.started(id)
			}
		}
	case "kill":
		err = h.rt.Kill(ctx, id, syscall.Signal(signal))
	case "pause":
		err = h.rt.Pause(ctx, id)
	case "resume":
		err = h.rt.Resume(ctx, id)
	case "delete":
		if err = h.rt.Delete(ctx, id); err == nil {
			return runtime.State{ID: id, Status: runtime.Stopped}, nil
		}
	default:
		err = fmt.Errorf("unknown action %q", action)
	}
	if err != nil {
		return runtime.State{}, err
	}
	if action == "stop" || action == "kill" {
		h.mu.Lock()
		delete(h.exitCode, id)
		h.mu.Unlock()
	}
	return h.state(ctx, id)
}

func (h *fakeHosts) List(ctx context.Context, host string) ([]runtime.State, error) {
	if err := checkHost(host); err != nil {
		return nil, err
	}
	if err := h.wait(ctx, "list"); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.lists++
	pending := h.pending
	h.pending = map[string]int{}
	h.mu.Unlock()
	for id, code := range pending {
		if st, err := h.rt.State(ctx, id); err == nil && st.Status == runtime.Running {
			h.rt.Kill(ctx, id, syscall.SIGKILL)
			h.mu.Lock()
			h.exitCode[id] = code
			h.mu.Unlock()
		}
	}
	states, err := h.rt.List(ctx)
	for i := range states {
		states[i] = h.fix(states[i])
	}
	// "listed": the answer is made, and late.
	if err := h.wait(ctx, "listed"); err != nil {
		return nil, err
	}
	return states, err
}

func (h *fakeHosts) State(ctx context.Context, host, id string) (runtime.State, error) {
	if err := checkHost(host); err != nil {
		return runtime.State{}, err
	}
	h.mu.Lock()
	code, ok := h.pending[id]
	delete(h.pending, id)
	h.mu.Unlock()
	if st, err := h.rt.State(ctx, id); ok && err == nil && st.Status == runtime.Running {
		h.rt.Kill(ctx, id, syscall.SIGKILL)
		h.mu.Lock()
		h.exitCode[id] = code
		h.mu.Unlock()
	}
	st, err := h.rt.State(ctx, id)
	return h.fix(st), err
}

func (h *fakeHosts) Logs(ctx context.Context, host, id string, o LogOptions) ([]byte, error) {
	if err := checkHost(host); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.logOpts = o
	h.mu.Unlock()
	b, err := h.rt.ConsoleLog(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	return []byte(shim.FormatLogs([]shim.Part{{Stream: shim.Stdout, Data: b}}, shim.LogOptions(o))), nil
}

func (h *fakeHosts) Exec(ctx context.Context, host, id string, args []string, env []string, cwd, user string) (runtime.ExecResult, error) {
	h.record("exec " + id + " " + strings.Join(args, " "))
	if err := checkHost(host); err != nil {
		return runtime.ExecResult{}, err
	}
	res, err := h.rt.Exec(ctx, id, runtime.ExecSpec{Args: args, Env: env, Cwd: cwd, User: user})
	// "exec": the process runs a while.
	if err := h.wait(ctx, "exec"); err != nil {
		return runtime.ExecResult{}, err
	}
	return res, err
}

// ExecInput runs a command with a standard input (put_archive's tar -x):
// it records the input.
func (h *fakeHosts) ExecInput(ctx context.Context, host, id string, args []string, stdin []byte) (runtime.ExecResult, error) {
	h.record("exec " + id + " " + strings.Join(args, " "))
	if err := h.running(ctx, id); err != nil {
		return runtime.ExecResult{}, err
	}
	if _, err := tar.NewReader(bytes.NewReader(stdin)).Next(); err != nil {
		return runtime.ExecResult{ExitCode: 2, Stderr: []byte("tar: invalid tar magic\n")}, nil
	}
	h.mu.Lock()
	h.stdin = append(h.stdin, stdin)
	h.mu.Unlock()
	return runtime.ExecResult{}, nil
}

func (h *fakeHosts) running(ctx context.Context, id string) error {
	st, err := h.rt.State(ctx, id)
	if err != nil {
		return err
	}
	if st.Status != runtime.Running {
		return fmt.Errorf("%w: container %s is %s", runtime.ErrState, id, st.Status)
	}
	return nil
}

func (h *fakeHosts) Stats(ctx context.Context, host, id string) (Stats, error) {
	if err := h.running(ctx, id); err != nil {
		return Stats{}, err
	}
	return Stats{CPUPercent: 12.345, MemoryUsage: 64 << 20, MemoryLimit: 128 << 20, BlockRead: 1, BlockWrite: 2,
		NetRx: 3, NetTx: 4, Pids: 2}, nil
}

func (h *fakeHosts) Top(ctx context.Context, host, id string) ([]Process, error) {
	if err := h.running(ctx, id); err != nil {
		return nil, err
	}
	return []Process{{UID: "0", PID: "4242", PPID: "4200", Command: "sleep 600"}}, nil
}

func (h *fakeHosts) Snapshot(ctx context.Context, host, id string, w io.Writer) error {
	if err := checkHost(host); err != nil {
		return err
	}
	return h.rt.Snapshot(ctx, id, w)
}

// containersLeft lists the containers the fake host still holds.
func (h *fakeHosts) containersLeft() []string {
	states, _ := h.rt.List(context.Background())
	var out []string
	for _, st := range states {
		out = append(out, st.ID)
	}
	return out
}

// resizingHosts is a host that can change a container's limits.
type resizingHosts struct {
	*fakeHosts
	mu      sync.Mutex
	resized map[string]runtime.Resources
	err     error
}

func (h *resizingHosts) Resize(ctx context.Context, host, id string, res runtime.Resources) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	h.resized[id] = res
	return nil
}

func (h *resizingHosts) get(id string) runtime.Resources {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resized[id]
}

func (h *resizingHosts) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

type testCloud struct {
	*testcloud.Cloud
	svc    *Service
	images *fakeImages
	nets   *fakeNetworks
	hosts  *fakeHosts
	cfg    Config
	// resize: the host can resize containers.
	resize *resizingHosts
	// volumes: Cinder, for mounts (nil: none).
	volumes *fakeVolumes

	busybox, queued   string // image ids
	private, adminNet string // network ids
}

type response = testcloud.Response

type options struct {
	resize bool
	quotas map[string]int64
}

func newTestCloud(t testing.TB, opts ...options) *testCloud {
	t.Helper()
	var o options
	if len(opts) > 0 {
		o = opts[0]
	}
	c := testcloud.New(t, testcloud.Options{})
	tc := &testCloud{Cloud: c, busybox: newUUID(), queued: newUUID(), private: newUUID(), adminNet: newUUID()}
	tc.images = &fakeImages{data: map[string][]byte{}, owner: map[string]string{}}
	tar := rootfsTar(t)
	tc.images.add(Image{ID: tc.busybox, Name: "busybox", Status: "active", ContainerFormat: "bare", DiskFormat: "raw",
		Size: int64(len(tar)), Rootfs: true}, tar)
	tc.images.add(Image{ID: tc.queued, Name: "queued", Status: "queued"}, nil)
	tc.nets = &fakeNetworks{ports: map[string]fakePort{}, nets: map[string]fakeNet{
		tc.private:  {name: "private", project: c.DemoProject},
		tc.adminNet: {name: "admin-net", project: c.AdminProject},
	}}
	tc.hosts = newFakeHosts(tc.images)
	if o.resize {
		tc.resize = &resizingHosts{fakeHosts: tc.hosts, resized: map[string]runtime.Resources{}}
	}
	tc.cfg = Config{Host: hostName, SyncInterval: 10 * time.Millisecond, DefaultQuotas: o.quotas,
		HostInfo: HostInfo{CPUs: 4, MemoryMB: 8192, DiskGB: 100, Architecture: "amd64", OS: "Debian", KernelVersion: "6.1"}}
	tc.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		// Every test deletes what it made; nothing of it is left on the host.
		if left := tc.hosts.containersLeft(); len(left) > 0 {
			t.Errorf("containers left on the host: %v", left)
		}
	})
	return tc
}

// start (re)opens the containers service on the cloud's database, as a
// restart of the daemon does, and serves it at /container.
func (tc *testCloud) start(t testing.TB) {
	t.Helper()
	var hosts Hosts = tc.hosts
	if tc.resize != nil {
		hosts = tc.resize
	}
	svc, err := New(context.Background(), tc.DB, tc.cfg, tc.images, tc.nets, hosts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if tc.volumes != nil {
		svc.SetVolumes(tc.volumes)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	tc.svc = svc
	tc.Mount("/container", svc.Router(tc.Identity, tc.Identity.URL(), nil))
}

// restart closes the service (its work in flight is cut short, as by a
// kill -9: the host's calls see their context end) and opens a new one
// on the same database and host.
func (tc *testCloud) restart(t testing.TB) {
	t.Helper()
	tc.svc.Close()
	tc.start(t)
}

const latest = "container 1.40"

// do sends a request at microversion 1.40; a JSON body is sent as JSON.
func (tc *testCloud) do(t testing.TB, method, path, token string, body any) response {
	t.Helper()
	return tc.doV(t, latest, method, path, token, body)
}

// doV sends a request at a microversion ("" sends no header: 1.1).
func (tc *testCloud) doV(t testing.TB, version, method, path, token string, body any) response {
	t.Helper()
	req := testcloud.NewRequest(t, method, tc.URL()+"/container"+path, token, body)
	if version != "" {
		req.Header.Set("OpenStack-API-Version", version)
	}
	return testcloud.Send(t, nil, req)
}

func must(t testing.TB, want int, res response) response {
	t.Helper()
	return testcloud.Must(t, want, res)
}

// zunError checks a Zun error body: status, and code and title when not "".
func zunError(t testing.TB, res response, status int, code, title string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.Body)
	}
	var body struct {
		Errors []struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
			Status int    `json:"status"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("not a Zun error body: %v: %s", err, res.Body)
	}
	e := body.Errors[0]
	if (code != "" && e.Code != code) || e.Status != status || (title != "" && e.Title != title) || e.Detail != e.Title {
		t.Fatalf("error %+v, want code %s title %q", e, code, title)
	}
}

// create creates a container as token (run: started too) and returns the
// create answer (busybox unless the body names an image).
func (tc *testCloud) create(t testing.TB, token string, run bool, body map[string]any) map[string]any {
	t.Helper()
	path := "/v1/containers"
	if run {
		path += "?run=true"
	}
	if body["image"] == nil {
		body["image"] = "busybox"
	}
	return must(t, 202, tc.do(t, "POST", path, token, body)).JSON(t)
}

// runSleeper runs a long-running container as demo and waits until it is
// Running.
func (tc *testCloud) runSleeper(t testing.TB, name string) string {
	t.Helper()
	ct := tc.create(t, tc.Demo, true, map[string]any{"name": name, "command": []string{"sleep", "600"}})
	id := ct["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	return id
}

// show gets a container as token.
func (tc *testCloud) show(t testing.TB, token, ref string) map[string]any {
	t.Helper()
	return must(t, 200, tc.do(t, "GET", "/v1/containers/"+ref, token, nil)).JSON(t)
}

// waitStatus polls a container until it has the status and no task.
func (tc *testCloud) waitStatus(t testing.TB, token, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := tc.do(t, "GET", "/v1/containers/"+id, token, nil)
		if want == "gone" && res.StatusCode == 404 {
			return nil
		}
		if res.StatusCode == 200 {
			ct := res.JSON(t)
			if ct["status"] == want && ct["task_state"] == nil {
				return ct
			}
			if time.Now().After(deadline) {
				t.Fatalf("container %s: status %v task %v reason %v, want %s", id, ct["status"], ct["task_state"], ct["status_reason"], want)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("container %s: %d %s", id, res.StatusCode, res.Body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// action posts a container action and expects it accepted (202, body null).
func (tc *testCloud) action(t testing.TB, token, id, action string) {
	t.Helper()
	res := must(t, 202, tc.do(t, "POST", "/v1/containers/"+id+"/"+action, token, nil))
	if strings.TrimSpace(string(res.Body)) != "null" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: body %q, content type %q; want null as JSON", action, res.Body, res.Header.Get("Content-Type"))
	}
}

// remove force-deletes a container (as the admin: forcing is theirs) and
// waits until token no longer sees it.
func (tc *testCloud) remove(t testing.TB, token, id string) {
	t.Helper()
	must(t, 204, tc.do(t, "DELETE", "/v1/containers/"+id+"?force=True", tc.Admin, nil))
	tc.waitStatus(t, token, id, "gone")
}

// waitLists waits until the host has been listed n more times: the
// watcher has looked at the containers n times since.
func (tc *testCloud) waitLists(t testing.TB, n int) {
	t.Helper()
	want := tc.hosts.listCount() + n
	deadline := time.Now().Add(10 * time.Second)
	for tc.hosts.listCount() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the host was not listed %d times in 10s", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// count is how many container records the database holds.
func (tc *testCloud) count(t testing.TB) int {
	t.Helper()
	var n int
	if err := tc.DB.QueryRow(`SELECT count(*) FROM container_containers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not so after 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// lastAction returns the newest action of a container once it is
// finished (an action's end is recorded just after the container's new
// status).
func (tc *testCloud) lastAction(t testing.TB, id string) map[string]any {
	t.Helper()
	var a map[string]any
	waitFor(t, "the last action of "+id+" to finish", func() bool {
		acts := must(t, 200, tc.do(t, "GET", "/v1/containers/"+id+"/container_actions", tc.Demo, nil)).JSON(t)["containerActions"].([]any)
		a = acts[0].(map[string]any)
		return a["finish_time"] != nil
	})
	return a
}
