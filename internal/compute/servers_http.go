package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// status is the API status of a server from its vm and task states.
func status(vm, task string) string {
	switch vm {
	case vmBuilding:
		return "BUILD"
	case vmActive:
		switch task {
		case taskRebooting:
			return "REBOOT"
		case taskRebootHard:
			return "HARD_REBOOT"
		case taskRebuilding:
			return "REBUILD"
		}
		return "ACTIVE"
	case vmStopped:
		if task == taskRebuilding {
			return "REBUILD"
		}
		return "SHUTOFF"
	case vmPaused:
		return "PAUSED"
	case vmSuspended:
		return "SUSPENDED"
	case vmError:
		return "ERROR"
	case vmDeleted:
		return "DELETED"
	}
	return "UNKNOWN"
}

func hostID(project, host string) string {
	if host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(project + host))
	return hex.EncodeToString(sum[:])
}

func addressesView(sv Server) map[string]any {
	out := map[string]any{}
	for _, p := range sv.Ports {
		list, _ := out[p.NetworkName].([]any)
		for _, ip := range p.IPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				continue
			}
			ver := 4
			if a.Is6() {
				ver = 6
			}
			list = append(list, map[string]any{"version": ver, "addr": ip, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": p.MAC})
		}
		if list == nil {
			list = []any{}
		}
		out[p.NetworkName] = list
	}
	return out
}

func (s *Service) serverView(r *http.Request, v api.Version, sv Server) map[string]any {
	c := api.CredentialsFrom(r.Context())
	admin := isAdmin(c)
	base := api.BaseURL(r) + "/compute"
	m := map[string]any{
		"id": sv.ID, "name": sv.Name, "status": status(sv.VMState, sv.TaskState), "tenant_id": sv.ProjectID, "user_id": sv.UserID,
		"metadata": sv.Metadata, "hostId": hostID(sv.ProjectID, sv.Host), "created": apiTime(sv.CreatedAt), "updated": apiTime(sv.UpdatedAt),
		"addresses": addressesView(sv), "accessIPv4": sv.AccessIPv4, "accessIPv6": sv.AccessIPv6,
		"links":             link(r, "/servers/"+sv.ID),
		"OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": sv.AZ, "config_drive": sv.ConfigDrive,
		"key_name": nilIfEmpty(sv.KeyName), "OS-SRV-USG:launched_at": usgTime(sv.LaunchedAt), "OS-SRV-USG:terminated_at": usgTime(sv.TerminatedAt),
		"OS-EXT-STS:task_state": nilIfEmpty(sv.TaskState), "OS-EXT-STS:vm_state": sv.VMState, "OS-EXT-STS:power_state": sv.Power,
		"os-extended-volumes:volumes_attached": volumesAttachedView(sv.Volumes, v),
	}
	if sv.ImageID == "" {
		m["image"] = ""
	} else {
		m["image"] = map[string]any{"id": sv.ImageID, "links": []any{map[string]any{"rel": "bookmark", "href": base + "/images/" + sv.ImageID}}}
	}
	if v.AtLeast(2, 47) {
		f := map[string]any{"vcpus": sv.Flavor.VCPUs, "ram": sv.Flavor.RAM, "disk": sv.Flavor.Disk, "ephemeral": sv.Flavor.Ephemeral,
			"swap": sv.Flavor.Swap, "original_name": sv.Flavor.Name}
		if sv.Flavor.ExtraSpecs != nil {
			f["extra_specs"] = sv.Flavor.ExtraSpecs
		} else {
			f["extra_specs"] = map[string]string{}
		}
		m["flavor"] = f
	} else {
		m["flavor"] = map[string]any{"id": sv.FlavorID, "links": []any{map[string]any{"rel": "bookmark", "href": base + "/flavors/" + sv.FlavorID}}}
	}
	switch sv.VMState {
	case vmActive, vmBuilding, vmStopped, vmPaused, vmSuspended:
		if sv.VMState == vmActive || sv.VMState == vmBuilding {
			p := 0
			if sv.VMState == vmActive {
				p = 100
			}
			m["progress"] = p
		}
	}
	if sv.Fault != nil && (sv.VMState == vmError || sv.VMState == vmDeleted) {
		f := map[string]any{"code": sv.Fault.Code, "message": sv.Fault.Message, "created": apiTime(sv.Fault.Created)}
		if admin && sv.Fault.Details != "" {
			f["details"] = sv.Fault.Details
		}
		m["fault"] = f
	}
	sgs := []any{}
	if len(sv.Ports) > 0 || sv.VMState == vmBuilding {
		for _, g := range sv.SecurityGroups {
			sgs = append(sgs, map[string]any{"name": g})
		}
	}
	m["security_groups"] = sgs
	if admin {
		m["OS-EXT-SRV-ATTR:host"] = nilIfEmpty(sv.Host)
		m["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nilIfEmpty(sv.Host)
		m["OS-EXT-SRV-ATTR:instance_name"] = fmt.Sprintf("instance-%08x", sv.Seq)
		if v.AtLeast(2, 3) {
			m["OS-EXT-SRV-ATTR:reservation_id"] = sv.ReservationID
			m["OS-EXT-SRV-ATTR:launch_index"] = sv.LaunchIndex
			m["OS-EXT-SRV-ATTR:kernel_id"] = ""
			m["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
			m["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
			m["OS-EXT-SRV-ATTR:user_data"] = nilIfEmpty(sv.UserData)
		}
		if v.AtLeast(2, 16) {
			hs := "UP"
			if sv.Host == "" {
				hs = ""
			}
			m["host_status"] = hs
		}
	}
	if v.AtLeast(2, 3) && (admin || v.AtLeast(2, 90)) {
		m["OS-EXT-SRV-ATTR:hostname"] = sv.Hostname
	}
	if v.AtLeast(2, 9) {
		m["locked"] = sv.Locked
	}
	if v.AtLeast(2, 73) {
		m["locked_reason"] = sv.LockedReason
	}
	if v.AtLeast(2, 19) {
		m["description"] = sv.Description
	}
	if v.AtLeast(2, 26) {
		m["tags"] = sv.Tags
	}
	if v.AtLeast(2, 63) {
		m["trusted_image_certificates"] = nil
	}
	if v.AtLeast(2, 71) {
		groups := []string{}
		if sv.GroupID != "" {
			groups = append(groups, sv.GroupID)
		}
		m["server_groups"] = groups
	}
	if v.AtLeast(2, 96) {
		m["pinned_availability_zone"] = nilIfEmpty(sv.PinnedAZ)
	}
	return m
}

// ref takes the id out of an id or a URL.
func ref(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

type createBody struct {
	Server *struct {
		Name           *string           `json:"name"`
		ImageRef       *string           `json:"imageRef"`
		FlavorRef      json.RawMessage   `json:"flavorRef"`
		Networks       json.RawMessage   `json:"networks"`
		KeyName        *string           `json:"key_name"`
		UserData       *string           `json:"user_data"`
		Metadata       map[string]string `json:"metadata"`
		SecurityGroups []struct {
			Name string `json:"name"`
		} `json:"security_groups"`
		AvailabilityZone *string         `json:"availability_zone"`
		MinCount         json.RawMessage `json:"min_count"`
		MaxCount         json.RawMessage `json:"max_count"`
		ReturnResID      json.RawMessage `json:"return_reservation_id"`
		AccessIPv4       string          `json:"accessIPv4"`
		AccessIPv6       string          `json:"accessIPv6"`
		Description      *string         `json:"description"`
		Hostname         *string         `json:"hostname"`
		ConfigDrive      json.RawMessage `json:"config_drive"`
		Tags             []string        `json:"tags"`
		AdminPass        string          `json:"adminPass"`
		DiskConfig       string          `json:"OS-DCF:diskConfig"`
		BlockDevices     json.RawMessage `json:"block_device_mapping_v2"`
		BlockDevicesV1   json.RawMessage `json:"block_device_mapping"`
		Personality      json.RawMessage `json:"personality"`
	} `json:"server"`
	Hints  map[string]any `json:"os:scheduler_hints"`
	Hints2 map[string]any `json:"OS-SCH-HNT:scheduler_hints"`
}

func intField(raw json.RawMessage, name string, def int) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, api.BadRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'integer' or less than the minimum of 1", name, s, s)
	}
	return n, nil
}

var hostnameBad = regexp.MustCompile(`[^a-zA-Z0-9\-]+`)

// sanitizeHostname makes a hostname from a display name, as Nova does.
func sanitizeHostname(name string) string {
	h := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "_", "-"))
	h = hostnameBad.ReplaceAllString(h, "")
	h = strings.Trim(h, ".-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], ".-")
	}
	if h == "" {
		h = "server"
	}
	return h
}

