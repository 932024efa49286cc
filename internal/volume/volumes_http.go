package volume

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// volumeView is a volume as the API shows it (detail), for microversion v.
func (s *Service) volumeView(r *http.Request, vol Volume, typ VolumeType, v api.Version) map[string]any {
	c := api.CredentialsFrom(r.Context())
	admin := c != nil && c.CloudAdmin()
	atts := []any{}
	for _, a := range vol.Attachments {
		if a.Status != attAttached && a.Status != attDetaching {
			continue
		}
		host := nullable(a.Host)
		if !admin {
			host = nil // the host is shown to admins only, as upstream
		}
		atts = append(atts, map[string]any{"server_id": a.ServerID, "attachment_id": a.ID, "attached_at": nullable(a.AttachedAt),
			"host_name": host, "volume_id": vol.ID, "device": a.Device, "id": vol.ID})
	}
	meta := vol.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	m := map[string]any{
		"id": vol.ID, "name": vol.Name, "description": vol.Description, "size": vol.Size, "status": vol.Status,
		"availability_zone": vol.AZ, "created_at": vol.CreatedAt, "updated_at": nullable(vol.UpdatedAt),
		"attachments": atts, "bootable": boolText(vol.Bootable), "encrypted": false, "multiattach": vol.Multiattach,
		"metadata": meta, "volume_type": typ.Name, "snapshot_id": nullable(vol.SnapshotID), "source_volid": nullable(vol.SourceVolID),
		"user_id": vol.UserID, "replication_status": nil, "consistencygroup_id": nil,
		"os-vol-tenant-attr:tenant_id": vol.ProjectID, "os-vol-mig-status-attr:migstat": nil, "os-vol-mig-status-attr:name_id": nil,
		"links": s.links(r, "volumes", vol.ID),
	}
	if admin {
		m["os-vol-host-attr:host"] = s.backendHost()
		m["migration_status"] = nil
	}
	if vol.ImageMeta != nil {
		m["volume_image_metadata"] = vol.ImageMeta
	}
	if v.AtLeast(3, 13) {
		m["group_id"] = nil
	}
	if v.AtLeast(3, 21) {
		m["provider_id"] = nil
	}
	if v.AtLeast(3, 48) {
		m["shared_targets"] = false
		m["service_uuid"] = serviceUUID
	}
	if v.AtLeast(3, 61) && admin {
		m["cluster_name"] = nil
	}
	if v.AtLeast(3, 63) {
		m["volume_type_id"] = typ.ID
	}
	if v.AtLeast(3, 65) {
		m["consumes_quota"] = true
	}
	return m
}

// serviceUUID names the one cinder-volume service.
const serviceUUID = "8d37ad19-5f5e-4ff5-8b08-8c7f0d1f6d71"

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (s *Service) links(r *http.Request, collection, id string) []api.Link {
	base := api.BaseURL(r) + "/volume"
	project := r.PathValue("project_id")
	return []api.Link{
		{Rel: "self", Href: base + "/v3/" + project + "/" + collection + "/" + id},
		{Rel: "bookmark", Href: base + "/" + project + "/" + collection + "/" + id},
	}
}

func (s *Service) viewOf(ctx context.Context, r *http.Request, vol Volume, v api.Version) (map[string]any, error) {
	typ, err := s.loadType(ctx, s.db, vol.TypeID)
	if err != nil {
		return nil, err
	}
	return s.volumeView(r, vol, typ, v), nil
}

type volumeBody struct {
	Volume *struct {
		Size             any               `json:"size"`
		Name             *string           `json:"name"`
		DisplayName      *string           `json:"display_name"`
		Description      *string           `json:"description"`
		DisplayDesc      *string           `json:"display_description"`
		AvailabilityZone *string           `json:"availability_zone"`
		VolumeType       *string           `json:"volume_type"`
		Metadata         map[string]string `json:"metadata"`
		SnapshotID       *string           `json:"snapshot_id"`
		SourceVolID      *string           `json:"source_volid"`
		ImageRef         *string           `json:"imageRef"`
		ImageID          *string           `json:"image_id"`
		BackupID         *string           `json:"backup_id"`
		Multiattach      any               `json:"multiattach"`
		ConsistencyGroup *string           `json:"consistencygroup_id"`
	} `json:"volume"`
}

