package compute

import (
	"context"
	"crypto/rand"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/lockmap"
	"github.com/monostack/monostack/internal/placement"
	"github.com/monostack/monostack/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Image is what compute needs of a Glance image.
type Image struct {
	ID, Name, Status string
	MinDisk          int64 // GiB
	MinRAM           int64 // MiB
	Size             int64 // bytes
	DiskFormat       string
	ContainerFormat  string
	// Format is the image service's description of the bytes (image.Format
	// in monostack), passed through to the host as is.
	Format any
}

// Images looks up images for compute.
type Images interface {
	// Lookup returns the image if the caller may boot it, and an error
	// that is (or wraps) store.ErrNotFound or a 404 *api.Error otherwise.
	Lookup(ctx context.Context, c *api.Credentials, id string) (Image, error)
}

// FixedIP is an address on a port.
type FixedIP struct {
	SubnetID string `json:"subnet_id,omitempty"`
	IP       string `json:"ip_address,omitempty"`
}

// Port is a Neutron port as compute needs it.
type Port struct {
	ID, ProjectID, NetworkID string
	NetworkName              string
	MAC                      string
	DeviceID, DeviceOwner    string
	HostID                   string
	// Status is Neutron's (ACTIVE, DOWN, BUILD): os-interface's
	// port_state; "" when the Networks does not know it.
	Status    string
	FixedIPs  []FixedIP
	Addresses []netip.Prefix // fixed IPs with their subnets' prefix lengths
	Gateways  []netip.Addr
	MTU       int
}

// PortRequest asks for a new port for a server.
type PortRequest struct {
	ProjectID, NetworkID string
	Name                 string
	DeviceID             string
	DeviceOwner          string
	FixedIPs             []FixedIP // nil: automatic
	SecurityGroups       []string  // group ids or names of the project; nil: default
}

// Networks is what compute needs of the network service.
type Networks interface {
	// CheckNetwork returns nil if the network exists and the project may
	// plug ports into it (its own, shared or external), and an error that
	// is a 404 otherwise. It returns the network's name.
	CheckNetwork(ctx context.Context, projectID, networkID string) (name string, err error)
	// AutoNetwork returns the network a server of the project gets for
	// networks "auto" (or no networks before 2.37), or "" if there is none.
	AutoNetwork(ctx context.Context, projectID string) (string, error)
	CreatePort(ctx context.Context, r PortRequest) (Port, error)
	GetPort(ctx context.Context, id string) (Port, error)
	// DevicePorts returns the ports whose device is deviceID.
	DevicePorts(ctx context.Context, deviceID string) ([]Port, error)
	// BindPort binds a port to host for device (empty host: unbinds), with
	// the binding profile the host asks for (see PortProfiler).
	BindPort(ctx context.Context, id, host, deviceID, deviceOwner string, profile map[string]any) (Port, error)
	// DeletePort deletes a port; a missing port is not an error.
	DeletePort(ctx context.Context, id string) error
}

// Placement picks hosts and holds the servers' allocations;
// *placement.Service implements it.
type Placement interface {
	EnsureProvider(ctx context.Context, host string, inv map[string]placement.Inventory) (string, error)
	// Claim picks a host and records the allocations in one transaction,
	// or fails with placement.ErrNoValidHost.
	Claim(ctx context.Context, c placement.Claim) (host string, err error)
	Release(ctx context.Context, consumerID string) error
}

// Config is the compute service's settings.
type Config struct {
	// Region and AvailabilityZone (default "nova") of the servers.
	AvailabilityZone string
	// Controller is the name the control plane's own services
	// (nova-scheduler, nova-conductor) show in os-services; default "controller".
	Controller string
	// DefaultQuotas override the upstream defaults (instances 10, cores 20,
	// ram 51200, key_pairs 100, server_groups 10, server_group_members 10, ...).
	DefaultQuotas map[string]int64
	// BuildTimeout bounds one attempt of EnsureServer (default 5 minutes).
	BuildTimeout time.Duration
}

// Service is the compute service.
type Service struct {
	db        *store.DB
	cfg       Config
	images    Images
	networks  Networks
	hosts     Hosts
	placement Placement
	volumes   Volumes
	log       *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	locks lockmap.Map // by server id

	router http.Handler // for tests
}

// New opens the compute service on db, running its migrations and seeding
// DevStack's flavors. Call Start to resume work left by a previous run.
func New(ctx context.Context, db *store.DB, cfg Config, images Images, networks Networks, hosts Hosts, pl Placement, log *slog.Logger) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "compute", sub); err != nil {
		return nil, err
	}
	if cfg.AvailabilityZone == "" {
		cfg.AvailabilityZone = "nova"
	}
	if cfg.Controller == "" {
		cfg.Controller = "controller"
	}
	if cfg.BuildTimeout == 0 {
		cfg.BuildTimeout = 5 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, cfg: cfg, images: images, networks: networks, hosts: hosts, placement: pl, log: log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.EnsureFlavors(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the workers and waits for them; work they leave is resumed
// by the next Start.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// spawn runs fn for a server in its own goroutine, one at a time per server.
func (s *Service) spawn(id string, fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		unlock := s.lockServer(id)
		defer unlock()
		if s.ctx.Err() != nil {
			return
		}
		fn(s.ctx)
	}()
}

func (s *Service) lockServer(id string) func() { return s.locks.Lock(id) }

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const timeFormat = "2006-01-02T15:04:05.000000Z"

func nowText() string { return time.Now().UTC().Format(timeFormat) }

func parseTime(s string) time.Time { t, _ := time.Parse(timeFormat, s); return t }

// apiTime is how Nova shows times: seconds, "Z".
func apiTime(s string) string {
	if s == "" {
		return ""
	}
	return parseTime(s).Format("2006-01-02T15:04:05Z")
}

// usgTime is how OS-SRV-USG shows times: microseconds, no zone.
func usgTime(s string) any {
	if s == "" {
		return nil
	}
	return parseTime(s).Format("2006-01-02T15:04:05.000000")
}
