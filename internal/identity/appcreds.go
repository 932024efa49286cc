package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// AppCredential is an application credential: a secret a user gives a
// program, good for one project with a subset of the user's roles there.
// Only the secret's hash is stored; the secret is shown once, at creation.
type AppCredential struct {
	ID           string
	Name         string
	Description  string
	UserID       string
	ProjectID    string
	RoleIDs      []string
	ExpiresAt    *time.Time
	Unrestricted bool
	secretHash   string
}

const appCredCols = `id, name, description, user_id, project_id, roles, expires_at, unrestricted, secret_hash`

func scanAppCred(row interface{ Scan(...any) error }) (AppCredential, error) {
	var a AppCredential
	var roles string
	var exp *string
	err := row.Scan(&a.ID, &a.Name, &a.Description, &a.UserID, &a.ProjectID, &roles, &exp, &a.Unrestricted, &a.secretHash)
	if err != nil {
		return a, store.Translate(err)
	}
	json.Unmarshal([]byte(roles), &a.RoleIDs)
	if exp != nil {
		t := parseTime(*exp)
		a.ExpiresAt = &t
	}
	return a, nil
}

func (s *Service) getAppCredential(ctx context.Context, id string) (AppCredential, error) {
	a, err := scanAppCred(s.db.QueryRowContext(ctx, `SELECT `+appCredCols+` FROM app_credentials WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return a, api.NotFound("Could not find Application Credential: %s.", id)
	}
	return a, err
}

// authAppCredential checks an application_credential auth method.
func (s *Service) authAppCredential(ctx context.Context, req *struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Secret string   `json:"secret"`
	User   *userRef `json:"user"`
}) (AppCredential, error) {
	if req == nil || req.Secret == "" || (req.ID == "" && req.Name == "") {
		return AppCredential{}, api.BadRequest("Invalid input for field 'identity/application_credential': an id or name, and a secret, are required.")
	}
	var ac AppCredential
	var err error
	if req.ID != "" {
		ac, err = s.getAppCredential(ctx, req.ID)
	} else {
		var u *User
		if u, err = s.findAuthUser(ctx, req.User); err == nil {
			if u == nil {
				err = api.NotFound("no such user")
			} else {
				ac, err = scanAppCred(s.db.QueryRowContext(ctx, `SELECT `+appCredCols+` FROM app_credentials WHERE user_id=? AND name=?`, u.ID, req.Name))
			}
		}
	}
	if err != nil {
		var ae *api.Error
		if errors.Is(err, store.ErrNotFound) || errors.As(err, &ae) && ae.Status < 500 {
			bcrypt.CompareHashAndPassword(s.dummy(), preHash(req.Secret))
			return ac, authFailed()
		}
		return ac, err
	}
	if bcrypt.CompareHashAndPassword([]byte(ac.secretHash), preHash(req.Secret)) != nil {
		return ac, authFailed()
	}
	if ac.ExpiresAt != nil && now().After(*ac.ExpiresAt) {
		return ac, authFailed()
	}
	return ac, nil
}

func (s *Service) appCredJSON(ctx context.Context, r *http.Request, a AppCredential) (map[string]any, error) {
	all, err := s.rolesByID(ctx)
	if err != nil {
		return nil, err
	}
	roles := []any{}
	for _, id := range a.RoleIDs {
		if role, ok := all[id]; ok {
			roles = append(roles, map[string]any{"id": role.ID, "name": role.Name, "domain_id": nullable(role.DomainID)})
		}
	}
	var exp any
	if a.ExpiresAt != nil {
		exp = a.ExpiresAt.Format("2006-01-02T15:04:05.000000")
	}
	return map[string]any{
		"id": a.ID, "name": a.Name, "description": a.Description, "user_id": a.UserID, "project_id": a.ProjectID,
		"roles": roles, "expires_at": exp, "unrestricted": a.Unrestricted, "system": nil, "access_rules": []any{},
		"links": selfLink(r, "users/"+a.UserID+"/application_credentials/"+a.ID),
	}, nil
}

// ownCredentials: application credentials are managed by their user (or a
// cloud admin).
func ownCredentials(r *http.Request) (string, error) {
	c := api.CredentialsFrom(r.Context())
	uid := r.PathValue("user_id")
	if c.UserID != uid && !c.CloudAdmin() {
		return "", forbidden()
	}
	return uid, nil
}

// unrestricted refuses tokens made from a restricted application credential,
// which may not manage application credentials.
func (s *Service) unrestricted(ctx context.Context, c *api.Credentials) error {
	if c.AppCredID == "" {
		return nil
	}
	if ac, err := s.getAppCredential(ctx, c.AppCredID); err != nil || !ac.Unrestricted {
		return api.Forbidden("A restricted application credential cannot manage application credentials.")
	}
	return nil
}

func (s *Service) handleCreateAppCred(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	uid := r.PathValue("user_id")
	if c.UserID != uid {
		return forbidden()
	}
	if c.ProjectID == "" {
		return api.Forbidden("A project-scoped token is required to create an application credential.")
	}
	if err := s.unrestricted(r.Context(), c); err != nil {
		return err
	}
	e, err := decodeEntity(r, "application_credential")
	if err != nil {
		return err
	}
	if err := e.only("name", "description", "secret", "expires_at", "roles", "unrestricted", "access_rules"); err != nil {
		return err
	}
	a := AppCredential{ID: newID(), UserID: uid, ProjectID: c.ProjectID}
	if err := e.name("name", &a.Name, true); err != nil {
		return err
	}
	if _, err := e.str("description", &a.Description); err != nil {
		return err
	}
	if _, err := e.boolean("unrestricted", &a.Unrestricted); err != nil {
		return err
	}
	var secret, exp string
	if _, err := e.str("secret", &secret); err != nil {
		return err
	}
	if secret == "" {
		var b [48]byte
		rand.Read(b[:])
		secret = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if _, err := e.str("expires_at", &exp); err != nil {
		return err
	}
	if exp != "" {
		var t time.Time
		var perr error
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05"} {
			if t, perr = time.Parse(layout, exp); perr == nil {
				break
			}
		}
		if perr != nil {
			return api.BadRequest("Invalid input for field 'expires_at': %q is not a date-time.", exp)
		}
		if t.Before(now()) {
			return api.BadRequest("Invalid input for field 'expires_at': it is in the past.")
		}
		t = t.UTC()
		a.ExpiresAt = &t
	}
	var roleRefs []map[string]string
	if raw, ok := e["roles"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &roleRefs); err != nil {
			return typeErr("roles", "array", raw)
		}
	}
	if len(roleRefs) == 0 {
		a.RoleIDs = c.RoleIDs
	}
	for _, ref := range roleRefs {
		var role Role
		switch {
		case ref["id"] != "":
			role, err = s.GetRole(r.Context(), ref["id"])
		case ref["name"] != "":
			role, err = s.RoleByName(r.Context(), ref["name"])
		default:
			return api.BadRequest("Invalid input for field 'roles': each role needs an id or a name.")
		}
		if err != nil {
			return err
		}
		if !slices.Contains(c.RoleIDs, role.ID) {
			return api.BadRequest("Invalid application credential: you cannot delegate role %s, which you do not have on this project.", role.Name)
		}
		if !slices.Contains(a.RoleIDs, role.ID) {
			a.RoleIDs = append(a.RoleIDs, role.ID)
		}
	}
	h, err := bcrypt.GenerateFromPassword(preHash(secret), s.cfg.BcryptCost)
	if err != nil {
		return err
	}
	roles, _ := json.Marshal(a.RoleIDs)
	var expText any
	if a.ExpiresAt != nil {
		expText = timeText(*a.ExpiresAt)
	}
	_, err = s.db.ExecContext(r.Context(), `INSERT INTO app_credentials (id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, roles, created_at)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, a.ID, a.Name, a.UserID, a.ProjectID, string(h), a.Description, expText, a.Unrestricted, string(roles), timeText(now()))
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return api.Conflict("Conflict occurred attempting to store application_credential - Duplicate entry found with name %s.", a.Name)
	}
	if err != nil {
		return err
	}
	out, err := s.appCredJSON(r.Context(), r, a)
	if err != nil {
		return err
	}
	out["secret"] = secret
	return created(w, map[string]any{"application_credential": out})
}