func randomPassword() string {
	const chars = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

func (s *Service) handleCreateServer(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	var b createBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	sb := b.Server
	if sb == nil {
		return api.BadRequest("Invalid input for field/attribute server. Value: None. 'server' is a required property")
	}
	if sb.Name == nil {
		return api.BadRequest("Invalid input for field/attribute server. 'name' is a required property")
	}
	name := *sb.Name
	if strings.TrimSpace(name) == "" || len(name) > 255 {
		return api.BadRequest("Invalid input for field/attribute name. Value: %s. '%s' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", name, name)
	}
	if len(sb.Personality) > 0 && v.AtLeast(2, 57) {
		return api.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('personality' was unexpected)")
	}
	if len(sb.BlockDevicesV1) > 0 && string(sb.BlockDevicesV1) != "null" && string(sb.BlockDevicesV1) != "[]" {
		return api.BadRequest("Block Device Mapping is Invalid: the legacy block_device_mapping is not supported by this cloud; use block_device_mapping_v2.")
	}
	// Flavor.
	var flavorRef string
	if err := json.Unmarshal(sb.FlavorRef, &flavorRef); err != nil {
		var n json.Number
		if len(sb.FlavorRef) == 0 || json.Unmarshal(sb.FlavorRef, &n) != nil {
			return api.BadRequest("Invalid input for field/attribute server. 'flavorRef' is a required property")
		}
		flavorRef = n.String()
	}
	flavor, err := s.getFlavor(ctx, c, ref(flavorRef))
	if api.IsNotFound(err) {
		return api.BadRequest("Flavor %s could not be found.", ref(flavorRef))
	}
	if err != nil {
		return err
	}
	if flavor.Disabled {
		return api.BadRequest("Flavor is disabled.")
	}
	// Block devices: a volume of boot index 0 is the root, else the image.
	withImage := sb.ImageRef != nil && *sb.ImageRef != ""
	bdms, err := s.parseBlockDevices(ctx, c, sb.BlockDevices, withImage)
	if err != nil {
		return err
	}
	volumeBacked := len(bdms) > 0 && bdms[0].BootIndex == 0
	// Image.
	var img Image
	if !volumeBacked {
		if !withImage {
			return api.BadRequest("Block Device Mapping is Invalid: You specified more local devices than the limit allows")
		}
		imageID := ref(*sb.ImageRef)
		img, err = s.images.Lookup(ctx, c, imageID)
		if api.IsNotFound(err) {
			return api.BadRequest("Can not find requested image")
		}
		if err != nil {
			return err
		}
		if img.Status != "active" {
			return api.BadRequest("Image %s is not active.", imageID)
		}
		const gib = 1 << 30
		if flavor.Disk > 0 {
			if img.Size > flavor.Disk*gib {
				return api.BadRequest("Flavor's disk is too small for requested image. Flavor disk is %d bytes, image is %d bytes.", flavor.Disk*gib, img.Size).WithType("badRequest")
			}
			if img.MinDisk > flavor.Disk {
				return api.BadRequest("Flavor's disk is too small for requested image. Flavor disk is %d bytes, minimum size is %d bytes.", flavor.Disk*gib, img.MinDisk*gib)
			}
		}
		if img.MinRAM > flavor.RAM {
			return api.BadRequest("Flavor's memory is too small for requested image.")
		}
	}
	// Key pair.
	var keyName, keyData string
	if sb.KeyName != nil && *sb.KeyName != "" {
		k, err := s.getKeypair(ctx, c.UserID, *sb.KeyName)
		if api.IsNotFound(err) {
			return api.BadRequest("Invalid key_name provided.")
		}
		if err != nil {
			return err
		}
		keyName, keyData = k.Name, k.PublicKey
	}
	// User data.
	userData := ""
	if sb.UserData != nil && *sb.UserData != "" {
		if len(*sb.UserData) > 65535 {
			return api.BadRequest("Invalid input for field/attribute user_data. Value: %s... is too long", (*sb.UserData)[:16])
		}
		raw, err := base64.StdEncoding.DecodeString(*sb.UserData)
		if err != nil {
			return api.BadRequest("User data needs to be valid base 64.")
		}
		userData = base64.StdEncoding.EncodeToString(raw)
	}
	// Metadata.
	if err := s.checkMetadata(ctx, c.ProjectID, sb.Metadata); err != nil {
		return err
	}
	// Availability zone.
	az := s.cfg.AvailabilityZone
	forcedHost := ""
	if sb.AvailabilityZone != nil && *sb.AvailabilityZone != "" {
		zone, host, _ := strings.Cut(*sb.AvailabilityZone, ":")
		if zone != "" && zone != s.cfg.AvailabilityZone {
			return api.BadRequest("The requested availability zone is not available")
		}
		if host != "" {
			if !isAdmin(c) {
				return api.Forbidden("Policy doesn't allow os_compute_api:servers:create:forced_host to be performed.")
			}
			forcedHost = host
		}
	}
	// Networks.
	nets, err := s.parseNetworks(ctx, v, c, sb.Networks)
	if err != nil {
		return err
	}
	// Counts.
	minCount, err := intField(sb.MinCount, "min_count", 1)
	if err != nil {
		return err
	}
	maxCount, err := intField(sb.MaxCount, "max_count", minCount)
	if err != nil {
		return err
	}
	if maxCount < minCount {
		return api.BadRequest("min_count must be <= max_count")
	}
	if maxCount > 1 {
		for _, n := range nets {
			if n.PortID != "" || n.FixedIP != "" {
				return api.BadRequest("Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.")
			}
		}
		for _, bd := range bdms {
			if bd.Source == "volume" {
				return api.BadRequest("Unable to launch multiple instances with a single configured volume. Please launch your instance one by one.")
			}
		}
	}
	// Server group.
	groupID := ""
	for _, h := range []map[string]any{b.Hints, b.Hints2} {
		if g, ok := h["group"].(string); ok && g != "" {
			groupID = g
		}
	}
	if groupID != "" {
		g, err := s.loadGroup(ctx, groupID)
		if err != nil || (!isAdmin(c) && g.ProjectID != c.ProjectID) {
			return api.BadRequest("Invalid input for field/attribute group. Value: %s. '%s' is not a valid server group", groupID, groupID)
		}
	}
	sgs := []string{}
	for _, g := range sb.SecurityGroups {
		if g.Name != "" && !contains(sgs, g.Name) {
			sgs = append(sgs, g.Name)
		}
	}
	if len(sgs) == 0 {
		sgs = []string{"default"}
	}
	var tags []string
	if len(sb.Tags) > 0 {
		if !v.AtLeast(2, 52) {
			return api.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)")
		}
		if err := checkTags(sb.Tags); err != nil {
			return err
		}
		tags = sb.Tags
	}
	configDrive := ""
	if len(sb.ConfigDrive) > 0 && string(sb.ConfigDrive) != "null" && string(sb.ConfigDrive) != "false" && string(sb.ConfigDrive) != `""` {
		configDrive = "True"
	}
	adminPass := sb.AdminPass
	if adminPass == "" {
		adminPass = randomPassword()
	}
	resID := "r-" + newUUID()[:8]
	fc := flavorCopy{ID: flavor.ID, Name: flavor.Name, VCPUs: flavor.VCPUs, RAM: flavor.RAM, Disk: flavor.Disk,
		Ephemeral: flavor.Ephemeral, Swap: flavor.Swap, ExtraSpecs: flavor.ExtraSpecs}
	// The existing volumes mapped are reserved first, for the one server
	// they may go to; a failure below gives them back.
	firstID := newUUID()
	if err := s.reserveVolumes(ctx, c, firstID, bdms); err != nil {
		return err
	}
	var ids []string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkServerQuota(ctx, tx, c.ProjectID, flavor, int64(maxCount)); err != nil {
			if minCount == maxCount {
				return err
			}
			if err2 := s.checkServerQuota(ctx, tx, c.ProjectID, flavor, int64(minCount)); err2 != nil {
				return err2
			}
			// Nova makes as many as fit between min and max.
			for maxCount > minCount && s.checkServerQuota(ctx, tx, c.ProjectID, flavor, int64(maxCount)) != nil {
				maxCount--
			}
		}
		if groupID != "" {
			if err := s.checkGroupQuota(ctx, tx, c.ProjectID, groupID, maxCount); err != nil {
				return err
			}
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM compute_servers`).Scan(&seq); err != nil {
			return err
		}
		now := nowText()
		ids = nil
		for i := 0; i < maxCount; i++ {
			id, req := firstID, requested{Networks: nets, Image: img, ForcedHost: forcedHost, BlockDevices: bdms}
			if i > 0 { // volumes of its own, from the same sources
				id, req.BlockDevices = newUUID(), slices.Clone(bdms)
				for j := range req.BlockDevices {
					req.BlockDevices[j].VolumeID = newUUID()
				}
			}
			n := name
			if maxCount > 1 {
				n = fmt.Sprintf("%s-%d", name, i+1)
			}
			hostname := sanitizeHostname(n)
			if sb.Hostname != nil && v.AtLeast(2, 90) && *sb.Hostname != "" {
				hostname = *sb.Hostname
			}
			pinned := any(nil)
			if sb.AvailabilityZone != nil && *sb.AvailabilityZone != "" {
				pinned = az
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO compute_servers(id, seq, name, project_id, user_id, image_id, flavor_id, flavor, az, pinned_az,
				vm_state, task_state, power_state, key_name, key_data, user_data, config_drive, access_ipv4, access_ipv6, description, hostname,
				launch_index, reservation_id, requested, security_groups, group_id, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, nullif(?, ''), nullif(?, ''), nullif(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, nullif(?, ''), ?, ?)`,
				id, seq+int64(i)+1, n, c.ProjectID, c.UserID, img.ID, flavor.ID, jsonText(fc), az, pinned, vmBuilding, taskScheduling,
				keyName, keyData, userData, configDrive, sb.AccessIPv4, sb.AccessIPv6, sb.Description, hostname, i, resID,
				jsonText(req), jsonText(sgs), groupID, now, now)
			if err != nil {
				return err
			}
			for k, val := range sb.Metadata {
				if _, err := tx.ExecContext(ctx, `INSERT INTO compute_server_metadata(server_id, key, value) VALUES (?, ?, ?)`, id, k, val); err != nil {
					return err
				}
			}
			for _, t := range tags {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO compute_server_tags(server_id, tag) VALUES (?, ?)`, id, t); err != nil {
					return err
				}
			}
			if groupID != "" {
				if _, err := tx.ExecContext(ctx, `INSERT INTO compute_server_group_members(group_id, server_id) VALUES (?, ?)`, groupID, id); err != nil {
					return err
				}
			}
			reqID := api.RequestID(ctx)
			if reqID == "" {
				reqID = "req-" + newUUID()
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_instance_actions(server_id, request_id, action, user_id, project_id, start_time, updated_at)
				VALUES (?, ?, 'create', ?, ?, ?, ?)`, id, reqID, c.UserID, c.ProjectID, now, now); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		rows, _ := s.serverVolumes(context.WithoutCancel(ctx), s.db, firstID)
		s.unreserveRows(context.WithoutCancel(ctx), rows)
		return err
	}
	for _, id := range ids {
		s.spawn(id, func(ctx context.Context) { s.build(ctx, id) })
	}
	if string(sb.ReturnResID) == "true" || string(sb.ReturnResID) == `"true"` || string(sb.ReturnResID) == `"True"` {
		api.WriteJSON(w, http.StatusAccepted, map[string]any{"reservation_id": resID})
		return nil
	}
	sgView := []any{}
	for _, g := range sgs {
		sgView = append(sgView, map[string]any{"name": g})
	}
	w.Header().Set("Location", api.BaseURL(r)+"/compute/v2.1/servers/"+ids[0])
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": ids[0], "links": link(r, "/servers/"+ids[0]), "OS-DCF:diskConfig": "MANUAL",
		"security_groups": sgView, "adminPass": adminPass,
	}})
	return nil
}

