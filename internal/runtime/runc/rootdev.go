package runc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
)

// A container's root device (Spec.RootDevice) is mounted at bundle/rootfs
// instead of an overlay. A device number is not a name that lasts: after a
// host restart, loop devices are attached again in whatever order, and
// /dev/loop3 may then hold another volume. So the record keeps what the
// device is (a loop device's backing file, RootBacking) and every mount
// checks it, taking the loop device of that backing file when the path
// came to name something else.

// rootFSType is the filesystem a root device holds.
const rootFSType = "ext4"

// blockDevice stats path, which must be a block device, and returns its
// device number and, for a loop device, its backing file ("" for other
// block devices, whose path is trusted).
func blockDevice(path string) (rdev uint64, backing string, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, "", fmt.Errorf("%w: root device %s: %v", runtime.ErrInvalid, path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, "", fmt.Errorf("%w: root device %s is not a block device", runtime.ErrInvalid, path)
	}
	backing, err = loopBacking(st.Rdev)
	return st.Rdev, backing, err
}

// loopBacking is the backing file of the loop device rdev; "" when rdev is
// not a loop device, or a loop device with nothing attached.
func loopBacking(rdev uint64) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/loop/backing_file", unix.Major(rdev), unix.Minor(rdev)))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	backing := strings.TrimSuffix(string(b), "\n")
	if strings.HasSuffix(backing, " (deleted)") {
		return "", fmt.Errorf("%w: the backing file of loop device %d:%d was deleted", runtime.ErrInvalid, unix.Major(rdev), unix.Minor(rdev))
	}
	return backing, nil
}

// findLoop returns the loop device whose backing file is backing, if one
// is attached.
func findLoop(backing string) (string, bool) {
	names, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil && strings.TrimSuffix(string(b), "\n") == backing {
			return "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(n))), true
		}
	}
	return "", false
}

// rootDevice returns the device to mount as rec's root: its RootDevice
// when that still is the recorded device, else a loop device of the
// recorded backing file, which then becomes the record's RootDevice.
func (r *Runtime) rootDevice(rec *record) (string, error) {
	path := rec.Spec.RootDevice
	_, backing, err := blockDevice(path)
	if err == nil && backing == rec.RootBacking {
		return path, nil
	}
	if rec.RootBacking == "" {
		if err == nil {
			err = fmt.Errorf("%w: root device %s is now a loop device of %s", runtime.ErrInvalid, path, backing)
		}
		return "", err
	}
	dev, ok := findLoop(rec.RootBacking)
	if !ok {
		return "", fmt.Errorf("%w: the root device of %s (a loop device of %s) is not attached", runtime.ErrInvalid, rec.Spec.ID, rec.RootBacking)
	}
	r.log.Info("root device moved", "container", rec.Spec.ID, "from", path, "to", dev, "backing", rec.RootBacking)
	rec.Spec.RootDevice = dev
	if err := r.writeRecord(rec); err != nil {
		return "", err
	}
	return dev, nil
}

// mountRootDevice mounts rec's root device on target (ext4, nodev;
// read-only when the device is), unless something is mounted there
// already. A device mounted anywhere else is ErrInUse: two mounts would
// share one filesystem between containers.
func (r *Runtime) mountRootDevice(rec *record, target string) error {
	if isMountPoint(target) {
		return nil
	}
	dev, err := r.rootDevice(rec)
	if err != nil {
		return err
	}
	rdev, _, err := blockDevice(dev)
	if err != nil {
		return err
	}
	if at, err := mountsOf(rdev); err != nil {
		return err
	} else if len(at) > 0 {
		return fmt.Errorf("%w: root device %s is mounted at %s", runtime.ErrInUse, dev, strings.Join(at, ", "))
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NODEV)
	if readOnlyDevice(dev) {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, target, rootFSType, flags, ""); err != nil {
		return fmt.Errorf("%w: mount root device %s (%s) on %s: %v", runtime.ErrInvalid, dev, rootFSType, target, err)
	}
	return nil
}

// readOnlyDevice reports whether the block device at path is read-only.
func readOnlyDevice(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	ro, err := unix.IoctlGetInt(fd, unix.BLKROGET)
	return err == nil && ro != 0
}

// mountsOf lists where the block device rdev is mounted in this mount
// namespace.
func mountsOf(rdev uint64) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && fields[2] == want {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, sc.Err()
}
