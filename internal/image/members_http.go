package image

import (
	"net/http"
	"slices"

	"github.com/monostack/monostack/internal/api"
)

func memberView(m Member) map[string]any {
	return map[string]any{
		"image_id": m.ImageID, "member_id": m.MemberID, "status": m.Status,
		"created_at": timeText(m.CreatedAt), "updated_at": timeText(m.UpdatedAt), "schema": "/v2/schemas/member",
	}
}

// sharedImage looks up an image for the members API: only shared images
// have members.
func (s *Service) sharedImage(r *http.Request) (caller, Image, error) {
	c := credsOf(r)
	im, err := s.lookup(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return c, im, err
	}
	if im.Visibility != Shared {
		return c, im, api.Forbidden("Only shared images have members.")
	}
	return c, im, nil
}

// seesAllMembers: the owner and admins see every member; a member sees
// only itself.
func (c caller) seesAllMembers(im Image) bool { return c.canModify(im) || c.readAll }

func (s *Service) handleListMembers(w http.ResponseWriter, r *http.Request) error {
	c, im, err := s.sharedImage(r)
	if err != nil {
		return err
	}
	ms, err := s.members(r.Context(), im.ID)
	if err != nil {
		return err
	}
	out := []any{}
	for _, m := range ms {
		if c.seesAllMembers(im) || m.MemberID == c.project {
			out = append(out, memberView(m))
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"members": out, "schema": "/v2/schemas/members"})
	return nil
}

func (s *Service) handleCreateMember(w http.ResponseWriter, r *http.Request) error {
	raw, err := decodeAny(r)
	if err != nil {
		return err
	}
	body, ok := raw.(map[string]any)
	if !ok {
		return api.BadRequest(`Expected a member in the form: {"member": "image_id"}`)
	}
	v, has := body["member"]
	if !has {
		return api.BadRequest("Member to be added not specified")
	}
	member, ok := v.(string)
	if !ok {
		return api.BadRequest(`Expected a member in the form: {"member": "project_id"}`)
	}
	if member == "" {
		return api.BadRequest("Member can't be empty")
	}
	if len(member) > 255 {
		return api.BadRequest("Member can be at most 255 characters long.")
	}
	c, im, err := s.sharedImage(r)
	if err != nil {
		return err
	}
	if !c.canModify(im) {
		return api.Forbidden("Not allowed to create members for image %s.", im.ID)
	}
	m, err := s.AddMember(r.Context(), im.ID, member)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, memberView(m))
	return nil
}

func (s *Service) handleShowMember(w http.ResponseWriter, r *http.Request) error {
	c, im, err := s.sharedImage(r)
	if err != nil {
		return api.NotFound("%s", api.AsError(err).Message)
	}
	member := r.PathValue("member")
	if !c.seesAllMembers(im) && member != c.project {
		return errMemberNotFound(im.ID, member)
	}
	m, err := s.member(r.Context(), im.ID, member)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, memberView(m))
	return nil
}

func (s *Service) handleUpdateMember(w http.ResponseWriter, r *http.Request) error {
	raw, err := decodeAny(r)
	if err != nil {
		return err
	}
	body, ok := raw.(map[string]any)
	if !ok {
		return api.BadRequest(`Expected a status in the form: {"status": "status"}`)
	}
	v, has := body["status"]
	if !has {
		return api.BadRequest("Status not specified")
	}
	c, im, err := s.sharedImage(r)
	if err != nil {
		return err
	}
	member := r.PathValue("member")
	// Only the member (or an admin) answers for the member.
	if !c.admin && member != c.project {
		return api.Forbidden("Not allowed to update members for image %s.", im.ID)
	}
	if _, err := s.member(r.Context(), im.ID, member); err != nil {
		return err
	}
	status, _ := v.(string)
	if !slices.Contains(memberStatuses, status) {
		return api.BadRequest("Incorrect request: Status must be one of pending, accepted, rejected, not %s.", jsonTextOrString(v))
	}
	m, err := s.setMemberStatus(r.Context(), im.ID, member, status)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, memberView(m))
	return nil
}

func (s *Service) handleDeleteMember(w http.ResponseWriter, r *http.Request) error {
	c, im, err := s.sharedImage(r)
	if err != nil {
		return err
	}
	member := r.PathValue("member")
	if !c.canModify(im) {
		return api.Forbidden("Not allowed to delete members for image %s.", im.ID)
	}
	if err := s.removeMember(r.Context(), im.ID, member); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
