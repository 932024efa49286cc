package loopfile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/monostack/monostack/internal/blockdev"
	"github.com/monostack/monostack/internal/lockmap"
)

const (
	imgSuffix = ".img"
	tmpPrefix = ".tmp-"
)

// Store is a directory of volumes. See the package comment.
type Store struct {
	dir string
	log *slog.Logger

	// all is held shared by every call on one volume and exclusively by
	// Recover and Purge, which work on all of them.
	all sync.RWMutex

	locks lockmap.Map // by volume id
}

var _ blockdev.Store = (*Store)(nil)

// New returns the Store of dir, made if missing (0700: volumes are the
// tenants' data). dir is made absolute with its symbolic links resolved,
// because the kernel reports backing files by their real path and
// ownership is decided on it. A nil log discards.
func New(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("loopfile: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("loopfile: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("loopfile: %w", err)
	}
	return &Store{dir: real, log: log}, nil
}

// Dir is the Store's directory, as the kernel names it.
func (s *Store) Dir() string { return s.dir }

// Path is the file of volume id (whether or not it exists).
func (s *Store) Path(id string) string { return filepath.Join(s.dir, id+imgSuffix) }

// lock takes the Store's shared lock and id's own lock, and returns their
// release.
func (s *Store) lock(id string) func() {
	s.all.RLock()
	unlock := s.locks.Lock(id)
	return func() {
		unlock()
		s.all.RUnlock()
	}
}

// Create implements blockdev.Store.
func (s *Store) Create(ctx context.Context, id string, size int64) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkSize(id, size); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.lock(id)()
	if ok, err := s.exists(id, size); ok || err != nil {
		return err
	}
	return s.make(id, size, func(*os.File) error { return nil })
}

// Clone implements blockdev.Store. Cloning onto an id that exists with
// the size the clone would have succeeds and changes nothing (a retried
// Clone that had finished); with another size it is ErrExists.
//
// The copy reads src's file as it is, so the clone of a volume that a
// container is writing has whatever had reached the file; without a
// reflink it is not even one point in time. The caller stops the writer
// (or detaches) first when it needs a consistent copy.
func (s *Store) Clone(ctx context.Context, id, src string, size int64) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkID(src); err != nil {
		return err
	}
	if id == src {
		return fmt.Errorf("loopfile: clone %s onto itself: %w", id, blockdev.ErrInvalid)
	}
	if size != 0 {
		if err := checkSize(id, size); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.lock(id)()
	sf, err := os.Open(s.Path(src))
	if err != nil {
		return mapErr(err, "clone "+id+" from "+src)
	}
	defer sf.Close()
	st, err := sf.Stat()
	if err != nil {
		return mapErr(err, "clone "+id+" from "+src)
	}
	srcSize := st.Size()
	if size == 0 {
		size = srcSize
	}
	if size < srcSize {
		return fmt.Errorf("loopfile: clone %s from %s: size %d is smaller than the source's %d: %w",
			id, src, size, srcSize, blockdev.ErrInvalid)
	}
	if ok, err := s.exists(id, size); ok || err != nil {
		return err
	}
	return s.make(id, size, func(f *os.File) error {
		reflinked, err := cloneFile(ctx, f, sf, srcSize)
		if err != nil {
			return err
		}
		s.log.Debug("cloned volume", "id", id, "src", src, "reflink", reflinked)
		return nil
	})
}

// exists reports whether id exists with size, and ErrExists when it
// exists with another.
func (s *Store) exists(id string, size int64) (bool, error) {
	st, err := os.Stat(s.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, mapErr(err, "stat volume "+id)
	}
	if st.Size() != size {
		return false, fmt.Errorf("loopfile: volume %s has %d bytes, not %d: %w", id, st.Size(), size, blockdev.ErrExists)
	}
	return true, nil
}

