// Package blockdevtest is the conformance suite every blockdev.Store runs,
// the fake and the real one alike (in the manner of containerd's snapshots
// testsuite): Run drives a Store through the interface only — create,
// idempotence, clone, extend, attach (also concurrently), detach, delete,
// reading and writing, bad input, Recover and Purge, two Stores side by
// side — and checks what Info and List report and what Open reads back.
//
// What only a real host can show (the device's own size and bytes,
// read-only devices refusing writes, a restart after a crash) is tested by
// the implementation's own tests.
package blockdevtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/monostack/monostack/internal/blockdev"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Run runs the suite. open returns a new, empty Store each time it is
// called (two calls in one test are two Stores side by side on one host);
// the suite purges every Store it opened when its test ends and checks
// that nothing is left.
func Run(t *testing.T, open func(t *testing.T) blockdev.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) blockdev.Store)
	}{
		{"Create", testCreate},
		{"CreateIdempotent", testCreateIdempotent},
		{"Invalid", testInvalid},
		{"NotFound", testNotFound},
		{"Clone", testClone},
		{"CloneGrow", testCloneGrow},
		{"CloneErrors", testCloneErrors},
		{"CloneAttached", testCloneAttached},
		{"Extend", testExtend},
		{"ExtendAttached", testExtendAttached},
		{"Attach", testAttach},
		{"AttachReadOnly", testAttachReadOnly},
		{"ConcurrentAttach", testConcurrentAttach},
		{"DeleteAttached", testDeleteAttached},
		{"ReadWrite", testReadWrite},
		{"WritePastEnd", testWritePastEnd},
		{"RecoverPurge", testRecoverPurge},
		{"Canceled", testCanceled},
		{"TwoStores", testTwoStores},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, func(t *testing.T) blockdev.Store { return openStore(t, open) })
		})
	}
}

// NewID returns a random volume id.
func NewID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "volume-" + hex.EncodeToString(b)
}

// openStore opens a Store and arranges, at cleanup, a Purge and the check
// that it left nothing.
func openStore(t *testing.T, open func(t *testing.T) blockdev.Store) blockdev.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		ctx := context.Background()
		if err := s.Purge(ctx); err != nil {
			t.Errorf("cleanup Purge: %v", err)
		}
		if l, err := s.List(ctx); err != nil || len(l) != 0 {
			t.Errorf("after Purge List = %+v, %v; want nothing", l, err)
		}
	})
	return s
}

// create makes a volume of size bytes and returns its id.
func create(t *testing.T, s blockdev.Store, size int64) string {
	t.Helper()
	id := NewID()
	if err := s.Create(t.Context(), id, size); err != nil {
		t.Fatalf("Create(%s, %d): %v", id, size, err)
	}
	return id
}

func info(t *testing.T, s blockdev.Store, id string) blockdev.Info {
	t.Helper()
	in, err := s.Info(t.Context(), id)
	if err != nil {
		t.Fatalf("Info(%s): %v", id, err)
	}
	if in.ID != id {
		t.Fatalf("Info(%s).ID = %q", id, in.ID)
	}
	return in
}

func attach(t *testing.T, s blockdev.Store, id string, readOnly bool) string {
	t.Helper()
	dev, err := s.Attach(t.Context(), id, readOnly)
	if err != nil {
		t.Fatalf("Attach(%s, %v): %v", id, readOnly, err)
	}
	if dev == "" {
		t.Fatalf("Attach(%s) gave no device", id)
	}
	return dev
}

func detach(t *testing.T, s blockdev.Store, id string) {
	t.Helper()
	if err := s.Detach(t.Context(), id); err != nil {
		t.Fatalf("Detach(%s): %v", id, err)
	}
}

// random returns n random bytes (never a block of zeros, so a sparse copy
// must copy them).
func random(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(mrand.IntN(255) + 1)
	}
	return b
}

// write writes b at off in volume id and syncs.
func write(t *testing.T, s blockdev.Store, id string, off int64, b []byte) {
	t.Helper()
	f, err := s.Open(t.Context(), id, true)
	if err != nil {
		t.Fatalf("Open(%s, write): %v", id, err)
	}
	defer f.Close()
	if n, err := f.WriteAt(b, off); err != nil || n != len(b) {
		t.Fatalf("WriteAt(%s, %d bytes at %d) = %d, %v", id, len(b), off, n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync(%s): %v", id, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close(%s): %v", id, err)
	}
}

