// Package blobfile writes the large files of the image and object stores:
// temporary files opened with O_DIRECT where the file system allows it,
// buffers aligned for them, and a Writer that keeps the writing cheap.
//
// The problem both solve: an upload of gigabytes written through the page
// cache as is leaves nearly all of the writing to the fsync that ends it,
// since the kernel starts writeback only past dirty_background_ratio
// (gigabytes on a large host): a second or more of waiting after the last
// byte of a 1 GiB image. Written O_DIRECT (the object store's large
// objects), the bytes go to the device as they come, with no page-cache
// copy, and the fsync finds nothing left. Written through the page cache
// (the image store, whose files are read again soon, and file systems
// that refuse O_DIRECT), the Writer starts writeback of each MiB as it is
// written (sync_file_range), with the same effect on the fsync.
package blobfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// Align is the alignment of O_DIRECT writes: their memory, offset
	// and length.
	Align = 4096
	// writeBehind is how much of a plain file is written before its
	// writeback is started.
	writeBehind = 1 << 20
)

// NewBuffer returns n bytes whose start is aligned for O_DIRECT.
func NewBuffer(n int) []byte {
	b := make([]byte, n+Align)
	off := Align - int(uintptr(unsafe.Pointer(&b[0]))%Align)
	return b[off : off+n : off+n]
}

// CreateTemp creates a new file in dir named prefix and random
// characters. With direct it asks for O_DIRECT and says whether it got
// it: file systems without it get a plain file.
func CreateTemp(dir, prefix string, direct bool) (f *os.File, isDirect bool, err error) {
	if direct {
		var r [12]byte
		rand.Read(r[:])
		name := filepath.Join(dir, prefix+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_DIRECT, 0o600)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return nil, false, err
		}
	}
	f, err = os.CreateTemp(dir, prefix+"*")
	return f, false, err
}

// Writer writes a file in order. On an O_DIRECT file every write but the
// last must be a multiple of Align long, from a buffer of NewBuffer; the
// last (the unaligned tail) is written after O_DIRECT is turned off. On a
// plain file, writeback starts every writeBehind bytes. Errors are
// *os.PathError (errors.Is finds ENOSPC in them).
type Writer struct {
	f       *os.File
	direct  bool
	n       int64
	flushed int64
}

// NewWriter writes f, opened with O_DIRECT when direct (as CreateTemp
// said).
func NewWriter(f *os.File, direct bool) *Writer { return &Writer{f: f, direct: direct} }

// Write writes all of b.
func (w *Writer) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	total := len(b)
	if w.direct && len(b)%Align == 0 {
		_, err := w.f.Write(b)
		if err == nil {
			w.n += int64(len(b))
			return total, nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return 0, err
		}
		// A file system that opens O_DIRECT files but will not write
		// them: go on through the page cache.
		if err := w.dropDirect(); err != nil {
			return 0, err
		}
	}
	if w.direct {
		aligned := len(b) - len(b)%Align
		if aligned > 0 {
			if _, err := w.f.Write(b[:aligned]); err != nil {
				return 0, err
			}
			w.n += int64(aligned)
		}
		if err := w.dropDirect(); err != nil {
			return aligned, err
		}
		b = b[aligned:]
	}
	if _, err := w.f.Write(b); err != nil {
		return total - len(b), err
	}
	w.n += int64(len(b))
	// Start writing back what is written so far, so that the fsync at the
	// end finds little left to do.
	if w.n-w.flushed >= writeBehind {
		unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.n-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.n
	}
	return total, nil
}

// dropDirect turns O_DIRECT off, for the unaligned tail of a file.
func (w *Writer) dropDirect() error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err == nil {
			_, err = unix.FcntlInt(fd, unix.F_SETFL, flags&^unix.O_DIRECT)
		}
		ferr = err
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return &os.PathError{Op: "fcntl", Path: w.f.Name(), Err: err}
	}
	w.direct = false
	return nil
}
