package objectstore

import (
	"strings"
	"testing"
)

// TestBadInputNever500 throws malformed requests at every level: none may
// answer 5xx (or panic), and every fault is plain text.
func TestBadInputNever500(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.put("c", "o", "data")
	tc.put("c", "dlo", "", "X-Object-Manifest", "c/o")
	tc.must(201, sloPut(tc, "c", "slo", []any{map[string]any{"path": "/c/o"}}))
	a := acct(tc.demoProject)
	paths := []string{
		Prefix + "/v1", Prefix + "/v1/", Prefix + "/v1//", Prefix + "/v1/AUTH_", Prefix + "/v1/AUTH_/c",
		a, a + "/", a + "//", a + "/c", a + "/c/", a + "/c/o", a + "/c/dlo", a + "/c/slo", a + "/c/%", a + "/c/%zz",
		a + "/c/o%00", a + "/%FF/o", a + "/c/" + strings.Repeat("x", 5000), a + "/" + strings.Repeat("c", 300) + "/o",
		Prefix + "/v1.0/AUTH_" + tc.demoProject + "/c/o", Prefix + "/v2/AUTH_x", Prefix + "/", Prefix + "/info/x",
	}
	queries := []string{
		"", "?format=json&limit=-1", "?limit=99999999999999999999", "?marker=%FF", "?delimiter=%E2%98%83",
		"?multipart-manifest=get", "?multipart-manifest=put", "?multipart-manifest=delete", "?bulk-delete",
		"?temp_url_sig=x&temp_url_expires=1", "?temp_url_sig=sha512:!!!&temp_url_expires=99999999999",
		"?reverse=true&end_marker=z&marker=a", "?format=xml&prefix=%00",
	}
	headerSets := [][]string{
		nil,
		{"Range", "bytes=99999999999999999999-"},
		{"Range", "bytes=0-1,0-1,0-1,0-1"},
		{"If-Match", "\"\""},
		{"If-Modified-Since", "not a date"},
		{"X-Delete-At", "1e400"},
		{"X-Delete-After", "99999999999999999999"},
		{"Destination", "%"},
		{"Destination", "/"},
		{"X-Copy-From", "c"},
		{"X-Copy-From", "c/nope"},
		{"X-Object-Manifest", "%%%/x"},
		{"X-Container-Read", ".r:,.r:-"},
		{"X-Container-Write", "a:b,.rlistings"},
		{"Content-Type", "\xff\xfe"},
		{"Accept", "application/json;q=abc, */*;q=0"},
		{"X-Account-Meta-", "x"},
		{"Etag", "not-an-md5"},
		{"Content-Length", "0", "X-Copy-From", "%2F%2F"},
	}
	methods := []string{"GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS", "PATCH"}
	for _, path := range paths {
		for _, query := range queries {
			for _, hs := range headerSets {
				for _, m := range methods {
					var body any
					if m == "PUT" || m == "POST" {
						body = "[{\"path\": 5}]"
					}
					res := tc.do(m, path+query, tc.demo, body, hs...)
					if res.StatusCode >= 500 {
						t.Errorf("%s %s%s %v: %d %s", m, path, query, hs, res.StatusCode, res.Body)
					}
					if res.StatusCode >= 400 && len(res.Body) > 0 && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") &&
						!strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
						t.Errorf("%s %s%s %v: %d fault as %q", m, path, query, hs, res.StatusCode, res.Header.Get("Content-Type"))
					}
				}
			}
			if t.Failed() {
				return
			}
		}
	}
}
