package loopfile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/blockdev"
	"github.com/monostack/monostack/internal/blockdev/blockdevtest"
)

const mib = 1 << 20

var newID = blockdevtest.NewID

// needLoop skips tests that attach devices where that cannot work.
func needLoop(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loopfile needs root (CAP_SYS_ADMIN) for loop devices")
	}
	if _, err := os.Stat(loopControl); err != nil {
		t.Skipf("no loop devices here: %v", err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newStore opens a Store on a fresh directory (dir, if given); at cleanup
// it purges and checks that no loop device and no file of it is left.
func newStore(t testing.TB, dir ...string) *Store {
	t.Helper()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	s, err := New(d, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Purge(context.Background()); err != nil {
			t.Errorf("cleanup Purge: %v", err)
		}
		if left := leftovers(s.dir); left != "" {
			t.Errorf("left behind in %s: %s", s.dir, left)
		}
	})
	return s
}

// leftovers describes the loop devices (also of deleted files) and the
// files still in dir.
func leftovers(dir string) string {
	var left []string
	devs, err := waitFreed(dir, "")
	if err != nil {
		left = append(left, err.Error())
	}
	for _, d := range devs {
		left = append(left, d.path+" on "+d.raw)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.IsDir() {
			left = append(left, "file "+e.Name())
		}
	}
	return strings.Join(left, ", ")
}

func TestConformance(t *testing.T) {
	needLoop(t)
	blockdevtest.Run(t, func(t *testing.T) blockdev.Store { return newStore(t) })
}

func create(t testing.TB, s *Store, size int64) string {
	t.Helper()
	id := newID()
	if err := s.Create(context.Background(), id, size); err != nil {
		t.Fatal(err)
	}
	return id
}

func attach(t testing.TB, s *Store, id string, readOnly bool) string {
	t.Helper()
	dev, err := s.Attach(context.Background(), id, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return dev
}

func random(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(mrand.IntN(255) + 1)
	}
	return b
}

// devSize is the device's size as the kernel has it, read two ways: the
// block layer's (SEEK_END on the device, as BLKGETSIZE64) and sysfs's.
func devSize(t *testing.T, dev string) int64 {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	sectors, err := os.ReadFile(filepath.Join(sysBlock, filepath.Base(dev), "size"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(sectors)), 10, 64)
	if err != nil || n*512 != end {
		t.Fatalf("%s: sysfs size %q sectors, block device %d bytes", dev, sectors, end)
	}
	return end
}

// TestDeviceBytes: what a container writes on the device is in the
// volume's file, and what a restore writes in the file is on the device.
func TestDeviceBytes(t *testing.T) {
	needLoop(t)
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	id := create(t, s, 8*mib)
	dev := attach(t, s, id, false)
	if got := devSize(t, dev); got != 8*mib {
		t.Fatalf("device size %d; want %d", got, 8*mib)
	}

	want := random(64 << 10)
	d, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(want, mib); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	f, err := os.Open(s.Path(id)) // the file itself, not through the Store
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(got, mib); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes written on the device are not in the volume's file")
	}
	if in, _ := s.Info(ctx, id); in.Allocated < int64(len(want)) {
		t.Fatalf("Allocated = %d after writing %d bytes", in.Allocated, len(want))
	}

	want = random(8 << 10)
	vf, err := s.Open(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vf.WriteAt(want, 4*mib); err != nil {
		t.Fatal(err)
	}
	if err := vf.Sync(); err != nil {
		t.Fatal(err)
	}
	vf.Close()
	d, err = os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.ReadAt(got[:len(want)], 4*mib); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatal("bytes written through Open are not on the device")
	}
}

// TestReadOnlyDevice: a read-only attach gives a device that refuses
// writes, and the file stays as it was.
func TestReadOnlyDevice(t *testing.T) {
	needLoop(t)
	t.Parallel()
	s := newStore(t)
	id := create(t, s, mib)
	dev := attach(t, s, id, true)
	if ro := readSys(mustNumber(t, dev), "ro"); ro != "1" {
		t.Fatalf("%s: sysfs ro = %q; want 1", dev, ro)
	}
	if d, err := os.OpenFile(dev, os.O_WRONLY, 0); err == nil {
		_, werr := d.WriteAt(bytes.Repeat([]byte{1}, 4096), 0)
		serr := d.Sync()
		d.Close()
		if werr == nil && serr == nil {
			t.Fatalf("writing on read-only %s succeeded", dev)
		}
	}
	b, err := os.ReadFile(s.Path(id))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, make([]byte, mib)) {
		t.Fatal("a write on the read-only device reached the file")
	}
}

