package image

import (
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// versions are the Image API versions announced, newest first, as a Glance
// with multiple stores and no image cache lists them.
var versions = []struct{ id, status string }{
	{"v2.17", "CURRENT"}, {"v2.15", "SUPPORTED"}, {"v2.13", "SUPPORTED"}, {"v2.12", "SUPPORTED"},
	{"v2.11", "SUPPORTED"}, {"v2.10", "SUPPORTED"}, {"v2.9", "SUPPORTED"}, {"v2.8", "SUPPORTED"},
	{"v2.7", "SUPPORTED"}, {"v2.6", "SUPPORTED"}, {"v2.5", "SUPPORTED"}, {"v2.4", "SUPPORTED"},
	{"v2.3", "SUPPORTED"}, {"v2.2", "SUPPORTED"}, {"v2.1", "SUPPORTED"}, {"v2.0", "SUPPORTED"},
}

// handleVersions answers version discovery: 300 Multiple Choices at the
// service root (and for /v2 itself), 200 at /versions.
func (s *Service) handleVersions(status int) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		href := api.BaseURL(r) + "/image/v2/"
		out := make([]any, len(versions))
		for i, v := range versions {
			out[i] = map[string]any{"id": v.id, "status": v.status,
				"links": []any{map[string]any{"rel": "self", "href": href}}}
		}
		api.WriteJSON(w, status, map[string]any{"versions": out})
		return nil
	}
}

func (s *Service) handleImportInfo(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": importMethods,
	}})
	return nil
}

func storeInfo(detail bool, dataDir string) map[string]any {
	st := map[string]any{"id": StoreID, "description": "Local file store", "default": "true"}
	if detail {
		st["type"] = "file"
		st["weight"] = 0
		st["properties"] = map[string]any{"data_dir": dataDir, "chunk_size": blockSize, "thin_provisioning": false}
	}
	return map[string]any{"stores": []any{st}}
}

func (s *Service) handleStores(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, storeInfo(false, ""))
	return nil
}

func (s *Service) handleStoresDetail(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, storeInfo(true, s.imagesDir))
	return nil
}

// handleUsage is /v2/info/usage: the caller's project's usage against its
// quotas, sizes in MiB as Glance counts them; -1 is unlimited. Usage is
// rounded down, as Glance does; our quotas, set in bytes, are rounded up,
// so that a quota under a MiB does not read as 0 (nothing allowed).
func (s *Service) handleUsage(w http.ResponseWriter, r *http.Request) error {
	c := credsOf(r)
	u, err := s.usage(r.Context(), s.db, c.project, "")
	if err != nil {
		return err
	}
	const mib = 1 << 20
	limit := func(n int64, div int64) int64 {
		if n <= 0 {
			return -1
		}
		return (n + div - 1) / div
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"usage": map[string]any{
		"image_size_total":      map[string]any{"limit": limit(s.cfg.StorageQuota, mib), "usage": u.bytes / mib},
		"image_stage_total":     map[string]any{"limit": limit(s.cfg.StorageQuota, mib), "usage": u.staged / mib},
		"image_count_total":     map[string]any{"limit": limit(s.cfg.ImageCountQuota, 1), "usage": u.count},
		"image_count_uploading": map[string]any{"limit": -1, "usage": u.uploading},
	}})
	return nil
}
