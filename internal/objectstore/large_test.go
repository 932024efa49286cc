package objectstore

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func TestDLO(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("segs")
	tc.mkContainer("c")
	parts := []string{"part one|", "part two|", "part three"}
	for i, p := range parts {
		tc.put("segs", "big/"+string(rune('0'+i)), p)
	}
	tc.put("segs", "bigger", "not a segment")
	tc.put("c", "big", "", "X-Object-Manifest", "segs/big/", "Content-Type", "text/plain")
	whole := strings.Join(parts, "")
	etagSrc := md5hex(parts[0]) + md5hex(parts[1]) + md5hex(parts[2])
	wantETag := `"` + md5hex(etagSrc) + `"`

	res := tc.must(200, tc.do("GET", tc.demoPath("c", "big"), tc.demo, nil))
	if string(res.Body) != whole || res.Header.Get("Etag") != wantETag || res.Header.Get("X-Object-Manifest") != "segs/big/" {
		t.Errorf("DLO GET %q %v", res.Body, res.Header)
	}
	res = tc.must(200, tc.do("HEAD", tc.demoPath("c", "big"), tc.demo, nil))
	if res.Header.Get("Content-Length") != itoa(len(whole)) || res.Header.Get("Etag") != wantETag {
		t.Errorf("DLO HEAD %v", res.Header)
	}
	// A single range across segments; several ranges are ignored, as in Swift.
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "big"), tc.demo, nil, "Range", "bytes=5-12"))
	if string(res.Body) != whole[5:13] {
		t.Errorf("DLO range %q", res.Body)
	}
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "big"), tc.demo, nil, "Range", "bytes=0-1,3-4"))
	if string(res.Body) != whole {
		t.Errorf("DLO multi-range %q", res.Body)
	}
	// The manifest itself.
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "big")+"?multipart-manifest=get", tc.demo, nil))
	if len(res.Body) != 0 || res.Header.Get("X-Object-Manifest") != "segs/big/" {
		t.Errorf("manifest GET %q %v", res.Body, res.Header)
	}
	// Segments added later show up; the listing shows the manifest as 0 bytes.
	tc.put("segs", "big/3", "|four")
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "big"), tc.demo, nil)); string(res.Body) != whole+"|four" {
		t.Errorf("DLO after a new segment %q", res.Body)
	}
	l := tc.must(200, tc.do("GET", tc.demoPath("c")+"?format=json", tc.demo, nil)).List(t)
	if l[0]["bytes"] != 0.0 {
		t.Errorf("manifest listed as %v", l[0])
	}
	// Bad manifests.
	for _, v := range []string{"nocontainer", "/prefix", "c/", "c/p?x"} {
		tc.must(400, tc.do("PUT", tc.demoPath("c", "bad"), tc.demo, "", "X-Object-Manifest", v))
	}
	// A manifest into a missing container.
	tc.put("c", "lost", "", "X-Object-Manifest", "missing/x")
	tc.must(404, tc.do("GET", tc.demoPath("c", "lost"), tc.demo, nil))
	// An empty DLO.
	tc.put("c", "none", "", "X-Object-Manifest", "segs/zzz")
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "none"), tc.demo, nil)); len(res.Body) != 0 || res.Header.Get("Etag") != `"`+md5hex("")+`"` {
		t.Errorf("empty DLO %v", res.Header)
	}
}

func sloPut(tc *testCloud, container, name string, manifest any, headers ...string) response {
	tc.t.Helper()
	return tc.do("PUT", tc.demoPath(container, name)+"?multipart-manifest=put", tc.demo, manifest, headers...)
}

