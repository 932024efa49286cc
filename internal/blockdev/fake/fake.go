// Package fake is an in-memory blockdev.Store for tests of the layers
// above (the volume service, the agent) on machines without root or loop
// devices. Volumes are sparse (64 KiB chunks, only the written ones are
// kept), so a 10 GiB volume costs nothing; devices are named
// /dev/fakeloopN, the lowest free N as the kernel hands out loop devices.
// It passes the same conformance suite as the real Store (blockdevtest),
// so it answers the same errors for the same calls. Stores made from one
// Host share its device numbers, as Stores on one machine share its loop
// devices.
//
// Besides the interface it can be given a capacity (SetCapacity) to make
// writes and clones fail with ErrNoSpace, and an error to fail the next
// calls with (SetErr), so tests can reach the error paths of their
// callers.
package fake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/monostack/monostack/internal/blockdev"
)

const chunk = 64 << 10

// Host hands out device numbers to its Stores.
type Host struct {
	mu   sync.Mutex
	devs map[int]bool // device numbers in use
}

// NewHost returns a host with no devices in use.
func NewHost() *Host { return &Host{devs: map[int]bool{}} }

// Store returns a new, empty Store on h.
func (h *Host) Store() *Store { return &Store{host: h, vols: map[string]*volume{}} }

// take returns the lowest free device number and marks it used.
func (h *Host) take() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for h.devs[n] {
		n++
	}
	h.devs[n] = true
	return n
}

func (h *Host) free(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.devs, n)
}

// Store is a fake blockdev.Store. The zero value is not usable; call New
// or Host.Store.
type Store struct {
	host     *Host
	mu       sync.Mutex
	vols     map[string]*volume
	capacity int64 // bytes of chunks allowed; 0: no limit
	used     int64 // bytes of chunks held
	err      error
}

var _ blockdev.Store = (*Store)(nil)

type volume struct {
	size     int64
	chunks   map[int64][]byte // chunk index → chunk bytes
	dev      int              // -1: detached
	readOnly bool
}

// New returns an empty Store on a host of its own.
func New() *Store { return NewHost().Store() }

// SetCapacity limits the bytes the Store's volumes may hold (the written
// 64 KiB chunks); past it writes and clones fail with ErrNoSpace. 0 lifts
// the limit.
func (s *Store) SetCapacity(bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capacity = bytes
}

// SetErr makes every following call fail with err (nil restores), as a
// broken disk or loop driver would.
func (s *Store) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// begin locks the Store and checks what fails every call.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	return nil
}

// Create implements blockdev.Store.
func (s *Store) Create(ctx context.Context, id string, size int64) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkSize(id, size); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if ok, err := s.exists(id, size); ok || err != nil {
		return err
	}
	s.vols[id] = &volume{size: size, chunks: map[int64][]byte{}, dev: -1}
	return nil
}

// exists reports whether id exists with size, and ErrExists when it
// exists with another.
func (s *Store) exists(id string, size int64) (bool, error) {
	v := s.vols[id]
	if v == nil {
		return false, nil
	}
	if v.size != size {
		return false, fmt.Errorf("fake: volume %s has %d bytes, not %d: %w", id, v.size, size, blockdev.ErrExists)
	}
	return true, nil
}

