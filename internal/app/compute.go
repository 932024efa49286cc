package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"time"

	"github.com/monostack/monostack/internal/agent"
	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blockdev"
	"github.com/monostack/monostack/internal/compute"
	"github.com/monostack/monostack/internal/config"
	"github.com/monostack/monostack/internal/image"
	"github.com/monostack/monostack/internal/network"
	"github.com/monostack/monostack/internal/placement"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runc"
	"github.com/monostack/monostack/internal/volume"
)

// computeImages is compute's view of the Image service.
type computeImages struct{ img *image.Service }

func (a computeImages) Lookup(ctx context.Context, c *api.Credentials, id string) (compute.Image, error) {
	im, err := a.img.Lookup(ctx, c, id)
	if err != nil {
		return compute.Image{}, err
	}
	out := compute.Image{ID: im.ID, Status: im.Status, MinDisk: im.MinDisk, MinRAM: im.MinRAM,
		DiskFormat: im.DiskFormat, ContainerFormat: im.ContainerFormat, Format: im.Format}
	if im.Name != nil {
		out.Name = *im.Name
	}
	if im.Size != nil {
		out.Size = *im.Size
	}
	return out, nil
}

// CreateSnapshot, UploadSnapshot and DeleteImage make computeImages a
// compute.SnapshotImages, for createImage.
func (a computeImages) CreateSnapshot(ctx context.Context, c *api.Credentials, project, name string, props map[string]string) (string, error) {
	im, err := a.img.Create(ctx, image.NewImage{Name: &name, Visibility: image.Private, Owner: project,
		DiskFormat: "raw", ContainerFormat: "bare", Properties: props})
	return im.ID, err
}

func (a computeImages) UploadSnapshot(ctx context.Context, id string, r io.Reader) error {
	_, err := a.img.Upload(ctx, id, r, -1)
	return err
}

func (a computeImages) DeleteImage(ctx context.Context, id string) error {
	return a.img.Delete(ctx, id)
}

// agentImages is the agent's view of the Image service: the bytes and what
// they are. In one process it reads them directly; a remote agent would use
// the Image API with a service token.
type agentImages struct{ img *image.Service }

func (a agentImages) OpenImage(ctx context.Context, id string) (io.ReadCloser, runtime.ImageFormat, error) {
	rc, im, err := a.img.Open(ctx, id)
	if err != nil {
		return nil, runtime.ImageFormat{}, err
	}
	f := im.Format
	return rc, runtime.ImageFormat{Kind: f.Kind, Compression: f.Compression, Config: f.Config, Layers: f.Layers}, nil
}

// computeNetworks is compute's view of the network service.
type computeNetworks struct{ net *network.Service }

// CheckNetwork is called while the API request is served, with the
// caller's credentials: a cloud admin may boot on any network.
func (a computeNetworks) CheckNetwork(ctx context.Context, project, id string) (string, error) {
	c := api.CredentialsFrom(ctx)
	return a.net.NetworkFor(ctx, project, id, c != nil && c.CloudAdmin())
}

func (a computeNetworks) AutoNetwork(ctx context.Context, project string) (string, error) {
	return a.net.AutoNetwork(ctx, project)
}

func (a computeNetworks) CreatePort(ctx context.Context, r compute.PortRequest) (compute.Port, error) {
	req := network.PortRequest{ProjectID: r.ProjectID, NetworkID: r.NetworkID, Name: r.Name, DeviceID: r.DeviceID, DeviceOwner: r.DeviceOwner}
	if r.FixedIPs != nil {
		req.FixedIPs = []network.FixedIP{}
		for _, f := range r.FixedIPs {
			fixed := network.FixedIP{SubnetID: f.SubnetID}
			if f.IP != "" {
				ip, err := netip.ParseAddr(f.IP)
				if err != nil {
					return compute.Port{}, api.BadRequest("Invalid fixed IP address %q.", f.IP)
				}
				fixed.IP = ip
			}
			req.FixedIPs = append(req.FixedIPs, fixed)
		}
	}
	for _, g := range r.SecurityGroups {
		id, err := a.net.SecurityGroupID(ctx, r.ProjectID, g)
		if err != nil {
			return compute.Port{}, err
		}
		req.SecurityGroups = append(req.SecurityGroups, id)
	}
	p, err := a.net.CreatePort(ctx, req)
	if api.IsNotFound(err) {
		// The network was checked with the caller's credentials when the
		// server was asked for (CheckNetwork); one a member cannot see is
		// an admin's choice.
		req.Admin = true
		p, err = a.net.CreatePort(ctx, req)
	}
	return toComputePort(p), err
}

func (a computeNetworks) GetPort(ctx context.Context, id string) (compute.Port, error) {
	p, err := a.net.GetPort(ctx, id)
	return toComputePort(p), err
}

func (a computeNetworks) DevicePorts(ctx context.Context, deviceID string) ([]compute.Port, error) {
	ps, err := a.net.DevicePorts(ctx, deviceID)
	out := make([]compute.Port, len(ps))
	for i, p := range ps {
		out[i] = toComputePort(p)
	}
	return out, err
}

