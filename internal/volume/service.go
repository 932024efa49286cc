package volume

import (
	"context"
	"embed"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blockdev"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/store"
	"github.com/monostack/monostack/internal/worker"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Image is what the volume service needs of a Glance image.
type Image struct {
	ID, Name, Status            string
	Size                        int64 // bytes
	MinDisk                     int64 // GiB
	DiskFormat, ContainerFormat string
	Checksum                    string
	// Format is what the image's bytes were found to be: a root
	// filesystem (tarball, docker or OCI image) makes a volume holding an
	// ext4 filesystem of it; anything else is copied as is.
	Format runtime.ImageFormat
}

// Images reads Glance images for volumes made from them.
type Images interface {
	// Lookup returns the image if the caller may use it, and a 404 error
	// otherwise.
	Lookup(ctx context.Context, c *api.Credentials, id string) (Image, error)
	// Open opens the image's bytes.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
}

// Objects is the object store backups are written to (Swift, in the
// project's own account).
type Objects interface {
	// PutObject stores an object, creating the container if needed.
	PutObject(ctx context.Context, project, container, name string, r io.Reader) error
	GetObject(ctx context.Context, project, container, name string) (io.ReadCloser, error)
	// DeleteObject deletes an object; a missing one is not an error.
	DeleteObject(ctx context.Context, project, container, name string) error
}

// Config is the volume service's settings.
type Config struct {
	// AvailabilityZone of the volumes (default "nova").
	AvailabilityZone string
	// Host names the volume backend in os-vol-host-attr:host and
	// os-services (default "monostack").
	Host string
	// DefaultQuotas override upstream's defaults (volumes 10, snapshots
	// 10, gigabytes 1000, backups 10, backup_gigabytes 1000, groups 10,
	// per_volume_gigabytes -1).
	DefaultQuotas map[string]int64
	// MaxSizeGB bounds one volume (default 1024).
	MaxSizeGB int64
	// TempDir is where volumes from root filesystem images are made
	// before they are copied onto the volume; it needs room for the
	// unpacked image and the filesystem's data. New removes what a crash
	// left there, unless it is the default, os.TempDir(), which others
	// share.
	TempDir string
}

// Service is the Block Storage service.
type Service struct {
	db      *store.DB
	cfg     Config
	blocks  blockdev.Store
	images  Images
	objects Objects
	log     *slog.Logger
	started time.Time

	work *worker.Pool
}

// New opens the volume service on db with the volumes in blocks, running
// its migrations and making the default volume type. images and objects
// may be nil (no volumes from images; no backups). Call Start to resume
// the work a previous run left.
func New(ctx context.Context, db *store.DB, cfg Config, blocks blockdev.Store, images Images, objects Objects, log *slog.Logger) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "volume", sub); err != nil {
		return nil, err
	}
	if cfg.AvailabilityZone == "" {
		cfg.AvailabilityZone = "nova"
	}
	if cfg.Host == "" {
		cfg.Host = "monostack"
	}
	if cfg.MaxSizeGB == 0 {
		cfg.MaxSizeGB = 1024
	}
	sharedTemp := cfg.TempDir == ""
	if sharedTemp {
		cfg.TempDir = os.TempDir()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, cfg: cfg, blocks: blocks, images: images, objects: objects, log: log, started: time.Now().UTC()}
	if !sharedTemp {
		if err := os.MkdirAll(cfg.TempDir, 0o700); err != nil {
			return nil, err
		}
		if err := s.cleanTemp(); err != nil {
			return nil, err
		}
	}
	s.work = worker.New()
	if err := s.ensureDefaultType(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the workers and waits for them; work they leave is resumed
// by the next Start.
func (s *Service) Close() error {
	s.work.Close()
	return nil
}

// spawn runs fn in the background, one at a time per key (a volume's id).
func (s *Service) spawn(key string, fn func(ctx context.Context)) { s.work.Spawn(key, fn) }

// backendHost is the volume's os-vol-host-attr:host ("host@backend#pool").
func (s *Service) backendHost() string { return s.cfg.Host + "@loopfile#loopfile" }

func newUUID() string { return uuid.NewString() }

const timeFormat = "2006-01-02T15:04:05.000000"

func nowText() string { return time.Now().UTC().Format(timeFormat) }

// nullable is a JSON null for "".
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GiB is the unit of a volume's size.
const GiB = 1 << 30

// blockID names a volume's and a snapshot's bytes in the block store.
func volumeBlock(id string) string   { return "volume-" + id }
func snapshotBlock(id string) string { return "snapshot-" + id }
