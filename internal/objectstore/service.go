package objectstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/monostack/monostack/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config is where the object store keeps bytes and the limits it enforces
// (and reports in /info). Zero values take Swift's defaults.
type Config struct {
	// DataDir holds the object files (DataDir/objects) and the files being
	// written (DataDir/tmp). Required.
	DataDir string

	MaxFileSize            int64 // bytes of one object; default 5 GiB + 2
	MaxMetaNameLength      int   // default 128
	MaxMetaValueLength     int   // default 256
	MaxMetaCount           int   // default 90
	MaxMetaOverallSize     int   // default 4096
	MaxHeaderSize          int   // default 8192
	MaxObjectNameLength    int   // default 1024
	MaxContainerNameLength int   // default 256
	MaxAccountNameLength   int   // default 256
	ContainerListingLimit  int   // default 10000
	AccountListingLimit    int   // default 10000
	MaxManifestSegments    int   // SLO: default 1000
	MaxManifestSize        int64 // SLO: default 8 MiB
	MaxDeletesPerRequest   int   // bulk delete: default 10000
	MaxFailedDeletes       int   // bulk delete: default 1000

	// ExpiryInterval is how often objects past their X-Delete-At are
	// removed (they are hidden from the moment they expire); default 10s.
	ExpiryInterval time.Duration

	// FallocateReserve is the space, in bytes, that PUTs leave free on
	// the data dir's file system (Swift's fallocate_reserve): a PUT that
	// would eat into it is a 507. 0 is the default, 1 % of the file
	// system and at least 8 MiB (space.go says why); -1 is none.
	FallocateReserve int64
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = 5*(1<<30) + 2
	}
	def(&c.MaxMetaNameLength, 128)
	def(&c.MaxMetaValueLength, 256)
	def(&c.MaxMetaCount, 90)
	def(&c.MaxMetaOverallSize, 4096)
	def(&c.MaxHeaderSize, 8192)
	def(&c.MaxObjectNameLength, 1024)
	def(&c.MaxContainerNameLength, 256)
	def(&c.MaxAccountNameLength, 256)
	def(&c.ContainerListingLimit, 10000)
	def(&c.AccountListingLimit, 10000)
	def(&c.MaxManifestSegments, 1000)
	if c.MaxManifestSize <= 0 {
		c.MaxManifestSize = 8 << 20
	}
	def(&c.MaxDeletesPerRequest, 10000)
	def(&c.MaxFailedDeletes, 1000)
	if c.ExpiryInterval <= 0 {
		c.ExpiryInterval = 10 * time.Second
	}
}

// Service is the Swift service. It runs two goroutines, the committer and
// the expirer, until Close.
type Service struct {
	db *store.DB
	// room and dbFree: what checkRoom counts beside statfs.
	room   room
	dbFree dbFreeGauge
	// blobsFreed: the transaction being committed deleted blobs.
	blobsFreed atomic.Bool
	cfg        Config
	log        *slog.Logger
	blobs      *blobStore
	// md5s hashes large uploads side by side in SIMD lanes.
	md5s md5Lanes

	st     statements
	writes chan *writeReq
	// pending counts writes on their way to the committer (their file
	// being made durable): the committer waits a moment for them, so that
	// they share its commit.
	pending atomic.Int64
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New opens the object store: it runs the migrations, checks that rows and
// files agree (see the package comment) and starts the committer and the
// expirer.
func New(ctx context.Context, db *store.DB, cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("objectstore: no data directory")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.setDefaults()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "objectstore", sub); err != nil {
		return nil, err
	}
	blobs, err := openBlobStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, cfg: cfg, log: log, blobs: blobs, writes: make(chan *writeReq)}
	if err := s.st.prepare(ctx, db); err != nil {
		return nil, err
	}
	if err := s.recover(ctx); err != nil {
		s.st.close()
		return nil, fmt.Errorf("objectstore: start-up check: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.commitLoop()
	go s.expireLoop()
	return s, nil
}

// Close stops the committer and the expirer and waits for them. Call it
// once the HTTP server has stopped serving the Router; writes after Close
// fail with 503.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	s.md5s.Close()
	s.st.close()
	return nil
}

// txFunc is one caller's part of a transaction. Its ctx is not the
// request's: a client going away must not interrupt a transaction that
// others' writes share.
type txFunc func(ctx context.Context, tx *sql.Tx) error

// A writeReq is one caller's part of a group commit.
type writeReq struct {
	fn      txFunc
	err     error
	done    chan error
	pending bool // counted in Service.pending
}

