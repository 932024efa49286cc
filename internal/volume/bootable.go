package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/imagefs"
)

// A volume made from an image is bootable. Cinder copies a disk image's
// bytes onto the volume and a VM boots them; most images here are root
// filesystems instead (tarballs, docker and OCI images), and a server
// booted from a volume has the volume's ext4 filesystem mounted as its
// root (runtime.Spec.RootDevice). So a volume from such an image is made
// an ext4 filesystem holding the unpacked image, labelled "root"; any
// other image (a raw or qcow2 disk) is copied as Cinder does.

// rootfsLabel is the filesystem label of a volume made from a root
// filesystem image.
const rootfsLabel = "root"

// tempPrefix names the directories a volume's filesystem is made in,
// under Config.TempDir; New removes the ones a crash left.
const tempPrefix = "volume-image-"

// serviceCreds are the volume service's own view of the other services: it
// reads the image a creating volume was asked from, whoever may see it.
var serviceCreds = &api.Credentials{System: true, Roles: []string{"admin", "member", "reader"}}

// isRootfs reports whether an image of format f is made into a filesystem.
func isRootfs(f runtime.ImageFormat) bool {
	switch f.Kind {
	case runtime.KindRootfsTar, runtime.KindDockerArchive, runtime.KindOCILayout:
		return true
	}
	return false
}

// writeImage makes block a volume of size bytes holding image imageID: a
// filesystem of a root filesystem image, or the bytes of any other.
func (s *Service) writeImage(ctx context.Context, block, imageID string, size int64) error {
	img, err := s.images.Lookup(ctx, serviceCreds, imageID)
	if err != nil {
		return fmt.Errorf("image %s: %w", imageID, err)
	}
	if err := s.blocks.Create(ctx, block, size); err != nil {
		return err
	}
	rc, err := s.images.Open(ctx, imageID)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := s.blocks.Open(ctx, block, true)
	if err != nil {
		return err
	}
	if isRootfs(img.Format) {
		err = s.writeFilesystem(ctx, f, img.Format, rc, size)
	} else {
		_, err = io.Copy(struct{ io.Writer }{f}, io.LimitReader(rc, size))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFilesystem writes onto dst, a new volume of size bytes (all
// zeros), an ext4 filesystem holding the image in r. The filesystem is
// made in a sparse file of the volume's size under Config.TempDir
// (mkfs.ext4 -d, which needs no mount), and its data copied onto the
// volume, its holes left: a 10 GiB volume of a small image costs what
// the image does.
func (s *Service) writeFilesystem(ctx context.Context, dst io.WriterAt, f runtime.ImageFormat, r io.Reader, size int64) error {
	dir, err := os.MkdirTemp(s.cfg.TempDir, tempPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	disk, err := os.OpenFile(filepath.Join(dir, "disk.img"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer disk.Close()
	if err := disk.Truncate(size); err != nil {
		return err
	}
	if _, err := imagefs.MakeExt4(ctx, disk.Name(), rootfsLabel, dir, f, r); err != nil {
		if errors.Is(err, imagefs.ErrNoMkfs) {
			return fmt.Errorf("cannot make a bootable volume of a %s image: %w", f.Kind, err)
		}
		return err
	}
	return copyData(ctx, dst, disk, size)
}

// copyData copies the data of src, a sparse file of size bytes, to dst at
// the same offsets: only its data extents (SEEK_DATA, SEEK_HOLE), and of
// those only the blocks that are not all zeros. dst must read as zeros.
func copyData(ctx context.Context, dst io.WriterAt, src *os.File, size int64) error {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	fd := int(src.Fd())
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return fmt.Errorf("seek data: %w", err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole: %w", err)
		}
		for p := start; p < end; {
			n, err := src.ReadAt(buf[:min(int64(chunk), end-p)], p)
			if n > 0 && !allZero(buf[:n]) {
				if _, werr := dst.WriteAt(buf[:n], p); werr != nil {
					return werr
				}
			}
			p += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		off = end
	}
	return nil
}

// cleanTemp removes what making filesystems left in Config.TempDir when
// the process stopped in the middle.
func (s *Service) cleanTemp() error {
	entries, err := os.ReadDir(s.cfg.TempDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			errs = append(errs, os.RemoveAll(filepath.Join(s.cfg.TempDir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