func sizeParam(v any) (int64, bool) {
	switch x := v.(type) {
	case nil:
		return 0, true
	case string:
		n, err := toInt(strings.TrimSpace(x))
		return n, err == nil
	default:
		n, err := toInt(v)
		return n, err == nil
	}
}

func (s *Service) handleCreateVolume(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b volumeBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Volume == nil {
		return api.BadRequest("Missing required element 'volume' in request body.")
	}
	bv := b.Volume
	size, ok := sizeParam(bv.Size)
	if !ok {
		return api.BadRequest("Invalid input for field/attribute size. Value: %v. '%v' does not match '^[0-9]+$'", bv.Size, bv.Size)
	}
	if bv.Size != nil && size <= 0 {
		return api.BadRequest("Invalid input for field/attribute size. Value: %d. %d is less than the minimum of 1", size, size)
	}
	c := api.CredentialsFrom(r.Context())
	n := NewVolume{ProjectID: c.ProjectID, UserID: c.UserID, Name: bv.Name, Description: bv.Description, Size: size, Metadata: bv.Metadata}
	if n.Name == nil {
		n.Name = bv.DisplayName
	}
	if n.Description == nil {
		n.Description = bv.DisplayDesc
	}
	if n.Name != nil && len(*n.Name) > 255 {
		return api.BadRequest("Invalid input received: Name has more than 255 characters.")
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	n.AZ, n.Type, n.SnapshotID, n.SourceVolID = str(bv.AvailabilityZone), str(bv.VolumeType), str(bv.SnapshotID), str(bv.SourceVolID)
	n.ImageID = str(bv.ImageRef)
	if n.ImageID == "" {
		n.ImageID = str(bv.ImageID)
	}
	if id := str(bv.BackupID); id != "" {
		// 3.47: a volume made from a backup is the backup restored onto a
		// new volume.
		if !v.AtLeast(3, 47) {
			return api.BadRequest("Invalid input received: backup_id needs microversion 3.47.")
		}
		_, vol, err := s.Restore(r.Context(), c, id, "", n.Name)
		if err != nil {
			return err
		}
		view, err := s.viewOf(r.Context(), r, vol, v)
		if err != nil {
			return err
		}
		api.WriteJSON(w, http.StatusAccepted, map[string]any{"volume": view})
		return nil
	}
	sources := 0
	for _, x := range []string{n.SnapshotID, n.SourceVolID, n.ImageID} {
		if x != "" {
			sources++
		}
	}
	if sources > 1 {
		return api.BadRequest("Invalid input received: only one of snapshot_id, source_volid and imageRef may be given.")
	}
	if sources == 0 && bv.Size == nil {
		return api.BadRequest("Invalid input for field/attribute size. Value: None. None is not of type 'integer', 'string'")
	}
	var err error
	if multi, err := boolParam(bv.Multiattach); err != nil {
		return err
	} else if multi {
		return api.BadRequest("multiattach parameter has been removed. The default behavior is to use multiattach enabled volume types. Contact your administrator to create a multiattach enabled volume type and use it to create multiattach volumes.")
	}
	vol, err := s.Create(r.Context(), c, n)
	if err != nil {
		return err
	}
	view, err := s.viewOf(r.Context(), r, vol, v)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"volume": view})
	return nil
}

