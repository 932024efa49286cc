package image

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// imageView is an image as Glance shows it: every base property (null when
// unset), the custom properties, and the links.
func imageView(im Image) map[string]any {
	v := make(map[string]any, len(im.Properties)+24)
	for k, val := range im.Properties {
		v[k] = val
	}
	self := "/v2/images/" + im.ID
	for k, val := range map[string]any{
		"id": im.ID, "name": im.Name, "status": im.Status, "visibility": im.Visibility,
		"owner": nilIfEmpty(im.Owner), "disk_format": nilIfEmpty(im.DiskFormat),
		"container_format": nilIfEmpty(im.ContainerFormat), "size": im.Size, "virtual_size": im.VirtualSize,
		"checksum": nilIfEmpty(im.Checksum), "os_hash_algo": nilIfEmpty(im.OSHashAlgo),
		"os_hash_value": nilIfEmpty(im.OSHashValue), "min_disk": im.MinDisk, "min_ram": im.MinRAM,
		"protected": im.Protected, "os_hidden": im.Hidden, "created_at": timeText(im.CreatedAt),
		"updated_at": timeText(im.UpdatedAt), "tags": im.Tags, "self": self, "file": self + "/file",
		"schema": "/v2/schemas/image",
	} {
		v[k] = val
	}
	if im.HasData() {
		v["stores"] = StoreID
	}
	return v
}

func credsOf(r *http.Request) caller { return callerOf(api.CredentialsFrom(r.Context())) }

