package image

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/monostack/monostack/internal/api"
)

// The formats Glance accepts by default (image_format.container_formats and
// disk_formats).
var (
	containerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	diskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	statuses         = []string{"queued", "saving", "active", "killed", "deleted", "uploading", "importing",
		"pending_delete", "deactivated"}
	visibilities = []string{Community, Public, Private, Shared}
)

const uuidPattern = `^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`

var uuidRE = regexp.MustCompile(uuidPattern)

// prop is one base property of the image schema: what /v2/schemas/image
// publishes and what requests are checked against.
type prop struct {
	types    []string // JSON types; "null" allowed when listed
	desc     string
	enum     []string // allowed strings (null allowed by types)
	maxLen   int
	pattern  string
	readOnly bool
	items    bool // an array of strings of at most 255 characters
}

var baseProps = map[string]prop{
	"id":               {types: []string{"string"}, desc: "An identifier for the image", pattern: uuidPattern},
	"name":             {types: []string{"null", "string"}, desc: "Descriptive name for the image", maxLen: 255},
	"status":           {types: []string{"string"}, desc: "Status of the image", enum: statuses, readOnly: true},
	"visibility":       {types: []string{"string"}, desc: "Scope of image accessibility", enum: visibilities},
	"protected":        {types: []string{"boolean"}, desc: "If true, image will not be deletable."},
	"os_hidden":        {types: []string{"boolean"}, desc: "If true, image will not appear in default image list response."},
	"checksum":         {types: []string{"null", "string"}, desc: "md5 hash of image contents.", maxLen: 32, readOnly: true},
	"os_hash_algo":     {types: []string{"null", "string"}, desc: "Algorithm to calculate the os_hash_value", maxLen: 64, readOnly: true},
	"os_hash_value":    {types: []string{"null", "string"}, desc: "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", maxLen: 128, readOnly: true},
	"owner":            {types: []string{"null", "string"}, desc: "Owner of the image", maxLen: 255},
	"size":             {types: []string{"null", "integer"}, desc: "Size of image file in bytes", readOnly: true},
	"virtual_size":     {types: []string{"null", "integer"}, desc: "Virtual size of image in bytes", readOnly: true},
	"container_format": {types: []string{"null", "string"}, desc: "Format of the container", enum: containerFormats},
	"disk_format":      {types: []string{"null", "string"}, desc: "Format of the disk", enum: diskFormats},
	"created_at":       {types: []string{"string"}, desc: "Date and time of image registration", readOnly: true},
	"updated_at":       {types: []string{"string"}, desc: "Date and time of the last image modification", readOnly: true},
	"tags":             {types: []string{"array"}, desc: "List of strings related to the image", items: true},
	"direct_url":       {types: []string{"string"}, desc: "URL to access the image file kept in external store", readOnly: true},
	"min_ram":          {types: []string{"integer"}, desc: "Amount of ram (in MB) required to boot image."},
	"min_disk":         {types: []string{"integer"}, desc: "Amount of disk space (in GB) required to boot image."},
	"self":             {types: []string{"string"}, desc: "An image self url", readOnly: true},
	"file":             {types: []string{"string"}, desc: "An image file url", readOnly: true},
	"stores":           {types: []string{"string"}, desc: "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.", readOnly: true},
	"schema":           {types: []string{"string"}, desc: "An image schema url", readOnly: true},
	"locations":        {types: []string{"array"}, desc: "A set of URLs to access the image file kept in external store"},
}

// Properties requests may not set at all (403), may not set because the
// service manages them (403), or that are reserved (403).
var (
	disallowedProps = []string{"direct_url", "self", "file", "schema", "stores"}
	readOnlyProps   = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url",
		"self", "file", "schema", "id", "os_hash_algo", "os_hash_value", "stores"}
	reservedProps = []string{"location", "deleted", "deleted_at"}
)

const reservedPrefix = "os_glance"

func isReserved(name string) bool {
	return slices.Contains(reservedProps, name) || strings.HasPrefix(name, reservedPrefix)
}