func TestSLO(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("segs")
	tc.mkContainer("c")
	a, b := strings.Repeat("a", 100), strings.Repeat("b", 50)
	tc.put("segs", "a", a)
	tc.put("segs", "b", b)
	manifest := []map[string]any{
		{"path": "/segs/a", "etag": md5hex(a), "size_bytes": 100},
		{"path": "segs/b", "etag": nil, "size_bytes": nil},
		{"data": base64.StdEncoding.EncodeToString([]byte("inline!"))},
		{"path": "/segs/a", "range": "10-19"},
	}
	whole := a + b + "inline!" + a[10:20]
	h := md5.New()
	h.Write([]byte(md5hex(a) + md5hex(b) + md5hex("inline!") + md5hex(a) + ":10-19;"))
	sloETag := hex.EncodeToString(h.Sum(nil))

	res := sloPut(tc, "c", "slo", manifest, "X-Object-Meta-Kind", "large")
	if res.StatusCode != 201 || res.Header.Get("Etag") != `"`+sloETag+`"` {
		t.Fatalf("SLO PUT %d %s %v", res.StatusCode, res.Body, res.Header)
	}
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil))
	if string(res.Body) != whole || res.Header.Get("Etag") != `"`+sloETag+`"` || res.Header.Get("X-Static-Large-Object") != "True" ||
		res.Header.Get("X-Object-Meta-Kind") != "large" || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("SLO GET %q %v", res.Body, res.Header)
	}
	for k := range res.Header {
		if strings.Contains(strings.ToLower(k), "sysmeta") {
			t.Errorf("system metadata shown: %s", k)
		}
	}
	res = tc.must(200, tc.do("HEAD", tc.demoPath("c", "slo"), tc.demo, nil))
	if res.Header.Get("Content-Length") != itoa(len(whole)) {
		t.Errorf("SLO HEAD %v", res.Header)
	}
	// Ranges across segments, and several of them.
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil, "Range", "bytes=95-104"))
	if string(res.Body) != whole[95:105] {
		t.Errorf("SLO range %q", res.Body)
	}
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil, "Range", "bytes=0-1,150-156"))
	if !strings.Contains(string(res.Body), "inline!") || !strings.Contains(res.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("SLO multi-range %q", res.Body)
	}
	// The listing shows the total size and the manifest's own hash.
	l := tc.must(200, tc.do("GET", tc.demoPath("c")+"?format=json", tc.demo, nil)).List(t)
	if l[0]["bytes"] != float64(len(whole)) || l[0]["slo_etag"] != `"`+sloETag+`"` {
		t.Errorf("SLO listed as %v", l[0])
	}
	// The container counts the manifest's bytes, not the segments'.
	c := tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
	if c.Header.Get("X-Container-Bytes-Used") == itoa(len(whole)) {
		t.Errorf("bytes used counts the segments: %s", c.Header.Get("X-Container-Bytes-Used"))
	}
	// ?multipart-manifest=get: the stored manifest; format=raw: as PUT.
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "slo")+"?multipart-manifest=get", tc.demo, nil))
	var stored []map[string]any
	if err := json.Unmarshal(res.Body, &stored); err != nil || len(stored) != 4 || stored[0]["name"] != "/segs/a" ||
		stored[0]["hash"] != md5hex(a) || stored[1]["bytes"] != 50.0 || stored[2]["data"] == nil || stored[3]["range"] != "10-19" {
		t.Errorf("stored manifest %s", res.Body)
	}
	if res.Header.Get("Content-Type") != "application/json; charset=utf-8" || res.Header.Get("X-Static-Large-Object") != "True" {
		t.Errorf("manifest GET headers %v", res.Header)
	}
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "slo")+"?multipart-manifest=get&format=raw", tc.demo, nil))
	var raw []map[string]any
	if err := json.Unmarshal(res.Body, &raw); err != nil || raw[0]["path"] != "/segs/a" || raw[0]["size_bytes"] != 100.0 || raw[0]["etag"] != md5hex(a) {
		t.Errorf("raw manifest %s", res.Body)
	}
	// A nested SLO.
	res = sloPut(tc, "c", "nested", []map[string]any{{"path": "/c/slo", "etag": sloETag, "size_bytes": len(whole)}, {"path": "/segs/b"}})
	if res.StatusCode != 201 {
		t.Fatalf("nested PUT %d %s", res.StatusCode, res.Body)
	}
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "nested"), tc.demo, nil)); string(res.Body) != whole+b {
		t.Errorf("nested GET %q", res.Body)
	}
	// A changed segment breaks the SLO with a 409.
	tc.put("segs", "b", "changed")
	tc.must(409, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil))
	tc.put("segs", "b", b)
	tc.must(200, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil))
	// The client's ETag for the whole must match.
	tc.must(422, sloPut(tc, "c", "slo2", manifest, "Etag", md5hex("wrong")))
	tc.must(201, sloPut(tc, "c", "slo2", manifest, "Etag", sloETag))
}

