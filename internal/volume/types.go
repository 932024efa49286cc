package volume

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// DefaultTypeName is the volume type made at first start, as Cinder makes
// it, used when a request names none.
const DefaultTypeName = "__DEFAULT__"

// VolumeType is a volume type with its extra specs.
type VolumeType struct {
	ID, Name    string
	Description *string
	IsPublic    bool
	ExtraSpecs  map[string]string
}

func (t VolumeType) multiattach() bool {
	return strings.EqualFold(strings.TrimSpace(t.ExtraSpecs["multiattach"]), "<is> True")
}

func (s *Service) ensureDefaultType(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO volume_types(id, name, description, is_public, created_at)
		VALUES (?, ?, 'Default Volume Type', 1, ?) ON CONFLICT DO NOTHING`, newUUID(), DefaultTypeName, nowText())
	return err
}

func typeNotFound(id string) error { return api.NotFound("Volume type %s could not be found.", id) }

func (s *Service) loadType(ctx context.Context, q queryer, idOrName string) (VolumeType, error) {
	var t VolumeType
	var desc sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, name, description, is_public FROM volume_types WHERE id=? OR name=?
		ORDER BY id=? DESC LIMIT 1`, idOrName, idOrName, idOrName).Scan(&t.ID, &t.Name, &desc, &t.IsPublic)
	if errors.Is(err, sql.ErrNoRows) {
		return t, typeNotFound(idOrName)
	}
	if err != nil {
		return t, err
	}
	if desc.Valid {
		t.Description = &desc.String
	}
	t.ExtraSpecs, err = readMetadata(ctx, q, "volume_type_specs", "type_id", t.ID)
	return t, err
}

// typeVisible: public types, private ones the project was given, all for
// admins.
func (s *Service) typeVisible(ctx context.Context, c *api.Credentials, t VolumeType) bool {
	if t.IsPublic || c.CloudAdmin() {
		return true
	}
	var n int
	s.db.QueryRowContext(ctx, `SELECT count(*) FROM volume_type_access WHERE type_id=? AND project_id=?`, t.ID, c.ProjectID).Scan(&n)
	return n > 0
}

// resolveType finds the type a create asks for, or the default one.
func (s *Service) resolveType(ctx context.Context, c *api.Credentials, name string) (VolumeType, error) {
	if name == "" {
		name = DefaultTypeName
	}
	t, err := s.loadType(ctx, s.db, name)
	if err == nil && !s.typeVisible(ctx, c, t) {
		err = typeNotFound(name)
	}
	if api.IsNotFound(err) {
		return t, api.NotFound("Volume type with name %s could not be found.", name)
	}
	return t, err
}

func (s *Service) typeView(t VolumeType) map[string]any {
	specs := t.ExtraSpecs
	if specs == nil {
		specs = map[string]string{}
	}
	return map[string]any{"id": t.ID, "name": t.Name, "description": t.Description, "is_public": t.IsPublic,
		"os-volume-type-access:is_public": t.IsPublic, "extra_specs": specs, "qos_specs_id": nil}
}

