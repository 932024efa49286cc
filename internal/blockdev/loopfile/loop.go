package loopfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The host's loop devices, as the kernel shows them. Everything here talks
// to the kernel through ioctls and sysfs (no losetup): the answers are
// structured, and binding a device is one atomic LOOP_CONFIGURE whose
// EBUSY tells us, without a lock shared with other processes, that someone
// else took the device first.

const (
	sysBlock    = "/sys/block"
	loopControl = "/dev/loop-control"
	// deletedSuffix is what the kernel appends to a backing file's path
	// once the file is unlinked.
	deletedSuffix = " (deleted)"
	// attachTries bounds the GET_FREE/CONFIGURE races an Attach retries
	// before it gives up; each lost race means another attach succeeded,
	// so reaching it means a very busy host, not a livelock.
	attachTries = 1000
)

// loopDev is one bound loop device.
type loopDev struct {
	n    int
	path string // /dev/loopN
	// raw is backing_file exactly as sysfs showed it (with the deleted
	// suffix, if any): Detach compares it again after it has opened the
	// device so that it never clears a device bound to something else
	// in the meantime.
	raw string
	// backing is the backing file's path, deleted is whether it was
	// unlinked.
	backing  string
	deleted  bool
	readOnly bool
	// detaching: LOOP_CLR_FD was called while others held the device
	// open, and the kernel clears it when the last of them closes it.
	// (We never bind with autoclear, so autoclear means that.)
	detaching bool
}

// boundLoops lists the bound loop devices whose backing file's directory
// is dir (the ownership rule). A device that goes away while it is read is
// left out.
func boundLoops(dir string) ([]loopDev, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("loopfile: list loop devices: %w", err)
	}
	var out []loopDev
	for _, e := range ents {
		n, ok := loopNumber(e.Name())
		if !ok {
			continue
		}
		raw, ok := backingFile(n)
		if !ok {
			continue
		}
		d := loopDev{n: n, path: devPath(n), raw: raw, backing: raw}
		if b, found := strings.CutSuffix(raw, deletedSuffix); found {
			d.backing, d.deleted = b, true
		}
		if filepath.Dir(d.backing) != dir {
			continue
		}
		d.readOnly = readSys(n, "ro") == "1"
		d.detaching = readSys(n, "loop/autoclear") == "1"
		out = append(out, d)
	}
	return out, nil
}

// loopNumber parses "loopN".
func loopNumber(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "loop")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

func devPath(n int) string { return "/dev/loop" + strconv.Itoa(n) }

// backingFile reads loopN's backing file; false when the device is not
// bound (the loop directory exists only while it is).
func backingFile(n int) (string, bool) {
	b, err := os.ReadFile(filepath.Join(sysBlock, "loop"+strconv.Itoa(n), "loop", "backing_file"))
	if err != nil {
		return "", false
	}
	s := strings.TrimSuffix(string(b), "\n")
	return s, s != ""
}

func readSys(n int, name string) string {
	b, err := os.ReadFile(filepath.Join(sysBlock, "loop"+strconv.Itoa(n), name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// openDev opens /dev/loopN, with flags O_RDWR to bind it (LOOP_CONFIGURE
// makes the device read-only when the fd it comes through is) and
// O_RDONLY for the rest: LOOP_CLR_FD and LOOP_SET_CAPACITY need only
// CAP_SYS_ADMIN, a device someone mounted may refuse to be opened for
// writing, and closing a device opened for writing makes udev probe it
// again. When the node is missing (a /dev that is not devtmpfs, as in a
// container, gets no nodes for devices added after it was populated)
// openDev makes it from sysfs's major:minor.
func openDev(n int, flags int) (int, error) {
	p := devPath(n)
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		if mkErr := mknodLoop(n); mkErr != nil {
			return -1, fmt.Errorf("open %s: %w (and making the node: %v)", p, err, mkErr)
		}
		fd, err = unix.Open(p, flags|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}

func mknodLoop(n int) error {
	mm := strings.Split(readSys(n, "dev"), ":")
	if len(mm) != 2 {
		return fmt.Errorf("no %s/loop%d/dev", sysBlock, n)
	}
	major, err1 := strconv.ParseUint(mm[0], 10, 32)
	minor, err2 := strconv.ParseUint(mm[1], 10, 32)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad %s/loop%d/dev %q", sysBlock, n, mm)
	}
	err := unix.Mknod(devPath(n), unix.S_IFBLK|0o600, int(unix.Mkdev(uint32(major), uint32(minor))))
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// bindLoop binds a free loop device to the file at path and returns the
// device's number. A device is free until LOOP_CONFIGURE binds it, and
// another process (or goroutine) may bind the one LOOP_CTL_GET_FREE gave
// us first: that is EBUSY, and we ask for another. Nothing is bound unless
// bindLoop returns nil, and what it binds is returned, so a device is
// never shared and never lost.
//
// No autoclear (the device must outlive the process that attached it: the
// container keeps it) and no partition scan (a volume's partition table is
// the guest's business, not the host's). No direct IO either: the loop
// driver silently drops it when the file's filesystem or alignment does
// not allow it, and buffered IO keeps the device and Open's reads and
// writes of the file coherent through one page cache.
func bindLoop(ctx context.Context, path string, readOnly bool) (int, error) {
	flags := unix.O_RDWR
	if readOnly {
		flags = unix.O_RDONLY
	}
	file, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(file)
	ctl, err := unix.Open(loopControl, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: loopControl, Err: err}
	}
	defer unix.Close(ctl)

	cfg := unix.LoopConfig{Fd: uint32(file)}
	if readOnly {
		cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY
	}
	// File_name is informational (the kernel keeps 64 bytes); sysfs's
	// backing_file is what we read back.
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], path)

	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return -1, fmt.Errorf("%s: LOOP_CTL_GET_FREE: %w", loopControl, err)
		}
		dev, err := openDev(n, unix.O_RDWR)
		if err != nil {
			// Removed (LOOP_CTL_REMOVE) between GET_FREE and open.
			if (errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT)) && try < attachTries {
				continue
			}
			return -1, err
		}
		err = unix.IoctlLoopConfigure(dev, &cfg)
		unix.Close(dev)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, unix.EBUSY) || try >= attachTries {
			return -1, fmt.Errorf("%s: LOOP_CONFIGURE: %w", devPath(n), err)
		}
		// Lost a race for this device. After a few in a row, back off a
		// little so that the winners finish.
		if try >= 8 {
			time.Sleep(time.Duration(min(try, 50)) * 100 * time.Microsecond)
		}
	}
}

// unbindLoop clears d's binding, if it is still the one we saw: the device
// could have been cleared and rebound to another file between the scan
// and now, and while we hold it open it can no longer change. A device
// some other opener holds (a container) is cleared by the kernel when the
// last of them closes it.
func unbindLoop(d loopDev) error {
	dev, err := openDev(d.n, unix.O_RDONLY)
	if err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
			return nil // the device itself is gone
		}
		return err
	}
	defer unix.Close(dev)
	if raw, ok := backingFile(d.n); !ok || raw != d.raw {
		return nil // cleared, or already someone else's
	}
	if err := unix.IoctlSetInt(dev, unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("%s: LOOP_CLR_FD: %w", d.path, err)
	}
	return nil
}

// setCapacity makes d's size follow its backing file's.
func setCapacity(d loopDev) error {
	dev, err := openDev(d.n, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	if raw, ok := backingFile(d.n); !ok || raw != d.raw {
		return nil
	}
	if err := unix.IoctlSetInt(dev, unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("%s: LOOP_SET_CAPACITY: %w", d.path, err)
	}
	return nil
}
