package compute

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/placement"
	"github.com/monostack/monostack/internal/store"
)

// vm_states and task_states, as Nova names them.
const (
	vmBuilding  = "building"
	vmActive    = "active"
	vmStopped   = "stopped"
	vmPaused    = "paused"
	vmSuspended = "suspended"
	vmError     = "error"
	vmDeleted   = "deleted"

	taskScheduling  = "scheduling"
	taskNetworking  = "networking"
	taskSpawning    = "spawning"
	taskDeleting    = "deleting"
	taskPoweringOff = "powering-off"
	taskPoweringOn  = "powering-on"
	taskRebooting   = "rebooting"
	taskRebootHard  = "rebooting_hard"
	taskPausing     = "pausing"
	taskUnpausing   = "unpausing"
	taskSuspending  = "suspending"
	taskResuming    = "resuming"
	taskRebuilding  = "rebuilding"
	taskSnapshot    = "image_snapshot"
)

// Fault is why a server is in ERROR.
type Fault struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
	Created string `json:"created"`
}

// flavorCopy is the flavor as it was when the server was made.
type flavorCopy struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	VCPUs      int64             `json:"vcpus"`
	RAM        int64             `json:"ram"`
	Disk       int64             `json:"disk"`
	Ephemeral  int64             `json:"ephemeral"`
	Swap       int64             `json:"swap"`
	ExtraSpecs map[string]string `json:"extra_specs"`
}

// requested is what the create request asked of the network and image, kept
// for the worker (and a restart).
type requested struct {
	Networks []netRequest `json:"networks"`
	Image    Image        `json:"image"`
	// ForcedHost is an admin's "nova:HOST" availability zone; the claim
	// still goes through placement.
	ForcedHost string `json:"forced_host,omitempty"`
	// BlockDevices are the volumes of block_device_mapping_v2, the root
	// (boot index 0) first; see blockdevices.go.
	BlockDevices []blockDevice `json:"block_devices,omitempty"`
}

type netRequest struct {
	NetworkID string `json:"network_id,omitempty"`
	PortID    string `json:"port_id,omitempty"`
	FixedIP   string `json:"fixed_ip,omitempty"`
	Tag       string `json:"tag,omitempty"`
}

// Server is a server record.
type Server struct {
	ID, Name, ProjectID, UserID string
	Seq                         int64
	ImageID, FlavorID           string
	Flavor                      flavorCopy
	Host, AZ                    string
	PinnedAZ                    string
	VMState, TaskState          string
	Power                       int
	KeyName, KeyData            string
	UserData                    string // base64, as given
	ConfigDrive                 string
	AccessIPv4, AccessIPv6      string
	Description                 *string
	Hostname                    string
	Locked                      bool
	LockedReason                *string
	LaunchIndex                 int
	ReservationID               string
	Fault                       *Fault
	Requested                   requested
	SecurityGroups              []string
	GroupID                     string
	Generation                  int
	CreatedAt, UpdatedAt        string
	LaunchedAt, TerminatedAt    string
	Deleted                     bool

	Metadata map[string]string
	Tags     []string
	Ports    []serverPort
	Volumes  []serverVolume
}

type serverPort struct {
	PortID, NetworkID, NetworkName, MAC string
	IPs                                 []string
	Owned                               bool
}

const serverCols = `id, seq, name, project_id, user_id, image_id, flavor_id, flavor, host, az, coalesce(pinned_az, ''), vm_state,
	coalesce(task_state, ''), power_state, coalesce(key_name, ''), coalesce(key_data, ''), coalesce(user_data, ''), config_drive,
	access_ipv4, access_ipv6, description, hostname, locked, locked_reason, launch_index, reservation_id, fault, requested,
	security_groups, coalesce(group_id, ''), generation, created_at, updated_at, coalesce(launched_at, ''), coalesce(terminated_at, ''), deleted`

