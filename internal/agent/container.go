package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/runtime"
)

// The commands the containers API (Zun) needs besides the servers' ones:
// exec, stats and top. Stats and top read the container's cgroups (v1)
// and /proc on the host, so they work whatever the image holds (no ps
// needed inside).

// ExecRequest runs a command in a running container.
type ExecRequest struct {
	ID   string   `json:"id"`
	Args []string `json:"args"`
	Env  []string `json:"env,omitempty"`
	Cwd  string   `json:"cwd,omitempty"`
	User string   `json:"user,omitempty"`
	// Stdin is the process's standard input (small: a tarball to unpack).
	Stdin []byte `json:"stdin,omitempty"`
}

// ExecReply is how an exec ended. Err is set (and wraps runtime.ErrExec on
// the caller's side) when the process could not be started at all.
type ExecReply struct {
	ExitCode  int    `json:"exit_code"`
	Stdout    []byte `json:"stdout"`
	Stderr    []byte `json:"stderr"`
	Truncated bool   `json:"truncated,omitempty"`
	NotRun    string `json:"not_run,omitempty"`
}

// StatsReply is a container's resource usage.
type StatsReply struct {
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryUsage int64   `json:"memory_usage"`
	MemoryLimit int64   `json:"memory_limit"`
	BlockRead   int64   `json:"block_read"`
	BlockWrite  int64   `json:"block_write"`
	NetRx       int64   `json:"net_rx"`
	NetTx       int64   `json:"net_tx"`
	Pids        int64   `json:"pids"`
}

// ProcessInfo is one process of a container.
type ProcessInfo struct {
	UID     string `json:"uid"`
	PID     string `json:"pid"`
	PPID    string `json:"ppid"`
	Command string `json:"command"`
}

// IDRequest names a container.
type IDRequest struct {
	ID string `json:"id"`
}

func (a *ComputeAgent) containerSubs() []func() (func(), error) {
	return append([]func() (func(), error){
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "exec"), unkeyed[ExecRequest], a.exec)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "stats"), unkeyed[IDRequest], a.stats)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "top"), unkeyed[IDRequest], a.top)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "state"), unkeyed[IDRequest], a.state)
		},
		func() (func(), error) {
			return bus.ServeBy(a.b, computeSubject(a.host, "resize"), func(r ResizeRequest) string { return r.ID }, a.resize)
		},
	}, a.terminalSubs()...) // interactive.go
}

// ResizeRequest sets a container's limits.
type ResizeRequest struct {
	ID        string            `json:"id"`
	Resources runtime.Resources `json:"resources"`
}

func (a *ComputeAgent) resize(ctx context.Context, req ResizeRequest) (struct{}, error) {
	return struct{}{}, a.rt.SetResources(ctx, req.ID, req.Resources)
}

// Resize sets a container's limits, at once if it runs.
func (c *ComputeClient) Resize(ctx context.Context, host, id string, res runtime.Resources) error {
	_, err := bus.Call[ResizeRequest, struct{}](ctx, c.Bus, computeSubject(host, "resize"), ResizeRequest{ID: id, Resources: res})
	return err
}

func (a *ComputeAgent) exec(ctx context.Context, req ExecRequest) (ExecReply, error) {
	spec := runtime.ExecSpec{Args: req.Args, Env: req.Env, Cwd: req.Cwd, User: req.User}
	if req.Stdin != nil {
		spec.Stdin = bytes.NewReader(req.Stdin)
	}
	res, err := a.rt.Exec(ctx, req.ID, spec)
	if errors.Is(err, runtime.ErrExec) {
		return ExecReply{ExitCode: 126, NotRun: err.Error()}, nil
	}
	if err != nil {
		return ExecReply{}, err
	}
	return ExecReply{ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr, Truncated: res.Truncated}, nil
}

// cgroupPath is where the runtime puts a container's cgroups (under each
// v1 controller's mount).
func (a *ComputeAgent) cgroupPath(id string) (string, error) {
	cg, ok := a.rt.(interface{ CgroupsPath(id string) string })
	if !ok {
		return "", errors.New("this host's runtime does not say where its cgroups are")
	}
	return cg.CgroupsPath(id), nil
}