func TestSLOValidation(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("segs")
	tc.mkContainer("c")
	tc.put("segs", "a", "aaaa")
	tc.put("segs", "empty", "")
	cases := []struct {
		name     string
		manifest any
		status   int
		body     string
	}{
		{"not JSON", "{nope", 400, "Manifest must be valid JSON.\n"},
		{"not a list", map[string]any{"path": "/segs/a"}, 400, "Manifest must be a list.\n"},
		{"not an object", []any{"x"}, 400, "Index 0: not a JSON object\n"},
		{"no path", []any{map[string]any{"etag": "x"}}, 400, "Index 0: expected keys to include one of 'data' or 'path'\n"},
		{"extra keys", []any{map[string]any{"path": "/segs/a", "size": 1}}, 400, "Index 0: extraneous keys \"size\"\n"},
		{"not an object path", []any{map[string]any{"path": "/segs"}}, 400,
			"Index 0: path does not refer to an object. Path must be of the form /container/object.\n"},
		{"bad size", []any{map[string]any{"path": "/segs/a", "size_bytes": "big"}}, 400, "Index 0: invalid size_bytes\n"},
		{"bad range", []any{map[string]any{"path": "/segs/a", "range": "x-y"}}, 400, "Index 0: invalid range\n"},
		{"two ranges", []any{map[string]any{"path": "/segs/a", "range": "0-1,2-3"}}, 400, "Index 0: multiple ranges (only one allowed)\n"},
		{"itself", []any{map[string]any{"path": "/c/m"}}, 400, "Index 0: manifest must not include itself as a segment\n"},
		{"bad data", []any{map[string]any{"data": "!!!"}, map[string]any{"path": "/segs/a"}}, 400, "Index 0: data must be valid base64\n"},
		{"only data", []any{map[string]any{"data": "YWJj"}}, 400, "Inline data segments require at least one object-backed segment.\n"},
		{"etag mismatch", []any{map[string]any{"path": "/segs/a", "etag": md5hex("x")}}, 400, "Errors:\n/segs/a, Etag Mismatch\n"},
		{"size mismatch", []any{map[string]any{"path": "/segs/a", "size_bytes": 5}}, 400, "Errors:\n/segs/a, Size Mismatch\n"},
		{"missing", []any{map[string]any{"path": "/segs/nope"}}, 400, "Errors:\n/segs/nope, 404 Not Found\n"},
		{"unsatisfiable", []any{map[string]any{"path": "/segs/a", "range": "10-20"}}, 400, "Errors:\n/segs/a, Unsatisfiable Range\n"},
		{"too small", []any{map[string]any{"path": "/segs/empty"}, map[string]any{"path": "/segs/a"}}, 400,
			"Errors:\n/segs/empty, Too small; each segment must be at least 1 byte.\n"},
		{"empty last segment is fine", []any{map[string]any{"path": "/segs/a"}, map[string]any{"path": "/segs/empty"}}, 201, ""},
	}
	for _, c := range cases {
		res := sloPut(tc, "c", "m", c.manifest)
		if res.StatusCode != c.status || c.body != "" && string(res.Body) != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.name, res.StatusCode, res.Body, c.status, c.body)
		}
	}
	// Errors in JSON when asked.
	res := tc.do("PUT", tc.demoPath("c", "m")+"?multipart-manifest=put", tc.demo,
		[]any{map[string]any{"path": "/segs/nope"}}, "Accept", "application/json")
	var body struct{ Errors [][]string }
	if res.StatusCode != 400 || json.Unmarshal(res.Body, &body) != nil || len(body.Errors) != 1 || body.Errors[0][1] != "404 Not Found" {
		t.Errorf("JSON errors: %d %s", res.StatusCode, res.Body)
	}
	// Limits.
	small := newTestCloudConfig(t, Config{MaxManifestSegments: 2, MaxManifestSize: 200})
	small.mkContainer("c")
	small.put("c", "s", "x")
	three := []any{map[string]any{"path": "/c/s"}, map[string]any{"path": "/c/s"}, map[string]any{"path": "/c/s"}}
	small.must(413, small.do("PUT", small.demoPath("c", "m")+"?multipart-manifest=put", small.demo, three))
	big := []any{map[string]any{"path": "/c/" + strings.Repeat("s", 300)}}
	small.must(413, small.do("PUT", small.demoPath("c", "m")+"?multipart-manifest=put", small.demo, big))
	small.must(405, small.do("PUT", small.demoPath("c", "m")+"?multipart-manifest=put", small.demo, three, "X-Copy-From", "c/s"))
}

