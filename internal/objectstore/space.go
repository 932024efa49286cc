package objectstore

import (
	"context"
	"errors"
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

// checkRoom refuses (507) a PUT of length bytes (-1: not known yet) that
// would leave less than the reserve free, as Swift's object server does
// with fallocate_reserve. Reading, deleting and metadata stay possible on
// a full store, so that space can be freed. A small object (inline) may
// also take the pages its deleted peers left free inside the database,
// which the file system does not count as free: the database does not
// shrink. statfs costs about a microsecond: it is asked on every PUT.
func (s *Service) checkRoom(ctx context.Context, length int64, inline bool) error {
	var st unix.Statfs_t
	if err := unix.Statfs(s.cfg.DataDir, &st); err != nil {
		return nil // the write itself will tell
	}
	free, total := int64(st.Bavail)*st.Bsize, int64(st.Blocks)*st.Bsize
	reserve := s.cfg.reserve(total)
	if free-max(length, 0) >= reserve {
		return nil
	}
	if inline && free-length+s.dbFree.bytes(ctx, s) >= reserve {
		return nil
	}
	return errInsufficientStorage(errors.New("the object would eat into the file system's reserve"))
}

// dbFreeGauge is the database's free pages in bytes, read at most every
// dbFreeEvery (only when the file system is nearly full).
type dbFreeGauge struct {
	mu sync.Mutex
	at time.Time
	n  int64
}

const dbFreeEvery = 100 * time.Millisecond

// invalidate makes the next read ask the database again (a blob was just
// deleted: pages were freed).
func (g *dbFreeGauge) invalidate() {
	g.mu.Lock()
	g.at = time.Time{}
	g.mu.Unlock()
}

func (g *dbFreeGauge) bytes(ctx context.Context, s *Service) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.at) < dbFreeEvery {
		return g.n
	}
	var pages, size int64
	if err := s.db.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&pages); err != nil {
		return 0
	}
	if err := s.db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
		return 0
	}
	g.n, g.at = pages*size, time.Now()
	return g.n
}
