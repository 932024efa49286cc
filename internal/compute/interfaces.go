package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// The interfaces of a server (os-interface, Nova's attach_interfaces).
//
// Every port of a server is a row of compute_server_ports and is bound to
// the server's host with a binding profile that names the server's network
// namespace and its interface there, ethN for the row's position N. So a
// port attached to a running server is plugged in by the host's datapath as
// soon as it is bound (hot-plug), and unplugged when it is unbound or
// deleted; the names of the other interfaces never change.
//
// Attach is synchronous, as upstream (200 with the attachment); detach is
// a cast (202) that the server's worker finishes. A row goes attaching →
// attached → detaching → gone: an attach records its row before it binds
// the port, so a crash leaves a row that Start rolls back; a detach marks
// the row before its worker unbinds or deletes the port, so Start finishes
// it. (As at boot, a port made for a net_id attach exists a moment before
// its row does.)

// States of a row of compute_server_ports.
const (
	ifAttaching = "attaching"
	ifAttached  = "attached"
	ifDetaching = "detaching"
)

// interfaceStates are the vm_states interfaces may be attached and
// detached in (Nova's: ACTIVE, PAUSED, STOPPED).
var interfaceStates = []string{vmActive, vmPaused, vmStopped}

// plugWait bounds how long an attach waits for the datapath to plug the port.
const plugWait = 5 * time.Second

// serverInterface is a row of compute_server_ports as os-interface needs it.
type serverInterface struct {
	ServerID, PortID, NetworkID string
	Position                    int
	Owned                       bool
	Tag                         sql.NullString // NULL: a boot port (the create request's tag)
	Status                      string
}

const serverInterfaceCols = `server_id, port_id, network_id, position, owned, tag, status`

func scanServerInterface(row interface{ Scan(...any) error }) (serverInterface, error) {
	var si serverInterface
	err := row.Scan(&si.ServerID, &si.PortID, &si.NetworkID, &si.Position, &si.Owned, &si.Tag, &si.Status)
	return si, err
}

func (s *Service) serverInterfaces(ctx context.Context, q queryer, serverID string) ([]serverInterface, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+serverInterfaceCols+` FROM compute_server_ports WHERE server_id=? ORDER BY position`, serverID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []serverInterface
	for rows.Next() {
		si, err := scanServerInterface(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, si)
	}
	return out, rows.Err()
}

func (s *Service) serverInterface(ctx context.Context, serverID, portID string) (serverInterface, error) {
	return scanServerInterface(s.db.QueryRowContext(ctx, `SELECT `+serverInterfaceCols+` FROM compute_server_ports
		WHERE server_id=? AND port_id=?`, serverID, portID))
}

// ifName is the name of the interface of position pos in a server.
func ifName(pos int) string { return "eth" + strconv.Itoa(pos) }

// bindPort binds a port to the server's host as its interface ethPOS.
func (s *Service) bindPort(ctx context.Context, sv Server, portID string, pos int) (Port, error) {
	var profile map[string]any
	if pp, ok := s.hosts.(PortProfiler); ok {
		profile = pp.PortProfile(sv.Host, sv.ID, portID)
	}
	if profile == nil {
		profile = map[string]any{}
	}
	profile["ifname"] = ifName(pos)
	return s.networks.BindPort(ctx, portID, sv.Host, sv.ID, "compute:"+sv.AZ, profile)
}