// parseNetworks checks the networks of a create request.
func (s *Service) parseNetworks(ctx context.Context, v api.Version, c *api.Credentials, raw json.RawMessage) ([]netRequest, error) {
	auto := func() ([]netRequest, error) {
		id, err := s.networks.AutoNetwork(ctx, c.ProjectID)
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, api.BadRequest("Unable to automatically allocate a network for project %s", c.ProjectID)
		}
		return []netRequest{{NetworkID: id}}, nil
	}
	if len(raw) == 0 || string(raw) == "null" {
		if v.AtLeast(2, 37) {
			return nil, api.BadRequest("Invalid input for field/attribute server. 'networks' is a required property")
		}
		id, err := s.networks.AutoNetwork(ctx, c.ProjectID)
		if err != nil || id == "" {
			return nil, err
		}
		return []netRequest{{NetworkID: id}}, nil
	}
	var word string
	if json.Unmarshal(raw, &word) == nil {
		switch {
		case word == "auto" && v.AtLeast(2, 37):
			return auto()
		case word == "none" && v.AtLeast(2, 37):
			return nil, nil
		}
		return nil, api.BadRequest("Invalid input for field/attribute networks. Value: %s. '%s' is not one of ['none', 'auto']", word, word)
	}
	var list []struct {
		UUID    string `json:"uuid"`
		Port    string `json:"port"`
		FixedIP string `json:"fixed_ip"`
		Tag     string `json:"tag"`
	}
	if err := api.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	var out []netRequest
	for _, n := range list {
		nr := netRequest{NetworkID: n.UUID, PortID: n.Port, FixedIP: n.FixedIP, Tag: n.Tag}
		switch {
		case n.Port != "":
			p, err := s.networks.GetPort(ctx, n.Port)
			if api.IsNotFound(err) || (err == nil && !isAdmin(c) && p.ProjectID != c.ProjectID) {
				return nil, api.BadRequest("Port id %s could not be found.", n.Port)
			}
			if err != nil {
				return nil, err
			}
			if p.DeviceID != "" {
				return nil, api.Conflict("Port %s is still in use.", n.Port)
			}
			nr.NetworkID = p.NetworkID
		case n.UUID != "":
			if _, err := s.networks.CheckNetwork(ctx, c.ProjectID, n.UUID); api.IsNotFound(err) {
				return nil, api.BadRequest("Network %s could not be found.", n.UUID)
			} else if err != nil {
				return nil, err
			}
			if n.FixedIP != "" {
				if _, err := netip.ParseAddr(n.FixedIP); err != nil {
					return nil, api.BadRequest("Invalid input for field/attribute fixed_ip. Value: %s. '%s' is not a 'ipv4'", n.FixedIP, n.FixedIP)
				}
			}
		default:
			return nil, api.BadRequest("Bad networks format: network uuid is not in proper format ()")
		}
		out = append(out, nr)
	}
	return out, nil
}