func TestSLODelete(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("segs")
	tc.mkContainer("c")
	tc.put("segs", "1", "one")
	tc.put("segs", "2", "two")
	tc.put("segs", "3", "three")
	tc.must(201, sloPut(tc, "c", "inner", []any{map[string]any{"path": "/segs/3"}}))
	tc.must(201, sloPut(tc, "c", "outer", []any{map[string]any{"path": "/segs/1"}, map[string]any{"path": "/segs/2"}, map[string]any{"path": "/c/inner"}}))
	// A plain DELETE removes only the manifest.
	tc.must(201, sloPut(tc, "c", "other", []any{map[string]any{"path": "/segs/1"}}))
	tc.must(204, tc.do("DELETE", tc.demoPath("c", "other"), tc.demo, nil))
	tc.must(200, tc.do("HEAD", tc.demoPath("segs", "1"), tc.demo, nil))
	// ?multipart-manifest=delete: segments, nested ones, then the manifests.
	res := tc.must(200, tc.do("DELETE", tc.demoPath("c", "outer")+"?multipart-manifest=delete", tc.demo, nil, "Accept", "application/json"))
	var out map[string]any
	json.Unmarshal(res.Body, &out)
	if out["Number Deleted"] != 5.0 || out["Response Status"] != "200 OK" {
		t.Errorf("SLO delete: %s", res.Body)
	}
	for _, p := range [][]string{{"segs", "1"}, {"segs", "2"}, {"segs", "3"}, {"c", "inner"}, {"c", "outer"}} {
		tc.must(404, tc.do("HEAD", tc.demoPath(p...), tc.demo, nil))
	}
	// Not a manifest.
	tc.put("c", "plain", "x")
	res = tc.must(200, tc.do("DELETE", tc.demoPath("c", "plain")+"?multipart-manifest=delete", tc.demo, nil))
	if !strings.Contains(string(res.Body), "Not an SLO manifest") || !strings.Contains(string(res.Body), "Response Status: 400 Bad Request") {
		t.Errorf("delete of a plain object as an SLO: %s", res.Body)
	}
}

// TestSLOReservedHeader: X-Static-Large-Object is the slo middleware's;
// set by a client anywhere but a manifest PUT it is a 400, as in Swift,
// not silently dropped.
func TestSLOReservedHeader(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("segs")
	tc.mkContainer("c")
	tc.put("segs", "a", "aaaa")
	tc.put("c", "plain", "x")
	const msg = "X-Static-Large-Object is a reserved header. To create a static large object add query param multipart-manifest=put."
	for _, c := range []struct{ method, path, value string }{
		{"PUT", tc.demoPath("c", "o"), "true"},
		{"PUT", tc.demoPath("c", "o"), "false"},
		{"PUT", tc.demoPath("c", "o") + "?multipart-manifest=get", "True"},
		{"POST", tc.demoPath("c", "plain"), "True"},
		{"DELETE", tc.demoPath("c", "plain"), "True"},
		{"COPY", tc.demoPath("c", "plain"), "True"},
	} {
		hs := []string{"X-Static-Large-Object", c.value}
		if c.method == "COPY" {
			hs = append(hs, "Destination", "c/copy")
		}
		res := tc.do(c.method, c.path, tc.demo, "body", hs...)
		if res.StatusCode != 400 || string(res.Body) != msg {
			t.Errorf("%s %s with X-Static-Large-Object: %s: %d %q", c.method, c.path, c.value, res.StatusCode, res.Body)
		}
	}
	// Nothing was written nor removed.
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "o"), tc.demo, nil))
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "copy"), tc.demo, nil))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "plain"), tc.demo, nil)); string(res.Body) != "x" || res.Header.Get("X-Static-Large-Object") != "" {
		t.Errorf("plain after refused requests: %q %v", res.Body, res.Header)
	}
	// Where slo takes the header: a manifest PUT, GET and HEAD.
	tc.must(201, sloPut(tc, "c", "m", []any{map[string]any{"path": "/segs/a"}}, "X-Static-Large-Object", "true"))
	tc.must(200, tc.do("GET", tc.demoPath("c", "m"), tc.demo, nil, "X-Static-Large-Object", "true"))
	tc.must(200, tc.do("HEAD", tc.demoPath("c", "m"), tc.demo, nil, "X-Static-Large-Object", "true"))
	tc.must(200, tc.do("DELETE", tc.demoPath("c", "m")+"?multipart-manifest=delete", tc.demo, nil, "X-Static-Large-Object", "true"))
}
