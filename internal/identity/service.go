package identity

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config is what the identity service needs to know of the cloud.
type Config struct {
	BaseURL          string // e.g. http://127.0.0.1:8800; Identity is BaseURL+"/identity"
	Region           string
	TokenTTL         time.Duration
	BcryptCost       int
	AdminProjectName string // the project whose admins administer the cloud ("admin")
	// AllowExpiredWindow is how long past expiry ?allow_expired still validates.
	AllowExpiredWindow time.Duration
}

// Service is the Keystone service.
type Service struct {
	db   *store.DB
	keys *fernet.Repo
	cfg  Config
	log  *slog.Logger

	// gen counts writes that may change what a token means; cached
	// validations from an older generation are not trusted.
	gen      atomic.Uint64
	cache    *tokenCache
	catalogC catalogCache
	scopes   scopeCache

	revMu sync.RWMutex
	revs  revocations

	dummyOnce sync.Once
	dummyHash []byte
}

// New opens the identity service on db, running its migrations.
func New(ctx context.Context, db *store.DB, keys *fernet.Repo, cfg Config, log *slog.Logger) (*Service, error) {
	if err := db.Migrate(ctx, "identity", subFS(migrations, "migrations")); err != nil {
		return nil, err
	}
	if cfg.AdminProjectName == "" {
		cfg.AdminProjectName = "admin"
	}
	if cfg.AllowExpiredWindow == 0 {
		cfg.AllowExpiredWindow = 48 * time.Hour
	}
	s := &Service{db: db, keys: keys, cfg: cfg, log: log, cache: newTokenCache(16384)}
	if err := s.loadRevocations(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Warm makes, in the background, the hash unknown users are checked
// against (so that they cost as much as a wrong password). The app calls it
// once the cloud is ready, so that it does not compete with start-up.
func (s *Service) Warm() { go s.dummy() }

// changed marks a write that can alter the meaning of existing tokens.
func (s *Service) changed() { s.gen.Add(1) }

// newID returns a Keystone-style id: 32 hex digits.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func now() time.Time { return time.Now().UTC() }

// timeText is how times are stored: RFC 3339 with microseconds, UTC.
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func parseTime(s string) time.Time {
	t, _ := time.Parse("2006-01-02T15:04:05.000000Z", s)
	return t
}

// URL returns the public Identity endpoint.
func (s *Service) URL() string { return s.cfg.BaseURL + "/identity" }

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
