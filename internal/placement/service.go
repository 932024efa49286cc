package placement

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Service is the Placement service.
type Service struct {
	db  *store.DB
	log *slog.Logger
}

// New opens the placement service on db, running its migrations.
func New(ctx context.Context, db *store.DB, log *slog.Logger) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "placement", sub); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, log: log}, nil
}

// Default allocation ratios of a compute host's inventory, as Nova's
// initial_*_allocation_ratio options.
const (
	DefaultCPURatio  = 16.0
	DefaultRAMRatio  = 1.5
	DefaultDiskRatio = 1.0
)

// Standard resource classes.
const (
	VCPU     = "VCPU"
	MemoryMB = "MEMORY_MB"
	DiskGB   = "DISK_GB"
)

// Inventory is one resource class of a provider.
type Inventory struct {
	Total           int64   `json:"total"`
	Reserved        int64   `json:"reserved"`
	MinUnit         int64   `json:"min_unit"`
	MaxUnit         int64   `json:"max_unit"`
	StepSize        int64   `json:"step_size"`
	AllocationRatio float64 `json:"allocation_ratio"`
}

// Capacity is how much of the class can be allocated in all.
func (i Inventory) Capacity() int64 {
	return int64(float64(i.Total-i.Reserved) * i.AllocationRatio)
}

func (i Inventory) withDefaults() Inventory {
	if i.MinUnit == 0 {
		i.MinUnit = 1
	}
	if i.MaxUnit == 0 {
		i.MaxUnit = i.Total
	}
	if i.StepSize == 0 {
		i.StepSize = 1
	}
	if i.AllocationRatio == 0 {
		i.AllocationRatio = 1.0
	}
	return i
}

// Ratios are a host's allocation ratios (Nova's cpu_, ram_ and
// disk_allocation_ratio); a zero one is placement's default.
type Ratios struct{ CPU, RAM, Disk float64 }

func (r Ratios) withDefaults() Ratios {
	if r.CPU <= 0 {
		r.CPU = DefaultCPURatio
	}
	if r.RAM <= 0 {
		r.RAM = DefaultRAMRatio
	}
	if r.Disk <= 0 {
		r.Disk = DefaultDiskRatio
	}
	return r
}

// HostInventory is the usual inventory of a compute host: VCPU, MEMORY_MB
// and DISK_GB with the allocation ratios r (by default 16, 1.5 and 1),
// memory with the reserved amount given.
func HostInventory(vcpus, memoryMB, diskGB, reservedMB int64, r Ratios) map[string]Inventory {
	r = r.withDefaults()
	inv := map[string]Inventory{
		VCPU:     {Total: vcpus, MaxUnit: vcpus, AllocationRatio: r.CPU},
		MemoryMB: {Total: memoryMB, Reserved: reservedMB, MaxUnit: memoryMB, AllocationRatio: r.RAM},
	}
	if diskGB > 0 {
		inv[DiskGB] = Inventory{Total: diskGB, MaxUnit: diskGB, AllocationRatio: r.Disk}
	}
	return inv
}

// Provider is a resource provider.
type Provider struct {
	UUID, Name           string
	Generation           int64
	ParentUUID, RootUUID string
	CreatedAt, UpdatedAt time.Time
}

// Errors of the Go API.
var (
	// ErrNoValidHost: no provider can hold the request.
	ErrNoValidHost = errors.New("no valid host was found")
)

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

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// conflict is placement's 409 for a stale generation.
func conflict(code, format string, args ...any) error {
	return api.Conflict(format, args...).WithType(code)
}

const (
	codeConcurrentUpdate = "placement.concurrent_update"
	codeInventoryInUse   = "placement.inventory.inuse"
	codeDuplicateName    = "placement.duplicate_name"
	codeUndefined        = "placement.undefined_code"
)
