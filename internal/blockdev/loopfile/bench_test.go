package loopfile

import (
	"context"
	"testing"
)

// BenchmarkCreate10G: Create and Delete of a 10 GiB volume. Both are
// constant time (a sparse file: truncate, fsync, link, fsync of the
// directory), so this measures the fsyncs, not the size.
func BenchmarkCreate10G(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	for b.Loop() {
		id := newID()
		if err := s.Create(ctx, id, 10<<30); err != nil {
			b.Fatal(err)
		}
		if err := s.Delete(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttachDetach: Attach (find no device, LOOP_CTL_GET_FREE,
// LOOP_CONFIGURE) and Detach (find the device, LOOP_CLR_FD) of one
// volume.
func BenchmarkAttachDetach(b *testing.B) {
	needLoop(b)
	s := newStore(b)
	ctx := context.Background()
	id := create(b, s, 1<<30)
	for b.Loop() {
		if _, err := s.Attach(ctx, id, false); err != nil {
			b.Fatal(err)
		}
		if err := s.Detach(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClone1G: Clone and Delete of a 1 GiB volume holding 64 MiB of
// data in 1 MiB extents, spread out; a sparse copy of the data where there
// is no reflink (ext4), constant time where there is.
func BenchmarkClone1G(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	src := create(b, s, 1<<30)
	f, err := s.Open(ctx, src, true)
	if err != nil {
		b.Fatal(err)
	}
	data := random(1 << 20)
	for i := range int64(64) {
		if _, err := f.WriteAt(data, i*(16<<20)); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.SetBytes(64 << 20)
	for b.Loop() {
		id := newID()
		if err := s.Clone(ctx, id, src, 0); err != nil {
			b.Fatal(err)
		}
		if err := s.Delete(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