func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func (a *ComputeAgent) stats(ctx context.Context, req IDRequest) (StatsReply, error) {
	st, err := a.rt.State(ctx, req.ID)
	if err != nil {
		return StatsReply{}, err
	}
	if st.Status != runtime.Running {
		return StatsReply{}, fmt.Errorf("%w: container %s is %s", runtime.ErrState, req.ID, st.Status)
	}
	cg, err := a.cgroupPath(req.ID)
	if err != nil {
		return StatsReply{}, err
	}
	const root = "/sys/fs/cgroup"
	var out StatsReply
	// CPU: usage over a short interval, in percent of one CPU, as docker
	// stats shows it.
	cpu := filepath.Join(root, "cpuacct", cg, "cpuacct.usage")
	u0, t0 := readInt(cpu), time.Now()
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return out, ctx.Err()
	}
	u1, t1 := readInt(cpu), time.Now()
	out.CPUPercent = float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds()) * 100
	out.MemoryUsage = readInt(filepath.Join(root, "memory", cg, "memory.usage_in_bytes"))
	out.MemoryLimit = readInt(filepath.Join(root, "memory", cg, "memory.limit_in_bytes"))
	if total := hostMemory(); out.MemoryLimit <= 0 || (total > 0 && out.MemoryLimit > total) {
		out.MemoryLimit = total
	}
	out.Pids = readInt(filepath.Join(root, "pids", cg, "pids.current"))
	if b, err := os.ReadFile(filepath.Join(root, "blkio", cg, "blkio.throttle.io_service_bytes")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 {
				n, _ := strconv.ParseInt(f[2], 10, 64)
				switch f[1] {
				case "Read":
					out.BlockRead += n
				case "Write":
					out.BlockWrite += n
				}
			}
		}
	}
	if st.Pid > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", st.Pid)); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				name, rest, ok := strings.Cut(sc.Text(), ":")
				if !ok || strings.TrimSpace(name) == "lo" {
					continue
				}
				f := strings.Fields(rest)
				if len(f) >= 9 {
					rx, _ := strconv.ParseInt(f[0], 10, 64)
					tx, _ := strconv.ParseInt(f[8], 10, 64)
					out.NetRx, out.NetTx = out.NetRx+rx, out.NetTx+tx
				}
			}
		}
	}
	return out, nil
}

func hostMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if n, _ := fmt.Sscanf(line, "MemTotal: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}

// top lists the processes in the container's cgroup, read from /proc.
func (a *ComputeAgent) top(ctx context.Context, req IDRequest) ([]ProcessInfo, error) {
	st, err := a.rt.State(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	if st.Status != runtime.Running && st.Status != runtime.Paused {
		return nil, fmt.Errorf("%w: container %s is %s", runtime.ErrState, req.ID, st.Status)
	}
	cg, err := a.cgroupPath(req.ID)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", cg, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []ProcessInfo
	for _, pid := range strings.Fields(string(b)) {
		p := ProcessInfo{PID: pid}
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue // gone meanwhile
		}
		for _, line := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(line, ":")
			f := strings.Fields(v)
			switch {
			case k == "Uid" && len(f) > 0:
				p.UID = f[0]
			case k == "PPid" && len(f) > 0:
				p.PPID = f[0]
			}
		}
		cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		p.Command = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		out = append(out, p)
	}
	return out, nil
}

// Exec runs a command in a container of host.
func (c *ComputeClient) Exec(ctx context.Context, host string, req ExecRequest) (ExecReply, error) {
	return bus.Call[ExecRequest, ExecReply](ctx, c.Bus, computeSubject(host, "exec"), req)
}

// Stats returns a running container's resource usage.
func (c *ComputeClient) Stats(ctx context.Context, host, id string) (StatsReply, error) {
	return bus.Call[IDRequest, StatsReply](ctx, c.Bus, computeSubject(host, "stats"), IDRequest{ID: id})
}

// Top lists a container's processes.
func (c *ComputeClient) Top(ctx context.Context, host, id string) ([]ProcessInfo, error) {
	return bus.Call[IDRequest, []ProcessInfo](ctx, c.Bus, computeSubject(host, "top"), IDRequest{ID: id})
}

func (a *ComputeAgent) state(ctx context.Context, req IDRequest) (runtime.State, error) {
	return a.rt.State(ctx, req.ID)
}

// State returns one container's state on host.
func (c *ComputeClient) State(ctx context.Context, host, id string) (runtime.State, error) {
	return bus.Call[IDRequest, runtime.State](ctx, c.Bus, computeSubject(host, "state"), IDRequest{ID: id})
}
