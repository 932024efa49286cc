package objectstore

import (
	"strings"
	"testing"
)

// TestOptionsWithoutOrigin: OPTIONS is no 405 but a 200 listing the
// methods, on the account, a container and an object, with or without a
// token (a bad one included: OPTIONS is never authenticated).
func TestOptionsWithoutOrigin(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.put("c", "o", "x")
	for _, path := range []string{acct(tc.demoProject), tc.demoPath("c"), tc.demoPath("c", "o"), tc.demoPath("nope", "o")} {
		for _, tok := range []string{"", tc.demo, "not-a-token"} {
			res := tc.do("OPTIONS", path, tok, nil)
			want := "DELETE, GET, HEAD, OPTIONS, POST, PUT"
			if strings.HasSuffix(path, "/o") {
				want += ", COPY" // an object's, as Swift's copy middleware adds it
			}
			if res.StatusCode != 200 || res.Header.Get("Allow") != want || len(res.Body) != 0 {
				t.Errorf("OPTIONS %s (token %q): %d %v %q", path, tok, res.StatusCode, res.Header, res.Body)
			}
			if res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("OPTIONS %s without Origin answered CORS headers %v", path, res.Header)
			}
		}
	}
	// A TempURL query does not turn OPTIONS into a TempURL request.
	res := tc.do("OPTIONS", tc.demoPath("c", "o")+"?temp_url_sig=x&temp_url_expires=1", "", nil)
	if res.StatusCode != 200 || res.Header.Get("Allow") == "" {
		t.Errorf("OPTIONS with a TempURL query: %d %v", res.StatusCode, res.Header)
	}
}

// TestCORSPreflight: with an Origin, OPTIONS on a container or an object
// is a preflight, decided by the container's allow-origin metadata.
func TestCORSPreflight(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("open", "X-Container-Meta-Access-Control-Allow-Origin", "http://a.example http://b.example",
		"X-Container-Meta-Access-Control-Max-Age", "600")
	tc.mkContainer("star", "X-Container-Meta-Access-Control-Allow-Origin", "*")
	tc.mkContainer("closed")
	tc.put("open", "o", "x")

	pre := func(path, origin, method string, headers ...string) response {
		t.Helper()
		hs := append([]string{"Origin", origin}, headers...)
		if method != "" {
			hs = append(hs, "Access-Control-Request-Method", method)
		}
		return tc.do("OPTIONS", path, "", nil, hs...)
	}
	// Allowed: the origin echoed, the methods, the max age, the headers asked for.
	for _, path := range []string{tc.demoPath("open"), tc.demoPath("open", "o"), tc.demoPath("open", "not-yet")} {
		res := pre(path, "http://b.example", "PUT", "Access-Control-Request-Headers", "x-auth-token, content-type")
		if res.StatusCode != 200 {
			t.Fatalf("preflight %s: %d %s", path, res.StatusCode, res.Body)
		}
		methods := "DELETE, GET, HEAD, OPTIONS, POST, PUT"
		if path != tc.demoPath("open") {
			methods += ", COPY"
		}
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":  "http://b.example",
			"Access-Control-Allow-Methods": methods,
			"Access-Control-Allow-Headers": "x-auth-token, content-type",
			"Access-Control-Max-Age":       "600",
			"Allow":                        methods,
			"Vary":                         "Origin, Access-Control-Request-Headers",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("preflight %s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	// "*" allows every origin and says so; no max age unless set, no
	// allowed headers unless asked.
	res := tc.must(200, pre(tc.demoPath("star", "o"), "http://anywhere.example", "GET"))
	if res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Access-Control-Max-Age") != "" ||
		res.Header.Get("Access-Control-Allow-Headers") != "" || res.Header.Get("Vary") != "" {
		t.Errorf("preflight on *: %v", res.Header)
	}
	// Refused: another origin, no rules, no container, no or an unknown method.
	for _, c := range []struct{ path, origin, method string }{
		{tc.demoPath("open", "o"), "http://c.example", "GET"},
		{tc.demoPath("open", "o"), "http://a.example.evil", "GET"},
		{tc.demoPath("closed", "o"), "http://a.example", "GET"},
		{tc.demoPath("missing", "o"), "http://a.example", "GET"},
		{tc.demoPath("open", "o"), "http://a.example", ""},
		{tc.demoPath("open", "o"), "http://a.example", "COPY"},
		{tc.demoPath("open", "o"), "http://a.example", "get"},
	} {
		res := pre(c.path, c.origin, c.method)
		if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Www-Authenticate") != "" {
			t.Errorf("preflight %s from %s for %q: %d %v", c.path, c.origin, c.method, res.StatusCode, res.Header)
		}
	}
	// The account has no CORS rules: a plain 200, as in Swift.
	res = tc.must(200, pre(acct(tc.demoProject), "http://a.example", "GET"))
	if res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Allow") == "" {
		t.Errorf("account preflight %v", res.Header)
	}
	// Rules set by POST apply at once.
	tc.must(204, tc.do("POST", tc.demoPath("closed"), tc.demo, nil, "X-Container-Meta-Access-Control-Allow-Origin", "http://a.example"))
	tc.must(200, pre(tc.demoPath("closed", "o"), "http://a.example", "DELETE"))
}

