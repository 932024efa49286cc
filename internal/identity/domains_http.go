package identity

import (
	"encoding/hex"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

func domainJSON(r *http.Request, d Domain) map[string]any {
	return map[string]any{
		"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": []string{}, "options": map[string]any{}, "links": selfLink(r, "domains/"+d.ID),
	}
}

func (s *Service) handleListDomains(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	f := domainFilter{Name: r.URL.Query().Get("name"), Enabled: queryBool(r, "enabled")}
	if !c.CloudReader() {
		f.ID = c.DomainID // a domain reader sees its own domain
	}
	ds, err := s.listDomains(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(ds))
	for _, d := range ds {
		out = append(out, domainJSON(r, d))
	}
	return ok(w, map[string]any{"domains": out, "links": listLinks(r)})
}

func (s *Service) handleGetDomain(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	id := r.PathValue("id")
	if !c.CloudReader() && c.DomainID != id && c.ProjectDomainID != id && c.UserDomainID != id {
		return forbidden()
	}
	d, err := s.GetDomain(r.Context(), id)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"domain": domainJSON(r, d)})
}

func (s *Service) handleCreateDomain(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "domain")
	if err != nil {
		return err
	}
	d := Domain{Enabled: true}
	if err := e.name("name", &d.Name, true); err != nil {
		return err
	}
	if _, err := e.str("description", &d.Description); err != nil {
		return err
	}
	if _, err := e.boolean("enabled", &d.Enabled); err != nil {
		return err
	}
	var explicitID string
	if set, err := e.str("explicit_domain_id", &explicitID); err != nil {
		return err
	} else if set && !validExplicitID(explicitID) {
		return api.BadRequest("Invalid input for field 'explicit_domain_id': %q is not a UUID of 32 lowercase hex digits.", explicitID)
	}
	d.ID = explicitID
	d, err = s.CreateDomain(r.Context(), d)
	if err != nil {
		return err
	}
	return created(w, map[string]any{"domain": domainJSON(r, d)})
}

func (s *Service) handleUpdateDomain(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "domain")
	if err != nil {
		return err
	}
	d, err := s.GetDomain(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := e.name("name", &d.Name, false); err != nil {
		return err
	}
	if _, err := e.str("description", &d.Description); err != nil {
		return err
	}
	if _, err := e.boolean("enabled", &d.Enabled); err != nil {
		return err
	}
	if e.has("id") {
		return api.BadRequest("Invalid input for field 'id': it cannot be changed.")
	}
	if err := s.updateDomain(r.Context(), d); err != nil {
		return err
	}
	return ok(w, map[string]any{"domain": domainJSON(r, d)})
}

func (s *Service) handleDeleteDomain(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteDomain(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return noContent(w)
}

// validExplicitID: as Keystone, an explicit id is a UUID in its 32
// lowercase hex digits form, like the ids we make; tokens pack it in 16 bytes.
func validExplicitID(id string) bool {
	raw, err := hex.DecodeString(id)
	return err == nil && len(raw) == 16 && hex.EncodeToString(raw) == id
}
