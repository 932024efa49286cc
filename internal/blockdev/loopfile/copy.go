package loopfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

const (
	copyBuf   = 1 << 20 // bytes read at a time
	zeroBlock = 4096    // granularity at which zeros are left as holes
)

// cloneFile makes dst (empty, new) a copy of src's first size bytes.
// A reflink (FICLONE) shares the blocks copy-on-write, in constant time,
// on filesystems that have it (XFS, btrfs); elsewhere (ext4, tmpfs) the
// kernel refuses it and we copy. The copy reads only src's data extents
// (SEEK_DATA/SEEK_HOLE) and writes only blocks that are not all zeros, so
// holes stay holes and zeros written into src become holes.
func cloneFile(ctx context.Context, dst, src *os.File, size int64) (reflinked bool, err error) {
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err == nil {
		return true, nil
	} else if !reflinkUnsupported(err) {
		return false, fmt.Errorf("FICLONE: %w", err)
	}
	return false, sparseCopy(ctx, dst, src, size)
}

// reflinkUnsupported tells "this filesystem (or pair of files) cannot
// reflink" from real failures such as ENOSPC or EIO.
func reflinkUnsupported(err error) bool {
	for _, e := range []error{unix.EOPNOTSUPP, unix.ENOTTY, unix.EXDEV, unix.EINVAL, unix.ENOSYS, unix.EPERM, unix.ETXTBSY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func sparseCopy(ctx context.Context, dst, src *os.File, size int64) error {
	buf := make([]byte, copyBuf)
	zero := make([]byte, zeroBlock)
	sfd := int(src.Fd())
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // nothing but a hole from off to the end
		}
		if err != nil {
			return fmt.Errorf("SEEK_DATA: %w", err)
		}
		if data >= size {
			return nil
		}
		hole, err := unix.Seek(sfd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("SEEK_HOLE: %w", err)
		}
		hole = min(hole, size)
		for pos := data; pos < hole; {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := buf[:min(int64(len(buf)), hole-pos)]
			n, err := src.ReadAt(b, pos)
			if n == 0 && err != nil {
				if err == io.EOF {
					return nil // src shrank under us (it never does: no Shrink)
				}
				return err
			}
			if err := writeNonZero(dst, b[:n], pos, zero); err != nil {
				return err
			}
			pos += int64(n)
		}
		off = hole
	}
	return nil
}

// writeNonZero writes b at off, skipping the zeroBlock-aligned blocks
// that are all zeros (dst is a new file: they read as zeros already).
func writeNonZero(dst *os.File, b []byte, off int64, zero []byte) error {
	start := -1 // start in b of the run of non-zero blocks being gathered
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		_, err := dst.WriteAt(b[start:end], off+int64(start))
		start = -1
		return err
	}
	i := 0
	for i < len(b) {
		// Blocks are aligned to the file, not to b.
		next := min(len(b), i+zeroBlock-int((off+int64(i))%zeroBlock))
		if bytes.Equal(b[i:next], zero[:next-i]) {
			if err := flush(i); err != nil {
				return err
			}
		} else if start < 0 {
			start = i
		}
		i = next
	}
	return flush(len(b))
}
