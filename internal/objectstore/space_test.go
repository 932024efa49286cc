package objectstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/store"
)

// TestReserve: PUTs that would eat into the reserve are 507 (sized or
// chunked, small or large), while GET and DELETE go on working, and once
// deletes have made room PUTs work again.
func TestReserve(t *testing.T) {
	small := smallDisk(t, "16m")
	tc := newTestCloudConfig(t, Config{DataDir: small, FallocateReserve: 4 << 20})
	tc.mkContainer("c")
	mib := func(n float64) string { return strings.Repeat("x", int(n*(1<<20))) }
	chunked := func(body string) io.Reader { return io.MultiReader(strings.NewReader(body)) }
	put := func(name string, body any) response { return tc.do("PUT", tc.demoPath("c", name), tc.demo, body) }
	refused := func(name string, body any) {
		t.Helper()
		if res := put(name, body); res.StatusCode != 507 || !strings.Contains(string(res.Body), "not enough space") {
			t.Errorf("PUT %s into the reserve: %d %s", name, res.StatusCode, res.Body)
		}
		tc.must(404, tc.do("HEAD", tc.demoPath("c", name), tc.demo, nil))
	}
	// 16 MiB, 4 kept: 5 + 5 fit (6 left), 5 more would leave 1.
	tc.must(201, put("a", mib(5)))
	tc.must(201, put("b", mib(5)))
	refused("c", mib(5))
	// A chunked PUT's length is not known: it starts while the reserve is
	// whole and may end inside it (1.5 MiB left of 4).
	tc.must(201, put("d", chunked(mib(4.5))))
	// Now nothing more: small (kept in the database), sized, chunked.
	refused("tiny", "x")
	refused("e", mib(1))
	refused("f", chunked("x"))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "a"), tc.demo, nil)); len(res.Body) != 5<<20 {
		t.Errorf("GET on a full store: %d bytes", len(res.Body))
	}
	tc.must(204, tc.do("DELETE", tc.demoPath("c", "d"), tc.demo, nil))
	tc.put("c", "tiny", "fits again")
	if n := countFiles(t, small); n != 2 {
		t.Errorf("%d files, want a's and b's", n)
	}
}

// TestReserveDefault: 1 % of the file system, at least 8 MiB; -1 is none.
func TestReserveDefault(t *testing.T) {
	for _, c := range []struct {
		cfg         Config
		total, want int64
	}{
		{Config{}, 100 << 30, 1 << 30},
		{Config{}, 40 << 20, 8 << 20},
		{Config{FallocateReserve: 1 << 20}, 100 << 30, 1 << 20},
		{Config{FallocateReserve: -1}, 100 << 30, 0},
	} {
		if got := c.cfg.reserve(c.total); got != c.want {
			t.Errorf("reserve of %+v on %d bytes: %d, want %d", c.cfg.FallocateReserve, c.total, got, c.want)
		}
	}
}

// TestReserveCountsFreedPages: with the database on the store's file
// system, deleting small objects frees pages inside the database, which
// the file system does not count (the file does not shrink); small PUTs
// may use them again once the file system alone is down to the reserve.
func TestReserveCountsFreedPages(t *testing.T) {
	small := smallDisk(t, "24m")
	ctx := context.Background()
	s, c := reserveStore(t, filepath.Join(small, "test.db"), filepath.Join(small, "objects"))
	body := strings.Repeat("y", 60<<10)
	put := func(name string) error {
		_, err := s.storeObject(ctx, c, name, objectData{body: strings.NewReader(body), length: int64(len(body)),
			contentType: "application/octet-stream", meta: meta{}, size: -1})
		return err
	}
	n := 0
	for ; n < 1000; n++ {
		if err := put(fmt.Sprint("o", n)); err != nil {
			if !isStatus(err, 507) {
				t.Fatalf("PUT %d: %v", n, err)
			}
			break
		}
	}
	if n < 100 || n == 1000 {
		t.Fatalf("%d small objects before the reserve", n)
	}
	for i := range 100 {
		if err := s.DeleteObject(ctx, "p", "c", fmt.Sprint("o", i)); err != nil {
			t.Fatalf("DELETE on a full store: %v", err)
		}
	}
	for i := range 50 {
		if err := put(fmt.Sprint("again", i)); err != nil {
			t.Fatalf("PUT %d after deletes freed pages in the database: %v", i, err)
		}
	}
}

