package runc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted (iproute2's
// convention, which vishvananda/netns follows).
const NetnsDir = "/var/run/netns"

// isNetns reports whether p is a mounted network namespace.
func isNetns(p string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(p, &fs) == nil && fs.Type == unix.NSFS_MAGIC
}

// ensureNetns makes the named network namespace, with lo up, unless it is
// there. When pid > 0 and the name is missing, the namespace of that
// process (a running container's) is named again instead of a new one.
func ensureNetns(name string, pid int) error {
	p := filepath.Join(NetnsDir, name)
	if isNetns(p) {
		return nil
	}
	if fileExists(p) { // a stale file, not a namespace
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	if pid > 0 {
		if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			return err
		}
		f.Close()
		if err := unix.Mount(fmt.Sprintf("/proc/%d/ns/net", pid), p, "", unix.MS_BIND, ""); err != nil {
			os.Remove(p)
			return fmt.Errorf("name netns %s: %w", name, err)
		}
		return nil
	}
	type result struct {
		h   netns.NsHandle
		err error
	}
	rc := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			goruntime.UnlockOSThread()
			rc <- result{netns.None(), err}
			return
		}
		defer home.Close()
		h, err := netns.NewNamed(name)
		if serr := netns.Set(home); serr != nil {
			// This thread is in the wrong namespace: let it die with
			// the goroutine rather than go back to the scheduler.
			if err == nil {
				h.Close()
			}
			rc <- result{netns.None(), errors.Join(err, fmt.Errorf("leave netns: %w", serr))}
			return
		}
		goruntime.UnlockOSThread()
		rc <- result{h, err}
	}()
	res := <-rc
	if res.err != nil {
		deleteNetns(name)
		return fmt.Errorf("create netns %s: %w", name, res.err)
	}
	defer res.h.Close()
	nh, err := netlink.NewHandleAt(res.h)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err == nil {
		err = nh.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("netns %s: lo up: %w", name, err)
	}
	return nil
}

// deleteNetns removes the named namespace; one that is not there is not
// an error.
func deleteNetns(name string) error {
	p := filepath.Join(NetnsDir, name)
	if !fileExists(p) {
		return nil
	}
	if isNetns(p) {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount netns %s: %w", name, err)
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// listNetns lists the names in NetnsDir that start with prefix.
func listNetns(prefix string) ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// mountPoints lists the mount points of this mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMount(fields[4]))
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsUnder lists the mount points at or under dir.
func mountsUnder(dir string) ([]string, error) {
	all, err := mountPoints()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range all {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	return out, nil
}

func isMountPoint(p string) bool {
	ms, err := mountsUnder(p)
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m == p {
			return true
		}
	}
	return false
}

// mountOverlay mounts lower (read-only) with upper and work over target,
// unless something is mounted there already.
func mountOverlay(lower, upper, work, target string) error {
	if isMountPoint(target) {
		return nil
	}
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	data := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// unmountAll unmounts every mount at or under dir, deepest first; a busy
// mount is retried for a while and then detached.
func unmountAll(dir string) error {
	ms, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		var uerr error
		for try := 0; try < 20; try++ {
			uerr = unix.Unmount(m, 0)
			if uerr == nil || errors.Is(uerr, unix.EINVAL) || errors.Is(uerr, unix.ENOENT) {
				uerr = nil
				break
			}
			if !errors.Is(uerr, unix.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if errors.Is(uerr, unix.EBUSY) {
			uerr = unix.Unmount(m, unix.MNT_DETACH)
		}
		if uerr != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, uerr))
		}
	}
	return errors.Join(errs...)
}

// removeTree removes dir after checking that nothing is mounted under it
// (a mount would otherwise be emptied through).
func removeTree(dir string) error {
	if err := unmountAll(dir); err != nil {
		return err
	}
	if ms, err := mountsUnder(dir); err != nil || len(ms) > 0 {
		return errors.Join(err, fmt.Errorf("still mounted under %s: %v", dir, ms))
	}
	return os.RemoveAll(dir)
}