// Clone implements blockdev.Store; the same rule as the real Store's for
// an id that exists.
func (s *Store) Clone(ctx context.Context, id, src string, size int64) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkID(src); err != nil {
		return err
	}
	if id == src {
		return fmt.Errorf("fake: clone %s onto itself: %w", id, blockdev.ErrInvalid)
	}
	if size != 0 {
		if err := checkSize(id, size); err != nil {
			return err
		}
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	sv, err := s.get(id, src)
	if err != nil {
		return err
	}
	if size == 0 {
		size = sv.size
	}
	if size < sv.size {
		return fmt.Errorf("fake: clone %s from %s: size %d is smaller than the source's %d: %w",
			id, src, size, sv.size, blockdev.ErrInvalid)
	}
	if ok, err := s.exists(id, size); ok || err != nil {
		return err
	}
	need := int64(len(sv.chunks)) * chunk
	if s.capacity > 0 && s.used+need > s.capacity {
		return fmt.Errorf("fake: clone %s from %s: %w", id, src, blockdev.ErrNoSpace)
	}
	v := &volume{size: size, chunks: make(map[int64][]byte, len(sv.chunks)), dev: -1}
	for i, c := range sv.chunks {
		v.chunks[i] = bytes.Clone(c)
	}
	s.used += need
	s.vols[id] = v
	return nil
}

// get returns volume id, or ErrNotFound for op.
func (s *Store) get(op, id string) (*volume, error) {
	v := s.vols[id]
	if v == nil {
		return nil, fmt.Errorf("fake: %s: volume %s: %w", op, id, blockdev.ErrNotFound)
	}
	return v, nil
}

// Extend implements blockdev.Store.
func (s *Store) Extend(ctx context.Context, id string, size int64) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkSize(id, size); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	v, err := s.get("extend", id)
	if err != nil {
		return err
	}
	if size < v.size {
		return fmt.Errorf("fake: extend volume %s from %d to %d bytes: cannot shrink: %w", id, v.size, size, blockdev.ErrInvalid)
	}
	v.size = size
	return nil
}

// Delete implements blockdev.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	v := s.vols[id]
	if v == nil {
		return nil
	}
	s.detach(v)
	s.used -= int64(len(v.chunks)) * chunk
	delete(s.vols, id)
	return nil
}

// Info implements blockdev.Store.
func (s *Store) Info(ctx context.Context, id string) (blockdev.Info, error) {
	if err := checkID(id); err != nil {
		return blockdev.Info{}, err
	}
	if err := s.begin(ctx); err != nil {
		return blockdev.Info{}, err
	}
	defer s.mu.Unlock()
	v, err := s.get("info", id)
	if err != nil {
		return blockdev.Info{}, err
	}
	return v.info(id), nil
}

func (v *volume) info(id string) blockdev.Info {
	in := blockdev.Info{ID: id, Size: v.size, Allocated: int64(len(v.chunks)) * chunk}
	if v.dev >= 0 {
		in.Device, in.ReadOnly = devPath(v.dev), v.readOnly
	}
	return in
}

func devPath(n int) string { return fmt.Sprintf("/dev/fakeloop%d", n) }

// List implements blockdev.Store; volumes come sorted by id.
func (s *Store) List(ctx context.Context) ([]blockdev.Info, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.list(func(*volume) bool { return true }), nil
}