func (s *Service) handleShowVolume(w http.ResponseWriter, r *http.Request, v api.Version) error {
	vol, err := s.getVolume(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	view, err := s.viewOf(r.Context(), r, vol, v)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume": view})
	return nil
}

func (s *Service) handleListVolumes(detail bool) func(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		ctx := r.Context()
		c := api.CredentialsFrom(ctx)
		l, err := newLister(r, c, "volume_volumes", map[string]string{"name": "name", "display_name": "name", "status": "status",
			"availability_zone": "az", "snapshot_id": "snapshot_id", "source_volid": "source_volid"})
		if err != nil {
			return err
		}
		where, args := l.where, l.args
		if b := r.URL.Query().Get("bootable"); b != "" {
			bootable, err := boolParam(b)
			if err != nil {
				return err
			}
			where, args = andWhere(where, "bootable=?"), append(args, bootable)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+volumeCols+` FROM volume_volumes`+where+l.order, args...)
		if err != nil {
			return err
		}
		var list []Volume
		for rows.Next() {
			vol, err := scanVolume(rows)
			if err != nil {
				rows.Close()
				return err
			}
			list = append(list, vol)
		}
		rows.Close()
		if m := r.URL.Query().Get("metadata"); m != "" {
			var want map[string]string
			if err := json.Unmarshal([]byte(strings.ReplaceAll(m, "'", `"`)), &want); err != nil {
				return api.BadRequest("Invalid input received: metadata filter %q is not a JSON object.", m)
			}
			kept := list[:0]
			for _, vol := range list {
				meta, err := readMetadata(ctx, s.db, "volume_metadata", "volume_id", vol.ID)
				if err != nil {
					return err
				}
				ok := true
				for k, val := range want {
					ok = ok && meta[k] == val
				}
				if ok {
					kept = append(kept, vol)
				}
			}
			list = kept
		}
		page, next, err := l.page(len(list), func(i int) string { return list[i].ID })
		if err != nil {
			return err
		}
		out := []any{}
		for _, i := range page {
			vol := list[i]
			if !detail {
				out = append(out, map[string]any{"id": vol.ID, "name": vol.Name, "links": s.links(r, "volumes", vol.ID)})
				continue
			}
			if err := s.fillVolume(ctx, s.db, &vol); err != nil {
				return err
			}
			view, err := s.viewOf(ctx, r, vol, v)
			if err != nil {
				return err
			}
			out = append(out, view)
		}
		body := map[string]any{"volumes": out}
		if next != nil {
			body["volumes_links"] = []any{next}
		}
		if v.AtLeast(3, 34) && r.URL.Query().Get("with_count") == "true" {
			body["count"] = len(list)
		}
		api.WriteJSON(w, http.StatusOK, body)
		return nil
	}
}

func andWhere(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}

func (s *Service) handleUpdateVolume(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b volumeBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Volume == nil {
		return api.BadRequest("Missing required element 'volume' in request body.")
	}
	ctx := r.Context()
	vol, err := s.getVolume(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return err
	}
	if n := b.Volume.Name; n != nil {
		vol.Name = n
	} else if n := b.Volume.DisplayName; n != nil {
		vol.Name = n
	}
	if vol.Name != nil && len(*vol.Name) > 255 {
		return api.BadRequest("Invalid input received: Name has more than 255 characters.")
	}
	if d := b.Volume.Description; d != nil {
		vol.Description = d
	} else if d := b.Volume.DisplayDesc; d != nil {
		vol.Description = d
	}
	if b.Volume.Metadata != nil {
		if err := checkMetadata(b.Volume.Metadata); err != nil {
			return err
		}
		if err := writeMetadata(ctx, s.db, "volume_metadata", "volume_id", vol.ID, b.Volume.Metadata, true); err != nil {
			return err
		}
		vol.Metadata = b.Volume.Metadata
	}
	vol.UpdatedAt = nowText()
	if _, err := s.db.ExecContext(ctx, `UPDATE volume_volumes SET name=?, description=?, updated_at=? WHERE id=?`,
		vol.Name, vol.Description, vol.UpdatedAt, vol.ID); err != nil {
		return err
	}
	view, err := s.viewOf(ctx, r, vol, v)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume": view})
	return nil
}