// decodeAny reads a JSON body keeping numbers as json.Number.
func decodeAny(r *http.Request) (any, error) {
	b, err := api.ReadBody(r, api.MaxBody)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, api.BadRequest("Body expected in request.")
	}
	var v any
	if err := api.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) error {
	c := credsOf(r)
	raw, err := decodeAny(r)
	if err != nil {
		return err
	}
	body, ok := raw.(map[string]any)
	if !ok {
		return errSchema("%s is not of type 'object'", jsonText(raw))
	}
	for _, k := range disallowedProps {
		if _, ok := body[k]; ok {
			return api.Forbidden("Attribute '%s' is read-only.", k)
		}
	}
	for k, v := range body {
		if err := checkProp(k, v); err != nil {
			return err
		}
	}
	for k := range body {
		switch {
		case k != "id" && slices.Contains(readOnlyProps, k):
			return api.Forbidden("Attribute '%s' is read-only.", k)
		case k == "locations":
			return api.Forbidden("It's not allowed to add locations if locations are invisible.")
		case isReserved(k):
			return api.Forbidden("Attribute '%s' is reserved.", k)
		}
	}
	n := NewImage{Owner: c.project, Properties: map[string]string{}}
	ownerSet := false
	for k, v := range body {
		switch k {
		case "id":
			n.ID = v.(string)
		case "owner":
			ownerSet = true
			n.Owner, _ = v.(string)
		default:
			if baseProps[k].types == nil {
				n.Properties[k] = v.(string)
				continue
			}
			var im Image
			if err := setCore(&im, k, v); err != nil {
				return err
			}
			n.copyCore(k, im)
		}
	}
	if ownerSet && n.Owner != c.project && !c.admin {
		return api.Forbidden("You are not permitted to create images owned by '%s'.", n.Owner)
	}
	if n.Visibility == Public && !c.admin {
		return api.Forbidden("You are not authorized to complete publicize_image action.")
	}
	im, err := s.Create(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", api.BaseURL(r)+"/image/v2/images/"+im.ID)
	w.Header().Set("OpenStack-image-import-methods", strings.Join(importMethods, ","))
	w.Header().Set("OpenStack-image-store-ids", StoreID)
	api.WriteJSON(w, http.StatusCreated, imageView(im))
	return nil
}

// setCore sets a writable base property of im from a value checkProp
// accepted.
func setCore(im *Image, name string, v any) error {
	switch name {
	case "name":
		if v == nil {
			im.Name = nil
		} else {
			s := v.(string)
			im.Name = &s
		}
	case "visibility":
		im.Visibility = v.(string)
	case "owner":
		im.Owner, _ = v.(string)
	case "disk_format":
		im.DiskFormat, _ = v.(string)
	case "container_format":
		im.ContainerFormat, _ = v.(string)
	case "protected":
		im.Protected = v.(bool)
	case "os_hidden":
		im.Hidden = v.(bool)
	case "min_disk", "min_ram":
		n, _ := v.(json.Number).Int64()
		if n < 0 {
			return api.BadRequest("Invalid value '%d' for parameter '%s': Cannot be a negative value.", n, name)
		}
		if name == "min_disk" {
			im.MinDisk = n
		} else {
			im.MinRAM = n
		}
	case "tags":
		tags := []string{}
		for _, t := range v.([]any) {
			tags = append(tags, t.(string))
		}
		im.Tags = dedupe(tags)
	default:
		return api.Forbidden("Attribute '%s' is read-only.", name)
	}
	return nil
}

func (n *NewImage) copyCore(name string, im Image) {
	switch name {
	case "name":
		n.Name = im.Name
	case "visibility":
		n.Visibility = im.Visibility
	case "disk_format":
		n.DiskFormat = im.DiskFormat
	case "container_format":
		n.ContainerFormat = im.ContainerFormat
	case "protected":
		n.Protected = im.Protected
	case "os_hidden":
		n.Hidden = im.Hidden
	case "min_disk":
		n.MinDisk = im.MinDisk
	case "min_ram":
		n.MinRAM = im.MinRAM
	case "tags":
		n.Tags = im.Tags
	}
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) error {
	c := credsOf(r)
	q, err := parseList(r.URL.Query())
	if err != nil {
		return err
	}
	ims, next, err := s.list(r.Context(), c, q)
	if err != nil {
		return err
	}
	views := make([]any, len(ims))
	for i, im := range ims {
		views[i] = imageView(im)
	}
	params := r.URL.Query()
	params.Del("marker")
	first := "/v2/images"
	if enc := params.Encode(); enc != "" {
		first += "?" + enc
	}
	body := map[string]any{"images": views, "first": first, "schema": "/v2/schemas/images"}
	if next && len(ims) > 0 {
		params.Set("marker", ims[len(ims)-1].ID)
		body["next"] = "/v2/images?" + params.Encode()
	}
	api.WriteJSON(w, http.StatusOK, body)
	return nil
}

func (s *Service) handleShow(w http.ResponseWriter, r *http.Request) error {
	im, err := s.lookup(r.Context(), credsOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, imageView(im))
	return nil
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.lookupToModify(r.Context(), credsOf(r), id, "delete"); err != nil {
		return err
	}
	if err := s.Delete(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleAction(to string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := credsOf(r)
		id := r.PathValue("id")
		im, err := s.lookup(r.Context(), c, id)
		if err != nil {
			return err
		}
		action, from := "deactivate", StatusActive
		if to == StatusActive {
			action, from = "reactivate", StatusDeactivated
		}
		if !c.admin {
			return api.Forbidden("You are not authorized to complete %s_image action.", action)
		}
		switch im.Status {
		case to: // already there: nothing to do
		case from:
			if err := s.setStatus(r.Context(), id, from, to); err != nil {
				return err
			}
		default:
			return api.Forbidden("Not allowed to %s image in status '%s'", action, im.Status)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Service) handleTag(w http.ResponseWriter, r *http.Request) error {
	c := credsOf(r)
	id, tag := r.PathValue("id"), r.PathValue("tag")
	if r.Method == http.MethodPut {
		if err := checkProp("tags", []any{tag}); err != nil {
			return err
		}
	}
	im, err := s.lookup(r.Context(), c, id)
	if err != nil {
		return err
	}
	if !c.canModify(im) {
		if r.Method == http.MethodPut {
			return api.Forbidden("Not allowed to update tags for image %s.", id)
		}
		return api.Forbidden("Not allowed to delete tags for image %s.", id)
	}
	has := slices.Contains(im.Tags, tag)
	if r.Method == http.MethodDelete {
		if !has {
			return api.NotFound("Tag %s not found on image %s.", tag, id)
		}
		im.Tags = removeString(im.Tags, tag)
	} else if !has {
		im.Tags = append(im.Tags, tag)
		if len(im.Tags) > maxTags {
			return api.Errorf(413, "Image tag limit exceeded for image %s: at most %d tags.", id, maxTags)
		}
	}
	if _, err := s.save(r.Context(), im); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// handleTasks is GET /v2/images/{id}/tasks: imports here run within the
// request, so no task outlives it.
func (s *Service) handleTasks(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.lookup(r.Context(), credsOf(r), r.PathValue("id")); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"tasks": []any{}})
	return nil
}