func scanServer(row interface{ Scan(...any) error }) (Server, error) {
	var sv Server
	var flavor, req, sgs string
	var desc, reason, fault sql.NullString
	err := row.Scan(&sv.ID, &sv.Seq, &sv.Name, &sv.ProjectID, &sv.UserID, &sv.ImageID, &sv.FlavorID, &flavor, &sv.Host, &sv.AZ, &sv.PinnedAZ,
		&sv.VMState, &sv.TaskState, &sv.Power, &sv.KeyName, &sv.KeyData, &sv.UserData, &sv.ConfigDrive, &sv.AccessIPv4, &sv.AccessIPv6,
		&desc, &sv.Hostname, &sv.Locked, &reason, &sv.LaunchIndex, &sv.ReservationID, &fault, &req, &sgs, &sv.GroupID, &sv.Generation,
		&sv.CreatedAt, &sv.UpdatedAt, &sv.LaunchedAt, &sv.TerminatedAt, &sv.Deleted)
	if err != nil {
		return sv, store.Translate(err)
	}
	json.Unmarshal([]byte(flavor), &sv.Flavor)
	json.Unmarshal([]byte(req), &sv.Requested)
	json.Unmarshal([]byte(sgs), &sv.SecurityGroups)
	if desc.Valid {
		sv.Description = &desc.String
	}
	if reason.Valid {
		sv.LockedReason = &reason.String
	}
	if fault.Valid {
		sv.Fault = &Fault{}
		json.Unmarshal([]byte(fault.String), sv.Fault)
	}
	return sv, nil
}

func serverNotFound(id string) error { return api.NotFound("Instance %s could not be found.", id) }

// loadServer reads a server with its metadata, tags and ports.
func (s *Service) loadServer(ctx context.Context, q queryer, id string) (Server, error) {
	sv, err := scanServer(q.QueryRowContext(ctx, `SELECT `+serverCols+` FROM compute_servers WHERE id=?`, id))
	if api.IsNotFound(err) {
		return sv, serverNotFound(id)
	}
	if err != nil {
		return sv, err
	}
	return sv, s.fillServer(ctx, q, &sv)
}

func (s *Service) fillServer(ctx context.Context, q queryer, sv *Server) error {
	sv.Metadata = map[string]string{}
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM compute_server_metadata WHERE server_id=?`, sv.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k, v string
		rows.Scan(&k, &v)
		sv.Metadata[k] = v
	}
	rows.Close()
	sv.Tags = []string{}
	rows, err = q.QueryContext(ctx, `SELECT tag FROM compute_server_tags WHERE server_id=? ORDER BY tag`, sv.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t string
		rows.Scan(&t)
		sv.Tags = append(sv.Tags, t)
	}
	rows.Close()
	if sv.Volumes, err = s.serverVolumes(ctx, q, sv.ID); err != nil {
		return err
	}
	sv.Ports = nil
	rows, err = q.QueryContext(ctx, `SELECT port_id, network_id, network_name, mac, ips, owned FROM compute_server_ports WHERE server_id=? ORDER BY position`, sv.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p serverPort
		var ips string
		if err := rows.Scan(&p.PortID, &p.NetworkID, &p.NetworkName, &p.MAC, &ips, &p.Owned); err != nil {
			return err
		}
		json.Unmarshal([]byte(ips), &p.IPs)
		sv.Ports = append(sv.Ports, p)
	}
	return rows.Err()
}

// getServer returns a server the caller may see: its project's, or any for
// an admin; others are 404 as upstream.
func (s *Service) getServer(ctx context.Context, c *api.Credentials, id string) (Server, error) {
	sv, err := s.loadServer(ctx, s.db, id)
	if err != nil {
		return sv, err
	}
	if sv.Deleted || (!isAdmin(c) && sv.ProjectID != c.ProjectID) {
		return sv, serverNotFound(id)
	}
	return sv, nil
}

// setState updates a server's states; fault nil leaves it.
func (s *Service) setState(ctx context.Context, id, vm, task string, power int, fault *Fault) error {
	var fj any
	if fault != nil {
		if fault.Created == "" {
			fault.Created = nowText()
		}
		fj = jsonText(fault)
	}
	extra := ""
	if vm == vmActive {
		extra = ", launched_at=coalesce(launched_at, '" + nowText() + "')"
	}
	_, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET vm_state=?, task_state=nullif(?, ''), power_state=?,
		fault=coalesce(?, fault), updated_at=?`+extra+` WHERE id=?`, vm, task, power, fj, nowText(), id)
	return err
}