func mustNumber(t *testing.T, dev string) int {
	t.Helper()
	n, ok := loopNumber(filepath.Base(dev))
	if !ok {
		t.Fatalf("%s is no loop device", dev)
	}
	return n
}

// TestExtendDevice: an attached volume's device has the new size as soon
// as Extend returns, and its new end is writable.
func TestExtendDevice(t *testing.T) {
	needLoop(t)
	t.Parallel()
	s := newStore(t)
	id := create(t, s, mib)
	dev := attach(t, s, id, false)
	if got := devSize(t, dev); got != mib {
		t.Fatalf("device size %d; want %d", got, mib)
	}
	if err := s.Extend(context.Background(), id, 5*mib); err != nil {
		t.Fatal(err)
	}
	if got := devSize(t, dev); got != 5*mib {
		t.Fatalf("device size %d after Extend; want %d", got, 5*mib)
	}
	d, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.WriteAt(random(4096), 5*mib-4096); err != nil {
		t.Fatalf("writing the device's new end: %v", err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestDetachWhileOpen: Detach and Delete of a volume whose device a
// container still holds open do not wait; the device is no longer the
// volume's at once, and the kernel frees it when the holder closes it.
func TestDetachWhileOpen(t *testing.T) {
	needLoop(t)
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	id := create(t, s, mib)
	dev := attach(t, s, id, false)
	holder, err := os.Open(dev) // the container
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := s.Detach(ctx, id); err != nil {
		t.Fatal(err)
	}
	if raw, ok := backingFile(mustNumber(t, dev)); !ok || raw != s.Path(id) {
		t.Fatalf("%s was cleared under its holder: %q", dev, raw)
	}
	if in, err := s.Info(ctx, id); err != nil || in.Device != "" {
		t.Fatalf("Info after Detach = %+v, %v; want no device", in, err)
	}
	dev2 := attach(t, s, id, false)
	if dev2 == dev {
		t.Fatalf("Attach after Detach gave back the device being freed, %s", dev)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Recover(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Recover = %+v, %v; want nothing attached", got, err)
	}
	holder.Close()
	if devs, _ := waitFreed(s.Dir(), ""); len(devs) != 0 {
		t.Fatalf("bound after the holder closed: %+v", devs)
	}
}

// TestOwnership: Stores on other directories — a sibling whose name has
// ours as a prefix, one nested inside ours — never see, detach or remove
// each other's volumes and devices.
func TestOwnership(t *testing.T) {
	needLoop(t)
	t.Parallel()
	ctx := context.Background()
	a := newStore(t)
	bDir, cDir := a.Dir()+"x", filepath.Join(a.Dir(), "nested")
	t.Cleanup(func() { os.Remove(bDir); os.Remove(cDir) }) // after the Stores' own cleanup
	b := newStore(t, bDir)
	c := newStore(t, cDir)
	stores := []*Store{a, b, c}
	id := newID()
	devs := map[string]*Store{}
	for _, s := range stores {
		if err := s.Create(ctx, id, mib); err != nil {
			t.Fatal(err)
		}
		devs[attach(t, s, id, false)] = s
	}
	if len(devs) != 3 {
		t.Fatalf("three Stores' volumes on %d devices", len(devs))
	}
	for i, s := range stores {
		// Each Store in turn recovers, purges and is checked to have
		// left the others alone.
		if got, err := s.Recover(ctx); err != nil || len(got) != 1 {
			t.Fatalf("Store %d: Recover = %+v, %v; want its one volume", i, got, err)
		}
		if err := s.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		for dev, o := range devs {
			raw, bound := backingFile(mustNumber(t, dev))
			if o == s {
				if bound && raw == o.Path(id) {
					t.Fatalf("Store %d: Purge left %s on %s", i, dev, raw)
				}
				continue
			}
			if slices.Index(stores, o) < i {
				continue // purged already
			}
			if !bound || raw != o.Path(id) {
				t.Fatalf("Store %d's Purge touched %s (%q, bound %v); want it on %s", i, dev, raw, bound, o.Path(id))
			}
			if _, err := os.Stat(o.Path(id)); err != nil {
				t.Fatalf("Store %d's Purge removed another Store's file: %v", i, err)
			}
		}
	}
}

// TestRecoverAfterCrash: a new Store on the directory of one that was
// killed finds its attached volumes and cleans up what the crash left: a
// temporary file of an interrupted Create, the device of a volume whose
// file was removed (a Delete cut between its steps, or an operator), and
// a device on a file that is not a volume.
func TestRecoverAfterCrash(t *testing.T) {
	needLoop(t)
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	before, err := New(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	kept := create(t, before, mib)
	keptDev := attach(t, before, kept, true)
	idle := create(t, before, mib)
	gone := create(t, before, mib)
	goneDev := attach(t, before, gone, false)
	if err := os.Remove(before.Path(gone)); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, tmpPrefix+newID()+".0123456789abcdef")
	if err := os.WriteFile(tmp, []byte("half made"), 0o600); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, tmpPrefix+newID()+".fedcba9876543210")
	if err := os.WriteFile(stray, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	strayN, err := bindLoop(ctx, stray, false)
	if err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, nothing stays bound.
	t.Cleanup(func() {
		for _, d := range mustBound(t, dir) {
			unbindLoop(d)
		}
	})

	after := newStore(t, dir) // the restart
	got, err := after.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(got) != 1 || got[0].ID != kept || got[0].Device != keptDev || !got[0].ReadOnly || got[0].Size != mib {
		t.Fatalf("Recover = %+v; want only %s, read-only on %s", got, kept, keptDev)
	}
	for _, f := range []string{tmp, stray} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Recover left %s: %v", f, err)
		}
	}
	left, err := waitFreed(dir, keptDev)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range left {
		if d.path != keptDev {
			t.Fatalf("Recover left %s on %q (the removed volume was on %s, the stray file on loop%d)", d.path, d.raw, goneDev, strayN)
		}
	}
	l, err := after.List(ctx)
	if err != nil || len(l) != 2 {
		t.Fatalf("List = %+v, %v; want %s and %s", l, err, kept, idle)
	}
	if again, err := after.Recover(ctx); err != nil || len(again) != 1 || again[0] != got[0] {
		t.Fatalf("Recover again = %+v, %v; want the same", again, err)
	}
}

// waitFreed waits (a few seconds at most) until the only device bound in
// dir is on keep ("": none) and returns what is bound then. A device we
// cleared is freed at its last close, and another process may hold it for
// a moment (see Purge).
func waitFreed(dir, keep string) ([]loopDev, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		devs, err := boundLoops(dir)
		if err != nil {
			return nil, err
		}
		if len(devs) == 0 || len(devs) == 1 && devs[0].path == keep || time.Now().After(deadline) {
			return devs, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustBound(t *testing.T, dir string) []loopDev {
	t.Helper()
	devs, err := boundLoops(dir)
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

// TestDetachChecksDevice: Detach works from a scan of sysfs; if the device
// it found was freed and bound to another file in the meantime, it is left
// alone.
func TestDetachChecksDevice(t *testing.T) {
	needLoop(t)
	t.Parallel()
	s := newStore(t)
	other := newStore(t)
	id := create(t, s, mib)
	dev := attach(t, s, id, false)
	d := mustBound(t, s.Dir())[0]
	if err := s.Detach(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// Bind other's volume on the device just freed, as another attach
	// racing with us could.
	oid := create(t, other, mib)
	odev := attach(t, other, oid, false)
	if odev != dev {
		t.Skipf("the freed %s went elsewhere (%s got %s); the race is not reproduced", dev, oid, odev)
	}
	if err := unbindLoop(d); err != nil {
		t.Fatal(err)
	}
	if raw, ok := backingFile(d.n); !ok || raw != other.Path(oid) {
		t.Fatalf("a stale Detach cleared %s: %q, %v", dev, raw, ok)
	}
}

// TestNoSpace: a full filesystem is ErrNoSpace, and a Clone that fails
// for it leaves neither its id nor a temporary file.
func TestNoSpace(t *testing.T) {
	needLoop(t)
	t.Parallel()
	ctx := context.Background()
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		t.Skipf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	s := newStore(t, mnt)
	src := create(t, s, 64*mib) // sparse: far more than the filesystem holds
	f, err := s.Open(ctx, src, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(random(3*mib), 0); err != nil {
		t.Fatal(err)
	}
	dst := newID()
	err = s.Clone(ctx, dst, src, 0)
	if !errors.Is(err, blockdev.ErrNoSpace) {
		t.Fatalf("Clone on a full filesystem = %v; want ErrNoSpace", err)
	}
	if _, err := s.Info(ctx, dst); !errors.Is(err, blockdev.ErrNotFound) {
		t.Fatalf("a failed Clone left %s: %v", dst, err)
	}
	if left := leftovers(s.Dir()); left != "file "+src+imgSuffix {
		t.Fatalf("after the failed Clone: %s", left)
	}
	if _, err := f.WriteAt(random(2*mib), 8*mib); !errors.Is(err, blockdev.ErrNoSpace) {
		t.Fatalf("writing on a full filesystem = %v; want ErrNoSpace", err)
	}
}

// TestTooLarge: a size past what the filesystem can hold is ErrNoSpace.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	s, err := New(t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	id := newID()
	err = s.Create(context.Background(), id, 1<<62)
	if err == nil {
		s.Delete(context.Background(), id)
		t.Skip("this filesystem holds files of 4 EiB")
	}
	if !errors.Is(err, blockdev.ErrNoSpace) {
		t.Fatalf("Create(4 EiB) = %v; want ErrNoSpace", err)
	}
	if left := leftovers(s.Dir()); left != "" {
		t.Fatalf("the refused Create left %s", left)
	}
}

// TestSparseCopy: the copy (when there is no reflink) has the source's
// bytes, keeps its holes, and turns its blocks of zeros into holes;
// extents and writes at offsets that are not block-aligned included.
func TestSparseCopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.Create(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const size = 9*mib + 1536
	want := make([]byte, size)
	put := func(off int64, b []byte) {
		if _, err := src.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], b)
	}
	put(0, random(100))
	put(4095, random(2))
	put(mib, make([]byte, 2*mib)) // written zeros: allocated in src
	put(2*mib+777, random(5000))
	put(5*mib-3, random(3*mib+10))
	put(size-1, []byte{9})
	if err := src.Truncate(size); err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := sparseCopy(context.Background(), dst, src, size); err != nil {
		t.Fatal(err)
	}
	if err := dst.Truncate(size); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the sparse copy differs from its source")
	}
	var ss, ds unix.Stat_t
	unix.Fstat(int(src.Fd()), &ss)
	unix.Fstat(int(dst.Fd()), &ds)
	// The source holds ~2 MiB of zeros and ~3 MiB of data; the copy
	// only the data (and the blocks around unaligned edges).
	if ds.Blocks*512 > 3*mib+64<<10 || ds.Blocks >= ss.Blocks {
		t.Fatalf("the copy allocates %d bytes, the source %d", ds.Blocks*512, ss.Blocks*512)
	}
}

// TestReflink: on a filesystem with reflinks (XFS here, made in a file on
// a loop device) Clone shares the source's blocks instead of copying
// them, and the clone is still independent of its source.
func TestReflink(t *testing.T) {
	needLoop(t)
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		t.Skip("no mkfs.xfs (Debian xfsprogs) to make a filesystem with reflinks")
	}
	t.Parallel()
	ctx := context.Background()
	tmp := t.TempDir()
	img, mnt := filepath.Join(tmp, "xfs.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512*mib); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	n, err := bindLoop(ctx, img, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range mustBound(t, tmp) {
			if err := unbindLoop(d); err != nil {
				t.Error(err)
			}
		}
		if devs, _ := waitFreed(tmp, ""); len(devs) != 0 {
			t.Errorf("left %s on %s", devs[0].path, devs[0].raw)
		}
	})
	if err := unix.Mount(devPath(n), mnt, "xfs", 0, ""); err != nil {
		t.Fatalf("mount the XFS: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	s := newStore(t, mnt)

	src := create(t, s, 256*mib)
	want := random(32 * mib)
	f, err := s.Open(ctx, src, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(want, 64*mib); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after unix.Statfs_t
	if err := unix.Statfs(mnt, &before); err != nil {
		t.Fatal(err)
	}
	dst := newID()
	if err := s.Clone(ctx, dst, src, 512*mib); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(mnt, &after); err != nil {
		t.Fatal(err)
	}
	if used := int64(before.Bfree-after.Bfree) * before.Bsize; used > 4*mib {
		t.Fatalf("a Clone of 32 MiB of data used %d bytes: no reflink", used)
	}
	if in, err := s.Info(ctx, dst); err != nil || in.Size != 512*mib {
		t.Fatalf("clone Info = %+v, %v; want 512 MiB", in, err)
	}
	got := make([]byte, len(want))
	g, err := s.Open(ctx, dst, true)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.ReadAt(got, 64*mib); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the reflinked clone's bytes differ (%v)", err)
	}
	// Writing the clone unshares its blocks, not the source's.
	if _, err := g.WriteAt(bytes.Repeat([]byte{7}, 4096), 64*mib); err != nil {
		t.Fatal(err)
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	sf, err := s.Open(ctx, src, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if _, err := sf.ReadAt(got, 64*mib); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("a write to the clone reached its source (%v)", err)
	}
}
