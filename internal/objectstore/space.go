package objectstore

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// defaultReserveMin is the least space the default reserve keeps free.
// Small objects live in the database (inline.go), which shares the data
// dir's file system: a database that filled it to the last byte could not
// checkpoint its WAL (that may need the database file to grow), and then
// not even a DELETE could be written to free space. A few MiB covers a
// checkpoint (the WAL is checkpointed at ~4 MiB) and the deletes.
const defaultReserveMin = 8 << 20

// reserve is the space PUTs leave free on the data dir's file system, of
// total bytes: Swift's fallocate_reserve (default 1 %), and at least
// defaultReserveMin unless configured.
func (cfg Config) reserve(total int64) int64 {
	switch {
	case cfg.FallocateReserve < 0:
		return 0
	case cfg.FallocateReserve > 0:
		return cfg.FallocateReserve
	}
	return max(total/100, defaultReserveMin)
}

// room is the bytes admitted PUTs announced and have not finished
// writing: statfs does not see them yet, so two PUTs checked at the same
// moment would otherwise both take the same free space.
type room struct {
	mu       sync.Mutex
	inflight int64
}

// checkRoom refuses (507) a PUT of length bytes (-1: not known yet) that
// would leave less than the reserve free, as Swift's object server does
// with fallocate_reserve, counting what admitted PUTs are still writing.
// Reading, deleting and metadata stay possible on a full store, so that
// space can be freed. A small object (inline) may also take the pages its
// deleted peers left free inside the database, which the file system does
// not count as free: the database does not shrink. statfs costs about a
// microsecond: it is asked on every PUT. The caller calls done once the
// PUT has ended, whatever its outcome.
func (s *Service) checkRoom(ctx context.Context, length int64, inline bool) (done func(), err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.cfg.DataDir, &st); err != nil {
		return func() {}, nil // the write itself will tell
	}
	n := max(length, 0)
	free, total := int64(st.Bavail)*st.Bsize, int64(st.Blocks)*st.Bsize
	reserve := s.cfg.reserve(total)
	s.room.mu.Lock()
	defer s.room.mu.Unlock()
	free -= s.room.inflight
	if free-n < reserve && !(inline && free-n+s.dbFree.take(ctx, s, n) >= reserve) {
		return nil, errInsufficientStorage(errors.New("the object would eat into the file system's reserve"))
	}
	s.room.inflight += n
	return func() {
		s.room.mu.Lock()
		s.room.inflight -= n
		s.room.mu.Unlock()
	}, nil
}

// roomReader is the body of a PUT whose length is not known: every
// roomEvery bytes it asks again whether the store is past its reserve,
// and stops the upload with a 507 if so.
type roomReader struct {
	s    *Service
	ctx  context.Context
	r    io.Reader
	next int64
	n    int64
}

// copyAhead bounds how far reading runs ahead of writing in copyIn (its
// buffers).
const copyAhead = 4 * copyBufSize

// roomEvery is how often a body of unknown length is checked against the
// reserve (a variable for the tests).
var roomEvery int64 = 64 << 20

func (rr *roomReader) Read(p []byte) (int, error) {
	// Checked before reading, and said with no bytes: a reader's error
	// that comes with a full buffer is dropped by io.ReadFull.
	if rr.n >= rr.next {
		rr.next = rr.n + roomEvery
		// What was read but may not be on disk yet: the copy's buffers.
		done, err := rr.s.checkRoom(rr.ctx, min(rr.n, copyAhead), false)
		if err != nil {
			return 0, err
		}
		done()
	}
	k, err := rr.r.Read(p)
	rr.n += int64(k)
	return k, err
}

// dbFreeGauge is the database's free pages in bytes, read at most every
// dbFreeEvery (only when the file system is nearly full).
type dbFreeGauge struct {
	mu sync.Mutex
	at time.Time
	n  int64
}

const dbFreeEvery = 100 * time.Millisecond

// invalidate makes the next read ask the database again (a commit that
// deleted blobs freed pages).
func (g *dbFreeGauge) invalidate() {
	g.mu.Lock()
	g.at = time.Time{}
	g.mu.Unlock()
}

// take returns the database's free bytes as last read, after taking n of
// them for a PUT it admits (until the next read): PUTs admitted in the same
// window do not count the same pages twice.
func (g *dbFreeGauge) take(ctx context.Context, s *Service, n int64) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.at) >= dbFreeEvery {
		free, err := s.db.FreeBytes(ctx)
		if err != nil {
			return 0
		}
		g.n, g.at = free, time.Now()
	}
	free := g.n
	g.n -= min(n, g.n)
	return free
}