func (s *Store) list(keep func(*volume) bool) []blockdev.Info {
	out := []blockdev.Info{}
	for id, v := range s.vols {
		if keep(v) {
			out = append(out, v.info(id))
		}
	}
	slices.SortFunc(out, func(a, b blockdev.Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Attach implements blockdev.Store.
func (s *Store) Attach(ctx context.Context, id string, readOnly bool) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	if err := s.begin(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	v, err := s.get("attach", id)
	if err != nil {
		return "", err
	}
	if v.dev < 0 {
		v.dev, v.readOnly = s.host.take(), readOnly
	}
	return devPath(v.dev), nil
}

// Detach implements blockdev.Store.
func (s *Store) Detach(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if v := s.vols[id]; v != nil {
		s.detach(v)
	}
	return nil
}

func (s *Store) detach(v *volume) {
	if v.dev >= 0 {
		s.host.free(v.dev)
		v.dev, v.readOnly = -1, false
	}
}

// Open implements blockdev.Store. The File reads and writes the volume as
// it is at each call (an Extend shows at once); it keeps working on the
// volume's bytes after a Delete, as an open file does.
func (s *Store) Open(ctx context.Context, id string, write bool) (blockdev.File, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, err := s.get("open", id)
	if err != nil {
		return nil, err
	}
	return &file{s: s, v: v, id: id, write: write}, nil
}

// Recover implements blockdev.Store: an in-memory Store has nothing
// half-made, so it only reports the attached volumes.
func (s *Store) Recover(ctx context.Context) ([]blockdev.Info, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.list(func(v *volume) bool { return v.dev >= 0 }), nil
}

// Purge implements blockdev.Store.
func (s *Store) Purge(ctx context.Context) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, v := range s.vols {
		s.detach(v)
	}
	s.vols, s.used = map[string]*volume{}, 0
	return nil
}

func checkID(id string) error {
	if !blockdev.ValidID(id) {
		return fmt.Errorf("fake: bad volume id %q: %w", id, blockdev.ErrInvalid)
	}
	return nil
}

func checkSize(id string, size int64) error {
	if size <= 0 || size%512 != 0 {
		return fmt.Errorf("fake: volume %s: size %d is not a positive multiple of 512: %w", id, size, blockdev.ErrInvalid)
	}
	return nil
}

// file is an open fake volume.
type file struct {
	s      *Store
	v      *volume
	id     string
	write  bool
	off    int64
	closed bool
}

var errClosed = errors.New("fake: file already closed")

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.closed {
		return 0, errClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("fake: read volume %s at %d: %w", f.id, off, blockdev.ErrInvalid)
	}
	if off >= f.v.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.v.size-off))
	for i := 0; i < n; {
		ci, co := (off+int64(i))/chunk, int((off+int64(i))%chunk)
		m := min(n-i, chunk-co)
		if c := f.v.chunks[ci]; c != nil {
			copy(p[i:i+m], c[co:])
		} else {
			clear(p[i : i+m])
		}
		i += m
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.closed {
		return 0, errClosed
	}
	if !f.write {
		return 0, fmt.Errorf("fake: write volume %s: opened to read", f.id)
	}
	if off < 0 {
		return 0, fmt.Errorf("fake: write volume %s at %d: %w", f.id, off, blockdev.ErrInvalid)
	}
	var short error
	if end := off + int64(len(p)); end > f.v.size {
		short = fmt.Errorf("fake: write volume %s: %d bytes at %d pass its end (%d): %w",
			f.id, len(p), off, f.v.size, blockdev.ErrInvalid)
		if off >= f.v.size {
			return 0, short
		}
		p = p[:f.v.size-off]
	}
	for i := 0; i < len(p); {
		ci, co := (off+int64(i))/chunk, int((off+int64(i))%chunk)
		m := min(len(p)-i, chunk-co)
		c := f.v.chunks[ci]
		if c == nil {
			// A deleted volume's bytes (still open) count no more.
			live := f.s.vols[f.id] == f.v
			if live && f.s.capacity > 0 && f.s.used+chunk > f.s.capacity {
				return i, fmt.Errorf("fake: write volume %s: %w", f.id, blockdev.ErrNoSpace)
			}
			c = make([]byte, chunk)
			f.v.chunks[ci] = c
			if live {
				f.s.used += chunk
			}
		}
		copy(c[co:], p[i:i+m])
		i += m
	}
	return len(p), short
}

func (f *file) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *file) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *file) Seek(off int64, whence int) (int64, error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += f.v.size
	default:
		return 0, fmt.Errorf("fake: seek volume %s: whence %d: %w", f.id, whence, blockdev.ErrInvalid)
	}
	if off < 0 {
		return 0, fmt.Errorf("fake: seek volume %s to %d: %w", f.id, off, blockdev.ErrInvalid)
	}
	f.off = off
	return off, nil
}

func (f *file) Sync() error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.closed {
		return errClosed
	}
	return nil
}

func (f *file) Close() error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.closed {
		return errClosed
	}
	f.closed = true
	return nil
}
