package runc

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
)

// ociVersion is the runtime-spec version the bundles claim: the one runc
// 1.1 implements.
const ociVersion = "1.0.2"

// DefaultCapabilities are the capabilities of a container's processes:
// Docker's default set, which leaves out CAP_SYS_ADMIN, CAP_NET_ADMIN,
// CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_DAC_READ_SEARCH and the rest. A
// process that does not run as uid 0 has them in its bounding set only.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// MaskedPaths are hidden from containers (as Docker does): an empty
// read-only tmpfs over a directory, /dev/null over a file.
var MaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// ReadonlyPaths are read-only in containers (as Docker does).
var ReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// cfsPeriod is the CFS period of the CPU limit, in microseconds.
const cfsPeriod = 100000

func ptr[T any](v T) *T { return &v }

// defaultDeviceRules deny every device but the ones of a basic /dev:
// null, zero, full, random, urandom, tty, console, ptmx and the ptys.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, d := range []struct {
		major, minor int64
	}{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}} {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(d.major), Minor: ptr(d.minor), Access: "rwm"})
	}
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rwm"}) // /dev/pts/*
	return rules
}

// hostDevice is a device of the spec, looked up on the host.
type hostDevice struct {
	runtime.Device
	typ          string // "b" or "c"
	major, minor int64
	mode         os.FileMode
	uid, gid     uint32
}

// lookupDevices stats the spec's devices on the host.
func lookupDevices(devs []runtime.Device) ([]hostDevice, error) {
	var out []hostDevice
	for _, d := range devs {
		var st unix.Stat_t
		if err := unix.Stat(d.HostPath, &st); err != nil {
			return nil, fmt.Errorf("%w: device %s: %v", runtime.ErrInvalid, d.HostPath, err)
		}
		h := hostDevice{Device: d, major: int64(unix.Major(st.Rdev)), minor: int64(unix.Minor(st.Rdev)),
			mode: os.FileMode(st.Mode & 0o777), uid: st.Uid, gid: st.Gid}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFBLK:
			h.typ = "b"
		case unix.S_IFCHR:
			h.typ = "c"
		default:
			return nil, fmt.Errorf("%w: %s is not a device node", runtime.ErrInvalid, d.HostPath)
		}
		out = append(out, h)
	}
	return out, nil
}

// deviceConfig is the device part of a container's OCI config: the nodes
// of devs, and the device-cgroup rules (the default ones, then one
// allowing each of devs).
func deviceConfig(devs []hostDevice) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup) {
	var nodes []specs.LinuxDevice
	rules := defaultDeviceRules()
	for _, d := range devs {
		access := "rw"
		if d.ReadOnly {
			access = "r"
		}
		nodes = append(nodes, specs.LinuxDevice{
			Path: d.Path, Type: d.typ, Major: d.major, Minor: d.minor,
			FileMode: ptr(d.mode), UID: ptr(d.uid), GID: ptr(d.gid),
		})
		rules = append(rules, specs.LinuxDeviceCgroup{
			Allow: true, Type: d.typ, Major: ptr(d.major), Minor: ptr(d.minor), Access: access,
		})
	}
	return nodes, rules
}