// TestCORSActualRequests: GET, HEAD and the other requests with an
// allowed Origin carry Access-Control-Allow-Origin and
// Access-Control-Expose-Headers (Swift's headers, the metadata shown, and
// the container's expose list); other origins get none.
func TestCORSActualRequests(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c", "X-Container-Meta-Access-Control-Allow-Origin", "http://a.example",
		"X-Container-Meta-Access-Control-Expose-Headers", "X-Object-Manifest  Content-Length", "X-Container-Meta-Color", "blue")
	tc.mkContainer("star", "X-Container-Meta-Access-Control-Allow-Origin", "*", "X-Container-Read", ".r:*")
	tc.put("c", "o", "hello", "X-Object-Meta-Shade", "dark")
	tc.put("star", "pub", "public")

	exposed := func(res response) map[string]bool {
		set := map[string]bool{}
		for _, e := range strings.Split(res.Header.Get("Access-Control-Expose-Headers"), ",") {
			set[strings.TrimSpace(e)] = true
		}
		return set
	}
	base := []string{"cache-control", "content-language", "content-type", "expires", "last-modified", "pragma",
		"etag", "x-timestamp", "x-trans-id", "x-openstack-request-id", "x-object-manifest", "content-length"}

	res := tc.must(200, tc.do("GET", tc.demoPath("c", "o"), tc.demo, nil, "Origin", "http://a.example"))
	if string(res.Body) != "hello" || res.Header.Get("Access-Control-Allow-Origin") != "http://a.example" || res.Header.Get("Vary") != "Origin" {
		t.Errorf("object GET: %q %v", res.Body, res.Header)
	}
	ex := exposed(res)
	for _, h := range append(base, "x-object-meta-shade") {
		if !ex[h] {
			t.Errorf("object GET does not expose %s: %q", h, res.Header.Get("Access-Control-Expose-Headers"))
		}
	}
	res = tc.must(200, tc.do("HEAD", tc.demoPath("c", "o"), tc.demo, nil, "Origin", "http://a.example"))
	if res.Header.Get("Access-Control-Allow-Origin") != "http://a.example" || !exposed(res)["x-object-meta-shade"] {
		t.Errorf("object HEAD: %v", res.Header)
	}
	// A container's HEAD and GET expose its metadata.
	for _, m := range []string{"HEAD", "GET"} {
		res = tc.do(m, tc.demoPath("c"), tc.demo, nil, "Origin", "http://a.example")
		if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") != "http://a.example" || !exposed(res)["x-container-meta-color"] {
			t.Errorf("container %s: %d %v", m, res.StatusCode, res.Header)
		}
	}
	// Writes and errors are answered with the headers too.
	res = tc.must(201, tc.do("PUT", tc.demoPath("c", "new"), tc.demo, "x", "Origin", "http://a.example"))
	if res.Header.Get("Access-Control-Allow-Origin") != "http://a.example" {
		t.Errorf("object PUT: %v", res.Header)
	}
	res = tc.must(404, tc.do("GET", tc.demoPath("c", "missing"), tc.demo, nil, "Origin", "http://a.example"))
	if res.Header.Get("Access-Control-Allow-Origin") != "http://a.example" || res.Header.Get("Access-Control-Expose-Headers") == "" {
		t.Errorf("404: %v", res.Header)
	}
	// A public container open to all origins, read without a token.
	res = tc.must(200, tc.do("GET", tc.demoPath("star", "pub"), "", nil, "Origin", "http://x.example"))
	if res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Vary") != "" {
		t.Errorf("public GET: %v", res.Header)
	}
	// Other origins, no Origin, and accounts: no CORS headers.
	for _, c := range []struct{ path, origin string }{
		{tc.demoPath("c", "o"), "http://b.example"},
		{tc.demoPath("c", "o"), ""},
		{acct(tc.demoProject), "http://a.example"},
	} {
		var hs []string
		if c.origin != "" {
			hs = []string{"Origin", c.origin}
		}
		res := tc.do("GET", c.path, tc.demo, nil, hs...)
		if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Access-Control-Expose-Headers") != "" {
			t.Errorf("GET %s from %q: %d %v", c.path, c.origin, res.StatusCode, res.Header)
		}
	}
	// A large object served with CORS headers still streams whole.
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
	tc.put("c", "big", big)
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "big"), tc.demo, nil, "Origin", "http://a.example"))
	if string(res.Body) != big || res.Header.Get("Access-Control-Allow-Origin") != "http://a.example" {
		t.Errorf("big GET: %d bytes %v", len(res.Body), res.Header)
	}
}