func (s *Service) handleDeleteVolume(w http.ResponseWriter, r *http.Request, v api.Version) error {
	q := r.URL.Query()
	cascade, err := boolParam(q.Get("cascade"))
	if err != nil {
		return err
	}
	force, err := boolParam(q.Get("force"))
	if err != nil {
		return err
	}
	c := api.CredentialsFrom(r.Context())
	if force && !c.CloudAdmin() {
		return api.Forbidden("Policy doesn't allow volume:force_delete to be performed.")
	}
	if err := s.Delete(r.Context(), c, r.PathValue("id"), cascade, force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// handleVolumeAction is POST /volumes/{id}/action.
func (s *Service) handleVolumeAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b map[string]json.RawMessage
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if len(b) != 1 {
		return api.BadRequest("Invalid input received: exactly one action is expected in the request body.")
	}
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	id := r.PathValue("id")
	vol, err := s.getVolume(ctx, c, id)
	if err != nil {
		return err
	}
	for name, raw := range b {
		var args map[string]any
		if len(raw) > 0 && string(raw) != "null" {
			if err := api.Unmarshal(raw, &args); err != nil {
				return err
			}
		}
		admin := func(policy string) error {
			if !c.CloudAdmin() {
				return api.Forbidden("Policy doesn't allow %s to be performed.", policy)
			}
			return nil
		}
		switch name {
		case "os-extend":
			n, ok := sizeParam(args["new_size"])
			if !ok || args["new_size"] == nil {
				return api.BadRequest("Invalid input received: New volume size must be specified as an integer.")
			}
			if err := s.Extend(ctx, c, id, n, v.AtLeast(3, 42)); err != nil {
				return err
			}
		case "os-reset_status":
			if err := admin("volume_extension:volume_admin_actions:reset_status"); err != nil {
				return err
			}
			if err := s.resetStatus(ctx, vol, args); err != nil {
				return err
			}
		case "os-force_delete":
			if err := admin("volume_extension:volume_admin_actions:force_delete"); err != nil {
				return err
			}
			if err := s.Delete(ctx, c, id, true, true); err != nil {
				return err
			}
		case "os-set_bootable":
			bootable, err := boolParam(args["bootable"])
			if err != nil || args["bootable"] == nil {
				return api.BadRequest("Invalid input received: bootable must be a boolean.")
			}
			if _, err := s.db.ExecContext(ctx, `UPDATE volume_volumes SET bootable=?, updated_at=? WHERE id=?`, bootable, nowText(), id); err != nil {
				return err
			}
			w.WriteHeader(http.StatusOK)
			return nil
		case "os-update_readonly_flag":
			ro, err := boolParam(args["readonly"])
			if err != nil || args["readonly"] == nil {
				return api.BadRequest("Invalid input received: readonly must be a boolean.")
			}
			if vol.Status != stAvailable {
				return api.BadRequest("Invalid volume: Volume %s status must be available to update readonly flag, but current status is: %s.", id, vol.Status)
			}
			if _, err := s.db.ExecContext(ctx, `UPDATE volume_volumes SET readonly=?, updated_at=? WHERE id=?`, ro, nowText(), id); err != nil {
				return err
			}
		case "os-reserve":
			if _, err := s.reserve(ctx, c, id, "", map[string]any{}, "rw", ""); err != nil {
				return err
			}
		case "os-unreserve":
			var att string
			s.db.QueryRowContext(ctx, `SELECT id FROM volume_attachments WHERE volume_id=? AND status IN (?, ?) ORDER BY created_at DESC LIMIT 1`,
				id, attAttaching, attReserved).Scan(&att)
			if att != "" {
				if err := s.Unreserve(ctx, att); err != nil {
					return err
				}
			}
		case "os-begin_detaching", "os-roll_detaching", "os-detach":
			var att string
			q := `SELECT id FROM volume_attachments WHERE volume_id=?`
			qargs := []any{id}
			if a, _ := args["attachment_id"].(string); a != "" {
				q, qargs = q+` AND id=?`, append(qargs, a)
			}
			s.db.QueryRowContext(ctx, q+` ORDER BY created_at DESC LIMIT 1`, qargs...).Scan(&att)
			if att == "" {
				return api.BadRequest("Invalid volume: Volume %s is not attached.", id)
			}
			switch name {
			case "os-begin_detaching":
				err = s.BeginDetach(ctx, att)
			case "os-roll_detaching":
				err = s.RollDetach(ctx, att)
			default:
				err = s.Detached(ctx, att)
			}
			if err != nil {
				return err
			}
		case "os-attach":
			server, _ := args["instance_uuid"].(string)
			device, _ := args["mountpoint"].(string)
			host, _ := args["host_name"].(string)
			var att string
			s.db.QueryRowContext(ctx, `SELECT id FROM volume_attachments WHERE volume_id=? AND status IN (?, ?) ORDER BY created_at DESC LIMIT 1`,
				id, attAttaching, attReserved).Scan(&att)
			if att == "" {
				conn, err := s.reserve(ctx, c, id, server, map[string]any{}, "rw", "")
				if err != nil {
					return err
				}
				att = conn.AttachmentID
			} else if server != "" {
				s.db.ExecContext(ctx, `UPDATE volume_attachments SET server_id=? WHERE id=?`, server, att)
			}
			if err := s.Attached(ctx, att, host, device); err != nil {
				return err
			}
		default:
			return api.BadRequest("There is no such action: %s. Verify the request body and Content-Type header and try again.", name)
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// resetStatus is an admin's os-reset_status: it sets the status (and
// attach_status) without doing anything, and ends any work in flight.
func (s *Service) resetStatus(ctx context.Context, vol Volume, args map[string]any) error {
	st, _ := args["status"].(string)
	valid := []string{stAvailable, stError, stCreating, stDeleting, stInUse, stAttaching, stDetaching, stErrorDeleting,
		stErrorExtending, stErrorRestoring, stReserved, stMaintenance, stExtending, stBackingUp, stRestoring}
	if st == "" {
		if _, ok := args["attach_status"]; !ok {
			return api.BadRequest("Invalid input received: Must specify 'status', 'attach_status' or 'migration_status' for update.")
		}
	} else if !contains(valid, st) {
		return api.BadRequest("Invalid input received: Must specify a valid status")
	}
	if st != "" {
		if _, err := s.db.ExecContext(ctx, `UPDATE volume_volumes SET status=?, task=NULL, updated_at=? WHERE id=?`, st, nowText(), vol.ID); err != nil {
			return err
		}
	}
	if as, _ := args["attach_status"].(string); as == "detached" {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM volume_attachments WHERE volume_id=?`, vol.ID); err != nil {
			return err
		}
	}
	return nil
}

// Metadata of volumes: GET/POST/PUT /volumes/{id}/metadata, and one key.
func (s *Service) handleVolumeMetadata(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	vol, err := s.getVolume(ctx, api.CredentialsFrom(ctx), r.PathValue("id"))
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	switch r.Method {
	case http.MethodGet:
		if key != "" {
			val, ok := vol.Metadata[key]
			if !ok {
				return api.NotFound("Volume %s has no metadata with key %s.", vol.ID, key)
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: val}})
			return nil
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"metadata": vol.Metadata})
		return nil
	case http.MethodDelete:
		if _, ok := vol.Metadata[key]; !ok {
			return api.NotFound("Volume %s has no metadata with key %s.", vol.ID, key)
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM volume_metadata WHERE volume_id=? AND key=?`, vol.ID, key); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	var b struct {
		Metadata map[string]string `json:"metadata"`
		Meta     map[string]string `json:"meta"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if key != "" {
		if len(b.Meta) != 1 {
			return api.BadRequest("Request body and URI mismatch")
		}
		if _, ok := b.Meta[key]; !ok {
			return api.BadRequest("Request body and URI mismatch")
		}
		b.Metadata = b.Meta
	}
	if b.Metadata == nil {
		return api.BadRequest("Malformed request body: metadata is required.")
	}
	if err := checkMetadata(b.Metadata); err != nil {
		return err
	}
	replace := r.Method == http.MethodPut && key == ""
	if err := writeMetadata(ctx, s.db, "volume_metadata", "volume_id", vol.ID, b.Metadata, replace); err != nil {
		return err
	}
	if key != "" {
		api.WriteJSON(w, http.StatusOK, map[string]any{"meta": b.Metadata})
		return nil
	}
	all, err := readMetadata(ctx, s.db, "volume_metadata", "volume_id", vol.ID)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"metadata": all})
	return nil
}