// make makes volume id of size bytes: fill writes into the temporary file,
// which is then sized, synced and linked to its name (see the package
// comment). On failure nothing is left.
func (s *Store) make(id string, size int64, fill func(*os.File) error) (err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(s.dir, tmpPrefix+id+"."+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return mapErr(err, "create volume "+id)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp)
		if err != nil {
			err = mapErr(err, "create volume "+id)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if err := os.Link(tmp, s.Path(id)); err != nil {
		// Only another process working in our directory could have
		// made it: we hold id's lock.
		return err
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// Extend implements blockdev.Store.
func (s *Store) Extend(ctx context.Context, id string, size int64) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkSize(id, size); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.lock(id)()
	f, err := os.OpenFile(s.Path(id), os.O_RDWR, 0)
	if err != nil {
		return mapErr(err, "extend volume "+id)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return mapErr(err, "extend volume "+id)
	}
	switch {
	case size < st.Size():
		return fmt.Errorf("loopfile: extend volume %s from %d to %d bytes: cannot shrink: %w", id, st.Size(), size, blockdev.ErrInvalid)
	case size > st.Size():
		if err := f.Truncate(size); err != nil {
			return mapErr(err, "extend volume "+id)
		}
		if err := f.Sync(); err != nil {
			return mapErr(err, "extend volume "+id)
		}
	}
	// Also at the same size: an Extend interrupted after the truncate
	// and retried still resizes the device. (A device at the file's size
	// does not change.)
	devs, err := s.devicesOf(id)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if err := setCapacity(d); err != nil {
			return fmt.Errorf("loopfile: extend volume %s: %w", id, err)
		}
	}
	return nil
}

// Delete implements blockdev.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.lock(id)()
	if err := s.detach(id); err != nil {
		return err
	}
	err := os.Remove(s.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return mapErr(err, "delete volume "+id)
	}
	s.log.Info("deleted volume", "id", id)
	return mapErr(syncDir(s.dir), "delete volume "+id)
}

// Info implements blockdev.Store.
func (s *Store) Info(ctx context.Context, id string) (blockdev.Info, error) {
	if err := checkID(id); err != nil {
		return blockdev.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blockdev.Info{}, err
	}
	st, err := os.Stat(s.Path(id))
	if err != nil {
		return blockdev.Info{}, mapErr(err, "volume "+id)
	}
	devs, err := s.devicesOf(id)
	if err != nil {
		return blockdev.Info{}, err
	}
	return info(id, st, devs), nil
}

func info(id string, st fs.FileInfo, devs []loopDev) blockdev.Info {
	in := blockdev.Info{ID: id, Size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		in.Allocated = sys.Blocks * 512
	}
	if len(devs) > 0 {
		in.Device, in.ReadOnly = devs[0].path, devs[0].readOnly
	}
	return in
}

// List implements blockdev.Store; volumes come sorted by id.
func (s *Store) List(ctx context.Context) ([]blockdev.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.list()
}

func (s *Store) list() ([]blockdev.Info, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("loopfile: list %s: %w", s.dir, err)
	}
	byFile, err := s.devicesByFile()
	if err != nil {
		return nil, err
	}
	out := []blockdev.Info{}
	for _, e := range ents {
		id, ok := volumeID(e.Name())
		if !ok {
			continue
		}
		st, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we listed
		}
		if err != nil {
			return nil, fmt.Errorf("loopfile: list %s: %w", s.dir, err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		out = append(out, info(id, st, byFile[s.Path(id)]))
	}
	slices.SortFunc(out, func(a, b blockdev.Info) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// volumeID is the id of a volume file's name.
func volumeID(name string) (string, bool) {
	id, ok := strings.CutSuffix(name, imgSuffix)
	return id, ok && blockdev.ValidID(id)
}

// Attach implements blockdev.Store.
func (s *Store) Attach(ctx context.Context, id string, readOnly bool) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	defer s.lock(id)()
	devs, err := s.devicesOf(id)
	if err != nil {
		return "", err
	}
	if len(devs) > 0 {
		return devs[0].path, nil
	}
	path := s.Path(id)
	if _, err := os.Stat(path); err != nil {
		return "", mapErr(err, "attach volume "+id)
	}
	n, err := bindLoop(ctx, path, readOnly)
	if err != nil {
		// Not mapErr: a missing /dev/loop-control is no missing volume.
		return "", fmt.Errorf("loopfile: attach volume %s: %w", id, err)
	}
	s.log.Info("attached volume", "id", id, "device", devPath(n), "read_only", readOnly)
	return devPath(n), nil
}

// Detach implements blockdev.Store. A device that others still hold open
// (a container that has not exited) stays bound until the last of them
// closes it, but it is no longer the volume's: Info shows no device and
// Attach binds another.
func (s *Store) Detach(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.lock(id)()
	return s.detach(id)
}

// detach unbinds every device of id (there is one, unless someone else
// bound our file too).
func (s *Store) detach(id string) error {
	devs, err := s.devicesOf(id)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if err := unbindLoop(d); err != nil {
			return fmt.Errorf("loopfile: detach volume %s: %w", id, err)
		}
		s.log.Info("detached volume", "id", id, "device", d.path)
	}
	return nil
}

// devicesOf lists the devices bound to id's file (not to a deleted file
// that had its name, nor those on their way out: see loopDev.detaching).
func (s *Store) devicesOf(id string) ([]loopDev, error) {
	byFile, err := s.devicesByFile()
	return byFile[s.Path(id)], err
}

// devicesByFile is our live devices (neither of a deleted file nor
// detaching) by backing file, each file's in device order.
func (s *Store) devicesByFile() (map[string][]loopDev, error) {
	devs, err := boundLoops(s.dir)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(devs, func(a, b loopDev) int { return a.n - b.n })
	out := map[string][]loopDev{}
	for _, d := range devs {
		if !d.deleted && !d.detaching {
			out[d.backing] = append(out[d.backing], d)
		}
	}
	return out, nil
}

