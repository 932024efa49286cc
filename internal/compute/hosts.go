package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/monostack/monostack/internal/placement"
	"github.com/monostack/monostack/internal/store"
)

// Power states, as Nova numbers them.
const (
	PowerNoState   = 0
	PowerRunning   = 1
	PowerPaused    = 3
	PowerShutdown  = 4
	PowerCrashed   = 6
	PowerSuspended = 7
)

// Actions sent to Hosts.Action.
const (
	ActionStop       = "stop"
	ActionStart      = "start"
	ActionRebootSoft = "reboot-soft"
	ActionRebootHard = "reboot-hard"
	ActionPause      = "pause"
	ActionUnpause    = "unpause"
	ActionSuspend    = "suspend"
	ActionResume     = "resume"
)

// Hosts is the host side of compute (the agent of each host, reached over
// the bus in monostack). Every call is idempotent and names the desired
// state, so a repeated call after a crash or a lost reply is harmless.
//
// Lifecycle of a server on its host: EnsureServer makes it and starts it
// (again, with a new Spec.Generation after a rebuild: the root is made
// afresh from the image, the ports and config drive kept); Action changes
// its power state; DeleteServer removes it and everything the host made for
// it. The host reports the power states it sees through
// Service.ReportServers, at start, periodically and on changes.
type Hosts interface {
	// EnsureServer makes the server described by spec exist and run on
	// host. It returns once it runs (nil), or fails with the reason, which
	// becomes the server's fault.
	EnsureServer(ctx context.Context, host string, spec ServerSpec) error
	// DeleteServer stops and removes the server; an unknown server is not
	// an error.
	DeleteServer(ctx context.Context, host, serverID string) error
	// Action applies one of the Action* constants to a server.
	Action(ctx context.Context, host, serverID, action string) error
	// ConsoleLog returns the last length lines (all when length <= 0) of
	// the server's console.
	ConsoleLog(ctx context.Context, host, serverID string, length int) (string, error)
	// Snapshot writes the server's root filesystem, as a rootfs tarball,
	// to w (createImage; the caller uploads it to the Image service).
	Snapshot(ctx context.Context, host, serverID string, w SnapshotWriter) error
}

// SnapshotWriter takes the bytes of a snapshot.
type SnapshotWriter interface {
	Write(p []byte) (int, error)
}

// PortProfiler is implemented by Hosts that need a binding profile on the
// ports of their servers (the network namespace to plug them into).
type PortProfiler interface {
	PortProfile(host, serverID, portID string) map[string]any
}

// ServerSpec is everything the host needs to run a server.
type ServerSpec struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Hostname   string `json:"hostname"`
	ProjectID  string `json:"project_id"`
	Generation int    `json:"generation"` // bumped by rebuild
	Image      Image  `json:"image"`
	Flavor     struct {
		Name   string `json:"name"`
		VCPUs  int64  `json:"vcpus"`
		RAMMB  int64  `json:"ram_mb"`
		DiskGB int64  `json:"disk_gb"`
	} `json:"flavor"`
	Ports     []PortSpec        `json:"ports"`
	KeyName   string            `json:"key_name,omitempty"`
	PublicKey string            `json:"public_key,omitempty"`
	UserData  []byte            `json:"user_data,omitempty"` // decoded
	Metadata  map[string]string `json:"metadata"`
	// ConfigDrive is the config drive's files by path:
	// openstack/latest/meta_data.json, openstack/latest/user_data,
	// openstack/latest/network_data.json.
	ConfigDrive map[string][]byte `json:"config_drive"`
	// RootVolume, for a server booted from a volume, is the volume whose
	// filesystem is its root, instead of Image (which is then empty).
	RootVolume *HostVolume `json:"root_volume,omitempty"`
}

// PortSpec is one port of a server.
type PortSpec struct {
	ID        string         `json:"id"`
	NetworkID string         `json:"network_id"`
	MAC       string         `json:"mac"`
	Addresses []netip.Prefix `json:"addresses"`
	Gateways  []netip.Addr   `json:"gateways"`
	MTU       int            `json:"mtu"`
}

// ServerState is a server as its host sees it.
type ServerState struct {
	ID    string `json:"id"`
	Power int    `json:"power_state"` // Power* constants
	// Error says why the server could not be made or run, if it could not.
	Error string `json:"error,omitempty"`
}

// HostInfo is a compute host as it registers.
type HostInfo struct {
	Name     string
	IP       string
	VCPUs    int64
	MemoryMB int64
	DiskGB   int64
	// ReservedMB is memory kept for the host itself.
	ReservedMB int64
	// Ratios are the allocation ratios of its inventory (zero: placement's
	// defaults).
	Ratios placement.Ratios
	// HypervisorType as shown by os-hypervisors (default "runc").
	HypervisorType string
}

