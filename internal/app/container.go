package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/agent"
	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/config"
	"github.com/monostack/monostack/internal/container"
	"github.com/monostack/monostack/internal/image"
	"github.com/monostack/monostack/internal/network"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/shim"
	"github.com/monostack/monostack/internal/volume"
)

// containerImages is the containers service's view of the Image service.
type containerImages struct{ img *image.Service }

func toContainerImage(im image.Image) container.Image {
	out := container.Image{ID: im.ID, Status: im.Status, ContainerFormat: im.ContainerFormat, DiskFormat: im.DiskFormat,
		Rootfs: im.Format.IsRootfs()}
	if im.Name != nil {
		out.Name = *im.Name
	}
	if im.Size != nil {
		out.Size = *im.Size
	}
	return out
}

func (a containerImages) Find(ctx context.Context, c *api.Credentials, ref string) (container.Image, error) {
	im, err := a.img.Find(ctx, c, ref)
	if err != nil {
		return container.Image{}, err
	}
	return toContainerImage(im), nil
}

func (a containerImages) List(ctx context.Context, c *api.Credentials) ([]container.Image, error) {
	ims, err := a.img.Visible(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []container.Image
	for _, im := range ims {
		out = append(out, toContainerImage(im))
	}
	return out, nil
}

// Commit makes a private image of the project from a container's root
// filesystem, streamed into Glance as it is written.
func (a containerImages) Commit(ctx context.Context, c *api.Credentials, project, name, tag string, write func(w io.Writer) error) (string, error) {
	im, err := a.img.Create(ctx, image.NewImage{Name: &name, Visibility: image.Private, Owner: project,
		DiskFormat: "raw", ContainerFormat: "bare", Properties: map[string]string{"tag": tag}})
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	_, err = a.img.Upload(ctx, im.ID, pr, -1)
	pr.Close()
	if err != nil {
		a.img.Delete(context.WithoutCancel(ctx), im.ID)
		return "", err
	}
	return im.ID, nil
}

// containerNetworks is the containers service's view of Neutron (what
// Kuryr does for Zun): ports owned by "compute:kuryr", plugged into the
// container's network namespace.
type containerNetworks struct {
	net       *network.Service
	netnsName func(id string) string
}

const kuryrOwner = "compute:kuryr"

func (a containerNetworks) Resolve(ctx context.Context, c *api.Credentials, ref string) (string, error) {
	return a.net.NetworkNamed(ctx, c.ProjectID, ref, c.CloudAdmin())
}

func (a containerNetworks) Default(ctx context.Context, project string) (string, error) {
	return a.net.AutoNetwork(ctx, project)
}

func toContainerPort(p network.PortInfo) container.Port {
	out := container.Port{ID: p.ID, NetworkID: p.NetworkID, MAC: p.MAC, Addresses: p.Addresses}
	for _, f := range p.FixedIPs {
		out.SubnetIDs = append(out.SubnetIDs, f.SubnetID)
	}
	return out
}

func (a containerNetworks) CreatePort(ctx context.Context, project, networkID, deviceID, fixedIP string, groups []string) (container.Port, error) {
	req := network.PortRequest{ProjectID: project, NetworkID: networkID, DeviceID: deviceID, DeviceOwner: kuryrOwner}
	if fixedIP != "" {
		ip, err := netip.ParseAddr(fixedIP)
		if err != nil {
			return container.Port{}, api.BadRequest("Invalid fixed IP address %q.", fixedIP)
		}
		req.FixedIPs = []network.FixedIP{{IP: ip}}
	}
	for _, g := range groups {
		id, err := a.net.SecurityGroupID(ctx, project, g)
		if err != nil {
			return container.Port{}, err
		}
		req.SecurityGroups = append(req.SecurityGroups, id)
	}
	p, err := a.net.CreatePort(ctx, req)
	if api.IsNotFound(err) {
		req.Admin = true // a shared or external network the caller was allowed at create
		p, err = a.net.CreatePort(ctx, req)
	}
	return toContainerPort(p), err
}

func (a containerNetworks) GetPort(ctx context.Context, id string) (container.Port, string, error) {
	p, err := a.net.GetPort(ctx, id)
	return toContainerPort(p), p.Status, err
}

func (a containerNetworks) BindPort(ctx context.Context, id, host, containerID string) error {
	if host == "" {
		_, err := a.net.BindPort(ctx, id, "", "", "", nil)
		return err
	}
	_, err := a.net.BindPort(ctx, id, host, containerID, kuryrOwner,
		map[string]any{"netns": "/var/run/netns/" + a.netnsName(containerID)})
	if err == nil {
		a.net.Resync()
	}
	return err
}

func (a containerNetworks) DeletePort(ctx context.Context, id string) error {
	return a.net.DeletePort(ctx, id)
}

func (a containerNetworks) SecurityGroupID(ctx context.Context, project, ref string) (string, error) {
	return a.net.SecurityGroupID(ctx, project, ref)
}

func (a containerNetworks) SetPortSecurityGroups(ctx context.Context, portID string, groups []string) error {
	return a.net.SetPortSecurityGroups(ctx, portID, groups)
}

// containerHosts runs containers through the host agents: the same
// commands as servers, plus exec, stats and top.
type containerHosts struct{ client *agent.ComputeClient }

func (h containerHosts) Ensure(ctx context.Context, host string, spec runtime.Spec, running bool, mounts []container.VolumeMount) (runtime.State, error) {
	req := agent.ServerRequest{Spec: spec, Running: running}
	for _, m := range mounts {
		if m.File {
			req.Files = append(req.Files, agent.FileMount{Destination: m.Destination, Data: m.Data})
			continue
		}
		req.VolumeMounts = append(req.VolumeMounts, agent.VolumeMount{Block: m.Block, Destination: m.Destination})
	}
	return h.client.Ensure(ctx, host, req)
}

func (h containerHosts) Release(ctx context.Context, host, id string, blocks []string) error {
	return h.client.SetVolumes(ctx, host, agent.VolumesRequest{ID: id, Detach: blocks})
}

// containerVolumes is the containers service's view of Cinder.
type containerVolumes struct{ vol *volume.Service }

func toVolumeInfo(v volume.VolumeRef) container.VolumeInfo {
	return container.VolumeInfo{ID: v.ID, Status: v.Status, Size: v.Size}
}

func (a containerVolumes) Find(ctx context.Context, c *api.Credentials, ref string) (container.VolumeInfo, error) {
	v, err := a.vol.FindVolume(ctx, c, ref)
	return toVolumeInfo(v), err
}

func (a containerVolumes) Create(ctx context.Context, c *api.Credentials, size int64, name string) (container.VolumeInfo, error) {
	v, err := a.vol.Create(ctx, c, volume.NewVolume{ProjectID: c.ProjectID, UserID: c.UserID, Name: &name, Size: size})
	return container.VolumeInfo{ID: v.ID, Status: v.Status, Size: v.Size}, err
}

func (a containerVolumes) Get(ctx context.Context, id string) (container.VolumeInfo, error) {
	v, err := a.vol.GetVolume(ctx, id)
	return toVolumeInfo(v), err
}

func (a containerVolumes) Reserve(ctx context.Context, c *api.Credentials, volumeID, containerID, attachmentID string) (string, error) {
	conn, err := a.vol.Reserve(ctx, c, volumeID, containerID, attachmentID)
	return conn.Block, err
}

func (a containerVolumes) Attached(ctx context.Context, attachmentID, host, device string) error {
	return a.vol.Attached(ctx, attachmentID, host, device)
}

func (a containerVolumes) Detached(ctx context.Context, attachmentID string) error {
	return a.vol.Detached(ctx, attachmentID)
}

func (a containerVolumes) Delete(ctx context.Context, id string) error {
	return a.vol.DeleteOnTermination(ctx, id)
}

func (h containerHosts) Action(ctx context.Context, host, id, action string, timeout time.Duration, signal int) (runtime.State, error) {
	return h.client.Action(ctx, host, agent.ServerAction{ID: id, Action: action, Timeout: timeout, Signal: signal})
}

func (h containerHosts) List(ctx context.Context, host string) ([]runtime.State, error) {
	return h.client.List(ctx, host)
}

func (h containerHosts) State(ctx context.Context, host, id string) (runtime.State, error) {
	return h.client.State(ctx, host, id)
}

func (h containerHosts) Logs(ctx context.Context, host, id string, o container.LogOptions) ([]byte, error) {
	return h.client.Logs(ctx, host, id, shim.LogOptions{Stdout: o.Stdout, Stderr: o.Stderr, Timestamps: o.Timestamps,
		Since: o.Since, Tail: o.Tail})
}

func (h containerHosts) Exec(ctx context.Context, host, id string, args, env []string, cwd, user string) (runtime.ExecResult, error) {
	r, err := h.client.Exec(ctx, host, agent.ExecRequest{ID: id, Args: args, Env: env, Cwd: cwd, User: user})
	if err != nil {
		return runtime.ExecResult{}, err
	}
	if r.NotRun != "" {
		return runtime.ExecResult{}, fmt.Errorf("%w: %s", runtime.ErrExec, r.NotRun)
	}
	return runtime.ExecResult{ExitCode: r.ExitCode, Stdout: r.Stdout, Stderr: r.Stderr, Truncated: r.Truncated}, nil
}

// Resize sets a container's cpu and memory limits on its host.
func (h containerHosts) Resize(ctx context.Context, host, id string, res runtime.Resources) error {
	return h.client.Resize(ctx, host, id, res)
}

// ExecInput is Exec with a standard input (put_archive).
func (h containerHosts) ExecInput(ctx context.Context, host, id string, args []string, stdin []byte) (runtime.ExecResult, error) {
	r, err := h.client.Exec(ctx, host, agent.ExecRequest{ID: id, Args: args, Stdin: stdin})
	if err != nil {
		return runtime.ExecResult{}, err
	}
	if r.NotRun != "" {
		return runtime.ExecResult{}, fmt.Errorf("%w: %s", runtime.ErrExec, r.NotRun)
	}
	return runtime.ExecResult{ExitCode: r.ExitCode, Stdout: r.Stdout, Stderr: r.Stderr, Truncated: r.Truncated}, nil
}

func (h containerHosts) Stats(ctx context.Context, host, id string) (container.Stats, error) {
	r, err := h.client.Stats(ctx, host, id)
	return container.Stats(r), err
}

func (h containerHosts) Top(ctx context.Context, host, id string) ([]container.Process, error) {
	ps, err := h.client.Top(ctx, host, id)
	var out []container.Process
	for _, p := range ps {
		out = append(out, container.Process{UID: p.UID, PID: p.PID, PPID: p.PPID, Command: p.Command})
	}
	return out, err
}

func (h containerHosts) Snapshot(ctx context.Context, host, id string, w io.Writer) error {
	path, err := h.client.Snapshot(ctx, host, id)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// startContainers runs the containers API (Zun) on this host's agent and
// registers it in the catalog as "container" at /container/v1.
func startContainers(ctx context.Context, c *cloud, cfg config.Config, host string, img *image.Service, netSvc *network.Service,
	vol *volume.Service, netnsName func(string) string, log *slog.Logger) (*container.Service, error) {
	info := hostInfo(host, cfg.DataDir)
	if !c.hasRuntime {
		log.Warn("this host runs no containers (not root, or --datapath none): the containers API will refuse to run any")
		host = ""
	}
	uname, arch := kernelRelease(), goruntime.GOARCH
	svc, err := container.New(ctx, c.db, container.Config{Host: host, HostInfo: container.HostInfo{
		CPUs: info.VCPUs, MemoryMB: info.MemoryMB, DiskGB: info.DiskGB, Architecture: arch, OS: osName(), KernelVersion: uname,
	}}, containerImages{img}, containerNetworks{net: netSvc, netnsName: netnsName},
		containerHosts{client: &agent.ComputeClient{Bus: c.bus}}, log.With("service", "container"))
	if err != nil {
		return nil, err
	}
	c.onClose(svc.Close)
	svc.SetVolumes(containerVolumes{vol})
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	if err := c.identity.EnsureService(ctx, "container", "zun", "Container Service", cfg.BaseURL()+"/container/v1"); err != nil {
		return nil, err
	}
	return svc, nil
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}
