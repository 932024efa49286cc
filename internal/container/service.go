package container

import (
	"context"
	"embed"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/store"
	"github.com/monostack/monostack/internal/worker"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Image is a Glance image as the containers service needs it.
type Image struct {
	ID, Name, Status string
	ContainerFormat  string
	DiskFormat       string
	Size             int64
	// Rootfs: the image is a plain root filesystem tarball (its command
	// comes from the request); otherwise a docker or OCI image.
	Rootfs bool
}

// Images finds and makes Glance images.
type Images interface {
	// Find returns the image the caller names by id or name, or a 404.
	Find(ctx context.Context, c *api.Credentials, ref string) (Image, error)
	// List returns the images the caller may run.
	List(ctx context.Context, c *api.Credentials) ([]Image, error)
	// Commit stores a container's root filesystem tarball as a new
	// private image of project and returns its id.
	Commit(ctx context.Context, c *api.Credentials, project, name, tag string, write func(w io.Writer) error) (string, error)
}

// Port is a Neutron port of a container.
type Port struct {
	ID, NetworkID, MAC string
	Addresses          []netip.Prefix
	SubnetIDs          []string
}

// Networks is what the containers service needs of Neutron (Kuryr's part).
type Networks interface {
	// Resolve returns the id of the network a project names by id or
	// name, or a 404 when it may not use it.
	Resolve(ctx context.Context, c *api.Credentials, ref string) (string, error)
	// Default is the network a container gets when it asks for none.
	Default(ctx context.Context, project string) (string, error)
	CreatePort(ctx context.Context, project, networkID, deviceID, fixedIP string, securityGroups []string) (Port, error)
	GetPort(ctx context.Context, id string) (Port, string, error) // with its status
	// BindPort plugs the port into the container's namespace on host
	// (empty host: unbinds).
	BindPort(ctx context.Context, id, host, containerID string) error
	DeletePort(ctx context.Context, id string) error
	// SecurityGroupID resolves a project's security group by name or id.
	SecurityGroupID(ctx context.Context, project, ref string) (string, error)
	// SetPortSecurityGroups replaces a port's security groups (ids).
	SetPortSecurityGroups(ctx context.Context, portID string, groups []string) error
}

// Stats are a running container's resource usage.
type Stats struct {
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryUsage int64   `json:"memory_usage"` // bytes
	MemoryLimit int64   `json:"memory_limit"` // bytes
	BlockRead   int64   `json:"block_read"`
	BlockWrite  int64   `json:"block_write"`
	NetRx       int64   `json:"net_rx"`
	NetTx       int64   `json:"net_tx"`
	Pids        int64   `json:"pids"`
}

// Process is one process of a container (top).
type Process struct {
	UID, PID, PPID, Command string
}

// LogOptions choose the lines of a container's logs, as docker logs.
type LogOptions struct {
	Stdout, Stderr, Timestamps bool
	Since                      time.Time // zero: from the start
	Tail                       int       // the last lines only; < 0: all
}

// Hosts runs containers on hosts: the agents, over the bus.
type Hosts interface {
	// Ensure makes the container of spec exist on host, with the volumes
	// mounted (at Create), and run when running is true; it returns its
	// state.
	Ensure(ctx context.Context, host string, spec runtime.Spec, running bool, mounts []VolumeMount) (runtime.State, error)
	// Release lets go of a deleted container's volumes on host
	// (unmounted, their block devices detached).
	Release(ctx context.Context, host, id string, blocks []string) error
	// Action is start, stop, reboot, kill, pause, resume or delete.
	Action(ctx context.Context, host, id, action string, timeout time.Duration, signal int) (runtime.State, error)
	List(ctx context.Context, host string) ([]runtime.State, error)
	// State is one container's state (runtime.ErrNotFound: none).
	State(ctx context.Context, host, id string) (runtime.State, error)
	// Logs returns the lines of a container's console opts choose.
	Logs(ctx context.Context, host, id string, opts LogOptions) ([]byte, error)
	Exec(ctx context.Context, host, id string, args []string, env []string, cwd, user string) (runtime.ExecResult, error)
	Stats(ctx context.Context, host, id string) (Stats, error)
	Top(ctx context.Context, host, id string) ([]Process, error)
	Snapshot(ctx context.Context, host, id string, w io.Writer) error
}

// Config is the containers service's settings.
type Config struct {
	// Host is the one host containers run on (the agent's name).
	Host string
	// AvailabilityZone of the containers (default "nova").
	AvailabilityZone string
	// DefaultQuotas override upstream's (containers 40, cpu 20, memory
	// 51200 MiB, disk 100 GiB).
	DefaultQuotas map[string]int64
	// SyncInterval is how often the states of running containers are
	// read from the host (default 1 s).
	SyncInterval time.Duration
	// HostInfo describes the host for the hosts API.
	HostInfo HostInfo
}

// Service is the containers service (Zun).
type Service struct {
	db       *store.DB
	cfg      Config
	images   Images
	networks Networks
	hosts    Hosts
	volumes  Volumes
	log      *slog.Logger
	started  time.Time

	work *worker.Pool

	syncMu   sync.Mutex
	lastSync time.Time
}

// New opens the containers service on db, running its migrations. Call
// Start to resume work and watch the containers.
func New(ctx context.Context, db *store.DB, cfg Config, images Images, networks Networks, hosts Hosts, log *slog.Logger) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "container", sub); err != nil {
		return nil, err
	}
	if cfg.AvailabilityZone == "" {
		cfg.AvailabilityZone = "nova"
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, cfg: cfg, images: images, networks: networks, hosts: hosts, log: log, started: time.Now().UTC()}
	s.work = worker.New()
	return s, nil
}

// Close stops the workers and the watcher and waits for them; containers
// go on running on their hosts.
func (s *Service) Close() error {
	s.work.Close()
	return nil
}

// spawn runs fn in the background, one at a time per container.
func (s *Service) spawn(id string, fn func(ctx context.Context)) { s.work.Spawn(id, fn) }

func newUUID() string { return uuid.NewString() }

const timeFormat = "2006-01-02T15:04:05.000000"

func nowText() string { return time.Now().UTC().Format(timeFormat) }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