func (a computeNetworks) BindPort(ctx context.Context, id, host, deviceID, owner string, profile map[string]any) (compute.Port, error) {
	p, err := a.net.BindPort(ctx, id, host, deviceID, owner, profile)
	return toComputePort(p), err
}

func (a computeNetworks) DeletePort(ctx context.Context, id string) error {
	return a.net.DeletePort(ctx, id)
}

func toComputePort(p network.PortInfo) compute.Port {
	out := compute.Port{ID: p.ID, ProjectID: p.ProjectID, NetworkID: p.NetworkID, NetworkName: p.NetworkName, MAC: p.MAC,
		DeviceID: p.DeviceID, DeviceOwner: p.DeviceOwner, HostID: p.HostID, Status: p.Status, Addresses: p.Addresses, Gateways: p.Gateways, MTU: p.MTU}
	for _, f := range p.FixedIPs {
		out.FixedIPs = append(out.FixedIPs, compute.FixedIP{SubnetID: f.SubnetID, IP: f.IP.String()})
	}
	return out
}

// computeHosts is compute's view of the hosts: the agents, over the bus.
type computeHosts struct {
	client *agent.ComputeClient
	net    *network.Service
	// netnsName is the runtime's name for a server's network namespace,
	// so that its ports can be bound before the server starts.
	netnsName func(serverID string) string
	log       *slog.Logger
}

func (h *computeHosts) PortProfile(host, serverID, portID string) map[string]any {
	return map[string]any{"netns": "/var/run/netns/" + h.netnsName(serverID)}
}

func (h *computeHosts) EnsureServer(ctx context.Context, host string, spec compute.ServerSpec) error {
	proc := runtime.Process{}
	if f, ok := spec.Image.Format.(image.Format); !ok || f.IsRootfs() {
		proc.Init = true // a machine container: the image's own init as PID 1
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = spec.Name
	}
	req := agent.ServerRequest{
		Spec: runtime.Spec{
			ID: spec.ID, Hostname: hostname, Image: spec.Image.ID, Process: proc,
			Resources:   runtime.Resources{MemoryBytes: spec.Flavor.RAMMB << 20, VCPUs: float64(spec.Flavor.VCPUs)},
			MaxLogBytes: 1 << 20,
		},
		ConfigDrive: spec.ConfigDrive,
	}
	if v := spec.RootVolume; v != nil {
		// Booted from a volume: its filesystem is the root, /sbin/init
		// boots (a VM boots its disk).
		req.Spec.Image, req.Spec.Process = "", runtime.Process{Init: true}
		req.RootVolume = &agent.VolumeDevice{Block: v.Block, Device: v.Device, ReadOnly: v.ReadOnly}
	}
	// Made first, not started: its namespace exists, the datapath plugs
	// its ports in, then it starts with its network there.
	if _, err := h.client.Ensure(ctx, host, req); err != nil {
		return err
	}
	h.net.Resync()
	h.waitPorts(ctx, spec.Ports, 3*time.Second)
	req.Running = true
	st, err := h.client.Ensure(ctx, host, req)
	if err != nil {
		return err
	}
	if st.Status != runtime.Running {
		return fmt.Errorf("the server's init is %s (exit code %d)", st.Status, st.ExitCode)
	}
	return nil
}