func (s *Service) setTask(ctx context.Context, id, task string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET task_state=nullif(?, ''), updated_at=? WHERE id=?`, task, nowText(), id)
	return err
}

// build drives one server from BUILD to ACTIVE or ERROR. It is safe to run
// again after a crash at any point: each step is skipped once done.
func (s *Service) build(ctx context.Context, id string) {
	sv, err := s.loadServer(ctx, s.db, id)
	if err != nil || sv.Deleted || sv.VMState != vmBuilding || sv.TaskState == taskDeleting {
		return
	}
	fail := func(f *Fault, err error) {
		if ctx.Err() != nil {
			return // shutting down: the next Start resumes the build
		}
		s.log.Warn("server build failed", "server", id, "err", err)
		s.cleanupHost(ctx, sv)
		if f == nil {
			f = &Fault{Code: 500, Message: err.Error()}
		}
		if err := s.setState(ctx, id, vmError, "", PowerNoState, f); err != nil {
			s.log.Error("recording build failure", "server", id, "err", err)
		}
		s.finishAction(ctx, id, "create", err)
	}
	if sv.Host == "" {
		s.setTask(ctx, id, taskScheduling)
		host, err := s.schedule(ctx, sv)
		if errors.Is(err, placement.ErrNoValidHost) {
			fail(&Fault{Code: 500, Message: "No valid host was found. There are not enough hosts available.",
				Details: "placement found no host with room for the flavor"}, err)
			return
		}
		if err != nil {
			fail(nil, fmt.Errorf("scheduling: %w", err))
			return
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET host=?, task_state=?, updated_at=? WHERE id=?`,
			host, taskNetworking, nowText(), id); err != nil {
			fail(nil, err)
			return
		}
		sv.Host = host
	}
	if err := s.plugPorts(ctx, &sv); err != nil {
		if ctx.Err() != nil {
			return
		}
		fail(&Fault{Code: 500, Message: "Build of instance " + id + " aborted: Failed to allocate the network(s), not rescheduling.", Details: err.Error()}, err)
		return
	}
	if len(sv.Requested.BlockDevices) > 0 {
		s.setTask(ctx, id, taskBlockDevices)
		if err := s.prepareBlockDevices(ctx, sv); err != nil {
			if ctx.Err() != nil || errors.Is(err, errDeleted) {
				return
			}
			fail(&Fault{Code: 500, Message: "Build of instance " + id + " aborted: " + err.Error()}, err)
			return
		}
	}
	s.setTask(ctx, id, taskSpawning)
	spec, err := s.spec(ctx, sv)
	if err != nil {
		fail(nil, err)
		return
	}
	bctx, cancel := context.WithTimeout(ctx, s.cfg.BuildTimeout)
	err = s.hosts.EnsureServer(bctx, sv.Host, spec)
	cancel()
	if err == nil && len(sv.Requested.BlockDevices) > 0 {
		err = s.attachBlockDevices(ctx, sv)
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		fail(&Fault{Code: 500, Message: "Build of instance " + id + " aborted: " + err.Error()}, err)
		return
	}
	res, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET vm_state=?, task_state=NULL, power_state=?, launched_at=?, updated_at=?
		WHERE id=? AND vm_state=? AND deleted=0`, vmActive, PowerRunning, nowText(), nowText(), id, vmBuilding)
	if err != nil {
		s.log.Error("recording build", "server", id, "err", err)
		return
	}
	if n, _ := res.RowsAffected(); n == 1 {
		s.finishAction(ctx, id, "create", nil)
	}
}

// schedule claims the server's resources on a host, honouring its server
// group's policy.
func (s *Service) schedule(ctx context.Context, sv Server) (string, error) {
	res := map[string]int64{placement.VCPU: sv.Flavor.VCPUs, placement.MemoryMB: sv.Flavor.RAM}
	if sv.Flavor.Disk > 0 && !sv.volumeBacked() { // a volume is the root disk, not the host's
		res[placement.DiskGB] = sv.Flavor.Disk
	}
	c := placement.Claim{ConsumerID: sv.ID, ProjectID: sv.ProjectID, UserID: sv.UserID, Resources: res}
	soft := false
	if sv.Requested.ForcedHost != "" {
		c.Hosts = []string{sv.Requested.ForcedHost}
	}
	if sv.GroupID != "" {
		g, err := s.loadGroup(ctx, sv.GroupID)
		if err == nil {
			hosts, err := s.groupHosts(ctx, g.ID, sv.ID)
			if err != nil {
				return "", err
			}
			switch g.Policy {
			case "affinity", "soft-affinity":
				c.Hosts = hosts
			case "anti-affinity", "soft-anti-affinity":
				c.Avoid = hosts
			}
			soft = strings.HasPrefix(g.Policy, "soft-")
		}
	}
	host, err := s.placement.Claim(ctx, c)
	if errors.Is(err, placement.ErrNoValidHost) && soft {
		c.Hosts, c.Avoid = nil, nil
		host, err = s.placement.Claim(ctx, c)
	}
	return host, err
}

// plugPorts makes the ports the server asked for (once) and binds them
// all to its host.
func (s *Service) plugPorts(ctx context.Context, sv *Server) error {
	if len(sv.Ports) == 0 && len(sv.Requested.Networks) > 0 {
		for i, nr := range sv.Requested.Networks {
			var p Port
			var err error
			owned := false
			if nr.PortID != "" {
				p, err = s.networks.GetPort(ctx, nr.PortID)
			} else {
				req := PortRequest{ProjectID: sv.ProjectID, NetworkID: nr.NetworkID, DeviceID: sv.ID, DeviceOwner: "compute:" + sv.AZ}
				if nr.FixedIP != "" {
					req.FixedIPs = []FixedIP{{IP: nr.FixedIP}}
				}
				if len(sv.SecurityGroups) > 0 && !(len(sv.SecurityGroups) == 1 && sv.SecurityGroups[0] == "default") {
					req.SecurityGroups = sv.SecurityGroups
				}
				p, err = s.networks.CreatePort(ctx, req)
				owned = true
			}
			if err != nil {
				return err
			}
			if err := s.recordPort(ctx, sv.ID, i, p, owned); err != nil {
				if owned {
					s.networks.DeletePort(ctx, p.ID)
				}
				return err
			}
		}
		if err := s.fillServer(ctx, s.db, sv); err != nil {
			return err
		}
	}
	for i, sp := range sv.Ports {
		// A building server has its boot ports only, positions 0, 1…:
		// each is bound as eth<position> (see interfaces.go).
		p, err := s.bindPort(ctx, *sv, sp.PortID, i)
		if err != nil {
			return err
		}
		if err := s.recordPort(ctx, sv.ID, -1, p, sp.Owned); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) recordPort(ctx context.Context, server string, pos int, p Port, owned bool) error {
	ips := []string{}
	for _, f := range p.FixedIPs {
		ips = append(ips, f.IP)
	}
	if pos < 0 {
		_, err := s.db.ExecContext(ctx, `UPDATE compute_server_ports SET mac=?, ips=?, network_name=? WHERE server_id=? AND port_id=?`,
			p.MAC, jsonText(ips), p.NetworkName, server, p.ID)
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO compute_server_ports(server_id, port_id, position, network_id, network_name, mac, ips, owned)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(server_id, port_id) DO NOTHING`, server, p.ID, pos, p.NetworkID, p.NetworkName, p.MAC, jsonText(ips), owned)
	return err
}

