package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// Recover repairs the runtime's containers after a restart or a reboot
// and reports them with the orphans it found:
//
//   - temporary directories of interrupted unpacks, creates and deletes
//     are removed, and interrupted Deletes are finished;
//   - a container whose shim is gone while runc still has its process is
//     killed and recorded as stopped (exit 137): nothing could log its
//     output or record its exit any more;
//   - a container whose shim and process died unobserved is recorded as
//     stopped with exit -1, and its stale runc container removed;
//   - a stopped container gets back its root filesystem mount and its
//     network namespace (a reboot takes them), so that the datapath can
//     plug its ports before it starts again; a running container whose
//     namespace lost its name gets it back.
func (r *Runtime) Recover(ctx context.Context) (runtime.Recovered, error) {
	var errs []error
	errs = append(errs, r.cleanTemp(r.imagesDir()), r.cleanTemp(r.containersDir()))
	ids, err := r.containerIDs()
	if err != nil {
		return runtime.Recovered{}, err
	}
	for _, id := range ids {
		if err := r.repair(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", id, err))
		}
	}
	orphans, err := r.orphans(ctx)
	errs = append(errs, err)
	list, err := r.List(ctx)
	errs = append(errs, err)
	return runtime.Recovered{Containers: list, Orphans: orphans}, errors.Join(errs...)
}

// cleanTemp removes the dot-directories of interrupted work in dir.
func (r *Runtime) cleanTemp(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".tmp-") || strings.HasPrefix(n, ".new-") || strings.HasPrefix(n, ".trash-") {
			errs = append(errs, removeTree(filepath.Join(dir, n)))
		}
	}
	return errors.Join(errs...)
}

func (r *Runtime) repair(ctx context.Context, id string) error {
	defer r.lock(id)()
	dir := r.containerDir(id)
	if fileExists(filepath.Join(dir, deletingFile)) {
		return r.remove(ctx, id)
	}
	rec, err := r.readRecord(id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	alive := shimAlive(dir)
	hasExit := fileExists(filepath.Join(dir, shim.ExitFile))
	rs, ok, err := r.runcState(ctx, id)
	if err != nil {
		return err
	}
	if ok && !alive {
		now := time.Now().UTC()
		switch {
		case hasExit:
		case rs.Status == "stopped":
			if err := shim.WriteExit(dir, shim.Exit{ExitCode: -1, FinishedAt: now, Reason: "exited while its shim was gone"}); err != nil {
				return err
			}
		default:
			r.log.Warn("container without its shim: killing it", "container", id, "status", rs.Status)
			if rs.Status == "paused" {
				r.runcCmd(ctx, "resume", id)
			}
			if _, err := r.runcCmd(ctx, "delete", "--force", id); err != nil && r.runcExists(id) {
				return err
			}
			if err := shim.WriteExit(dir, shim.Exit{ExitCode: 137, FinishedAt: now, Reason: "killed: its shim was gone"}); err != nil {
				return err
			}
		}
		if r.runcExists(id) {
			if _, err := r.runcCmd(ctx, "delete", "--force", id); err != nil && r.runcExists(id) {
				return err
			}
		}
	}
	if !ok && !alive && !hasExit && fileExists(filepath.Join(dir, startedFile)) {
		// It ran, and neither runc nor its shim remain, nor a word of how
		// it ended: the host restarted under it.
		if err := shim.WriteExit(dir, shim.Exit{ExitCode: -1, FinishedAt: time.Now().UTC(), Reason: "ended unobserved (the host restarted)"}); err != nil {
			return err
		}
	}
	st, err := r.state(ctx, rec, nil)
	if err != nil {
		return err
	}
	if st.Status != runtime.Stopped {
		return r.keepNetns(rec.Spec, st.Pid)
	}
	return r.prepare(ctx, rec)
}

// orphans finds what carries this runtime's names but belongs to no
// container: namespaces, runc containers, mounts and directories.
func (r *Runtime) orphans(ctx context.Context) ([]runtime.Orphan, error) {
	ids, err := r.containerIDs()
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	var out []runtime.Orphan
	var errs []error
	prefix := netnsPrefix(r.owner)
	names, err := listNetns(prefix)
	errs = append(errs, err)
	for _, n := range names {
		if id := strings.TrimPrefix(n, prefix); !known[id] {
			out = append(out, runtime.Orphan{Kind: runtime.OrphanNetns, ID: id, Path: filepath.Join(NetnsDir, n)})
		}
	}
	listed, err := r.runcList(ctx)
	errs = append(errs, err)
	for id := range listed {
		if !known[id] {
			out = append(out, runtime.Orphan{Kind: runtime.OrphanProcess, ID: id})
		}
	}
	mounts, err := mountsUnder(r.containersDir())
	errs = append(errs, err)
	for _, m := range mounts {
		rel := strings.TrimPrefix(m, r.containersDir()+"/")
		id, _, _ := strings.Cut(rel, "/")
		if rel != m && !known[id] {
			out = append(out, runtime.Orphan{Kind: runtime.OrphanMount, ID: id, Path: m})
		}
	}
	entries, err := os.ReadDir(r.containersDir())
	errs = append(errs, err)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && !known[e.Name()] {
			out = append(out, runtime.Orphan{Kind: runtime.OrphanDir, ID: e.Name(), Path: filepath.Join(r.containersDir(), e.Name())})
		}
	}
	return out, errors.Join(errs...)
}

// RemoveOrphans removes the given orphans that still belong to no
// container.
func (r *Runtime) RemoveOrphans(ctx context.Context, orphans []runtime.Orphan) error {
	var errs []error
	for _, o := range orphans {
		errs = append(errs, r.removeOrphan(ctx, o))
	}
	return errors.Join(errs...)
}

func (r *Runtime) removeOrphan(ctx context.Context, o runtime.Orphan) error {
	if o.ID == "" || strings.ContainsAny(o.ID, "/\x00") || o.ID == "." || o.ID == ".." {
		return fmt.Errorf("%w: orphan %+v", runtime.ErrInvalid, o)
	}
	defer r.lock(o.ID)()
	if fileExists(filepath.Join(r.containerDir(o.ID), recordFile)) {
		return nil // a container's now
	}
	switch o.Kind {
	case runtime.OrphanNetns:
		return deleteNetns(r.NetnsName(o.ID))
	case runtime.OrphanProcess:
		if r.runcExists(o.ID) {
			if _, err := r.runcCmd(ctx, "delete", "--force", o.ID); err != nil && r.runcExists(o.ID) {
				return err
			}
		}
		if dir := r.containerDir(o.ID); fileExists(dir) {
			if err := r.waitShim(ctx, dir); err != nil {
				return err
			}
		}
		return removeCgroups(r.CgroupsPath(o.ID))
	case runtime.OrphanMount:
		p := filepath.Clean(o.Path)
		if !strings.HasPrefix(p, r.containersDir()+"/") {
			return fmt.Errorf("%w: mount %s is not this runtime's", runtime.ErrInvalid, o.Path)
		}
		return unmountAll(p)
	case runtime.OrphanDir:
		return removeTree(r.containerDir(o.ID))
	}
	return fmt.Errorf("%w: orphan kind %q", runtime.ErrInvalid, o.Kind)
}