// content reads the whole volume.
func content(t *testing.T, s blockdev.Store, id string) []byte {
	t.Helper()
	f, err := s.Open(t.Context(), id, false)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return b
}

// image is what a volume of size bytes holds after writes.
type image []byte

func (im image) write(off int64, b []byte) { copy(im[off:], b) }

// same compares a volume's bytes with want, saying where they differ.
func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: first difference at byte %d: %#x, want %#x", what, i, got[i], want[i])
		}
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v; want %v", what, err, want)
	}
}

func ids(l []blockdev.Info) []string {
	out := []string{}
	for _, in := range l {
		out = append(out, in.ID)
	}
	return out
}

func testCreate(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	id := create(t, s, 4*mib)
	in := info(t, s, id)
	if in.Size != 4*mib || in.Device != "" || in.ReadOnly {
		t.Fatalf("Info = %+v; want 4 MiB, detached", in)
	}
	if in.Allocated >= in.Size/2 {
		t.Fatalf("Info.Allocated = %d of %d: not sparse", in.Allocated, in.Size)
	}
	l, err := s.List(t.Context())
	if err != nil || len(l) != 1 || l[0] != in {
		t.Fatalf("List = %+v, %v; want [%+v]", l, err, in)
	}
	same(t, "new volume", content(t, s, id), make([]byte, 4*mib))
}

func testCreateIdempotent(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	id := create(t, s, mib)
	write(t, s, id, 0, []byte("kept"))
	if err := s.Create(t.Context(), id, mib); err != nil {
		t.Fatalf("Create again, same size: %v", err)
	}
	wantErr(t, "Create again, another size", s.Create(t.Context(), id, 2*mib), blockdev.ErrExists)
	if in := info(t, s, id); in.Size != mib {
		t.Fatalf("Info.Size = %d after the refused Create; want %d", in.Size, mib)
	}
	if b := content(t, s, id); string(b[:4]) != "kept" {
		t.Fatalf("Create again changed the bytes: %q", b[:4])
	}
}

func testInvalid(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	ok := create(t, s, mib)
	badIDs := []string{"", "-a", ".a", "_a", "a/b", "../a", "..", "a b", "a\x00", "é", strings.Repeat("a", 129)}
	for _, id := range badIDs {
		wantErr(t, "Create("+id+")", s.Create(ctx, id, mib), blockdev.ErrInvalid)
		wantErr(t, "Clone("+id+")", s.Clone(ctx, id, ok, 0), blockdev.ErrInvalid)
		wantErr(t, "Clone(from "+id+")", s.Clone(ctx, NewID(), id, 0), blockdev.ErrInvalid)
		wantErr(t, "Extend("+id+")", s.Extend(ctx, id, 2*mib), blockdev.ErrInvalid)
		wantErr(t, "Delete("+id+")", s.Delete(ctx, id), blockdev.ErrInvalid)
		wantErr(t, "Detach("+id+")", s.Detach(ctx, id), blockdev.ErrInvalid)
		_, err := s.Info(ctx, id)
		wantErr(t, "Info("+id+")", err, blockdev.ErrInvalid)
		_, err = s.Attach(ctx, id, false)
		wantErr(t, "Attach("+id+")", err, blockdev.ErrInvalid)
		_, err = s.Open(ctx, id, true)
		wantErr(t, "Open("+id+")", err, blockdev.ErrInvalid)
	}
	if !blockdev.ValidID(strings.Repeat("a", 128)) {
		t.Fatal("128 characters should be a valid id")
	}
	for _, size := range []int64{0, -512, 1, 511, 1000, mib + 1} {
		id := NewID()
		wantErr(t, "Create(size)", s.Create(ctx, id, size), blockdev.ErrInvalid)
		if size != 0 {
			wantErr(t, "Clone(size)", s.Clone(ctx, id, ok, size), blockdev.ErrInvalid)
		}
		wantErr(t, "Extend(size)", s.Extend(ctx, ok, size), blockdev.ErrInvalid)
	}
	wantErr(t, "Clone onto itself", s.Clone(ctx, ok, ok, 0), blockdev.ErrInvalid)
	l, err := s.List(ctx)
	if err != nil || len(l) != 1 || l[0].ID != ok || l[0].Size != mib {
		t.Fatalf("after bad calls List = %+v, %v; want only %s, unchanged", l, err, ok)
	}
}