// spec builds what the host needs to run a server.
func (s *Service) spec(ctx context.Context, sv Server) (ServerSpec, error) {
	sp := ServerSpec{ID: sv.ID, Name: sv.Name, Hostname: sv.Hostname, ProjectID: sv.ProjectID, Generation: sv.Generation,
		Image: sv.Requested.Image, KeyName: sv.KeyName, PublicKey: sv.KeyData, Metadata: sv.Metadata}
	sp.Flavor.Name, sp.Flavor.VCPUs, sp.Flavor.RAMMB, sp.Flavor.DiskGB = sv.Flavor.Name, sv.Flavor.VCPUs, sv.Flavor.RAM, sv.Flavor.Disk
	if sv.UserData != "" {
		b, err := base64.StdEncoding.DecodeString(sv.UserData)
		if err != nil {
			return sp, fmt.Errorf("user data: %w", err)
		}
		sp.UserData = b
	}
	var links, nets []any
	for i, p := range sv.Ports {
		port, err := s.networks.GetPort(ctx, p.PortID)
		if err != nil {
			return sp, fmt.Errorf("port %s: %w", p.PortID, err)
		}
		sp.Ports = append(sp.Ports, PortSpec{ID: port.ID, NetworkID: port.NetworkID, MAC: port.MAC,
			Addresses: port.Addresses, Gateways: port.Gateways, MTU: port.MTU})
		ifname := fmt.Sprintf("tap%s", port.ID[:min(11, len(port.ID))])
		links = append(links, map[string]any{"id": ifname, "type": "ovs", "ethernet_mac_address": port.MAC,
			"mtu": port.MTU, "vif_id": port.ID})
		for j, a := range port.Addresses {
			typ := "ipv4"
			if a.Addr().Is6() {
				typ = "ipv6"
			}
			n := map[string]any{"id": fmt.Sprintf("network%d", i*8+j), "type": typ, "link": ifname,
				"ip_address": a.Addr().String(), "netmask": netmask(a), "network_id": port.NetworkID, "routes": []any{}}
			for _, g := range port.Gateways {
				if g.Is4() == a.Addr().Is4() {
					def, mask := "0.0.0.0", "0.0.0.0"
					if g.Is6() {
						def, mask = "::", "::"
					}
					n["routes"] = []any{map[string]any{"network": def, "netmask": mask, "gateway": g.String()}}
				}
			}
			nets = append(nets, n)
		}
	}
	if links == nil {
		links, nets = []any{}, []any{}
	}
	keys := map[string]string{}
	var keyList []any
	if sv.KeyName != "" {
		keys[sv.KeyName] = sv.KeyData
		keyList = append(keyList, map[string]any{"name": sv.KeyName, "type": "ssh", "data": sv.KeyData})
	}
	meta := map[string]any{"uuid": sv.ID, "name": sv.Name, "hostname": sv.Hostname, "launch_index": sv.LaunchIndex,
		"availability_zone": sv.AZ, "project_id": sv.ProjectID, "public_keys": keys, "meta": sv.Metadata,
		"devices": []any{}}
	if keyList != nil {
		meta["keys"] = keyList
	}
	mj, _ := json.Marshal(meta)
	nj, _ := json.Marshal(map[string]any{"links": links, "networks": nets, "services": []any{}})
	sp.ConfigDrive = map[string][]byte{
		"openstack/latest/meta_data.json":    mj,
		"openstack/latest/network_data.json": nj,
	}
	if sp.UserData != nil {
		sp.ConfigDrive["openstack/latest/user_data"] = sp.UserData
	}
	if sv.volumeBacked() {
		rows, err := s.serverVolumes(ctx, s.db, sv.ID)
		if err != nil {
			return sp, err
		}
		if sp.RootVolume = rootVolume(rows); sp.RootVolume == nil {
			return sp, fmt.Errorf("the root volume of %s is not attached", sv.ID)
		}
	}
	return sp, nil
}