func (s *Service) checkMetadata(ctx context.Context, project string, md map[string]string) error {
	for k, val := range md {
		if k == "" || len(k) > 255 {
			return api.BadRequest("Invalid input for field/attribute metadata. Value: %s. metadata keys must be 1 to 255 characters", k)
		}
		if len(val) > 255 {
			return api.BadRequest("Invalid input for field/attribute metadata. Value: %s. metadata values must be at most 255 characters", val)
		}
	}
	limit, err := s.quotaLimit(ctx, s.db, project, "metadata_items")
	if err != nil {
		return err
	}
	if limit >= 0 && int64(len(md)) > limit {
		return api.Forbidden("Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", len(md), limit)
	}
	return nil
}

func checkTags(tags []string) error {
	if len(tags) > 50 {
		return api.BadRequest("The number of tags exceeded the per-server limit 50")
	}
	for _, t := range tags {
		if t == "" || len(t) > 60 || strings.ContainsAny(t, "/,") {
			return api.BadRequest("Invalid input for field/attribute tags. Value: %s.", t)
		}
	}
	return nil
}

func (s *Service) handleListServers(detail bool) handler {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		ctx := r.Context()
		c := api.CredentialsFrom(ctx)
		q := r.URL.Query()
		page, err := api.ParsePage(r, 0, 1000)
		if err != nil {
			return err
		}
		where := []string{"1=1"}
		var args []any
		allTenants := false
		if at, ok := q["all_tenants"]; ok && isAdmin(c) {
			allTenants = len(at) == 0 || at[0] == "" || !strings.EqualFold(at[0], "false") && at[0] != "0"
		}
		if !allTenants {
			where, args = append(where, "project_id=?"), append(args, c.ProjectID)
		} else if p := firstOf(q, "project_id", "tenant_id"); p != "" {
			where, args = append(where, "project_id=?"), append(args, p)
		}
		changesSince := q.Get("changes-since")
		if changesSince != "" {
			t, err := time.Parse(time.RFC3339, changesSince)
			if err != nil {
				return api.BadRequest("Invalid input for query parameters changes-since. Value: %s. '%s' is not a 'date-time'", changesSince, changesSince)
			}
			where, args = append(where, "updated_at>=?"), append(args, t.UTC().Format(timeFormat))
		} else if d := q.Get("deleted"); isAdmin(c) && (d == "true" || d == "True" || d == "1") {
			where = append(where, "deleted=1")
		} else {
			where = append(where, "deleted=0")
		}
		if cb := q.Get("changes-before"); cb != "" && v.AtLeast(2, 66) {
			t, err := time.Parse(time.RFC3339, cb)
			if err != nil {
				return api.BadRequest("Invalid input for query parameters changes-before. Value: %s.", cb)
			}
			where, args = append(where, "updated_at<=?"), append(args, t.UTC().Format(timeFormat))
		}
		for param, col := range map[string]string{"image": "image_id", "flavor": "flavor_id", "reservation_id": "reservation_id",
			"user_id": "user_id", "key_name": "key_name", "availability_zone": "az"} {
			if val := q.Get(param); val != "" {
				where, args = append(where, col+"=?"), append(args, ref(val))
			}
		}
		if h := q.Get("host"); h != "" && isAdmin(c) {
			where, args = append(where, "host=?"), append(args, h)
		}
		if l := q.Get("locked"); l != "" && v.AtLeast(2, 73) {
			where, args = append(where, "locked=?"), append(args, strings.EqualFold(l, "true") || l == "1")
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+serverCols+` FROM compute_servers WHERE `+strings.Join(where, " AND ")+
			` ORDER BY created_at DESC, seq DESC`, args...)
		if err != nil {
			return err
		}
		var all []Server
		for rows.Next() {
			sv, err := scanServer(rows)
			if err != nil {
				rows.Close()
				return err
			}
			all = append(all, sv)
		}
		rows.Close()
		var nameRe *regexp.Regexp
		if n := q.Get("name"); n != "" {
			if nameRe, err = regexp.Compile(n); err != nil {
				nameRe = regexp.MustCompile(regexp.QuoteMeta(n))
			}
		}
		statuses := q["status"]
		tagsAll := splitList(q.Get("tags"))
		tagsAny := splitList(q.Get("tags-any"))
		var kept []Server
		for i := range all {
			sv := &all[i]
			if nameRe != nil && !nameRe.MatchString(sv.Name) {
				continue
			}
			if len(statuses) > 0 && !containsFold(statuses, status(sv.VMState, sv.TaskState)) {
				continue
			}
			if err := s.fillServer(ctx, s.db, sv); err != nil {
				return err
			}
			if len(tagsAll) > 0 && !subset(tagsAll, sv.Tags) || len(tagsAny) > 0 && !intersects(tagsAny, sv.Tags) {
				continue
			}
			if ip := q.Get("ip"); ip != "" && !portsMatchIP(sv.Ports, ip) {
				continue
			}
			kept = append(kept, *sv)
		}
		if page.Marker != "" {
			found := false
			for _, sv := range kept {
				found = found || sv.ID == page.Marker
			}
			if !found {
				return api.BadRequest("marker [%s] not found", page.Marker)
			}
		}
		kept, _ = pageOf(kept, page, func(sv Server) string { return sv.ID }, "server")
		out := []any{}
		for _, sv := range kept {
			if detail {
				out = append(out, s.serverView(r, v, sv))
			} else {
				out = append(out, map[string]any{"id": sv.ID, "name": sv.Name, "links": link(r, "/servers/"+sv.ID)})
			}
		}
		resp := map[string]any{"servers": out}
		if len(kept) > 0 {
			if l := api.NextLink(r, page, len(kept), kept[len(kept)-1].ID); l != nil {
				resp["servers_links"] = []any{l}
			}
		}
		api.WriteJSON(w, http.StatusOK, resp)
		return nil
	}
}