func testNotFound(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	id := NewID()
	_, err := s.Info(ctx, id)
	wantErr(t, "Info", err, blockdev.ErrNotFound)
	wantErr(t, "Extend", s.Extend(ctx, id, mib), blockdev.ErrNotFound)
	_, err = s.Attach(ctx, id, false)
	wantErr(t, "Attach", err, blockdev.ErrNotFound)
	_, err = s.Open(ctx, id, false)
	wantErr(t, "Open(read)", err, blockdev.ErrNotFound)
	_, err = s.Open(ctx, id, true)
	wantErr(t, "Open(write)", err, blockdev.ErrNotFound)
	wantErr(t, "Clone from a missing volume", s.Clone(ctx, NewID(), id, 0), blockdev.ErrNotFound)
	if err := s.Detach(ctx, id); err != nil {
		t.Fatalf("Detach of a missing volume: %v", err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete of a missing volume: %v", err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List = %+v, %v; want []", l, err)
	}
}

// source makes a 4 MiB volume with data at its start and at 3 MiB and
// returns its id and bytes.
func source(t *testing.T, s blockdev.Store) (string, image) {
	t.Helper()
	id := create(t, s, 4*mib)
	im := make(image, 4*mib)
	for _, off := range []int64{0, 3*mib + 512} {
		b := random(8 * kib)
		write(t, s, id, off, b)
		im.write(off, b)
	}
	return id, im
}

func testClone(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	src, im := source(t, s)
	dst := NewID()
	if err := s.Clone(t.Context(), dst, src, 0); err != nil {
		t.Fatalf("Clone: %v", err)
	}
	in := info(t, s, dst)
	if in.Size != 4*mib || in.Device != "" {
		t.Fatalf("clone Info = %+v; want 4 MiB, detached", in)
	}
	if in.Allocated >= in.Size/2 {
		t.Fatalf("clone Info.Allocated = %d of %d: holes were not kept", in.Allocated, in.Size)
	}
	same(t, "clone", content(t, s, dst), im)

	// Independent of each other from now on.
	b := random(4 * kib)
	write(t, s, dst, 0, b)
	same(t, "source after a write to the clone", content(t, s, src), im)
	cl := append(image(nil), im...)
	cl.write(0, b)
	write(t, s, src, 3*mib, random(4*kib))
	same(t, "clone after a write to the source", content(t, s, dst), cl)
	if err := s.Delete(t.Context(), src); err != nil {
		t.Fatalf("Delete(source): %v", err)
	}
	same(t, "clone after the source was deleted", content(t, s, dst), cl)
	if l, err := s.List(t.Context()); err != nil || len(l) != 1 || l[0].ID != dst {
		t.Fatalf("List = %v, %v; want [%s]", ids(l), err, dst)
	}
}

func testCloneGrow(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	src, im := source(t, s)
	dst := NewID()
	if err := s.Clone(t.Context(), dst, src, 10*mib); err != nil {
		t.Fatalf("Clone(10 MiB): %v", err)
	}
	if in := info(t, s, dst); in.Size != 10*mib {
		t.Fatalf("clone Size = %d; want %d", in.Size, 10*mib)
	}
	same(t, "grown clone", content(t, s, dst), append(im, make([]byte, 6*mib)...))
	if in := info(t, s, src); in.Size != 4*mib {
		t.Fatalf("source Size = %d after Clone; want %d", in.Size, 4*mib)
	}
}