func errSchema(format string, args ...any) error {
	return api.BadRequest("Provided object does not match schema 'image': "+format, args...)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

// checkProp validates a value for property name against the schema: base
// properties by their definition, any other as a string (the schema's
// additionalProperties).
func checkProp(name string, v any) error {
	p, ok := baseProps[name]
	if !ok {
		if utf8.RuneCountInString(name) > 255 {
			return api.BadRequest("Custom property should not be greater than 255 characters.")
		}
		if _, isStr := v.(string); !isStr {
			return errSchema("%s is not of type 'string' (property '%s')", jsonText(v), name)
		}
		return nil
	}
	if v == nil {
		if slices.Contains(p.types, "null") {
			return nil
		}
		return errSchema("None is not of type %s (property '%s')", typeList(p.types), name)
	}
	switch x := v.(type) {
	case string:
		if !slices.Contains(p.types, "string") {
			return errSchema("%s is not of type %s (property '%s')", jsonText(v), typeList(p.types), name)
		}
		if p.maxLen > 0 && utf8.RuneCountInString(x) > p.maxLen {
			return errSchema("%s is too long (property '%s', at most %d characters)", jsonText(v), name, p.maxLen)
		}
		if p.enum != nil && !slices.Contains(p.enum, x) {
			return errSchema("%s is not one of %s (property '%s')", jsonText(v), jsonText(p.enum), name)
		}
		if p.pattern != "" && !uuidRE.MatchString(x) {
			return errSchema("%s does not match %s (property '%s')", jsonText(v), jsonText(p.pattern), name)
		}
	case json.Number:
		if !slices.Contains(p.types, "integer") {
			return errSchema("%s is not of type %s (property '%s')", x, typeList(p.types), name)
		}
		if _, err := x.Int64(); err != nil {
			return errSchema("%s is not of type 'integer' (property '%s')", x, name)
		}
	case bool:
		if !slices.Contains(p.types, "boolean") {
			return errSchema("%t is not of type %s (property '%s')", x, typeList(p.types), name)
		}
	case []any:
		if !slices.Contains(p.types, "array") {
			return errSchema("%s is not of type %s (property '%s')", jsonText(v), typeList(p.types), name)
		}
		if p.items {
			for _, it := range x {
				s, ok := it.(string)
				if !ok {
					return errSchema("%s is not of type 'string' (property '%s')", jsonText(it), name)
				}
				if utf8.RuneCountInString(s) > 255 {
					return errSchema("%s is too long (property '%s', at most 255 characters)", jsonText(it), name)
				}
			}
		}
	default:
		return errSchema("%s is not of type %s (property '%s')", jsonText(v), typeList(p.types), name)
	}
	return nil
}

func typeList(ts []string) string {
	q := make([]string, len(ts))
	for i, t := range ts {
		q[i] = "'" + t + "'"
	}
	return strings.Join(q, ", ")
}

// imageSchema is /v2/schemas/image: the base properties and, as
// additionalProperties, strings.
func imageSchema() map[string]any {
	props := map[string]any{}
	for name, p := range baseProps {
		d := map[string]any{"description": p.desc}
		if len(p.types) == 1 {
			d["type"] = p.types[0]
		} else {
			d["type"] = p.types
		}
		if p.enum != nil {
			var e []any
			if slices.Contains(p.types, "null") {
				e = append(e, nil)
			}
			for _, v := range p.enum {
				e = append(e, v)
			}
			d["enum"] = e
		}
		if p.maxLen > 0 {
			d["maxLength"] = p.maxLen
		}
		if p.pattern != "" {
			d["pattern"] = p.pattern
		}
		if p.readOnly {
			d["readOnly"] = true
		}
		if p.items {
			d["items"] = map[string]any{"type": "string", "maxLength": 255}
		}
		props[name] = d
	}
	props["locations"] = map[string]any{
		"type":        "array",
		"description": baseProps["locations"].desc,
		"items": map[string]any{
			"type":     "object",
			"required": []string{"url", "metadata"},
			"properties": map[string]any{
				"url":      map[string]any{"type": "string", "maxLength": 255},
				"metadata": map[string]any{"type": "object"},
			},
		},
	}
	return map[string]any{
		"name":                 "image",
		"properties":           props,
		"additionalProperties": map[string]any{"type": "string"},
		"links": []any{
			map[string]any{"rel": "self", "href": "{self}"},
			map[string]any{"rel": "enclosure", "href": "{file}"},
			map[string]any{"rel": "describedby", "href": "{schema}"},
		},
	}
}

func imagesSchema() map[string]any {
	return map[string]any{
		"name": "images",
		"properties": map[string]any{
			"images": map[string]any{"type": "array", "items": imageSchema()},
			"first":  map[string]any{"type": "string"},
			"next":   map[string]any{"type": "string"},
			"schema": map[string]any{"type": "string"},
		},
		"links": []any{
			map[string]any{"rel": "first", "href": "{first}"},
			map[string]any{"rel": "next", "href": "{next}"},
			map[string]any{"rel": "describedby", "href": "{schema}"},
		},
	}
}

func memberSchema() map[string]any {
	return map[string]any{
		"name": "member",
		"properties": map[string]any{
			"member_id":  map[string]any{"type": "string", "description": "An identifier for the image member (tenantId)"},
			"image_id":   map[string]any{"type": "string", "description": "An identifier for the image", "pattern": uuidPattern},
			"created_at": map[string]any{"type": "string", "description": "Date and time of image member creation"},
			"updated_at": map[string]any{"type": "string", "description": "Date and time of last modification of image member"},
			"status": map[string]any{"type": "string", "description": "The status of this image member",
				"enum": []string{"pending", "accepted", "rejected"}},
			"schema": map[string]any{"type": "string", "readOnly": true},
		},
	}
}

func membersSchema() map[string]any {
	return map[string]any{
		"name": "members",
		"properties": map[string]any{
			"members": map[string]any{"type": "array", "items": memberSchema()},
			"schema":  map[string]any{"type": "string"},
		},
		"links": []any{map[string]any{"rel": "describedby", "href": "{schema}"}},
	}
}

func (s *Service) handleSchema(schema func() map[string]any) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		api.WriteJSON(w, http.StatusOK, schema())
		return nil
	}
}