func firstOf(q map[string][]string, keys ...string) string {
	for _, k := range keys {
		if v := q[k]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func subset(want, have []string) bool {
	for _, w := range want {
		if !contains(have, w) {
			return false
		}
	}
	return true
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

func portsMatchIP(ports []serverPort, pattern string) bool {
	re, err := regexp.Compile(pattern)
	if err != nil {
		re = regexp.MustCompile(regexp.QuoteMeta(pattern))
	}
	for _, p := range ports {
		for _, ip := range p.IPs {
			if re.MatchString(ip) {
				return true
			}
		}
	}
	return false
}

func (s *Service) handleShowServer(w http.ResponseWriter, r *http.Request, v api.Version) error {
	sv, err := s.getServer(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"server": s.serverView(r, v, sv)})
	return nil
}

func (s *Service) handleUpdateServer(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	sv, err := s.getServer(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return err
	}
	var b struct {
		Server *struct {
			Name        *string         `json:"name"`
			AccessIPv4  *string         `json:"accessIPv4"`
			AccessIPv6  *string         `json:"accessIPv6"`
			Description json.RawMessage `json:"description"`
			Hostname    *string         `json:"hostname"`
			DiskConfig  string          `json:"OS-DCF:diskConfig"`
		} `json:"server"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Server == nil {
		return api.BadRequest("Invalid input for field/attribute server. 'server' is a required property")
	}
	u := b.Server
	if u.Name != nil {
		if strings.TrimSpace(*u.Name) == "" || len(*u.Name) > 255 {
			return api.BadRequest("Invalid input for field/attribute name. Value: %s.", *u.Name)
		}
		sv.Name = *u.Name
	}
	if u.AccessIPv4 != nil {
		sv.AccessIPv4 = *u.AccessIPv4
	}
	if u.AccessIPv6 != nil {
		sv.AccessIPv6 = *u.AccessIPv6
	}
	if len(u.Description) > 0 {
		if !v.AtLeast(2, 19) {
			return api.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
		}
		var d *string
		if err := json.Unmarshal(u.Description, &d); err != nil || d != nil && len(*d) > 255 {
			return api.BadRequest("Invalid input for field/attribute description.")
		}
		sv.Description = d
	}
	if u.Hostname != nil {
		if !v.AtLeast(2, 90) {
			return api.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('hostname' was unexpected)")
		}
		sv.Hostname = *u.Hostname
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET name=?, access_ipv4=?, access_ipv6=?, description=?, hostname=?, updated_at=? WHERE id=?`,
		sv.Name, sv.AccessIPv4, sv.AccessIPv6, sv.Description, sv.Hostname, nowText(), sv.ID); err != nil {
		return err
	}
	return s.handleShowServer(w, r, v)
}

func (s *Service) handleDeleteServer(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	sv, err := s.getServer(ctx, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if sv.Locked && !isAdmin(c) {
		return api.Conflict("Instance %s is locked", sv.ID)
	}
	if sv.TaskState != taskDeleting {
		if _, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET task_state=?, updated_at=? WHERE id=? AND deleted=0`,
			taskDeleting, nowText(), sv.ID); err != nil {
			return err
		}
		if err := s.startAction(ctx, r, sv, "delete"); err != nil {
			return err
		}
	}
	id := sv.ID
	s.spawn(id, func(ctx context.Context) { s.destroy(ctx, id) })
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleServerAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	var body map[string]json.RawMessage
	if err := api.DecodeJSON(r, &body); err != nil {
		return err
	}
	if len(body) != 1 {
		return api.BadRequest("Malformed request body: exactly one action is required.")
	}
	var name string
	var arg json.RawMessage
	for k, a := range body {
		name, arg = k, a
	}
	sv, err := s.getServer(ctx, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	switch name {
	case "os-start", "os-stop", "pause", "unpause", "suspend", "resume", "reboot":
		key := name
		if name == "reboot" {
			var rb struct {
				Type string `json:"type"`
			}
			if err := api.Unmarshal(arg, &rb); err != nil {
				return err
			}
			switch strings.ToUpper(rb.Type) {
			case "SOFT":
				key = "reboot-soft"
			case "HARD":
				key = "reboot-hard"
			default:
				return api.BadRequest("Invalid input for field/attribute type. Value: %s. '%s' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", rb.Type, rb.Type)
			}
		}
		a := powerActions[key]
		if err := s.beginAction(ctx, r, sv, a.name, a.task, a.from); err != nil {
			return err
		}
		id := sv.ID
		s.spawn(id, func(ctx context.Context) { s.runAction(ctx, id, a) })
		w.WriteHeader(http.StatusAccepted)
		return nil
	case "lock":
		var lb struct {
			Reason *string `json:"locked_reason"`
		}
		if len(arg) > 0 && string(arg) != "null" {
			if err := api.Unmarshal(arg, &lb); err != nil {
				return err
			}
		}
		if lb.Reason != nil && !v.AtLeast(2, 73) {
			return api.BadRequest("Invalid input for field/attribute lock. Additional properties are not allowed ('locked_reason' was unexpected)")
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET locked=1, locked_reason=?, updated_at=? WHERE id=?`, lb.Reason, nowText(), sv.ID); err != nil {
			return err
		}
		s.startAction(ctx, r, sv, "lock")
		s.finishAction(ctx, sv.ID, "lock", nil)
		w.WriteHeader(http.StatusAccepted)
		return nil
	case "unlock":
		if _, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET locked=0, locked_reason=NULL, updated_at=? WHERE id=?`, nowText(), sv.ID); err != nil {
			return err
		}
		s.startAction(ctx, r, sv, "unlock")
		s.finishAction(ctx, sv.ID, "unlock", nil)
		w.WriteHeader(http.StatusAccepted)
		return nil
	case "os-getConsoleOutput":
		var cb struct {
			Length json.RawMessage `json:"length"`
		}
		if len(arg) > 0 && string(arg) != "null" {
			if err := api.Unmarshal(arg, &cb); err != nil {
				return err
			}
		}
		length := -1
		if len(cb.Length) > 0 && string(cb.Length) != "null" {
			n, err := strconv.Atoi(strings.Trim(string(cb.Length), `"`))
			if err != nil || n < -1 {
				return api.BadRequest("Invalid input for field/attribute length. Value: %s.", cb.Length)
			}
			length = n
		}
		if sv.Host == "" || sv.VMState == vmBuilding {
			return api.Conflict("Instance %s is not ready", sv.ID)
		}
		out, err := s.hosts.ConsoleLog(ctx, sv.Host, sv.ID, length)
		if err != nil {
			return err
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"output": out})
		return nil
	case "rebuild":
		return s.handleRebuild(w, r, v, sv, arg)
	case "createImage":
		return s.handleCreateImage(w, r, v, sv, arg)
	}
	return api.BadRequest("There is no such action: %s", name)
}