// ociSpec is the OCI runtime config of a container.
func (r *Runtime) ociSpec(rec *record, proc runtime.Resolved, devs []hostDevice) *specs.Spec {
	s := rec.Spec
	caps := &specs.LinuxCapabilities{Bounding: DefaultCapabilities}
	if proc.UID == 0 {
		caps.Effective, caps.Permitted = DefaultCapabilities, DefaultCapabilities
	}
	spec := &specs.Spec{
		Version:  ociVersion,
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: runtime.HostnameOf(s),
		Process: &specs.Process{
			Terminal:        s.Process.Terminal,
			User:            specs.User{UID: proc.UID, GID: proc.GID, AdditionalGids: proc.Groups},
			Args:            proc.Args,
			Env:             terminalEnv(proc.Env, s.Process.Terminal),
			Cwd:             proc.Cwd,
			Capabilities:    caps,
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: r.nofile, Soft: r.nofile}},
			NoNewPrivileges: true,
			OOMScoreAdj:     ptr(0),
		},
		Mounts: defaultMounts(),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
				{Type: specs.NetworkNamespace, Path: filepath.Join(NetnsDir, r.netnsFor(s))},
			},
			CgroupsPath:       r.CgroupsPath(s.ID),
			Resources:         r.resources(s.Resources),
			MaskedPaths:       MaskedPaths,
			ReadonlyPaths:     ReadonlyPaths,
			RootfsPropagation: "rprivate",
		},
	}
	if s.Process.Terminal {
		// Until an attached client sizes it.
		spec.Process.ConsoleSize = &specs.Box{Height: uint(defaultWindow.Rows), Width: uint(defaultWindow.Cols)}
	}
	for _, m := range s.Mounts {
		opts := []string{"rbind", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}
	spec.Linux.Devices, spec.Linux.Resources.Devices = deviceConfig(devs)
	if !r.noSeccomp {
		spec.Linux.Seccomp = seccompProfile()
	}
	return spec
}

// terminalEnv is env with TERM=xterm added for a process on a terminal
// that has no TERM, as Docker gives one.
func terminalEnv(env []string, terminal bool) []string {
	if !terminal {
		return env
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "TERM=") {
			return env
		}
	}
	return append(slices.Clone(env), "TERM=xterm")
}

func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// resources are the cgroup limits of res; the device rules are
// deviceConfig's.
func (r *Runtime) resources(res runtime.Resources) *specs.LinuxResources {
	pids := res.Pids
	if pids == 0 {
		pids = runtime.DefaultPidsLimit
	}
	out := &specs.LinuxResources{
		Pids: &specs.LinuxPids{Limit: ptr(pids)},
	}
	if res.MemoryBytes > 0 {
		out.Memory = &specs.LinuxMemory{Limit: ptr(res.MemoryBytes)}
		if r.swap {
			out.Memory.Swap = ptr(res.MemoryBytes) // memory+swap = memory: no swap
		}
	}
	if res.VCPUs > 0 {
		shares := uint64(res.VCPUs * 1024)
		if shares < 2 {
			shares = 2
		}
		quota := int64(res.VCPUs * cfsPeriod)
		if quota < 1000 {
			quota = 1000
		}
		out.CPU = &specs.LinuxCPU{Shares: ptr(shares), Quota: ptr(quota), Period: ptr(uint64(cfsPeriod))}
	}
	return out
}

// blockedSyscalls fail with EPERM in containers. The profile is a deny
// list in the spirit of Docker's default profile (which is an allow list):
// what Docker refuses without CAP_SYS_ADMIN and the capabilities we do not
// give, plus io_uring, userfaultfd, bpf and perf_event_open.
var blockedSyscalls = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "get_mempolicy", "init_module", "io_uring_enter",
	"io_uring_register", "io_uring_setup", "ioperm", "iopl", "kcmp",
	"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind",
	"migrate_pages", "mount", "mount_setattr", "move_mount", "move_pages",
	"name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
	"perf_event_open", "pivot_root", "query_module", "quotactl", "quotactl_fd",
	"reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime",
	"swapoff", "swapon", "syslog", "_sysctl", "sysfs", "umount", "umount2",
	"unshare", "uselib", "userfaultfd", "ustat", "vhangup", "vm86", "vm86old",
}

// newNamespaceFlags are the clone flags that make namespaces.
var newNamespaceFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP,
}

func seccompProfile() *specs.LinuxSeccomp {
	eperm := ptr(uint(unix.EPERM))
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: seccompArchs(),
		Syscalls: []specs.LinuxSyscall{
			{Names: blockedSyscalls, Action: specs.ActErrno, ErrnoRet: eperm},
			// clone3 passes its flags in memory, out of seccomp's reach:
			// ENOSYS makes libc fall back to clone, which is filtered.
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.ENOSYS))},
		},
	}
	for _, f := range newNamespaceFlags {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}},
		})
	}
	return p
}

func seccompArchs() []specs.Arch {
	switch goruntime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	return nil
}