func testCloneErrors(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	src, _ := source(t, s)
	dst := NewID()
	wantErr(t, "Clone smaller than the source", s.Clone(ctx, dst, src, 2*mib), blockdev.ErrInvalid)
	if _, err := s.Info(ctx, dst); !errors.Is(err, blockdev.ErrNotFound) {
		t.Fatalf("a refused Clone left %s: %v", dst, err)
	}
	if err := s.Clone(ctx, dst, src, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Clone(ctx, dst, src, 0); err != nil {
		t.Fatalf("Clone again onto the clone (same size): %v", err)
	}
	wantErr(t, "Clone onto an id with another size", s.Clone(ctx, dst, src, 8*mib), blockdev.ErrExists)
	other := create(t, s, mib)
	wantErr(t, "Clone onto an existing volume", s.Clone(ctx, other, src, 0), blockdev.ErrExists)
	if in := info(t, s, other); in.Size != mib {
		t.Fatalf("Clone onto %s changed it: %+v", other, in)
	}
}

func testCloneAttached(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	src, im := source(t, s)
	attach(t, s, src, false)
	dst := NewID()
	if err := s.Clone(t.Context(), dst, src, 0); err != nil {
		t.Fatalf("Clone of an attached volume: %v", err)
	}
	same(t, "clone of an attached volume", content(t, s, dst), im)
	if in := info(t, s, dst); in.Device != "" {
		t.Fatalf("the clone of an attached volume is attached: %+v", in)
	}
}

func testExtend(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	id := create(t, s, mib)
	b := random(4 * kib)
	write(t, s, id, mib-4*kib, b)
	if err := s.Extend(ctx, id, 3*mib); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if in := info(t, s, id); in.Size != 3*mib {
		t.Fatalf("Size = %d after Extend; want %d", in.Size, 3*mib)
	}
	im := make(image, 3*mib)
	im.write(mib-4*kib, b)
	same(t, "extended volume", content(t, s, id), im)
	if err := s.Extend(ctx, id, 3*mib); err != nil {
		t.Fatalf("Extend to the same size: %v", err)
	}
	wantErr(t, "Extend smaller", s.Extend(ctx, id, 2*mib), blockdev.ErrInvalid)
	if in := info(t, s, id); in.Size != 3*mib {
		t.Fatalf("Size = %d after a refused shrink; want %d", in.Size, 3*mib)
	}
	write(t, s, id, 3*mib-512, random(512)) // the new end is writable
}

func testExtendAttached(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	id := create(t, s, mib)
	dev := attach(t, s, id, false)
	if err := s.Extend(t.Context(), id, 5*mib); err != nil {
		t.Fatalf("Extend of an attached volume: %v", err)
	}
	if in := info(t, s, id); in.Size != 5*mib || in.Device != dev {
		t.Fatalf("Info = %+v after Extend; want 5 MiB on %s", in, dev)
	}
}

func testAttach(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	id := create(t, s, mib)
	dev := attach(t, s, id, false)
	if again := attach(t, s, id, false); again != dev {
		t.Fatalf("Attach again = %s; want %s", again, dev)
	}
	if again := attach(t, s, id, true); again != dev {
		t.Fatalf("Attach again read-only = %s; want %s", again, dev)
	}
	in := info(t, s, id)
	if in.Device != dev || in.ReadOnly {
		t.Fatalf("Info = %+v; want read-write on %s", in, dev)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 1 || l[0] != in {
		t.Fatalf("List = %+v, %v; want [%+v]", l, err, in)
	}
	detach(t, s, id)
	if in := info(t, s, id); in.Device != "" || in.ReadOnly {
		t.Fatalf("Info = %+v after Detach; want no device", in)
	}
	detach(t, s, id)
	// Attaching again works (on whatever device is free).
	attach(t, s, id, false)
}

func testAttachReadOnly(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	id := create(t, s, mib)
	dev := attach(t, s, id, true)
	if in := info(t, s, id); in.Device != dev || !in.ReadOnly {
		t.Fatalf("Info = %+v; want read-only on %s", in, dev)
	}
	if again := attach(t, s, id, false); again != dev {
		t.Fatalf("Attach read-write of a read-only attached volume = %s; want %s", again, dev)
	}
	if in := info(t, s, id); !in.ReadOnly {
		t.Fatalf("Info = %+v after a second Attach; want still read-only", in)
	}
	detach(t, s, id)
	dev2 := attach(t, s, id, false)
	if in := info(t, s, id); in.Device != dev2 || in.ReadOnly {
		t.Fatalf("Info = %+v after re-attach read-write; want read-write on %s", in, dev2)
	}
}

func testConcurrentAttach(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	const n = 8
	var vols [n]string
	for i := range vols {
		vols[i] = create(t, s, mib)
	}
	// Two Attach calls per volume, all at once.
	var devs [n][2]string
	var errs [n][2]error
	var wg sync.WaitGroup
	for i := range n {
		for j := range 2 {
			wg.Go(func() { devs[i][j], errs[i][j] = s.Attach(t.Context(), vols[i], false) })
		}
	}
	wg.Wait()
	seen := map[string]string{}
	for i := range n {
		for j := range 2 {
			if errs[i][j] != nil {
				t.Fatalf("Attach(%s): %v", vols[i], errs[i][j])
			}
		}
		if devs[i][0] != devs[i][1] {
			t.Fatalf("two Attach calls of %s gave %s and %s", vols[i], devs[i][0], devs[i][1])
		}
		if other, ok := seen[devs[i][0]]; ok {
			t.Fatalf("%s and %s share %s", other, vols[i], devs[i][0])
		}
		seen[devs[i][0]] = vols[i]
		if in := info(t, s, vols[i]); in.Device != devs[i][0] {
			t.Fatalf("Info(%s).Device = %s; want %s", vols[i], in.Device, devs[i][0])
		}
	}
	for i := range n {
		wg.Go(func() { errs[i][0] = s.Detach(t.Context(), vols[i]) })
	}
	wg.Wait()
	for i := range n {
		if errs[i][0] != nil {
			t.Fatalf("Detach(%s): %v", vols[i], errs[i][0])
		}
		if in := info(t, s, vols[i]); in.Device != "" {
			t.Fatalf("Info(%s) = %+v after Detach", vols[i], in)
		}
	}
}

func testDeleteAttached(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	id := create(t, s, mib)
	keep := create(t, s, mib)
	write(t, s, id, 0, []byte("old bytes"))
	attach(t, s, id, false)
	keepDev := attach(t, s, keep, false)
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete of an attached volume: %v", err)
	}
	_, err := s.Info(ctx, id)
	wantErr(t, "Info after Delete", err, blockdev.ErrNotFound)
	_, err = s.Attach(ctx, id, false)
	wantErr(t, "Attach after Delete", err, blockdev.ErrNotFound)
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 1 || l[0].ID != keep || l[0].Device != keepDev {
		t.Fatalf("List = %+v, %v; want only %s on %s", l, err, keep, keepDev)
	}
	// The id is free again, for a new, empty, detached volume.
	if err := s.Create(ctx, id, 2*mib); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	if in := info(t, s, id); in.Device != "" || in.Size != 2*mib {
		t.Fatalf("Info = %+v; want a new 2 MiB detached volume", in)
	}
	same(t, "volume made again", content(t, s, id), make([]byte, 2*mib))
}

func testReadWrite(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	id := create(t, s, 2*mib)
	im := make(image, 2*mib)
	f, err := s.Open(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		off int64
		b   []byte
	}{{0, random(100)}, {mib - 1000, random(3000)}, {2*mib - 512, random(512)}, {7, random(1)}}
	for _, w := range writes {
		if n, err := f.WriteAt(w.b, w.off); err != nil || n != len(w.b) {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(w.b), w.off, n, err)
		}
		im.write(w.off, w.b)
	}
	if off, err := f.Seek(4096, io.SeekStart); err != nil || off != 4096 {
		t.Fatalf("Seek = %d, %v", off, err)
	}
	b := random(1000)
	if n, err := f.Write(b); err != nil || n != len(b) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	im.write(4096, b)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	same(t, "written volume", content(t, s, id), im)
	r, err := s.Open(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, 3000)
	if n, err := r.ReadAt(got, mib-1000); err != nil || n != len(got) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	same(t, "ReadAt", got, im[mib-1000:mib+2000])
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != 2*mib {
		t.Fatalf("Seek(end) = %d, %v; want %d", end, err, 2*mib)
	}
	if n, err := r.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, EOF", n, err)
	}
	if n, err := r.ReadAt(got, 2*mib-100); n != 100 || err != io.EOF {
		t.Fatalf("ReadAt across the end = %d, %v; want 100, EOF", n, err)
	}
	if _, err := r.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("WriteAt on a volume opened to read succeeded")
	}
	if _, err := r.Write([]byte("x")); err == nil {
		t.Fatal("Write on a volume opened to read succeeded")
	}
	same(t, "volume after refused writes", content(t, s, id), im)
}

