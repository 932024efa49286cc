package imagefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/monostack/monostack/internal/runtime"
)

// ErrNoMkfs: mkfs.ext4 (e2fsprogs) is not installed.
var ErrNoMkfs = errors.New("mkfs.ext4 is not installed (e2fsprogs)")

// mkfsPaths are where mkfs.ext4 is looked for when it is not in PATH (a
// non-root PATH often lacks the sbin directories).
var mkfsPaths = []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"}

// Mkfs returns the path of mkfs.ext4, or ErrNoMkfs.
func Mkfs() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range mkfsPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoMkfs
}

// MakeExt4 makes target (a file or a block device, of the size the
// filesystem is to have) an ext4 filesystem labelled label holding the
// root filesystem of the image in r, of format f, and returns the image's
// config: a disk a container boots from (runtime.Spec.RootDevice). The
// image is unpacked into a temporary directory under tmp, removed after,
// and copied in by `mkfs.ext4 -d`, which needs no mount (nor root, but
// without root the files belong to the caller: Unpack cannot keep their
// owners).
//
// target must read as zeros (a new sparse file, say): the inode tables and
// the journal are not written (lazy_itable_init, lazy_journal_init), the
// kernel initialises them when the filesystem is first mounted.
func MakeExt4(ctx context.Context, target, label, tmp string, f runtime.ImageFormat, r io.Reader) (runtime.ImageConfig, error) {
	mkfs, err := Mkfs()
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	dir, err := os.MkdirTemp(tmp, ".rootfs-")
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	defer os.RemoveAll(dir)
	cfg, err := Unpack(ctx, dir, f, r)
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	cmd := exec.CommandContext(ctx, mkfs, "-q", "-F", "-L", label,
		"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "-d", dir+"/rootfs", target)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return runtime.ImageConfig{}, ctx.Err()
		}
		return runtime.ImageConfig{}, fmt.Errorf("mkfs.ext4: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return cfg, nil
}
