package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/imagefs"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// Exec runs a process in a running container with `runc exec`: the
// container's init process config (capabilities, no_new_privs, rlimits,
// seccomp) with the exec's command, environment, directory and user.
func (r *Runtime) Exec(ctx context.Context, id string, spec runtime.ExecSpec) (runtime.ExecResult, error) {
	var res runtime.ExecResult
	execDir, err := r.prepareExec(ctx, id, spec, nil)
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(execDir)
	procPath := filepath.Join(execDir, "process.json")
	logPath := filepath.Join(execDir, "runc.log")
	pidPath := filepath.Join(execDir, "pid")
	cmd := exec.Command(r.runc, "--root", r.runcRoot, "--log", logPath, "--log-format", "json",
		"exec", "--process", procPath, "--pid-file", pidPath, id)
	stdout := &capped{max: runtime.MaxExecOutput}
	stderr := &capped{max: runtime.MaxExecOutput}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.Stdin, stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return res, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// runc forwards signals, but not SIGKILL: kill the process itself.
		if b, rerr := os.ReadFile(pidPath); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		cmd.Process.Kill()
		<-done
		return res, ctx.Err()
	}
	res.Stdout, res.Stderr = stdout.buf.Bytes(), stderr.buf.Bytes()
	res.Truncated = stdout.truncated || stderr.truncated
	var ee *exec.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if msg := shim.LastRuncError(logPath); msg != "" {
			return res, fmt.Errorf("%w: %s", runtime.ErrExec, msg)
		}
		if res.ExitCode < 0 {
			return res, fmt.Errorf("runc exec: %w", err)
		}
		return res, nil
	}
	return res, err
}

// prepareExec checks that container id runs and writes the process
// config of spec (the init's, with the exec's command, environment,
// directory and user; on a terminal of that size when terminal is not
// nil) to process.json in a new directory of the container's, which it
// returns: the caller removes it.
func (r *Runtime) prepareExec(ctx context.Context, id string, spec runtime.ExecSpec, terminal *runtime.WindowSize) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	rec, err := r.readRecord(id)
	if err != nil {
		return "", err
	}
	st, err := r.state(ctx, rec, nil)
	if err != nil {
		return "", err
	}
	if st.Status != runtime.Running {
		return "", stateErr(id, st.Status, "exec in")
	}
	dir := r.containerDir(id)
	b, err := os.ReadFile(filepath.Join(dir, bundleDir, "config.json"))
	if err != nil {
		return "", err
	}
	var base specs.Spec
	if err := json.Unmarshal(b, &base); err != nil || base.Process == nil {
		return "", fmt.Errorf("container %s: bad config.json: %v", id, err)
	}
	p := *base.Process
	p.Terminal, p.ConsoleSize = false, nil
	if terminal != nil {
		// runc sizes the terminal it makes before the process starts.
		p.Terminal = true
		p.ConsoleSize = &specs.Box{Height: uint(terminal.Rows), Width: uint(terminal.Cols)}
	}
	p.Args = spec.Args
	p.Env = terminalEnv(runtime.MergeEnv(p.Env, spec.Env), p.Terminal)
	if spec.Cwd != "" {
		p.Cwd = spec.Cwd
	}
	if spec.User != "" {
		uid, gid, groups, err := runtime.LookupUser(spec.User, imagefs.Users(filepath.Join(dir, bundleDir, "rootfs")))
		if err != nil {
			return "", err
		}
		p.User = specs.User{UID: uid, GID: gid, AdditionalGids: groups}
		caps := &specs.LinuxCapabilities{Bounding: DefaultCapabilities}
		if uid == 0 {
			caps.Effective, caps.Permitted = DefaultCapabilities, DefaultCapabilities
		}
		p.Capabilities = caps
	}
	execDir, err := os.MkdirTemp(dir, ".exec-")
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(p)
	if err == nil {
		err = os.WriteFile(filepath.Join(execDir, "process.json"), pb, 0o600)
	}
	if err != nil {
		os.RemoveAll(execDir)
		return "", err
	}
	return execDir, nil
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.truncated = true
		return len(p), nil
	}
	return c.buf.Write(p)
}

// Snapshot writes the container's merged root filesystem (the image under
// the container's changes, as the host sees the overlay: without /proc,
// /sys, /dev or bind mounts) to w. A running container is paused while it
// is read, so the tarball is consistent.
func (r *Runtime) Snapshot(ctx context.Context, id string, w io.Writer) error {
	defer r.lock(id)()
	rec, err := r.readRecord(id)
	if err != nil {
		return err
	}
	st, err := r.state(ctx, rec, nil)
	if err != nil {
		return err
	}
	dir := r.containerDir(id)
	rootfs := filepath.Join(dir, bundleDir, "rootfs")
	switch st.Status {
	case runtime.Running:
		if _, err := r.runcCmd(ctx, "pause", id); err != nil {
			return err
		}
		defer func() {
			if _, err := r.runcCmd(context.WithoutCancel(ctx), "resume", id); err != nil {
				r.log.Error("resuming after a snapshot", "container", id, "err", err)
			}
		}()
	case runtime.Stopped:
		if err := r.mountRoot(rec); err != nil {
			return err
		}
	}
	return imagefs.WriteTar(ctx, rootfs, w)
}
