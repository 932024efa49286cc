package network

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/network/ipam"
	"github.com/monostack/monostack/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Syncer delivers one host's complete desired state to that host's agent.
type Syncer interface {
	Sync(ctx context.Context, host string, state datapath.HostState) error
}

// Config is what the network service needs to know of the cloud.
type Config struct {
	// Host is the name of this node: the host whose agent runs the
	// routers (the network node). Empty means os.Hostname().
	Host string
	// AvailabilityZone is the one zone networks and routers are in ("nova").
	AvailabilityZone string
	// TenantNetworkType is the provider:network_type of project networks
	// ("vxlan"); their segmentation ids are allocated from 1.
	TenantNetworkType string
	// TenantMTU and ExternalMTU are the default MTUs of project networks
	// (1450, VXLAN's overhead taken off 1500) and external networks (1500).
	TenantMTU, ExternalMTU int
	// PhysicalNetwork is the provider:physical_network of flat external
	// networks ("public").
	PhysicalNetwork string
	// Quotas override the default per-project limits by resource name
	// ("network", "subnet", "port", "router", "floatingip",
	// "security_group", "security_group_rule"); -1 is unlimited.
	Quotas map[string]int
	// SyncDelay is the least time between two rounds of syncing a host,
	// so that a burst of changes is delivered as one state (5 ms).
	SyncDelay time.Duration
	// ResyncInterval is how often every host is sent its state even when
	// nothing changed, for level-triggered convergence (30 s).
	ResyncInterval time.Duration
	// Bootstrap addresses; see BootstrapConfig.
	PublicCIDR, PublicGateway, PublicPoolStart, PublicPoolEnd string
	PrivateCIDR                                               string
}

// Defaults of the bootstrap networks. The public range is TEST-NET-3 and
// the private one TEST-NET-2 (RFC 5737): neither is routed anywhere, so
// neither collides with the networks of the host monostack runs on.
const (
	DefaultPublicCIDR      = "203.0.113.0/24"
	DefaultPublicGateway   = "203.0.113.1"
	DefaultPublicPoolStart = "203.0.113.10"
	DefaultPublicPoolEnd   = "203.0.113.250"
	DefaultPrivateCIDR     = "198.51.100.0/24"
)

func (c *Config) setDefaults() {
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.AvailabilityZone == "" {
		c.AvailabilityZone = "nova"
	}
	if c.TenantNetworkType == "" {
		c.TenantNetworkType = "vxlan"
	}
	if c.TenantMTU == 0 {
		c.TenantMTU = 1450
	}
	if c.ExternalMTU == 0 {
		c.ExternalMTU = 1500
	}
	if c.PhysicalNetwork == "" {
		c.PhysicalNetwork = "public"
	}
	if c.SyncDelay == 0 {
		c.SyncDelay = 5 * time.Millisecond
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = 30 * time.Second
	}
	if c.PublicCIDR == "" {
		c.PublicCIDR, c.PublicGateway = DefaultPublicCIDR, DefaultPublicGateway
		c.PublicPoolStart, c.PublicPoolEnd = DefaultPublicPoolStart, DefaultPublicPoolEnd
	}
	if c.PrivateCIDR == "" {
		c.PrivateCIDR = DefaultPrivateCIDR
	}
}

// Service is the Neutron service.
type Service struct {
	db     *store.DB
	cfg    Config
	syncTo Syncer
	log    *slog.Logger

	hosts hostSyncer

	// defaultSG serialises the creation of projects' default groups.
	defaultSG sync.Mutex

	started time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

// New opens the network service on db, running its migrations, and starts
// the loop that delivers each host's desired state to syncer (which may be
// nil: nothing is delivered). Close stops the loop.
func New(ctx context.Context, db *store.DB, cfg Config, syncer Syncer, log *slog.Logger) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "network", sub); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.setDefaults()
	s := &Service{db: db, cfg: cfg, syncTo: syncer, log: log, started: now(), done: make(chan struct{})}
	s.hosts.init()
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.runSync(runCtx)
	}()
	return s, nil
}

// Close stops the sync loop and waits for it.
func (s *Service) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// Host is the node the routers run on.
func (s *Service) Host() string { return s.cfg.Host }

func newID() string { return uuid.NewString() }

func now() time.Time { return time.Now().UTC() }

// timeText is how times are stored: RFC 3339 with microseconds, UTC.
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func parseTime(s string) time.Time {
	t, _ := time.Parse("2006-01-02T15:04:05.000000Z", s)
	return t
}

// wireTime is how Neutron shows times: seconds, UTC, with a Z.
func wireTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// write runs fn in a transaction, retrying when IPAM lost a race to a
// concurrent writer, and marks the hosts' states for syncing after a
// successful commit.
func (s *Service) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for range 20 {
		err = s.db.Tx(ctx, fn)
		if !errors.Is(err, ipam.ErrRace) {
			break
		}
	}
	if err == nil {
		s.changed()
	}
	return err
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func isConflict(err error) bool { return errors.Is(store.Translate(err), store.ErrConflict) }
