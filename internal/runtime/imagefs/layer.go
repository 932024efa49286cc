package imagefs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// resolveFlags make every lookup behave as if the root were "/": ".." and
// absolute symlinks stay inside it.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openIn opens rel (relative to the root rootFd, "" for the root itself)
// with flags, resolving it inside the root.
func openIn(rootFd int, rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(rootFd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags})
	for errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
		fd, err = unix.Openat2(rootFd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags})
	}
	return fd, err
}

// ensureDir returns an O_PATH descriptor of the directory rel inside the
// root, making it and its parents (0755, root-owned) when missing.
func ensureDir(rootFd int, rel string) (int, error) {
	fd, err := openIn(rootFd, rel, unix.O_PATH|unix.O_DIRECTORY)
	if !errors.Is(err, unix.ENOENT) || rel == "" {
		return fd, err
	}
	parent, base := splitName(rel)
	pfd, err := ensureDir(rootFd, parent)
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(pfd, base, 0o755)
	unix.Close(pfd)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("mkdir %s: %w", rel, err)
	}
	return openIn(rootFd, rel, unix.O_PATH|unix.O_DIRECTORY)
}

func splitName(name string) (parent, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

// removeAllAt removes name in the directory dirFd, recursively, never
// following a symlink.
func removeAllAt(dirFd int, name string) error {
	err := unix.Unlinkat(dirFd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dirFd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || len(names) == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	return unix.Unlinkat(dirFd, name, unix.AT_REMOVEDIR)
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

// applyLayer applies the tarball in r to the root rootFd; with whiteouts,
// .wh.NAME removes NAME and .wh..wh..opq empties its directory of what
// lower layers put there. It returns the number of entries.
func applyLayer(ctx context.Context, rootFd int, r io.Reader, whiteouts bool) (int, error) {
	tr := tar.NewReader(r)
	created := map[string]bool{}
	var dirs []dirTimes
	asRoot := os.Geteuid() == 0
	n := 0
	for {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, bad("tar archive after %d entries: %v", n, err)
		}
		n++
		name := cleanName(h.Name)
		if name == "" {
			continue
		}
		parent, base := splitName(name)
		if whiteouts && strings.HasPrefix(base, whiteoutPrefix) {
			if err := whiteout(rootFd, parent, base, created); err != nil {
				return n, fmt.Errorf("whiteout %s: %w", name, err)
			}
			continue
		}
		pfd, err := ensureDir(rootFd, parent)
		if err != nil {
			return n, fmt.Errorf("%s: %w", name, err)
		}
		created[name] = true
		err = applyEntry(pfd, rootFd, base, h, tr, asRoot)
		if err == nil && h.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTimes{name, h.AccessTime, h.ModTime})
		}
		unix.Close(pfd)
		if err != nil {
			return n, fmt.Errorf("%s: %w", name, err)
		}
	}
	// Directory times last: their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		parent, base := splitName(d.name)
		pfd, err := openIn(rootFd, parent, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			continue // removed by a later whiteout of the same layer
		}
		setTimes(pfd, base, d.atime, d.mtime)
		unix.Close(pfd)
	}
	return n, nil
}

func whiteout(rootFd int, parent, base string, created map[string]bool) error {
	if base != whiteoutOpaque && strings.HasPrefix(base, whiteoutMeta) {
		return nil // other aufs metadata
	}
	pfd, err := openIn(rootFd, parent, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(pfd), parent)
	defer d.Close()
	if base != whiteoutOpaque {
		target := strings.TrimPrefix(base, whiteoutPrefix)
		if target == "" || target == "." || target == ".." {
			return nil
		}
		return removeAllAt(pfd, target)
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if created[path.Join(parent, n)] {
			continue
		}
		if err := removeAllAt(pfd, n); err != nil {
			return err
		}
	}
	return nil
}

// applyEntry makes one entry, base, in the directory pfd.
func applyEntry(pfd, rootFd int, base string, h *tar.Header, r io.Reader, asRoot bool) error {
	mode := uint32(h.Mode) & 0o7777
	var st unix.Stat_t
	exists := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	if exists && !(h.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR) {
		if err := removeAllAt(pfd, base); err != nil {
			return err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if !exists || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return err
			}
		}
		if err := chown(pfd, base, h, asRoot); err != nil {
			return err
		}
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return err
		}
		if len(xattrs(h)) > 0 {
			fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return setXattrs(fd, h)
		}
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		if asRoot {
			if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
				return err
			}
		}
		if err := unix.Fchmod(fd, mode); err != nil { // after chown, which clears setuid
			return err
		}
		if err := setXattrs(fd, h); err != nil {
			return err
		}
		return setTimes(pfd, base, h.AccessTime, h.ModTime)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return err
		}
		if err := chown(pfd, base, h, asRoot); err != nil {
			return err
		}
		return setTimes(pfd, base, h.AccessTime, h.ModTime)
	case tar.TypeLink:
		target := cleanName(h.Linkname)
		tparent, tbase := splitName(target)
		if tbase == "" {
			return bad("hard link to %q", h.Linkname)
		}
		tfd, err := openIn(rootFd, tparent, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("hard link target %s: %w", h.Linkname, err)
		}
		defer unix.Close(tfd)
		return unix.Linkat(tfd, tbase, pfd, base, 0)
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|mode, 0); err != nil {
			return err
		}
		if err := chown(pfd, base, h, asRoot); err != nil {
			return err
		}
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return err
		}
		return setTimes(pfd, base, h.AccessTime, h.ModTime)
	}
	// Devices (the runtime makes /dev), sockets and unknown types.
	return nil
}

func chown(pfd int, base string, h *tar.Header, asRoot bool) error {
	if !asRoot {
		return nil
	}
	return unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW)
}

func setTimes(pfd int, base string, atime, mtime time.Time) error {
	if mtime.IsZero() {
		return nil
	}
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	return err
}

const xattrRecord = "SCHILY.xattr."

// xattrs are the extended attributes of h that are kept: user.* and file
// capabilities.
func xattrs(h *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrRecord)
		if !ok || !keptXattr(name) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

func keptXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || name == "security.capability"
}

func setXattrs(fd int, h *tar.Header) error {
	for name, v := range xattrs(h) {
		err := unix.Fsetxattr(fd, name, []byte(v), 0)
		if err != nil && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

func newFile(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }
