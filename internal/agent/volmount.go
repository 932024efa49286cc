package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
)

// Volumes given to containers as filesystems (Zun's mounts, Fuxi's part):
// the volume's loop device is formatted ext4 on first use, mounted on the
// host under <data dir>/volmounts/<container>/<n>, and that directory is
// bind-mounted into the container at Create.

// VolumeMount is a volume given to a container as a filesystem.
type VolumeMount struct {
	// Block names the volume in the host's block store.
	Block       string `json:"block"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`
}

func (a *ComputeAgent) volmountDir(id string) string {
	return filepath.Join(filepath.Dir(a.driveDir), "volmounts", id)
}

// mountVolumes attaches, formats if blank, and mounts each volume on the
// host, and returns the bind mounts that give them to the container. It is
// idempotent: a volume mounted already is left as it is.
func (a *ComputeAgent) mountVolumes(ctx context.Context, id string, vms []VolumeMount) ([]runtime.Mount, error) {
	if a.blocks == nil {
		return nil, errors.New("this host has no block store")
	}
	var out []runtime.Mount
	for i, vm := range vms {
		dev, err := a.blocks.Attach(ctx, vm.Block, vm.ReadOnly)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", vm.Block, err)
		}
		dir := filepath.Join(a.volmountDir(id), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if !mounted(dir) {
			if err := ensureFilesystem(ctx, dev); err != nil {
				return nil, fmt.Errorf("volume %s: %w", vm.Block, err)
			}
			var flags uintptr
			if vm.ReadOnly {
				flags |= unix.MS_RDONLY
			}
			if err := unix.Mount(dev, dir, "ext4", flags|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
				return nil, fmt.Errorf("mounting volume %s: %w", vm.Block, err)
			}
		}
		out = append(out, runtime.Mount{Source: dir, Destination: vm.Destination, ReadOnly: vm.ReadOnly})
	}
	return out, nil
}

// ensureFilesystem formats a blank device ext4 (a volume is formatted on
// its first mount, as Fuxi does; one with a filesystem keeps its data).
func ensureFilesystem(ctx context.Context, dev string) error {
	out, err := exec.CommandContext(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", dev).Output()
	var ee *exec.ExitError
	switch {
	case err == nil && strings.TrimSpace(string(out)) != "":
		if t := strings.TrimSpace(string(out)); t != "ext4" {
			return fmt.Errorf("it holds a %s filesystem; only ext4 volumes can be mounted", t)
		}
		return nil
	case err == nil, errors.As(err, &ee) && ee.ExitCode() == 2: // blank
	default:
		return fmt.Errorf("blkid: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "volume", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	return nil
}

// unmountVolumes unmounts a container's volumes from the host (after the
// container is gone) and removes their directories.
func (a *ComputeAgent) unmountVolumes(id string) error {
	root := a.volmountDir(id)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if mounted(dir) {
			if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmounting %s: %w", dir, err)
			}
		}
	}
	return os.RemoveAll(root)
}

// UnmountAllVolumes unmounts every container volume under dataDir (purge).
func UnmountAllVolumes(dataDir string) error {
	root := filepath.Join(dataDir, "volmounts")
	var errs []error
	for _, m := range mountsUnder(root) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(root); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	for _, m := range mountsUnder(dir) {
		if m == dir {
			return true
		}
	}
	return false
}

func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := strings.ReplaceAll(fields[4], `\040`, " ")
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}