// Open implements blockdev.Store.
func (s *Store) Open(ctx context.Context, id string, write bool) (blockdev.File, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(s.Path(id), flag, 0)
	if err != nil {
		return nil, mapErr(err, "open volume "+id)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, mapErr(err, "open volume "+id)
	}
	return &file{f: f, id: id, size: st.Size()}, nil
}

// Recover implements blockdev.Store. Besides devices of deleted files it
// detaches devices whose file is missing or is not a volume (a temporary
// file): nothing of ours but a volume is ever attached.
func (s *Store) Recover(ctx context.Context) ([]blockdev.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.all.Lock()
	defer s.all.Unlock()
	if err := s.removeFiles(func(name string) bool { return strings.HasPrefix(name, tmpPrefix) }); err != nil {
		return nil, err
	}
	devs, err := boundLoops(s.dir)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		_, isVolume := volumeID(filepath.Base(d.backing))
		missing := false
		if _, err := os.Stat(d.backing); errors.Is(err, fs.ErrNotExist) {
			missing = true
		}
		if !d.deleted && !missing && isVolume {
			continue
		}
		if err := unbindLoop(d); err != nil {
			return nil, fmt.Errorf("loopfile: recover: %w", err)
		}
		s.log.Warn("detached a device whose volume is gone", "device", d.path, "backing_file", d.raw)
	}
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	attached := []blockdev.Info{}
	for _, in := range all {
		if in.Device != "" {
			attached = append(attached, in)
		}
	}
	return attached, nil
}

// Purge implements blockdev.Store. Files in the directory that are neither
// volumes nor temporary files are not the Store's and stay.
//
// Unlike Detach, Purge waits (up to purgeWait, or ctx) until the kernel
// has freed the devices, because its callers remove the directory next:
// a device is freed only at the last close, and another process may hold
// it for a moment (one whose LOOP_CONFIGURE lost the race for it opens it
// too). A device still held after that (a container that has not exited)
// is logged and left to the kernel, which frees it when it is closed.
func (s *Store) Purge(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.all.Lock()
	defer s.all.Unlock()
	devs, err := boundLoops(s.dir)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if err := unbindLoop(d); err != nil {
			return fmt.Errorf("loopfile: purge: %w", err)
		}
	}
	if err := s.removeFiles(func(name string) bool {
		_, ok := volumeID(name)
		return ok || strings.HasPrefix(name, tmpPrefix)
	}); err != nil {
		return err
	}
	if len(devs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, purgeWait)
	defer cancel()
	for {
		left, err := boundLoops(s.dir)
		if err != nil || len(left) == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			for _, d := range left {
				s.log.Warn("purge: device still held open; the kernel frees it at its last close", "device", d.path, "backing_file", d.raw)
			}
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// purgeWait bounds Purge's wait for the devices it detached to be freed.
const purgeWait = 5 * time.Second

// removeFiles removes the directory's files whose names match, then syncs
// the directory. A directory removed already has nothing to remove.
func (s *Store) removeFiles(match func(name string) bool) error {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loopfile: %w", err)
	}
	removed := 0
	for _, e := range ents {
		if !match(e.Name()) || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("loopfile: %w", err)
		}
		s.log.Debug("removed", "file", e.Name())
		removed++
	}
	if removed == 0 {
		return nil
	}
	return mapErr(syncDir(s.dir), "sync "+s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func checkID(id string) error {
	if !blockdev.ValidID(id) {
		return fmt.Errorf("loopfile: bad volume id %q: %w", id, blockdev.ErrInvalid)
	}
	return nil
}

func checkSize(id string, size int64) error {
	if size <= 0 || size%512 != 0 {
		return fmt.Errorf("loopfile: volume %s: size %d is not a positive multiple of 512: %w", id, size, blockdev.ErrInvalid)
	}
	return nil
}

// mapErr translates the filesystem's errors into the blockdev ones, once,
// keeping the original for detail: no room (ENOSPC, EDQUOT, and EFBIG, a
// size past what the filesystem can hold) is ErrNoSpace, a missing file
// ErrNotFound.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, blockdev.ErrInvalid) || errors.Is(err, blockdev.ErrExists) ||
		errors.Is(err, blockdev.ErrNotFound) || errors.Is(err, blockdev.ErrNoSpace) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return fmt.Errorf("loopfile: %s: %w: %w", what, blockdev.ErrNoSpace, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("loopfile: %s: %w: %w", what, blockdev.ErrNotFound, err)
	}
	return fmt.Errorf("loopfile: %s: %w", what, err)
}