// smallDisk mounts a tmpfs of size (tmpfs's size= syntax) for the test,
// unmounted after it; without root, or without tmpfs, the test is skipped.
// reserveStore opens an object store with a 4 MiB reserve on the database
// file db and data dir dir, with a container "c" of account AUTH_p.
func reserveStore(t *testing.T, db, dir string) (*Service, *Container) {
	t.Helper()
	sdb, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	ctx := context.Background()
	s, err := New(ctx, sdb, Config{DataDir: dir, FallocateReserve: 4 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.putContainer(ctx, "AUTH_p", "c", func(meta) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c, err := s.lookupContainer(ctx, "AUTH_p", "c")
	if err != nil || c == nil {
		t.Fatal(c, err)
	}
	return s, c
}

func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "small")
	os.MkdirAll(dir, 0o700)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// gatedBody yields n bytes: the first MiB at once, the rest once gate is
// closed.
type gatedBody struct {
	n, sent int64
	gate    chan struct{}
}

func (g *gatedBody) Read(p []byte) (int, error) {
	if g.sent == g.n {
		return 0, io.EOF
	}
	if g.sent >= 1<<20 {
		<-g.gate
	}
	k := int(min(int64(len(p)), g.n-g.sent))
	for i := range p[:k] {
		p[i] = 'z'
	}
	g.sent += int64(k)
	return k, nil
}

// TestReserveCountsUploadsInFlight: PUTs admitted but still writing count
// against the reserve, so two that each fit but not together do not both
// get in; and an upload of unknown length is stopped once it reaches the
// reserve.
func TestReserveCountsUploadsInFlight(t *testing.T) {
	small := smallDisk(t, "16m")
	ctx := context.Background()
	s, c := reserveStore(t, filepath.Join(t.TempDir(), "test.db"), small)
	put := func(name string, body io.Reader, length int64) error {
		_, err := s.storeObject(ctx, c, name, objectData{body: body, length: length,
			contentType: "application/octet-stream", meta: meta{}, size: -1})
		return err
	}
	// 16 MiB, 4 kept: one 5 MiB upload under way, a second fits beside it
	// (6 left), a third would not (1 left).
	gate := make(chan struct{})
	errs := make(chan error, 2)
	for i := range 2 {
		go func() { errs <- put(fmt.Sprint("slow", i), &gatedBody{n: 5 << 20, gate: gate}, 5<<20) }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.room.mu.Lock()
		in := s.room.inflight
		s.room.mu.Unlock()
		if in == 10<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in flight: %d bytes", in)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := put("third", strings.NewReader(strings.Repeat("x", 5<<20)), 5<<20); !isStatus(err, 507) {
		t.Errorf("a third 5 MiB PUT beside two under way: %v", err)
	}
	close(gate)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("the uploads under way: %v", err)
		}
	}
	if s.room.inflight != 0 {
		t.Errorf("%d bytes still counted in flight", s.room.inflight)
	}

	// Unknown length: checked every MiB here, stopped at the reserve.
	defer func(v int64) { roomEvery = v }(roomEvery)
	roomEvery = 1 << 20
	if err := put("chunked", io.MultiReader(strings.NewReader(strings.Repeat("y", 5<<20))), -1); !isStatus(err, 507) {
		t.Errorf("a chunked upload past the reserve: %v", err)
	}
	var st syscall.Statfs_t
	syscall.Statfs(small, &st)
	if free := int64(st.Bavail) * st.Bsize; free < 1<<20 {
		t.Errorf("%d bytes free after the chunked upload was stopped", free)
	}
}