// RegisterHost records a compute host (its hypervisor and nova-compute
// service) and its resource provider. It is idempotent; call it at every
// agent start.
func (s *Service) RegisterHost(ctx context.Context, h HostInfo) error {
	if h.Name == "" || h.VCPUs < 1 || h.MemoryMB < 1 || h.DiskGB < 1 {
		return fmt.Errorf("register host %q: name, vcpus, memory and disk are required", h.Name)
	}
	if h.HypervisorType == "" {
		h.HypervisorType = "runc"
	}
	if _, err := s.placement.EnsureProvider(ctx, h.Name, placement.HostInventory(h.VCPUs, h.MemoryMB, h.DiskGB, h.ReservedMB, h.Ratios)); err != nil {
		return fmt.Errorf("register host %s: %w", h.Name, err)
	}
	now := nowText()
	_, err := s.db.ExecContext(ctx, `INSERT INTO compute_hosts(uuid, service_uuid, name, vcpus, memory_mb, disk_gb, host_ip, hypervisor_type, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET vcpus=excluded.vcpus, memory_mb=excluded.memory_mb,
		disk_gb=excluded.disk_gb, host_ip=excluded.host_ip, hypervisor_type=excluded.hypervisor_type, updated_at=excluded.updated_at`,
		newUUID(), newUUID(), h.Name, h.VCPUs, h.MemoryMB, h.DiskGB, h.IP, h.HypervisorType, now, now)
	return store.Translate(err)
}

// ReportServers is how a host tells what runs on it. With full set, the
// report is the whole host: a server the database places there that is not
// in it is gone (an ACTIVE one becomes SHUTOFF). Power states are applied
// as Nova's power-state sync does: an ACTIVE server found shut down or
// crashed becomes SHUTOFF, a build that failed becomes ERROR with the
// host's reason as its fault. Servers with an action in flight are left to
// that action.
func (s *Service) ReportServers(ctx context.Context, host string, states []ServerState, full bool) error {
	return s.SyncHost(ctx, host, func(context.Context) ([]ServerState, error) { return states, nil }, full)
}

// SyncHost is ReportServers with the host's states read by list after the
// records: a record is then compared with a state of the host at least as
// new. (Read the other way round, a server whose build ended between the
// two reads would be compared with its state from before it started, and
// an ACTIVE server turned SHUTOFF.)
func (s *Service) SyncHost(ctx context.Context, host string, list func(context.Context) ([]ServerState, error), full bool) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, vm_state, coalesce(task_state, ''), power_state FROM compute_servers
		WHERE host=? AND deleted=0`, host)
	if err != nil {
		return err
	}
	type row struct {
		id, vm, task string
		power        int
	}
	var servers []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.vm, &r.task, &r.power); err != nil {
			rows.Close()
			return err
		}
		servers = append(servers, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	states, err := list(ctx)
	if err != nil {
		return err
	}
	seen := map[string]ServerState{}
	for _, st := range states {
		seen[st.ID] = st
	}
	for _, r := range servers {
		st, ok := seen[r.id]
		if !ok {
			if !full {
				continue
			}
			st = ServerState{ID: r.id, Power: PowerNoState}
		}
		if r.task != "" {
			continue // an action or build is in flight; it decides
		}
		vm := r.vm
		var fault *Fault
		switch {
		case st.Error != "" && (vm == vmBuilding || vm == vmActive):
			vm, fault = vmError, &Fault{Code: 500, Message: st.Error}
		case vm == vmActive && st.Power != PowerRunning && st.Power != PowerPaused && st.Power != PowerSuspended:
			vm = vmStopped
		case vm == vmActive && st.Power == PowerPaused:
			vm = vmPaused
		case vm == vmActive && st.Power == PowerSuspended:
			vm = vmSuspended
		}
		if vm == r.vm && st.Power == r.power && fault == nil {
			continue
		}
		var fj any
		if fault != nil {
			fault.Created = nowText()
			b, _ := json.Marshal(fault)
			fj = string(b)
		}
		// Only if the record is still the one read: an action may have
		// begun and ended since.
		res, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET vm_state=?, power_state=?, fault=coalesce(?, fault), updated_at=?
			WHERE id=? AND task_state IS NULL AND deleted=0 AND vm_state=? AND power_state=?`, vm, st.Power, fj, nowText(), r.id, r.vm, r.power)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		if vm != r.vm {
			s.log.Info("server state from host", "server", r.id, "host", host, "from", r.vm, "to", vm, "power", st.Power)
		}
	}
	return nil
}

type hostRow struct {
	ID                 int64
	UUID, ServiceUUID  string
	Name, IP, HypType  string
	VCPUs, MemMB, Disk int64
	Disabled           bool
	DisabledReason     sql.NullString
	ForcedDown         bool
	CreatedAt, Updated string
	// usage from the servers placed there
	UsedVCPUs, UsedMemMB, UsedDisk, Running int64
}

func (s *Service) listHosts(ctx context.Context) ([]hostRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT h.id, h.uuid, h.service_uuid, h.name, h.host_ip, h.hypervisor_type, h.vcpus, h.memory_mb,
		h.disk_gb, h.disabled, h.disabled_reason, h.forced_down, h.created_at, h.updated_at,
		coalesce(sum(json_extract(s.flavor, '$.vcpus')), 0), coalesce(sum(json_extract(s.flavor, '$.ram')), 0),
		coalesce(sum(json_extract(s.flavor, '$.disk')), 0), count(s.id)
		FROM compute_hosts h LEFT JOIN compute_servers s ON s.host=h.name AND s.deleted=0
		GROUP BY h.id ORDER BY h.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hostRow
	for rows.Next() {
		var h hostRow
		if err := rows.Scan(&h.ID, &h.UUID, &h.ServiceUUID, &h.Name, &h.IP, &h.HypType, &h.VCPUs, &h.MemMB, &h.Disk,
			&h.Disabled, &h.DisabledReason, &h.ForcedDown, &h.CreatedAt, &h.Updated,
			&h.UsedVCPUs, &h.UsedMemMB, &h.UsedDisk, &h.Running); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

var errNoHost = errors.New("server has no host")