func (s *Service) handleListTypes(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	rows, err := s.db.QueryContext(r.Context(), `SELECT id FROM volume_types ORDER BY name`)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	isPublic := strings.ToLower(r.URL.Query().Get("is_public"))
	out := []any{}
	for _, id := range ids {
		t, err := s.loadType(r.Context(), s.db, id)
		if err != nil {
			return err
		}
		if !s.typeVisible(r.Context(), c, t) {
			continue
		}
		// Admins see public types by default (and the private ones their
		// project was given, as members do), all with is_public=None.
		if c.CloudAdmin() && isPublic == "" && !t.IsPublic && !s.typeVisible(r.Context(), &api.Credentials{ProjectID: c.ProjectID}, t) {
			continue
		}
		if c.CloudAdmin() && isPublic != "none" && isPublic != "" && (isPublic == "true") != t.IsPublic {
			continue
		}
		out = append(out, s.typeView(t))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume_types": out})
	return nil
}

func (s *Service) handleShowType(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err == nil && !s.typeVisible(r.Context(), c, t) {
		err = typeNotFound(r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": s.typeView(t)})
	return nil
}

func (s *Service) handleDefaultType(w http.ResponseWriter, r *http.Request, v api.Version) error {
	t, err := s.loadType(r.Context(), s.db, DefaultTypeName)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": s.typeView(t)})
	return nil
}

type typeBody struct {
	VolumeType *struct {
		Name        *string           `json:"name"`
		Description *string           `json:"description"`
		IsPublic    *bool             `json:"os-volume-type-access:is_public"`
		IsPublic2   *bool             `json:"is_public"`
		ExtraSpecs  map[string]string `json:"extra_specs"`
	} `json:"volume_type"`
}

func (s *Service) handleCreateType(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b typeBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.VolumeType == nil || b.VolumeType.Name == nil || strings.TrimSpace(*b.VolumeType.Name) == "" || len(*b.VolumeType.Name) > 255 {
		return api.BadRequest("Invalid input received: Volume type name can not be empty or longer than 255 characters.")
	}
	public := true
	if b.VolumeType.IsPublic != nil {
		public = *b.VolumeType.IsPublic
	} else if b.VolumeType.IsPublic2 != nil {
		public = *b.VolumeType.IsPublic2
	}
	if err := checkMetadata(b.VolumeType.ExtraSpecs); err != nil {
		return err
	}
	t := VolumeType{ID: newUUID(), Name: *b.VolumeType.Name, Description: b.VolumeType.Description, IsPublic: public, ExtraSpecs: b.VolumeType.ExtraSpecs}
	err := s.db.Tx(r.Context(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(r.Context(), `INSERT INTO volume_types(id, name, description, is_public, created_at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Description, t.IsPublic, nowText())
		if errors.Is(store.Translate(err), store.ErrConflict) {
			return api.Conflict("Volume Type %s already exists.", t.Name)
		}
		if err != nil {
			return err
		}
		return writeMetadata(r.Context(), tx, "volume_type_specs", "type_id", t.ID, t.ExtraSpecs, false)
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": s.typeView(t)})
	return nil
}

func (s *Service) handleUpdateType(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b typeBody
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.VolumeType == nil {
		return api.BadRequest("Missing required element 'volume_type' in request body.")
	}
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	if n := b.VolumeType.Name; n != nil {
		if strings.TrimSpace(*n) == "" || len(*n) > 255 {
			return api.BadRequest("Invalid input received: Volume type name can not be empty or longer than 255 characters.")
		}
		t.Name = *n
	}
	if b.VolumeType.Description != nil {
		t.Description = b.VolumeType.Description
	}
	if b.VolumeType.IsPublic != nil {
		t.IsPublic = *b.VolumeType.IsPublic
	} else if b.VolumeType.IsPublic2 != nil {
		t.IsPublic = *b.VolumeType.IsPublic2
	}
	_, err = s.db.ExecContext(r.Context(), `UPDATE volume_types SET name=?, description=?, is_public=?, updated_at=? WHERE id=?`,
		t.Name, t.Description, t.IsPublic, nowText(), t.ID)
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return api.Conflict("Volume Type %s already exists.", t.Name)
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": s.typeView(t)})
	return nil
}

func (s *Service) handleDeleteType(w http.ResponseWriter, r *http.Request, v api.Version) error {
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	if t.Name == DefaultTypeName {
		return api.BadRequest("Invalid volume type: The default volume type cannot be deleted.")
	}
	var n int
	s.db.QueryRowContext(r.Context(), `SELECT count(*) FROM volume_volumes WHERE type_id=?`, t.ID).Scan(&n)
	if n > 0 {
		return api.BadRequest("Invalid volume type: Target volume type is still in use.")
	}
	if _, err := s.db.ExecContext(r.Context(), `DELETE FROM volume_types WHERE id=?`, t.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) handleListTypeSpecs(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err == nil && !s.typeVisible(r.Context(), c, t) {
		err = typeNotFound(r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	if key := r.PathValue("key"); key != "" {
		val, ok := t.ExtraSpecs[key]
		if !ok {
			return api.NotFound("Volume Type %s has no extra specs with key %s.", t.ID, key)
		}
		api.WriteJSON(w, http.StatusOK, map[string]string{key: val})
		return nil
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": t.ExtraSpecs})
	return nil
}

func (s *Service) handleSetTypeSpecs(w http.ResponseWriter, r *http.Request, v api.Version) error {
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	var specs map[string]string
	if key := r.PathValue("key"); key != "" {
		if err := api.DecodeJSON(r, &specs); err != nil {
			return err
		}
		if _, ok := specs[key]; !ok || len(specs) != 1 {
			return api.BadRequest("Request body and URI mismatch")
		}
	} else {
		var b struct {
			ExtraSpecs map[string]string `json:"extra_specs"`
		}
		if err := api.DecodeJSON(r, &b); err != nil {
			return err
		}
		if b.ExtraSpecs == nil {
			return api.BadRequest("Missing required element 'extra_specs' in request body.")
		}
		specs = b.ExtraSpecs
	}
	if err := checkMetadata(specs); err != nil {
		return err
	}
	if err := writeMetadata(r.Context(), s.db, "volume_type_specs", "type_id", t.ID, specs, false); err != nil {
		return err
	}
	if r.PathValue("key") != "" {
		api.WriteJSON(w, http.StatusOK, specs)
		return nil
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
	return nil
}

func (s *Service) handleDeleteTypeSpec(w http.ResponseWriter, r *http.Request, v api.Version) error {
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM volume_type_specs WHERE type_id=? AND key=?`, t.ID, r.PathValue("key"))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Volume Type %s has no extra specs with key %s.", t.ID, r.PathValue("key"))
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) handleListTypeAccess(w http.ResponseWriter, r *http.Request, v api.Version) error {
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	if t.IsPublic {
		return api.NotFound("Access list not available for public volume types.")
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT project_id FROM volume_type_access WHERE type_id=?`, t.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []any{}
	var ps []string
	for rows.Next() {
		var p string
		rows.Scan(&p)
		ps = append(ps, p)
	}
	sort.Strings(ps)
	for _, p := range ps {
		out = append(out, map[string]string{"volume_type_id": t.ID, "project_id": p})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"volume_type_access": out})
	return nil
}

// handleTypeAction is addProjectAccess and removeProjectAccess.
func (s *Service) handleTypeAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	t, err := s.loadType(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	var b struct {
		Add *struct {
			Project string `json:"project"`
		} `json:"addProjectAccess"`
		Remove *struct {
			Project string `json:"project"`
		} `json:"removeProjectAccess"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if t.IsPublic {
		return api.BadRequest("Invalid volume type: Type access modification is not applicable to public volume type.")
	}
	switch {
	case b.Add != nil && b.Add.Project != "":
		res, err := s.db.ExecContext(r.Context(), `INSERT INTO volume_type_access(type_id, project_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, t.ID, b.Add.Project)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.Conflict("Volume type access for %s / %s combination already exists.", t.ID, b.Add.Project)
		}
	case b.Remove != nil && b.Remove.Project != "":
		res, err := s.db.ExecContext(r.Context(), `DELETE FROM volume_type_access WHERE type_id=? AND project_id=?`, t.ID, b.Remove.Project)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("Volume type access not found for %s / %s combination.", t.ID, b.Remove.Project)
		}
	default:
		return api.BadRequest("Invalid request body: addProjectAccess or removeProjectAccess with a project.")
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
