package objectstore

import (
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// swiftVersion is the Swift release whose API this follows.
const swiftVersion = "2.35.0"

// handleInfo is GET /info: the cluster's capabilities and the limits it
// enforces.
func (s *Service) handleInfo(w http.ResponseWriter, r *http.Request) error {
	setTransID(w, r)
	c := s.cfg
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"swift": map[string]any{
			"version":                    swiftVersion,
			"max_file_size":              c.MaxFileSize,
			"max_meta_name_length":       c.MaxMetaNameLength,
			"max_meta_value_length":      c.MaxMetaValueLength,
			"max_meta_count":             c.MaxMetaCount,
			"max_meta_overall_size":      c.MaxMetaOverallSize,
			"max_header_size":            c.MaxHeaderSize,
			"max_request_line":           8192,
			"max_object_name_length":     c.MaxObjectNameLength,
			"container_listing_limit":    c.ContainerListingLimit,
			"account_listing_limit":      c.AccountListingLimit,
			"max_account_name_length":    c.MaxAccountNameLength,
			"max_container_name_length":  c.MaxContainerNameLength,
			"valid_api_versions":         []string{"v1", "v1.0"},
			"extra_header_count":         0,
			"auto_create_account_prefix": ".",
			"strict_cors_mode":           true,
			"allow_account_management":   false,
			"account_autocreate":         true,
			"allow_open_expired":         false,
			"policies":                   []any{map[string]any{"name": "Policy-0", "aliases": "Policy-0", "default": true}},
		},
		"slo": map[string]any{
			"max_manifest_segments": c.MaxManifestSegments,
			"max_manifest_size":     c.MaxManifestSize,
			"min_segment_size":      1,
			"yield_frequency":       10,
			"allow_async_delete":    false,
		},
		"dlo": map[string]any{
			"max_segments": c.ContainerListingLimit,
		},
		"bulk_delete": map[string]any{
			"max_deletes_per_request": c.MaxDeletesPerRequest,
			"max_failed_deletes":      c.MaxFailedDeletes,
		},
		"tempurl": map[string]any{
			"methods":                 tempURLMethods,
			"incoming_remove_headers": []string{"x-timestamp", "x-open-expired"},
			"incoming_allow_headers":  []string{},
			"outgoing_remove_headers": []string{"x-object-meta-*"},
			"outgoing_allow_headers":  []string{"x-object-meta-public-*"},
			"allowed_digests":         []string{"sha1", "sha256", "sha512"},
			"deprecated_digests":      []string{"sha1"},
		},
		"keystoneauth": map[string]any{},
	})
	return nil
}

// InfoHandler serves /info outside the /object-store prefix: clients that
// derive the info URL from the storage URL's host (python-swiftclient's
// `swift capabilities`) ask for http://HOST/info.
func (s *Service) InfoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			api.TextFault(w, r, swiftError(http.StatusMethodNotAllowed, "The method is not allowed for this resource."))
			return
		}
		s.handleInfo(w, r)
	})
}