func (s *Service) handleListAppCreds(w http.ResponseWriter, r *http.Request) error {
	uid, err := ownCredentials(r)
	if err != nil {
		return err
	}
	q := `SELECT ` + appCredCols + ` FROM app_credentials WHERE user_id=?`
	args := []any{uid}
	if n := r.URL.Query().Get("name"); n != "" {
		q += ` AND name=?`
		args = append(args, n)
	}
	rows, err := s.db.QueryContext(r.Context(), q+` ORDER BY name`, args...)
	if err != nil {
		return err
	}
	var acs []AppCredential
	for rows.Next() {
		a, err := scanAppCred(rows)
		if err != nil {
			rows.Close()
			return err
		}
		acs = append(acs, a)
	}
	rows.Close()
	out := []any{}
	for _, a := range acs {
		j, err := s.appCredJSON(r.Context(), r, a)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return ok(w, map[string]any{"application_credentials": out, "links": listLinks(r)})
}

func (s *Service) handleGetAppCred(w http.ResponseWriter, r *http.Request) error {
	uid, err := ownCredentials(r)
	if err != nil {
		return err
	}
	a, err := s.getAppCredential(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if a.UserID != uid {
		return api.NotFound("Could not find Application Credential: %s.", a.ID)
	}
	j, err := s.appCredJSON(r.Context(), r, a)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"application_credential": j})
}

func (s *Service) handleDeleteAppCred(w http.ResponseWriter, r *http.Request) error {
	uid, err := ownCredentials(r)
	if err != nil {
		return err
	}
	if err := s.unrestricted(r.Context(), api.CredentialsFrom(r.Context())); err != nil {
		return err
	}
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM app_credentials WHERE id=? AND user_id=?`, r.PathValue("id"), uid)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Could not find Application Credential: %s.", r.PathValue("id"))
	}
	if err := s.revoke(r.Context(), revocationEvent{AppCredID: r.PathValue("id")}); err != nil {
		return err
	}
	return noContent(w)
}
