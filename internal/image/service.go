package image

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/monostack/monostack/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config is what the image service needs to know.
type Config struct {
	// DataDir holds the image bytes: images/<id> (active data),
	// staging/<id> (data staged for import) and tmp/ (uploads in flight).
	DataDir string
	// MaxImageSize is the largest image accepted, in bytes (Glance's
	// image_size_cap); 0 means Glance's default, 1 TiB.
	MaxImageSize int64
	// ImageCountQuota is how many images a project may own (Glance's
	// image_count_total); 0 means unlimited.
	ImageCountQuota int64
	// StorageQuota is how many bytes of image data (active and staged) a
	// project may store (Glance's image_size_total); 0 means unlimited.
	StorageQuota int64
	// HashAlgorithm computes os_hash_value (Glance's hashing_algorithm):
	// a hashlib name from hashAlgorithms; "" means sha512. It costs the
	// upload's speed: SHA-512 is the slowest part of receiving an image.
	HashAlgorithm string
}

// Glance's per-image limits (image_property_quota, image_tag_quota,
// image_member_quota).
const (
	defaultMaxImageSize = 1 << 40
	maxProperties       = 128
	maxTags             = 128
	maxMembers          = 128
)

// StoreID is the one store this service keeps bytes in, as listed by
// /v2/info/stores and shown in an image's "stores".
const StoreID = "file"

// Service is the Glance service.
type Service struct {
	db  *store.DB
	cfg Config
	log *slog.Logger

	imagesDir, stagingDir, tmpDir string
}

// New opens the image service on db, running its migrations, creating the
// data directories and repairing what a crash may have left: uploads that
// were in flight go back to queued and their partial bytes are removed.
func New(ctx context.Context, db *store.DB, cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("image: no data directory configured")
	}
	if cfg.HashAlgorithm == "" {
		cfg.HashAlgorithm = DefaultHashAlgorithm
	}
	if err := CheckHashAlgorithm(cfg.HashAlgorithm); err != nil {
		return nil, err
	}
	if cfg.MaxImageSize <= 0 {
		cfg.MaxImageSize = defaultMaxImageSize
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "image", sub); err != nil {
		return nil, err
	}
	s := &Service{db: db, cfg: cfg, log: log,
		imagesDir:  filepath.Join(cfg.DataDir, "images"),
		stagingDir: filepath.Join(cfg.DataDir, "staging"),
		tmpDir:     filepath.Join(cfg.DataDir, "tmp"),
	}
	for _, d := range []string{s.imagesDir, s.stagingDir, s.tmpDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	if err := s.recover(ctx); err != nil {
		return nil, fmt.Errorf("image: recovering after restart: %w", err)
	}
	return s, nil
}

// recover makes the database and the data directories agree after a crash.
// The database says what was acknowledged; bytes no acknowledged state
// refers to are removed, and states that only exist while a request runs
// (saving, importing) are rolled back.
func (s *Service) recover(ctx context.Context) error {
	tmp, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return err
	}
	for _, e := range tmp {
		os.Remove(filepath.Join(s.tmpDir, e.Name()))
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		t := timeText(now())
		if _, err := tx.ExecContext(ctx, `UPDATE images SET status='queued', size=NULL, virtual_size=NULL,
			checksum=NULL, os_hash_algo=NULL, os_hash_value=NULL, updated_at=? WHERE status='saving'`, t); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE images SET status='uploading', updated_at=? WHERE status='importing'`, t)
		return err
	})
	if err != nil {
		return err
	}
	// Staged data must exist for every uploading image, and nothing else
	// may be staged.
	want, err := s.idsWithStatus(ctx, "uploading")
	if err != nil {
		return err
	}
	if err := s.sweep(s.stagingDir, want); err != nil {
		return err
	}
	for id := range want {
		if _, err := os.Stat(filepath.Join(s.stagingDir, id)); errors.Is(err, os.ErrNotExist) {
			s.log.Warn("staged data lost; image back to queued", "image", id)
			if err := s.resetQueued(ctx, id, "uploading"); err != nil {
				return err
			}
		}
	}
	want, err = s.idsWithStatus(ctx, "active", "deactivated")
	if err != nil {
		return err
	}
	if err := s.sweep(s.imagesDir, want); err != nil {
		return err
	}
	for id := range want {
		if _, err := os.Stat(filepath.Join(s.imagesDir, id)); err != nil {
			s.log.Error("image data missing", "image", id, "err", err)
		}
	}
	return syncDir(s.imagesDir)
}

func (s *Service) idsWithStatus(ctx context.Context, statuses ...string) (map[string]bool, error) {
	q := `SELECT id FROM images WHERE status IN (` + placeholders(len(statuses)) + `)`
	rows, err := s.db.QueryContext(ctx, q, anys(statuses)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// sweep removes the files of dir that are not named in keep.
func (s *Service) sweep(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			s.log.Info("removing unreferenced image data", "path", filepath.Join(dir, e.Name()))
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func now() time.Time { return time.Now().UTC() }

// timeFormat is how times are stored and shown: Glance's seconds, UTC.
const timeFormat = "2006-01-02T15:04:05Z"

func timeText(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	b := make([]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}

func anys[T any](v []T) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}

// syncDir fsyncs a directory, making a rename or removal in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