// waitPorts waits, a bounded time, until the ports are plugged (ACTIVE).
func (h *computeHosts) waitPorts(ctx context.Context, ports []compute.PortSpec, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, p := range ports {
		for time.Now().Before(deadline) {
			info, err := h.net.GetPort(ctx, p.ID)
			if err != nil || info.Status == "ACTIVE" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (h *computeHosts) DeleteServer(ctx context.Context, host, id string) error {
	_, err := h.client.Action(ctx, host, agent.ServerAction{ID: id, Action: "delete"})
	return err
}

func (h *computeHosts) Action(ctx context.Context, host, id, action string) error {
	act := agent.ServerAction{ID: id}
	switch action {
	case compute.ActionStop:
		act.Action = "stop"
	case compute.ActionStart:
		act.Action = "start"
	case compute.ActionRebootSoft:
		act.Action = "reboot"
	case compute.ActionRebootHard:
		act.Action, act.Timeout = "reboot", time.Millisecond
	case compute.ActionPause, compute.ActionSuspend:
		act.Action = "pause" // a container's suspend is its freeze
	case compute.ActionUnpause, compute.ActionResume:
		act.Action = "resume"
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	_, err := h.client.Action(ctx, host, act)
	return err
}

func (h *computeHosts) ConsoleLog(ctx context.Context, host, id string, length int) (string, error) {
	b, err := h.client.Console(ctx, host, id, 1<<20)
	if err != nil {
		return "", err
	}
	if length < 0 {
		return string(b), nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > length {
		lines = lines[len(lines)-length:]
	}
	return strings.Join(lines, ""), nil
}

// Snapshot copies the tarball the agent made of the server's root to w.
func (h *computeHosts) Snapshot(ctx context.Context, host, id string, w compute.SnapshotWriter) error {
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

// reportLoop tells compute what runs on the host, at start and every few
// seconds (Nova's power-state sync).
func reportLoop(ctx context.Context, svc *compute.Service, client *agent.ComputeClient, host string, log *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		err := svc.SyncHost(ctx, host, func(ctx context.Context) ([]compute.ServerState, error) {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			states, err := client.List(cctx, host)
			var out []compute.ServerState
			for _, st := range states {
				out = append(out, compute.ServerState{ID: st.ID, Power: powerState(st.Status)})
			}
			return out, err
		}, true)
		if err != nil && ctx.Err() == nil {
			log.Warn("reporting servers", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func powerState(s runtime.Status) int {
	switch s {
	case runtime.Running:
		return compute.PowerRunning
	case runtime.Paused:
		return compute.PowerPaused
	}
	return compute.PowerShutdown
}

// hostInfo describes this host to compute: its CPUs, memory and the disk
// of the data dir.
func hostInfo(host, dataDir string) compute.HostInfo {
	info := compute.HostInfo{Name: host, IP: "127.0.0.1", VCPUs: int64(goruntime.NumCPU()), MemoryMB: 1024, DiskGB: 10, ReservedMB: 512}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var kb int64
			if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
				info.MemoryMB = kb / 1024
			}
		}
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dataDir, &fs); err == nil {
		info.DiskGB = max(1, int64(fs.Blocks)*fs.Bsize>>30)
	}
	return info
}

// startCompute runs placement, compute and, as root with a datapath, this
// host's runtime (runc) under the agent.
func startCompute(ctx context.Context, c *cloud, cfg config.Config, host string, img *image.Service, netSvc *network.Service,
	blocks blockdev.Store, vol *volume.Service, log *slog.Logger) (*compute.Service, *placement.Service, error) {
	pl, err := placement.New(ctx, c.db, log.With("service", "placement"))
	if err != nil {
		return nil, nil, err
	}
	client := &agent.ComputeClient{Bus: c.bus}
	hosts := &computeHosts{client: client, net: netSvc, log: log,
		netnsName: func(id string) string { return "ms-none-" + id }}
	if rt, err := newRuntime(cfg, log); err != nil {
		return nil, nil, err
	} else if rt != nil {
		rec, err := rt.Recover(ctx)
		if err != nil {
			log.Warn("recovering the runtime", "err", err)
		} else if len(rec.Orphans) > 0 {
			if err := rt.RemoveOrphans(ctx, rec.Orphans); err != nil {
				log.Warn("removing orphaned containers", "err", err)
			}
		}
		ca := agent.NewCompute(host, c.bus, rt, agentImages{img}, filepath.Join(cfg.DataDir, "configdrive"))
		ca.SetBlocks(blocks)
		if err := ca.Start(); err != nil {
			rt.Close()
			return nil, nil, err
		}
		c.onClose(ca.Close)
		hosts.netnsName = rt.NetnsName
		c.hasRuntime = true
	}
	c.netnsName = hosts.netnsName
	svc, err := compute.New(ctx, c.db, compute.Config{}, computeImages{img}, computeNetworks{netSvc}, hosts, pl, log.With("service", "compute"))
	if err != nil {
		return nil, nil, err
	}
	c.onClose(svc.Close)
	c.purgers = append(c.purgers, purger{"servers", svc.PurgeDeleted})
	svc.SetVolumes(computeVolumes{vol})
	info := hostInfo(host, cfg.DataDir)
	info.Ratios = placement.Ratios{CPU: cfg.CPUAllocationRatio, RAM: cfg.RAMAllocationRatio, Disk: cfg.DiskAllocationRatio}
	if err := svc.RegisterHost(ctx, info); err != nil {
		return nil, nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); reportLoop(rctx, svc, client, host, log) }()
	c.onClose(func() error { cancel(); <-done; return nil })
	if err := c.identity.EnsureService(ctx, "compute", "nova", "Nova Compute Service", cfg.BaseURL()+"/compute/v2.1"); err != nil {
		return nil, nil, err
	}
	if err := c.identity.EnsureService(ctx, "placement", "placement", "Placement Service", cfg.BaseURL()+"/placement"); err != nil {
		return nil, nil, err
	}
	return svc, pl, nil
}

// newRuntime is this host's runc runtime, or nil when the host side does
// not run (not root, or --datapath none).
func newRuntime(cfg config.Config, log *slog.Logger) (*runc.Runtime, error) {
	if cfg.Datapath == "none" || os.Geteuid() != 0 {
		return nil, nil
	}
	id, err := loadAgentID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	rt, err := runc.New(runc.Config{Owner: id, StateDir: filepath.Join(cfg.DataDir, "runtime"), Logger: log.With("component", "runtime")})
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return rt, nil
}