func netmask(p netip.Prefix) string {
	if p.Addr().Is6() {
		return fmt.Sprint(p.Bits())
	}
	m := uint32(0xffffffff) << (32 - p.Bits())
	if p.Bits() == 0 {
		m = 0
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}

// cleanupHost undoes what a build did: the container, the ports made for
// the server (ports given by the user are unbound) and the placement claim.
func (s *Service) cleanupHost(ctx context.Context, sv Server) error {
	var errs []error
	if sv.Host != "" {
		if err := s.hosts.DeleteServer(ctx, sv.Host, sv.ID); err != nil {
			errs = append(errs, fmt.Errorf("deleting on host %s: %w", sv.Host, err))
		}
	}
	if err := s.fillServer(ctx, s.db, &sv); err != nil {
		return err
	}
	if err := s.releaseVolumes(ctx, sv); err != nil {
		errs = append(errs, err)
	} else {
		s.deleteUnattached(ctx, sv, sv.Volumes)
	}
	for _, p := range sv.Ports {
		var err error
		if p.Owned {
			err = s.networks.DeletePort(ctx, p.PortID)
		} else {
			_, err = s.networks.BindPort(ctx, p.PortID, "", "", "", nil)
			if api.IsNotFound(err) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", p.PortID, err))
			continue
		}
		s.db.ExecContext(ctx, `DELETE FROM compute_server_ports WHERE server_id=? AND port_id=?`, sv.ID, p.PortID)
	}
	if err := s.deleteStrayPorts(ctx, sv); err != nil {
		errs = append(errs, err)
	}
	if err := s.placement.Release(ctx, sv.ID); err != nil {
		errs = append(errs, fmt.Errorf("releasing allocations: %w", err))
	}
	return errors.Join(errs...)
}

// deleteStrayPorts deletes the ports made for the server that it never
// recorded: a build killed between the network's commit of a new port and
// compute's record of it leaves one, and the resumed build makes another.
// As Nova deallocates an instance, the network is asked for the ports of
// the device. A user's own port is recorded before it is bound (it gets
// the server as device only then), so an unrecorded one is ours.
func (s *Service) deleteStrayPorts(ctx context.Context, sv Server) error {
	ps, err := s.networks.DevicePorts(ctx, sv.ID)
	if err != nil {
		return fmt.Errorf("ports of the server: %w", err)
	}
	var errs []error
	for _, p := range ps {
		if !strings.HasPrefix(p.DeviceOwner, "compute:") || slices.ContainsFunc(sv.Ports, func(sp serverPort) bool { return sp.PortID == p.ID }) {
			continue
		}
		if err := s.networks.DeletePort(ctx, p.ID); err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", p.ID, err))
		}
	}
	return errors.Join(errs...)
}