// pinInterfaces binds the server's ports, but skip, again with the names
// of their positions: ports bound before names were given (the datapath
// then named them in the order they were made) keep their names when
// another interface comes or goes.
func (s *Service) pinInterfaces(ctx context.Context, sv Server, rows []serverInterface, skip string) error {
	for _, row := range rows {
		if row.PortID == skip {
			continue
		}
		if _, err := s.bindPort(ctx, sv, row.PortID, row.Position); err != nil && !api.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// releaseInterface gives up a row's port: deleted if the server made it,
// unbound (no host, no device) if it was the user's, as Nova does; then
// the row goes.
func (s *Service) releaseInterface(ctx context.Context, row serverInterface) error {
	var err error
	if row.Owned {
		err = s.networks.DeletePort(ctx, row.PortID)
	} else if _, err = s.networks.BindPort(ctx, row.PortID, "", "", "", nil); api.IsNotFound(err) {
		err = nil
	}
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `DELETE FROM compute_server_ports WHERE server_id=? AND port_id=?`, row.ServerID, row.PortID)
	return err
}

// portState is a port's status as os-interface shows it.
func (s *Service) portState(ctx context.Context, p Port) string {
	if p.Status != "" {
		return p.Status
	}
	if p.HostID == "" {
		return "DOWN"
	}
	return "ACTIVE"
}

// waitPlugged waits, at most d, until the port is ACTIVE (its host plugged
// it), so that the interface an attach answers with is in the server; a
// Networks that knows no statuses is not waited for.
func (s *Service) waitPlugged(ctx context.Context, portID string, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		p, err := s.networks.GetPort(ctx, portID)
		if err != nil || p.Status == "" || p.Status == "ACTIVE" || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// interfaceView is an interfaceAttachment.
func (s *Service) interfaceView(ctx context.Context, sv Server, row serverInterface, p Port, v api.Version) map[string]any {
	fixed := []any{}
	for _, f := range p.FixedIPs {
		fixed = append(fixed, map[string]any{"ip_address": f.IP, "subnet_id": f.SubnetID})
	}
	m := map[string]any{"port_id": p.ID, "net_id": p.NetworkID, "mac_addr": p.MAC, "port_state": s.portState(ctx, p),
		"fixed_ips": fixed}
	if v.AtLeast(2, 70) {
		tag := row.Tag.String
		if !row.Tag.Valid && row.Position >= 0 && row.Position < len(sv.Requested.Networks) {
			tag = sv.Requested.Networks[row.Position].Tag
		}
		m["tag"] = nilIfEmpty(tag)
	}
	return m
}

func (s *Service) handleListInterfaceAttachments(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	sv, err := s.getServer(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return err
	}
	rows, err := s.serverInterfaces(ctx, s.db, sv.ID)
	if err != nil {
		return err
	}
	out := []any{}
	for _, row := range rows {
		p, err := s.networks.GetPort(ctx, row.PortID)
		if api.IsNotFound(err) {
			continue // deleted in the network service behind the server's back
		}
		if err != nil {
			return err
		}
		out = append(out, s.interfaceView(ctx, sv, row, p, v))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachments": out})
	return nil
}

func (s *Service) handleShowInterfaceAttachment(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	sv, err := s.getServer(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return err
	}
	portID := r.PathValue("port")
	p, err := s.networks.GetPort(ctx, portID)
	if api.IsNotFound(err) {
		return api.NotFound("Port id %s could not be found.", portID)
	}
	if err != nil {
		return err
	}
	row, err := s.serverInterface(ctx, sv.ID, portID)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("Instance %s does not have a port with id %s", sv.ID, portID)
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachment": s.interfaceView(ctx, sv, row, p, v)})
	return nil
}

// interfaceRequest is the body of an attach.
type interfaceRequest struct {
	PortID, NetworkID string
	FixedIP           string
	Tag               string
}

// invalidField is Nova's schema error about one field of a body.
func invalidField(field string, value json.RawMessage, format string, args ...any) error {
	return api.BadRequest("Invalid input for field/attribute %s. Value: %s. %s", field, value, fmt.Sprintf(format, args...))
}

// isUUIDLike is Nova's uuid format: 32 hex digits, dashes allowed.
func isUUIDLike(s string) bool {
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// parseInterfaceRequest checks an attach's body as Nova's schema does.
func parseInterfaceRequest(r *http.Request, v api.Version) (interfaceRequest, error) {
	var out interfaceRequest
	var body map[string]json.RawMessage
	if err := api.DecodeJSON(r, &body); err != nil {
		return out, err
	}
	for k := range body {
		if k != "interfaceAttachment" {
			return out, api.BadRequest("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	raw, ok := body["interfaceAttachment"]
	if !ok {
		return out, nil
	}
	var att map[string]json.RawMessage
	if err := json.Unmarshal(raw, &att); err != nil || att == nil {
		return out, invalidField("interfaceAttachment", raw, "%s is not of type 'object'", raw)
	}
	str := func(k string) (string, error) {
		var s string
		if err := json.Unmarshal(att[k], &s); err != nil {
			return "", invalidField(k, att[k], "%s is not of type 'string'", att[k])
		}
		return s, nil
	}
	for k, val := range att {
		var err error
		switch k {
		case "net_id", "port_id":
			var id string
			if id, err = str(k); err == nil && !isUUIDLike(id) {
				err = invalidField(k, val, "'%s' is not a 'uuid'", id)
			}
			if k == "net_id" {
				out.NetworkID = id
			} else {
				out.PortID = id
			}
		case "tag":
			if !v.AtLeast(2, 49) {
				return out, api.BadRequest("Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('tag' was unexpected)")
			}
			if out.Tag, err = str(k); err == nil {
				switch {
				case out.Tag == "":
					err = invalidField(k, val, "'' is too short")
				case len([]rune(out.Tag)) > 60:
					err = invalidField(k, val, "%s is too long", val)
				case strings.ContainsAny(out.Tag, ",/"):
					err = invalidField(k, val, "%s does not match '^[^,/]*$'", val)
				}
			}
		case "fixed_ips":
			var list []json.RawMessage
			if json.Unmarshal(val, &list) != nil || list == nil {
				return out, invalidField(k, val, "%s is not of type 'array'", val)
			}
			if len(list) != 1 {
				return out, invalidField(k, val, "%s should be non-empty and have at most 1 item", val)
			}
			var ip map[string]json.RawMessage
			if json.Unmarshal(list[0], &ip) != nil || ip == nil {
				return out, invalidField("0", list[0], "%s is not of type 'object'", list[0])
			}
			for ik := range ip {
				if ik != "ip_address" {
					return out, invalidField("0", list[0], "Additional properties are not allowed ('%s' was unexpected)", ik)
				}
			}
			addr, ok := ip["ip_address"]
			if !ok {
				return out, invalidField("0", list[0], "'ip_address' is a required property")
			}
			var a string
			if json.Unmarshal(addr, &a) != nil {
				return out, invalidField("ip_address", addr, "%s is not of type 'string'", addr)
			}
			if _, perr := netip.ParseAddr(a); perr != nil || strings.Contains(a, "%") {
				return out, invalidField("ip_address", addr, "%s is not valid under any of the given schemas", addr)
			}
			out.FixedIP = a
		default:
			return out, api.BadRequest("Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// canChangeInterfaces refuses an attach or detach (action) on a locked or
// busy server, or one in a vm_state Nova does not allow it in.
func canChangeInterfaces(c *api.Credentials, sv Server, action string) error {
	return checkActionable(c, sv, action, interfaceStates)
}

func (s *Service) handleAttachInterface(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	req, err := parseInterfaceRequest(r, v)
	if err != nil {
		return err
	}
	sv, err := s.getServer(ctx, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if req.NetworkID != "" && req.PortID != "" {
		return api.BadRequest("Must not input both network_id and port_id")
	}
	if req.FixedIP != "" && req.NetworkID == "" {
		return api.BadRequest("Must input network_id when request IP address")
	}
	if err := canChangeInterfaces(c, sv, "attach_interface"); err != nil {
		return err
	}
	unlock := s.lockServer(sv.ID)
	defer unlock()
	// A worker had the server while this request waited: look again.
	if sv, err = s.getServer(ctx, c, sv.ID); err != nil {
		return err
	}
	if err := canChangeInterfaces(c, sv, "attach_interface"); err != nil {
		return err
	}
	if sv.Host == "" {
		return api.Conflict("Cannot 'attach_interface' instance %s: it has no host", sv.ID)
	}
	// From here on the work is done whether or not the client waits.
	ctx = context.WithoutCancel(ctx)
	if err := s.startAction(ctx, r, sv, "attach_interface"); err != nil {
		s.log.Warn("recording instance action", "server", sv.ID, "err", err)
	}
	row, p, err := s.attachInterface(ctx, c, sv, req)
	s.finishAction(ctx, sv.ID, "attach_interface", err)
	if err != nil {
		return err
	}
	s.waitPlugged(ctx, p.ID, plugWait)
	api.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachment": s.interfaceView(ctx, sv, row, p, v)})
	return nil
}

// attachInterface gives a server (locked by the caller) a port: the one
// asked for, or a new one on the network asked for (or the project's own).
func (s *Service) attachInterface(ctx context.Context, c *api.Credentials, sv Server, req interfaceRequest) (serverInterface, Port, error) {
	rows, err := s.serverInterfaces(ctx, s.db, sv.ID)
	if err != nil {
		return serverInterface{}, Port{}, err
	}
	taken := map[int]bool{}
	for _, r := range rows {
		taken[r.Position] = true
	}
	row := serverInterface{ServerID: sv.ID, Tag: sql.NullString{String: req.Tag, Valid: true}, Status: ifAttaching}
	for taken[row.Position] {
		row.Position++
	}
	var p Port
	if req.PortID != "" {
		p, err = s.networks.GetPort(ctx, req.PortID)
		if api.IsNotFound(err) || (err == nil && !isAdmin(c) && p.ProjectID != c.ProjectID) {
			return row, p, api.NotFound("Port id %s could not be found.", req.PortID)
		}
		if err != nil {
			return row, p, err
		}
		if p.ProjectID != sv.ProjectID {
			return row, p, api.BadRequest("Port %s not usable for instance %s.", p.ID, sv.ID)
		}
		if p.DeviceID != "" {
			return row, p, api.Conflict("Port %s is still in use.", p.ID)
		}
	} else {
		if p, err = s.createInterfacePort(ctx, sv, req); err != nil {
			return row, p, err
		}
		row.Owned = true
	}
	row.PortID, row.NetworkID = p.ID, p.NetworkID
	undo := func(err error) (serverInterface, Port, error) {
		if rerr := s.releaseInterface(ctx, row); rerr != nil {
			s.log.Warn("undoing an interface attach", "server", sv.ID, "port", p.ID, "err", rerr)
		}
		return row, p, err
	}
	// The row first (a port in no other server's rows), then the binding:
	// a crash in between leaves a row that Start rolls back.
	ips := []string{}
	for _, f := range p.FixedIPs {
		ips = append(ips, f.IP)
	}
	errInUse := api.Conflict("Port %s is still in use.", p.ID)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_server_ports WHERE port_id=?`, p.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errInUse
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO compute_server_ports(server_id, port_id, position, network_id, network_name, mac, ips,
			owned, tag, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sv.ID, p.ID, row.Position, p.NetworkID, p.NetworkName, p.MAC, jsonText(ips), row.Owned, row.Tag.String, row.Status)
		return err
	})
	if err != nil {
		if row.Owned {
			s.networks.DeletePort(ctx, p.ID)
		}
		return row, p, err
	}
	if err := s.pinInterfaces(ctx, sv, rows, ""); err != nil {
		return undo(err)
	}
	bound, err := s.bindPort(ctx, sv, p.ID, row.Position)
	if err != nil {
		return undo(err)
	}
	if err := s.recordPort(ctx, sv.ID, -1, bound, row.Owned); err != nil {
		return undo(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE compute_server_ports SET status=? WHERE server_id=? AND port_id=?`,
		ifAttached, sv.ID, p.ID); err != nil {
		return undo(err)
	}
	row.Status = ifAttached
	return row, bound, nil
}

// createInterfacePort makes the port of a net_id attach, with the server's
// security groups, as Nova does; the network's errors become Nova's.
func (s *Service) createInterfacePort(ctx context.Context, sv Server, req interfaceRequest) (Port, error) {
	netID := req.NetworkID
	if netID == "" {
		id, err := s.networks.AutoNetwork(ctx, sv.ProjectID)
		if err != nil {
			return Port{}, err
		}
		if id == "" {
			return Port{}, api.BadRequest("No specific network was requested and none are available for project '%s'.", sv.ProjectID)
		}
		netID = id
	} else if _, err := s.networks.CheckNetwork(ctx, sv.ProjectID, netID); api.IsNotFound(err) {
		return Port{}, api.NotFound("Network %s could not be found.", netID)
	} else if err != nil {
		return Port{}, err
	}
	pr := PortRequest{ProjectID: sv.ProjectID, NetworkID: netID, DeviceID: sv.ID, DeviceOwner: "compute:" + sv.AZ}
	if req.FixedIP != "" {
		pr.FixedIPs = []FixedIP{{IP: req.FixedIP}}
	}
	if len(sv.SecurityGroups) > 0 && !(len(sv.SecurityGroups) == 1 && sv.SecurityGroups[0] == "default") {
		pr.SecurityGroups = sv.SecurityGroups
	}
	p, err := s.networks.CreatePort(ctx, pr)
	if err == nil {
		return p, nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Type {
		case "IpAddressAlreadyAllocated":
			return p, api.Conflict("Fixed IP address %s is already in use on instance %s.", req.FixedIP, sv.ID)
		case "IpAddressGenerationFailure":
			return p, api.BadRequest("No fixed IP addresses available for network: %s", netID)
		case "OverQuota":
			return p, api.Forbidden("Maximum number of ports exceeded")
		}
		if ae.Status == http.StatusNotFound {
			return p, api.NotFound("Network %s could not be found.", netID)
		}
		if ae.Status == http.StatusBadRequest {
			return p, api.BadRequest("Invalid input received: %s", ae.Message)
		}
	}
	return p, err
}

func (s *Service) handleDetachInterface(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	sv, err := s.getServer(ctx, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := canChangeInterfaces(c, sv, "detach_interface"); err != nil {
		return err
	}
	portID := r.PathValue("port")
	row, err := s.serverInterface(ctx, sv.ID, portID)
	if err == nil && row.Status == ifAttaching && s.waitServer(ctx, sv.ID, 5*time.Second) {
		// An attach of the port was in flight and held the server.
		row, err = s.serverInterface(ctx, sv.ID, portID)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("Port %s is not attached", portID)
	}
	if err != nil {
		return err
	}
	// The row first, then the port: a crash in between leaves a row that
	// Start finishes detaching.
	res, err := s.db.ExecContext(ctx, `UPDATE compute_server_ports SET status=? WHERE server_id=? AND port_id=? AND status=?`,
		ifDetaching, sv.ID, portID, ifAttached)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Conflict("Port %s of instance %s is being attached or detached already.", portID, sv.ID)
	}
	if err := s.startAction(ctx, r, sv, "detach_interface"); err != nil {
		s.log.Warn("recording instance action", "server", sv.ID, "err", err)
	}
	s.spawn(sv.ID, func(ctx context.Context) { s.detachInterface(ctx, sv.ID, portID) })
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// detachInterface takes a detaching port from its server: the datapath
// unplugs it when it is unbound or deleted. A failure leaves it attached.
func (s *Service) detachInterface(ctx context.Context, serverID, portID string) {
	row, err := s.serverInterface(ctx, serverID, portID)
	if err != nil || row.Status != ifDetaching {
		return
	}
	sv, err := s.loadServer(ctx, s.db, serverID)
	if err != nil {
		return
	}
	rows, err := s.serverInterfaces(ctx, s.db, serverID)
	if err == nil && sv.Host != "" && !sv.Deleted {
		err = s.pinInterfaces(ctx, sv, rows, portID)
	}
	if err == nil {
		err = s.releaseInterface(ctx, row)
	}
	if ctx.Err() != nil {
		return // Start finishes it
	}
	if err != nil {
		s.log.Warn("detaching an interface failed", "server", serverID, "port", portID, "err", err)
		s.db.ExecContext(ctx, `UPDATE compute_server_ports SET status=? WHERE server_id=? AND port_id=?`, ifAttached, serverID, portID)
	}
	s.finishAction(ctx, serverID, "detach_interface", err)
}

var errAttachInterrupted = errors.New("the attach was interrupted by a restart")

// resumeInterfaces rolls back the attaches a restart interrupted (their
// requests got no answer) and finishes the detaches.
func (s *Service) resumeInterfaces(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+serverInterfaceCols+` FROM compute_server_ports WHERE status<>?`, ifAttached)
	if err != nil {
		return err
	}
	var todo []serverInterface
	for rows.Next() {
		si, err := scanServerInterface(rows)
		if err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, si)
	}
	rows.Close()
	for _, row := range todo {
		if row.Status == ifDetaching {
			s.spawn(row.ServerID, func(ctx context.Context) { s.detachInterface(ctx, row.ServerID, row.PortID) })
			continue
		}
		s.spawn(row.ServerID, func(ctx context.Context) {
			cur, err := s.serverInterface(ctx, row.ServerID, row.PortID)
			if err != nil || cur.Status != ifAttaching {
				return
			}
			if err := s.releaseInterface(ctx, cur); err != nil {
				s.log.Warn("rolling back an interrupted interface attach", "server", row.ServerID, "port", row.PortID, "err", err)
				return
			}
			s.finishAction(ctx, row.ServerID, "attach_interface", errAttachInterrupted)
		})
	}
	return nil
}
