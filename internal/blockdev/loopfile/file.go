package loopfile

import (
	"fmt"
	"io"
	"os"

	"github.com/monostack/monostack/internal/blockdev"
)

// file is an open volume. It is an *os.File that refuses to write past the
// volume's end: a volume is a disk, and a write that grew the file would
// change its size behind Extend's back (and the device's).
type file struct {
	f  *os.File
	id string
	// size is the volume's size as last seen; a write that would pass it
	// looks again (an Extend may have grown the volume since).
	size int64
}

var _ blockdev.File = (*file)(nil)

func (f *file) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }
func (f *file) Read(p []byte) (int, error)              { return f.f.Read(p) }
func (f *file) Seek(off int64, whence int) (int64, error) {
	return f.f.Seek(off, whence)
}
func (f *file) Close() error { return f.f.Close() }

func (f *file) Sync() error { return mapErr(f.f.Sync(), "sync volume "+f.id) }

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	p, short, err := f.clip(p, off)
	if err != nil {
		return 0, err
	}
	n, err := f.f.WriteAt(p, off)
	if err != nil {
		return n, mapErr(err, "write volume "+f.id)
	}
	return n, short
}

func (f *file) Write(p []byte) (int, error) {
	off, err := f.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	p, short, err := f.clip(p, off)
	if err != nil {
		return 0, err
	}
	n, err := f.f.Write(p)
	if err != nil {
		return n, mapErr(err, "write volume "+f.id)
	}
	return n, short
}

// clip cuts p to what fits in the volume at off; short is the error to
// return after writing the part that fits.
func (f *file) clip(p []byte, off int64) (_ []byte, short, err error) {
	if off < 0 {
		return nil, nil, fmt.Errorf("loopfile: write volume %s at %d: %w", f.id, off, blockdev.ErrInvalid)
	}
	end := off + int64(len(p))
	if end > f.size {
		st, err := f.f.Stat()
		if err != nil {
			return nil, nil, err
		}
		f.size = st.Size()
	}
	if end <= f.size {
		return p, nil, nil
	}
	short = fmt.Errorf("loopfile: write volume %s: %d bytes at %d pass its end (%d): %w",
		f.id, len(p), off, f.size, blockdev.ErrInvalid)
	if off >= f.size {
		return nil, nil, short
	}
	return p[:f.size-off], short, nil
}