// maxBatch bounds how many writes share one transaction.
const maxBatch = 256

// write runs fn in a transaction of the committer and returns once that
// transaction is durable (fn's own error, or the commit's). fn may run
// beside other callers' fns in one transaction, each in its own savepoint,
// so an error rolls back only its own changes.
func (s *Service) write(fn txFunc) error {
	return s.submit(&writeReq{fn: fn, done: make(chan error, 1)})
}

// writeSoon announces a write that will follow shortly (after an fsync):
// until it is submitted with the returned function, the committer holds a
// commit back for up to maxWait so that the writes ride together. The
// returned function must be called exactly once, with nil to withdraw.
func (s *Service) writeSoon() func(fn txFunc) error {
	s.pending.Add(1)
	return func(fn txFunc) error {
		if fn == nil {
			s.pending.Add(-1)
			return nil
		}
		return s.submit(&writeReq{fn: fn, done: make(chan error, 1), pending: true})
	}
}

func (s *Service) submit(w *writeReq) error {
	select {
	case s.writes <- w:
	case <-s.ctx.Done():
		if w.pending {
			s.pending.Add(-1)
		}
		return errUnavailable()
	}
	return <-w.done
}

// maxWait is the longest a commit waits for announced writes.
const maxWait = 1 * time.Millisecond

func (s *Service) commitLoop() {
	defer s.wg.Done()
	batch := make([]*writeReq, 0, maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	add := func(w *writeReq) {
		if w.pending {
			s.pending.Add(-1)
		}
		batch = append(batch, w)
	}
	for {
		batch = batch[:0]
		select {
		case <-s.ctx.Done():
			return
		case w := <-s.writes:
			add(w)
		}
		deadline := time.Now().Add(maxWait)
	gather:
		for len(batch) < maxBatch {
			select {
			case w := <-s.writes:
				add(w)
				continue
			default:
			}
			wait := time.Until(deadline)
			if s.pending.Load() <= 0 || wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case w := <-s.writes:
				add(w)
			case <-timer.C:
				break gather
			}
			timer.Stop()
		}
		s.commitBatch(batch)
	}
}

func (s *Service) commitBatch(batch []*writeReq) {
	multi := len(batch) > 1

	// The commit is not tied to any request: a client going away must not
	// undo what others wait for.
	ctx := context.Background()
	txErr := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, w := range batch {
			if multi {
				if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
					return err
				}
			}
			w.err = store.Translate(w.fn(ctx, tx))
			if !multi {
				return w.err
			}
			if w.err != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
				return err
			}
		}
		return nil
	})
	if s.blobsFreed.Swap(false) {
		s.dbFree.invalidate()
	}
	for _, w := range batch {
		if w.err == nil {
			w.err = storageError(txErr)
		}
		w.done <- w.err
	}
}

func (s *Service) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if _, err := s.reapExpired(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Error("removing expired objects", "err", err)
			}
			s.shrinkDB()
		}
	}
}

// Deleted small objects leave free pages in the database (inline.go):
// past shrinkAbove of them, all but shrinkKeep go back to the file system,
// as deleting a Swift object frees its disk. The pages kept serve the next
// small PUTs without growing the file.
const (
	shrinkAbove = 32 << 20
	shrinkKeep  = 8 << 20
)

func (s *Service) shrinkDB() {
	if free, err := s.db.FreeBytes(s.ctx); err != nil || free <= shrinkAbove {
		return
	}
	freed, err := s.db.Shrink(s.ctx, shrinkKeep)
	if freed > 0 {
		s.dbFree.invalidate()
		s.log.Debug("gave the database's free pages back", "bytes", freed)
	}
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("shrinking the database", "err", err)
	}
}

// Times are kept as microseconds since the epoch.
func nowMicro() int64 { return time.Now().UnixMicro() }

// xTimestamp is Swift's X-Timestamp form: seconds with five decimals.
func xTimestamp(us int64) string { return fmt.Sprintf("%d.%05d", us/1e6, us%1e6/10) }

// lastModified is the second a Last-Modified header names: Swift rounds up.
func lastModified(us int64) time.Time {
	return time.Unix((us+999999)/1e6, 0).UTC()
}

func httpDate(us int64) string { return lastModified(us).Format(http.TimeFormat) }

// listingTime is the last_modified of listings: ISO 8601, microseconds, no zone.
func listingTime(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000")
}
