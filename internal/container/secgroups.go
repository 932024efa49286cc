package container

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/monostack/monostack/internal/api"
)

// add_security_group and remove_security_group (Zun 1.1–1.14; later
// versions leave it to Neutron's port API): the group joins or leaves
// every port of the container, and the container's list.

func (s *Service) handleAddSecurityGroup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return s.changeSecurityGroup(w, r, v, true)
}

func (s *Service) handleRemoveSecurityGroup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	return s.changeSecurityGroup(w, r, v, false)
}

func (s *Service) changeSecurityGroup(w http.ResponseWriter, r *http.Request, v api.Version, add bool) error {
	if v.Major != 1 || v.Minor > 14 {
		return api.Errorf(http.StatusNotAcceptable, "Version %s was requested but the requested API is not supported for this version.", v).WithType("")
	}
	action := "remove_security_group"
	if add {
		action = "add_security_group"
	}
	ctx := r.Context()
	// The name comes in the query (zunclient) or the body, as Zun's
	// framework takes either.
	var b struct {
		Name *string `json:"name"`
	}
	if q := r.URL.Query(); q.Has("name") {
		name := q.Get("name")
		b.Name = &name
	} else if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&b); err != nil {
			return schemaError("Invalid input: %v", err)
		}
	}
	if b.Name == nil || *b.Name == "" || len(*b.Name) > 255 {
		return schemaError("Invalid input for field 'name': a security group's name or id of 1 to 255 characters is required.")
	}
	c := api.CredentialsFrom(ctx)
	ct, err := s.find(ctx, c, r.PathValue("c"))
	if err != nil {
		return err
	}
	defer s.work.Lock(ct.UUID)()
	if ct, err = s.loadContainer(ctx, s.db, ct.UUID); err != nil {
		return err
	}
	if !contains([]string{stCreated, stRunning, stStopped, stPaused}, ct.Status) {
		return invalidState(ct.UUID, action, ct.Status)
	}
	id, err := s.networks.SecurityGroupID(ctx, ct.ProjectID, *b.Name)
	if api.IsNotFound(err) {
		return api.BadRequest("Security group %s not found.", *b.Name).WithType("invalid-value")
	}
	if err != nil {
		return err
	}
	// The groups the ports have now: those asked for at create, or the
	// project's default when none was.
	// A group deleted meanwhile is left out; any other failure stops
	// here, or the ports would lose the group it failed to find.
	names := ct.SecurityGroups
	if len(names) == 0 {
		names = []string{"default"}
	}
	current := []string{}
	for _, g := range names {
		gid, err := s.networks.SecurityGroupID(ctx, ct.ProjectID, g)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if !slices.Contains(current, gid) {
			current = append(current, gid)
		}
	}
	has := slices.Contains(current, id)
	switch {
	case add && has:
		return api.BadRequest("Security group %s has been added to container.", id).WithType("invalid-value")
	case !add && !has:
		return api.BadRequest("Security group %s was not added to container.", id).WithType("invalid-value")
	case add:
		current = append(current, id)
	default:
		current = slices.DeleteFunc(current, func(g string) bool { return g == id })
	}
	s.startAction(ctx, ct, action)
	for _, p := range ct.Ports {
		if err = s.networks.SetPortSecurityGroups(ctx, p.PortID, current); err != nil {
			break
		}
	}
	if err == nil {
		_, err = s.db.ExecContext(ctx, `UPDATE container_containers SET security_groups=?, updated_at=? WHERE uuid=?`,
			jsonText(current), nowText(), ct.UUID)
	}
	s.finishAction(ctx, ct.UUID, err, action)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
