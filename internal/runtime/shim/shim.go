// Package shim is the supervisor of one container: `monostack shim --dir
// DIR`, started detached (its own session) by the runtime for each run of
// a container, outliving the daemon that started it.
//
// The shim
//
//   - makes itself the child subreaper, so that the container's init,
//     once `runc create` has made it and exited, is its child;
//   - runs `runc create` with the write end of a pipe as the container's
//     standard output and error (stdin is /dev/null), and tells the
//     runtime, on descriptor 3, the init's pid or why creation failed;
//     a container with a terminal (Config.Terminal) gets a pty instead,
//     whose master runc hands the shim, which serves it to attached
//     clients on DIR/attach.sock (terminal.go); one with an open stdin
//     (Config.Stdin) gets a pipe as stdin, served there the same way;
//   - copies the pipe (or the pty) into DIR/console.log, rotating it to console.log.1
//     when it reaches the container's MaxLogBytes (so the last MaxLogBytes
//     are always kept, and never more than twice that);
//   - forwards SIGTERM and SIGINT it receives to the init;
//   - when the init exits, reaps it, drains the pipe, notes whether the
//     OOM killer acted in the container's cgroup, writes DIR/exit.json
//     atomically, removes the stopped runc container and exits.
//
// Its own state is DIR/shim.pid (pid and start time, so that a recycled
// pid is never taken for it) and DIR/shim.json, the Config the runtime
// wrote. The runtime learns everything else from these files and from
// `runc state`, so a daemon that restarts re-attaches by reading them.
package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files in a container's directory.
const (
	ConfigFile  = "shim.json"
	PidFile     = "shim.pid"
	ExitFile    = "exit.json"
	ConsoleFile = "console.log"
	InitPidFile = "init.pid"
	RuncLogFile = "runc.log"
)

// Config is what the runtime tells a shim, in DIR/shim.json.
type Config struct {
	// Runc is the runc binary (absolute path).
	Runc string `json:"runc"`
	// Root is runc's --root.
	Root string `json:"root"`
	// ID is the runc container id.
	ID string `json:"id"`
	// Bundle is the OCI bundle directory.
	Bundle string `json:"bundle"`
	// MaxLogBytes: console.log is rotated when it reaches this size.
	MaxLogBytes int64 `json:"max_log_bytes"`
	// CgroupsPath is the container's cgroup (linux.cgroupsPath), read
	// for OOM kills when the init exits.
	CgroupsPath string `json:"cgroups_path,omitempty"`
	// Terminal: the init has a terminal, served on DIR/attach.sock (see
	// terminal.go).
	Terminal bool `json:"terminal,omitempty"`
	// Stdin (without Terminal): the init's stdin is a pipe the shim keeps
	// open, and DIR/attach.sock serves it and the init's output the same
	// way as a terminal.
	Stdin bool `json:"stdin,omitempty"`
}

// Exit is how a container's init ended, in DIR/exit.json.
type Exit struct {
	// ExitCode is the exit status, or 128+signal.
	ExitCode   int       `json:"exit_code"`
	OOMKilled  bool      `json:"oom_killed,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
	// Reason is set when the exit was not observed by the shim (it died,
	// or the host rebooted) and the runtime wrote this record.
	Reason string `json:"reason,omitempty"`
}

// Ready is the line a shim writes on descriptor 3 once `runc create` is
// done.
type Ready struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// ReadExit reads DIR/exit.json; os.ErrNotExist when the init has not
// exited (or exited unobserved).
func ReadExit(dir string) (Exit, error) {
	var e Exit
	b, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%s: %w", filepath.Join(dir, ExitFile), err)
	}
	return e, nil
}

// WriteExit records e in DIR/exit.json, atomically.
func WriteExit(dir string, e Exit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, ExitFile), b, 0o644)
}

// WriteFileAtomic writes data to name through a temporary file, synced
// and renamed over name, then syncs the directory: after a crash name is
// either the old or the new content, never a part.
func WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	return replaceFile(name, data, perm, true)
}

// ReplaceFile writes data to name through a temporary file renamed over
// it: readers see the old or the new content, never a part. Unlike
// WriteFileAtomic it does not sync, for files that a power loss makes
// meaningless anyway (a process's pid) or that are made again at need.
func ReplaceFile(name string, data []byte, perm os.FileMode) error {
	return replaceFile(name, data, perm, false)
}

func replaceFile(name string, data []byte, perm os.FileMode, sync bool) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if !sync {
		return nil
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Alive reports whether the shim of DIR runs, and its pid: the pid in
// DIR/shim.pid exists and started when the shim wrote it.
func Alive(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, PidFile))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, false
	}
	start, err := StartTime(pid)
	if err != nil || strconv.FormatUint(start, 10) != f[1] {
		return pid, false
	}
	return pid, !zombie(pid)
}

// StartTime is when process pid started, in clock ticks since boot
// (/proc/PID/stat field 22): with the pid, it names a process uniquely.
func StartTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func zombie(pid int) bool {
	f, err := statFields(pid)
	return err != nil || f[0] == "Z" || f[0] == "X"
}

// statFields are the fields of /proc/PID/stat after the command name:
// [0] is the state (field 3).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return nil, errors.New("malformed /proc stat")
	}
	return f, nil
}

func writePid(dir string) error {
	pid := os.Getpid()
	start, err := StartTime(pid)
	if err != nil {
		return err
	}
	return ReplaceFile(filepath.Join(dir, PidFile), fmt.Appendf(nil, "%d %d\n", pid, start), 0o644)
}
