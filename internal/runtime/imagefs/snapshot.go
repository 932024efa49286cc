package imagefs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// WriteTar writes the tree under dir to w as a tarball whose names are
// relative to dir ("bin/sh", "etc/", …), the form Unpack takes as a root
// filesystem. Symlinks are written as links, never followed; hard links
// within the tree are kept; device nodes and sockets are left out, as
// Unpack leaves them out. The tree must not change while it is written.
func WriteTar(ctx context.Context, dir string, w io.Writer) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	tw := tar.NewWriter(w)
	tw2 := &treeWriter{ctx: ctx, tw: tw, links: map[[2]uint64]string{}, buf: make([]byte, 1<<20)}
	err = tw2.dir(fd, "")
	unix.Close(fd)
	if err != nil {
		return err
	}
	return tw.Close()
}

type treeWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[[2]uint64]string // dev, inode → first name
	buf   []byte
	n     int
}

// dir writes the entries of the directory fd, whose name is prefix.
func (t *treeWriter) dir(fd int, prefix string) error {
	names, err := readNames(fd, prefix)
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, n := range names {
		if err := t.entry(fd, prefix, n); err != nil {
			return err
		}
	}
	return nil
}

// readNames lists the directory fd through a descriptor of its own (the
// caller keeps fd).
func readNames(fd int, name string) ([]string, error) {
	own, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(own), name)
	defer f.Close()
	return f.Readdirnames(-1)
}

func (t *treeWriter) entry(dirFd int, prefix, base string) error {
	t.n++
	if t.n%256 == 0 {
		if err := t.ctx.Err(); err != nil {
			return err
		}
	}
	name := prefix + base
	var st unix.Stat_t
	if err := unix.Fstatat(dirFd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	h := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).UTC(),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
		fd, err := unix.Openat(dirFd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer unix.Close(fd)
		readXattrs(fd, h)
		if err := t.tw.WriteHeader(h); err != nil {
			return err
		}
		return t.dir(fd, h.Name)
	case unix.S_IFLNK:
		target := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dirFd, base, target)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, string(target[:n])
		return t.tw.WriteHeader(h)
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
		return t.tw.WriteHeader(h)
	case unix.S_IFREG:
	default:
		return nil // devices, sockets
	}
	key := [2]uint64{st.Dev, st.Ino}
	if st.Nlink > 1 {
		if first, ok := t.links[key]; ok {
			h.Typeflag, h.Linkname = tar.TypeLink, first
			return t.tw.WriteHeader(h)
		}
		t.links[key] = name
	}
	fd, err := unix.Openat(dirFd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	h.Typeflag, h.Size = tar.TypeReg, st.Size
	readXattrs(fd, h)
	if err := t.tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.CopyBuffer(t.tw, io.LimitReader(f, st.Size), t.buf)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n != st.Size {
		return fmt.Errorf("%s: changed while it was read", name)
	}
	return nil
}

func readXattrs(fd int, h *tar.Header) {
	sz, err := unix.Flistxattr(fd, nil)
	if err != nil || sz <= 0 {
		return
	}
	buf := make([]byte, sz)
	sz, err = unix.Flistxattr(fd, buf)
	if err != nil {
		return
	}
	start := 0
	for i := 0; i < sz; i++ {
		if buf[i] != 0 {
			continue
		}
		name := string(buf[start:i])
		start = i + 1
		if !keptXattr(name) {
			continue
		}
		vsz, err := unix.Fgetxattr(fd, name, nil)
		if err != nil || vsz < 0 {
			continue
		}
		val := make([]byte, vsz)
		vsz, err = unix.Fgetxattr(fd, name, val)
		if err != nil {
			continue
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[xattrRecord+name] = string(val[:vsz])
	}
}