// destroy deletes a server: from its host, its ports, its allocations,
// then the record (soft-deleted, as Nova keeps deleted rows).
func (s *Service) destroy(ctx context.Context, id string) {
	sv, err := s.loadServer(ctx, s.db, id)
	if err != nil || sv.Deleted {
		return
	}
	if err := s.cleanupHost(ctx, sv); err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("server delete failed", "server", id, "err", err)
		s.setState(ctx, id, vmError, "", sv.Power, &Fault{Code: 500, Message: "Deleting the server failed: " + err.Error()})
		s.finishAction(ctx, id, "delete", err)
		return
	}
	now := nowText()
	_, err = s.db.ExecContext(ctx, `UPDATE compute_servers SET deleted=1, vm_state=?, task_state=NULL, power_state=0,
		terminated_at=?, updated_at=? WHERE id=?`, vmDeleted, now, now, id)
	if err == nil {
		s.db.ExecContext(ctx, `DELETE FROM compute_server_group_members WHERE server_id=?`, id)
	}
	s.finishAction(ctx, id, "delete", err)
}

// Start resumes, in the background, the work a previous run left: builds
// still in BUILD, deletes and actions in flight. Call it once after New.
func (s *Service) Start(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, vm_state, coalesce(task_state, '') FROM compute_servers
		WHERE deleted=0 AND (vm_state=? OR task_state IS NOT NULL)`, vmBuilding)
	if err != nil {
		return err
	}
	type pending struct{ id, vm, task string }
	var todo []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.vm, &p.task); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, p)
	}
	rows.Close()
	if err := s.resumeVolumes(ctx); err != nil {
		return err
	}
	if err := s.resumeInterfaces(ctx); err != nil {
		return err
	}
	for _, p := range todo {
		s.log.Info("resuming server work", "server", p.id, "vm_state", p.vm, "task_state", p.task)
		switch {
		case p.task == taskDeleting:
			s.spawn(p.id, func(ctx context.Context) { s.destroy(ctx, p.id) })
		case p.vm == vmBuilding:
			s.spawn(p.id, func(ctx context.Context) { s.build(ctx, p.id) })
		default:
			if a, ok := actionByTask[p.task]; ok {
				s.spawn(p.id, func(ctx context.Context) { s.runAction(ctx, p.id, a) })
			} else {
				s.setTask(ctx, p.id, "")
			}
		}
	}
	return nil
}