func testWritePastEnd(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	id := create(t, s, mib)
	f, err := s.Open(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := bytes.Repeat([]byte{0xab}, 20)
	n, err := f.WriteAt(b, mib-10)
	wantErr(t, "WriteAt across the end", err, blockdev.ErrInvalid)
	if n != 10 {
		t.Fatalf("WriteAt across the end wrote %d bytes; want the 10 that fit", n)
	}
	n, err = f.WriteAt(b, mib)
	wantErr(t, "WriteAt past the end", err, blockdev.ErrInvalid)
	if n != 0 {
		t.Fatalf("WriteAt past the end wrote %d bytes", n)
	}
	if _, err := f.Seek(2*mib, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(b)
	wantErr(t, "Write past the end", err, blockdev.ErrInvalid)
	if in := info(t, s, id); in.Size != mib {
		t.Fatalf("Size = %d after writes past the end; want %d", in.Size, mib)
	}
	// Once extended, the volume takes the write.
	if err := s.Extend(ctx, id, 2*mib); err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteAt(b, mib); err != nil || n != len(b) {
		t.Fatalf("WriteAt after Extend = %d, %v", n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got := content(t, s, id)
	same(t, "bytes at the old end", got[mib-10:mib+20], append(bytes.Repeat([]byte{0xab}, 10), b...))
}

func testRecoverPurge(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	ctx := t.Context()
	a := create(t, s, mib)
	b := create(t, s, mib)
	c := create(t, s, mib)
	devA := attach(t, s, a, false)
	devC := attach(t, s, c, true)
	got, err := s.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	want := []blockdev.Info{info(t, s, a), info(t, s, c)}
	if want[0].ID > want[1].ID {
		want[0], want[1] = want[1], want[0]
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Recover = %+v; want %+v", got, want)
	}
	// Recover changes nothing that is whole.
	if in := info(t, s, a); in.Device != devA {
		t.Fatalf("Info(a) after Recover = %+v; want %s", in, devA)
	}
	if in := info(t, s, c); in.Device != devC || !in.ReadOnly {
		t.Fatalf("Info(c) after Recover = %+v; want read-only %s", in, devC)
	}
	if in := info(t, s, b); in.Device != "" {
		t.Fatalf("Info(b) after Recover = %+v", in)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after Purge = %+v, %v", l, err)
	}
	for _, id := range []string{a, b, c} {
		_, err := s.Info(ctx, id)
		wantErr(t, "Info after Purge", err, blockdev.ErrNotFound)
	}
	if got, err := s.Recover(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Recover after Purge = %+v, %v; want []", got, err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatalf("Purge again: %v", err)
	}
	// The Store is still usable.
	attach(t, s, create(t, s, mib), false)
}

func testCanceled(t *testing.T, open func(*testing.T) blockdev.Store) {
	s := open(t)
	id := create(t, s, mib)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	fresh := NewID()
	wantErr(t, "Create", s.Create(ctx, fresh, mib), context.Canceled)
	wantErr(t, "Clone", s.Clone(ctx, fresh, id, 0), context.Canceled)
	_, err := s.Attach(ctx, id, false)
	wantErr(t, "Attach", err, context.Canceled)
	if l, err := s.List(t.Context()); err != nil || len(l) != 1 || l[0].ID != id || l[0].Device != "" {
		t.Fatalf("List = %+v, %v; want only %s, detached", l, err, id)
	}
}

// testTwoStores: two Stores on one host (two monostack instances) see
// only their own volumes and devices, even under the same id.
func testTwoStores(t *testing.T, open func(*testing.T) blockdev.Store) {
	s1, s2 := open(t), open(t)
	ctx := t.Context()
	id := create(t, s1, mib)
	write(t, s1, id, 0, []byte("one"))
	dev1 := attach(t, s1, id, false)
	if l, err := s2.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("the second Store lists %+v, %v", l, err)
	}
	_, err := s2.Info(ctx, id)
	wantErr(t, "second Store's Info", err, blockdev.ErrNotFound)
	if err := s2.Create(ctx, id, 2*mib); err != nil {
		t.Fatalf("the second Store's Create of the same id: %v", err)
	}
	dev2 := attach(t, s2, id, false)
	if dev2 == dev1 {
		t.Fatalf("both Stores' volumes are on %s", dev1)
	}
	if got, err := s2.Recover(ctx); err != nil || len(got) != 1 || got[0].Device != dev2 {
		t.Fatalf("second Store's Recover = %+v, %v; want only its own on %s", got, err, dev2)
	}
	if err := s2.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s2.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if in := info(t, s1, id); in.Device != dev1 || in.Size != mib {
		t.Fatalf("first Store's volume after the second's Delete and Purge = %+v; want 1 MiB on %s", in, dev1)
	}
	if b := content(t, s1, id); string(b[:3]) != "one" {
		t.Fatalf("first Store's bytes changed: %q", b[:3])
	}
}
