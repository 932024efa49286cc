package objectstore

import (
	"strings"
	"testing"
)

func TestCopy(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("src")
	tc.mkContainer("dst")
	tc.put("src", "o", "copy me", "X-Object-Meta-A", "1", "X-Object-Meta-B", "2", "Content-Type", "text/x-src",
		"Content-Disposition", "inline")

	// COPY with Destination.
	res := tc.must(201, tc.do("COPY", tc.demoPath("src", "o"), tc.demo, nil, "Destination", "/dst/copied", "X-Object-Meta-B", "two"))
	if res.Header.Get("X-Copied-From") != "src/o" || res.Header.Get("X-Copied-From-Last-Modified") == "" || res.Header.Get("Etag") != md5hex("copy me") {
		t.Errorf("COPY headers %v", res.Header)
	}
	got := tc.must(200, tc.do("GET", tc.demoPath("dst", "copied"), tc.demo, nil))
	if string(got.Body) != "copy me" || got.Header.Get("X-Object-Meta-A") != "1" || got.Header.Get("X-Object-Meta-B") != "two" ||
		got.Header.Get("Content-Type") != "text/x-src" || got.Header.Get("Content-Disposition") != "inline" {
		t.Errorf("copy %q %v", got.Body, got.Header)
	}
	// PUT with X-Copy-From; X-Fresh-Metadata drops the source's metadata.
	tc.must(201, tc.do("PUT", tc.demoPath("dst", "fresh"), tc.demo, "", "X-Copy-From", "src/o", "X-Fresh-Metadata", "true",
		"X-Object-Meta-C", "3", "Content-Type", "text/plain"))
	got = tc.must(200, tc.do("GET", tc.demoPath("dst", "fresh"), tc.demo, nil))
	if string(got.Body) != "copy me" || got.Header.Get("X-Object-Meta-A") != "" || got.Header.Get("X-Object-Meta-C") != "3" ||
		got.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("fresh copy %q %v", got.Body, got.Header)
	}
	// Encoded names, into the same container.
	tc.put("src", "with space/é", "spaced")
	tc.must(201, tc.do("COPY", tc.demoPath("src", "with space/é"), tc.demo, nil, "Destination", "src/"+swiftQuote("other/é")))
	if got := tc.must(200, tc.do("GET", tc.demoPath("src", "other/é"), tc.demo, nil)); string(got.Body) != "spaced" {
		t.Errorf("encoded copy %q", got.Body)
	}
	// Failures.
	cases := []struct {
		method, path string
		headers      []string
		status       int
	}{
		{"COPY", tc.demoPath("src", "o"), nil, 412},
		{"COPY", tc.demoPath("src", "o"), []string{"Destination", "nocontainer"}, 412},
		{"COPY", tc.demoPath("src", "missing"), []string{"Destination", "dst/x"}, 404},
		{"COPY", tc.demoPath("src", "o"), []string{"Destination", "nodst/x"}, 404},
		{"COPY", tc.demoPath("src", "o"), []string{"Destination", "dst/" + strings.Repeat("x", 1025)}, 400},
		{"PUT", tc.demoPath("dst", "x"), []string{"X-Copy-From", "src/missing"}, 404},
		{"PUT", tc.demoPath("dst", "x"), []string{"X-Copy-From", "src"}, 412},
	}
	for _, c := range cases {
		var body any
		if c.method == "PUT" {
			body = ""
		}
		if res := tc.do(c.method, c.path, tc.demo, body, c.headers...); res.StatusCode != c.status {
			t.Errorf("%s %s %v: %d, want %d: %s", c.method, c.path, c.headers, res.StatusCode, c.status, res.Body)
		}
	}
	tc.must(400, tc.do("PUT", tc.demoPath("dst", "x"), tc.demo, "body", "X-Copy-From", "src/o"))

	// Copying a large object copies its contents; with
	// ?multipart-manifest=get, the manifest itself.
	tc.put("src", "seg/1", "hello ")
	tc.put("src", "seg/2", "world")
	tc.put("src", "dlo", "", "X-Object-Manifest", "src/seg/")
	tc.must(201, tc.do("COPY", tc.demoPath("src", "dlo"), tc.demo, nil, "Destination", "dst/flat"))
	got = tc.must(200, tc.do("GET", tc.demoPath("dst", "flat"), tc.demo, nil))
	if string(got.Body) != "hello world" || got.Header.Get("X-Object-Manifest") != "" {
		t.Errorf("flattened DLO %q %v", got.Body, got.Header)
	}
	tc.must(201, sloPut(tc, "src", "slo", []any{map[string]any{"path": "/src/seg/1"}, map[string]any{"path": "/src/seg/2"}}))
	tc.must(201, tc.do("COPY", tc.demoPath("src", "slo"), tc.demo, nil, "Destination", "dst/slo-flat"))
	got = tc.must(200, tc.do("HEAD", tc.demoPath("dst", "slo-flat"), tc.demo, nil))
	if got.Header.Get("X-Static-Large-Object") != "" || got.Header.Get("Content-Length") != "11" {
		t.Errorf("flattened SLO %v", got.Header)
	}
	tc.must(201, tc.do("COPY", tc.demoPath("src", "slo")+"?multipart-manifest=get", tc.demo, nil, "Destination", "dst/slo-copy"))
	got = tc.must(200, tc.do("GET", tc.demoPath("dst", "slo-copy"), tc.demo, nil))
	if string(got.Body) != "hello world" || got.Header.Get("X-Static-Large-Object") != "True" {
		t.Errorf("copied SLO manifest %q %v", got.Body, got.Header)
	}
	// Across accounts (an admin may write anywhere).
	tc.must(201, tc.do("PUT", p(tc.adminProject, "mine"), tc.admin, nil))
	res = tc.must(201, tc.do("COPY", tc.demoPath("src", "o"), tc.admin, nil, "Destination", "mine/o", "Destination-Account", "AUTH_"+tc.adminProject))
	if res.Header.Get("X-Copied-From-Account") != "AUTH_"+tc.demoProject {
		t.Errorf("cross-account copy headers %v", res.Header)
	}
	if got := tc.must(200, tc.do("GET", p(tc.adminProject, "mine", "o"), tc.admin, nil)); string(got.Body) != "copy me" {
		t.Errorf("cross-account copy %q", got.Body)
	}
	// demo cannot copy into the admin's account.
	tc.must(403, tc.do("COPY", tc.demoPath("src", "o"), tc.demo, nil, "Destination", "mine/o2", "Destination-Account", "AUTH_"+tc.adminProject))
}