func (s *Service) handleRebuild(w http.ResponseWriter, r *http.Request, v api.Version, sv Server, arg json.RawMessage) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	var rb struct {
		ImageRef string             `json:"imageRef"`
		Name     *string            `json:"name"`
		Metadata *map[string]string `json:"metadata"`
		UserData *string            `json:"user_data"`
		KeyName  *string            `json:"key_name"`
	}
	if err := api.Unmarshal(arg, &rb); err != nil {
		return err
	}
	if rb.ImageRef == "" {
		return api.BadRequest("Invalid input for field/attribute rebuild. 'imageRef' is a required property")
	}
	if sv.volumeBacked() {
		// Its root is a volume, not an image to make afresh (Nova before
		// 2.93, which re-images the volume).
		return api.BadRequest("Unable to rebuild with a different image for a volume-backed server.")
	}
	img, err := s.images.Lookup(ctx, c, ref(rb.ImageRef))
	if api.IsNotFound(err) {
		return api.BadRequest("Can not find requested image")
	}
	if err != nil {
		return err
	}
	if img.Status != "active" {
		return api.BadRequest("Image %s is not active.", img.ID)
	}
	if sv.Flavor.Disk > 0 && img.MinDisk > sv.Flavor.Disk {
		return api.BadRequest("Flavor's disk is too small for requested image. Flavor disk is %d bytes, minimum size is %d bytes.", sv.Flavor.Disk<<30, img.MinDisk<<30)
	}
	if img.MinRAM > sv.Flavor.RAM {
		return api.BadRequest("Flavor's memory is too small for requested image.")
	}
	if err := s.beginAction(ctx, r, sv, "rebuild", taskRebuilding, []string{vmActive, vmStopped, vmError}); err != nil {
		return err
	}
	sv.Requested.Image = img
	sets := []string{"image_id=?", "requested=?", "generation=generation+1"}
	args := []any{img.ID, jsonText(sv.Requested)}
	if rb.Name != nil && *rb.Name != "" {
		sets, args = append(sets, "name=?"), append(args, *rb.Name)
	}
	if rb.UserData != nil {
		sets, args = append(sets, "user_data=nullif(?, '')"), append(args, *rb.UserData)
	}
	if rb.KeyName != nil && v.AtLeast(2, 54) {
		k, err := s.getKeypair(ctx, c.UserID, *rb.KeyName)
		if err != nil {
			s.setTask(ctx, sv.ID, "")
			return api.BadRequest("Invalid key_name provided.")
		}
		sets, args = append(sets, "key_name=?", "key_data=?"), append(args, k.Name, k.PublicKey)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE compute_servers SET `+strings.Join(sets, ", ")+` WHERE id=?`, append(args, sv.ID)...); err != nil {
		return err
	}
	if rb.Metadata != nil {
		s.db.ExecContext(ctx, `DELETE FROM compute_server_metadata WHERE server_id=?`, sv.ID)
		for k, val := range *rb.Metadata {
			s.db.ExecContext(ctx, `INSERT INTO compute_server_metadata(server_id, key, value) VALUES (?, ?, ?)`, sv.ID, k, val)
		}
	}
	id := sv.ID
	s.spawn(id, func(ctx context.Context) { s.rebuild(ctx, id) })
	sv, err = s.getServer(ctx, c, id)
	if err != nil {
		return err
	}
	view := s.serverView(r, v, sv)
	view["adminPass"] = randomPassword()
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"server": view})
	return nil
}

// rebuild re-makes a server on its host from its (new) image.
func (s *Service) rebuild(ctx context.Context, id string) {
	sv, err := s.loadServer(ctx, s.db, id)
	if err != nil || sv.Deleted || sv.TaskState != taskRebuilding {
		return
	}
	spec, err := s.spec(ctx, sv)
	if err == nil {
		err = s.hosts.EnsureServer(ctx, sv.Host, spec)
	}
	if err == nil {
		err = s.replugVolumes(ctx, sv)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.setState(ctx, id, vmError, "", PowerNoState, &Fault{Code: 500, Message: "Rebuild of instance " + id + " failed: " + err.Error()})
		s.finishAction(ctx, id, "rebuild", err)
		return
	}
	s.setState(ctx, id, vmActive, "", PowerRunning, nil)
	s.finishAction(ctx, id, "rebuild", nil)
}

func (s *Service) handleMetadata(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	sv, err := s.getServer(ctx, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	switch r.Method {
	case http.MethodGet:
		if key == "" {
			api.WriteJSON(w, http.StatusOK, map[string]any{"metadata": sv.Metadata})
			return nil
		}
		val, ok := sv.Metadata[key]
		if !ok {
			return api.NotFound("Metadata item was not found")
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: val}})
		return nil
	case http.MethodDelete:
		if _, ok := sv.Metadata[key]; !ok {
			return api.NotFound("Metadata item was not found")
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM compute_server_metadata WHERE server_id=? AND key=?`, sv.ID, key); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if sv.Locked && !isAdmin(c) {
		return api.Conflict("Instance %s is locked", sv.ID)
	}
	var md map[string]string
	if key != "" {
		var b struct {
			Meta map[string]string `json:"meta"`
		}
		if err := api.DecodeJSON(r, &b); err != nil {
			return err
		}
		if _, ok := b.Meta[key]; !ok || len(b.Meta) != 1 {
			return api.BadRequest("Request body and URI mismatch")
		}
		md = b.Meta
	} else {
		var b struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := api.DecodeJSON(r, &b); err != nil {
			return err
		}
		if b.Metadata == nil {
			return api.BadRequest("Invalid input for field/attribute metadata. 'metadata' is a required property")
		}
		md = b.Metadata
	}
	replace := r.Method == http.MethodPut && key == ""
	merged := map[string]string{}
	if !replace {
		for k, val := range sv.Metadata {
			merged[k] = val
		}
	}
	for k, val := range md {
		merged[k] = val
	}
	if err := s.checkMetadata(ctx, sv.ProjectID, merged); err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM compute_server_metadata WHERE server_id=?`, sv.ID); err != nil {
			return err
		}
		for k, val := range merged {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_server_metadata(server_id, key, value) VALUES (?, ?, ?)`, sv.ID, k, val); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE compute_servers SET updated_at=? WHERE id=?`, nowText(), sv.ID)
		return err
	})
	if err != nil {
		return err
	}
	if key != "" {
		api.WriteJSON(w, http.StatusOK, map[string]any{"meta": md})
	} else {
		api.WriteJSON(w, http.StatusOK, map[string]any{"metadata": merged})
	}
	return nil
}

func (s *Service) handleTags(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(2, 26) {
		return api.NotFound("The resource could not be found.")
	}
	ctx := r.Context()
	sv, err := s.getServer(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return err
	}
	tag := r.PathValue("tag")
	switch {
	case r.Method == http.MethodGet && tag == "":
		api.WriteJSON(w, http.StatusOK, map[string]any{"tags": sv.Tags})
	case r.Method == http.MethodGet:
		if !contains(sv.Tags, tag) {
			return api.NotFound("Tag %s could not be found.", tag)
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut && tag == "":
		var b struct {
			Tags []string `json:"tags"`
		}
		if err := api.DecodeJSON(r, &b); err != nil {
			return err
		}
		if b.Tags == nil {
			return api.BadRequest("Invalid input for field/attribute tags. 'tags' is a required property")
		}
		if err := checkTags(b.Tags); err != nil {
			return err
		}
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM compute_server_tags WHERE server_id=?`, sv.ID); err != nil {
				return err
			}
			for _, t := range b.Tags {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO compute_server_tags(server_id, tag) VALUES (?, ?)`, sv.ID, t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		sort.Strings(b.Tags)
		api.WriteJSON(w, http.StatusOK, map[string]any{"tags": b.Tags})
	case r.Method == http.MethodPut:
		if err := checkTags(append(sv.Tags, tag)); err != nil {
			return err
		}
		if contains(sv.Tags, tag) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO compute_server_tags(server_id, tag) VALUES (?, ?)`, sv.ID, tag); err != nil {
			return err
		}
		w.Header().Set("Location", api.BaseURL(r)+"/compute/v2.1/servers/"+sv.ID+"/tags/"+tag)
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodDelete && tag == "":
		if _, err := s.db.ExecContext(ctx, `DELETE FROM compute_server_tags WHERE server_id=?`, sv.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		res, err := s.db.ExecContext(ctx, `DELETE FROM compute_server_tags WHERE server_id=? AND tag=?`, sv.ID, tag)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("Tag %s could not be found.", tag)
		}
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}
