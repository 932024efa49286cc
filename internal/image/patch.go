package image

import (
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// PATCH media types: the current one (JSON Patch, RFC 6902 subset) and the
// deprecated draft-4 one.
const (
	patchV21 = "application/openstack-images-v2.1-json-patch"
	patchV20 = "application/openstack-images-v2.0-json-patch"
)

// change is one parsed operation of an image PATCH.
type change struct {
	op    string // add, remove, replace
	path  []string
	value any
	draft int // 10 (v2.1) or 4 (v2.0)
}

var adjacentSlash = regexp.MustCompile(`/\s*?/`)

// parseChanges reads a PATCH body as Glance's deserializer does, refusing
// what no image could accept (bad pointers, read-only and reserved
// properties, values of the wrong type) before the image is looked up.
func parseChanges(r *http.Request) ([]change, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	draft := map[string]int{patchV21: 10, patchV20: 4}[mt]
	if draft == 0 {
		e := api.Errorf(http.StatusUnsupportedMediaType, "Image PATCH expects Content-Type one of: %s, %s", patchV20, patchV21)
		e.Header = http.Header{"Accept-Patch": {patchV20 + ", " + patchV21}}
		return nil, e
	}
	raw, err := decodeAny(r)
	if err != nil {
		return nil, err
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, api.BadRequest("Request body must be a JSON array of operation objects.")
	}
	var out []change
	for _, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, api.BadRequest("Operations must be JSON objects.")
		}
		c := change{draft: draft}
		var pointer any
		if draft == 10 {
			op, has := obj["op"]
			if !has {
				return nil, api.BadRequest("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
			}
			c.op, _ = op.(string)
			if c.op != "add" && c.op != "remove" && c.op != "replace" {
				return nil, api.BadRequest("Invalid operation: `%v`. It must be one of the following: add, remove, replace.", op)
			}
			if pointer, has = obj["path"]; !has {
				return nil, api.BadRequest("Unable to find 'path' in JSON Schema change")
			}
		} else {
			for _, op := range []string{"add", "remove", "replace"} {
				if p, has := obj[op]; has {
					if c.op != "" {
						return nil, api.BadRequest(`Operation objects must contain only one member named "add", "remove", or "replace".`)
					}
					c.op, pointer = op, p
				}
			}
			if c.op == "" {
				return nil, api.BadRequest(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
			}
		}
		ptr, ok := pointer.(string)
		if !ok {
			return nil, api.BadRequest("Pointer `%s` is not a string.", jsonText(pointer))
		}
		if c.path, err = decodePointer(ptr); err != nil {
			return nil, err
		}
		depth := 1
		if c.path[0] == "locations" && c.op != "replace" {
			depth = 2
		}
		if len(c.path) != depth {
			return nil, api.BadRequest("Invalid JSON pointer for this resource: '/%s'", strings.Join(c.path, "/"))
		}
		if c.op != "remove" {
			v, has := obj["value"]
			if !has {
				return nil, api.BadRequest(`Operation "%s" requires a member named "value".`, c.op)
			}
			c.value = v
		}
		root := c.path[0]
		switch {
		case slices.Contains(readOnlyProps, root):
			return nil, api.Forbidden("Attribute '%s' is read-only.", root)
		case isReserved(root):
			return nil, api.Forbidden("Attribute '%s' is reserved.", root)
		}
		if c.op != "remove" && root != "locations" {
			if err := checkProp(root, c.value); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// decodePointer parses the limited JSON pointers Glance accepts.
func decodePointer(p string) ([]string, error) {
	switch {
	case !strings.HasPrefix(p, "/"):
		return nil, api.BadRequest("Pointer `%s` does not start with \"/\".", p)
	case adjacentSlash.MatchString(p[1:]):
		return nil, api.BadRequest("Pointer `%s` contains adjacent \"/\".", p)
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, api.BadRequest("Pointer `%s` end with \"/\".", p)
	case strings.TrimSpace(p[1:]) == "/" || strings.TrimSpace(p[1:]) == "":
		return nil, api.BadRequest("Pointer `%s` does not contains valid token.", p)
	case badTilde(p):
		return nil, api.BadRequest("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", p)
	}
	var out []string
	for _, part := range strings.Split(strings.TrimLeft(p, "/"), "/") {
		part = strings.ReplaceAll(part, "~1", "/")
		part = strings.ReplaceAll(part, "~0", "~")
		out = append(out, strings.TrimSpace(part))
	}
	return out, nil
}

func badTilde(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return true
		}
	}
	return false
}

func (s *Service) handlePatch(w http.ResponseWriter, r *http.Request) error {
	c := credsOf(r)
	changes, err := parseChanges(r)
	if err != nil {
		return err
	}
	im, err := s.lookup(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if !c.canModify(im) {
		return api.Forbidden("You are not authorized to modify image %s.", im.ID)
	}
	props := make(map[string]string, len(im.Properties))
	for k, v := range im.Properties {
		props[k] = v
	}
	im.Properties = props
	for _, ch := range changes {
		if err := applyChange(c, &im, ch); err != nil {
			return err
		}
	}
	if len(changes) > 0 {
		if im, err = s.save(r.Context(), im); err != nil {
			return err
		}
	}
	api.WriteJSON(w, http.StatusOK, imageView(im))
	return nil
}

// applyChange applies one operation to im, with Glance's rules for each
// property.
func applyChange(c caller, im *Image, ch change) error {
	root := ch.path[0]
	if root == "locations" {
		verb := map[string]string{"add": "add", "replace": "update", "remove": "remove"}[ch.op]
		return api.Forbidden("It's not allowed to %s locations if locations are invisible.", verb)
	}
	_, core := baseProps[root]
	if ch.op == "remove" {
		if core {
			return api.Forbidden("Property %s may not be removed.", root)
		}
		if _, ok := im.Properties[root]; !ok {
			return api.Conflict("Property %s does not exist.", root)
		}
		delete(im.Properties, root)
		return nil
	}
	if !core {
		if _, ok := im.Properties[root]; !ok && ch.op == "replace" {
			return api.Conflict("Property %s does not exist.", root)
		}
		if _, ok := im.Properties[root]; ok && ch.op == "add" && ch.draft == 4 {
			return api.Conflict("Property %s already present.", root)
		}
		if _, ok := im.Properties[root]; !ok && len(im.Properties) >= maxProperties {
			return api.Errorf(413, "Maximum number of image properties (%d) exceeded.", maxProperties)
		}
		im.Properties[root] = ch.value.(string)
		return nil
	}
	if ch.op == "add" && ch.draft == 4 {
		return api.Conflict("Property %s already present.", root)
	}
	switch root {
	case "owner":
		if !c.admin {
			return api.Forbidden("Owner can't be updated by non admin.")
		}
	case "visibility":
		if ch.value == Public && im.Visibility != Public && !c.admin {
			return api.Forbidden("You are not authorized to complete publicize_image action.")
		}
	case "disk_format", "container_format":
		if im.Status != StatusQueued && im.Status != StatusImporting {
			return api.Forbidden("Attribute %s can be only replaced for a queued image.", root)
		}
	}
	return setCore(im, root, ch.value)
}
