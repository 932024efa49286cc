package objectstore

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAccountImplicitAndHeaders(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(204, tc.do("HEAD", acct(tc.demoProject), tc.demo, nil))
	for h, want := range map[string]string{
		"X-Account-Container-Count": "0", "X-Account-Object-Count": "0", "X-Account-Bytes-Used": "0",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	for _, h := range []string{"X-Timestamp", "X-Trans-Id", "X-Openstack-Request-Id"} {
		if res.Header.Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
	if !strings.HasPrefix(res.Header.Get("X-Trans-Id"), "tx") {
		t.Errorf("X-Trans-Id %q", res.Header.Get("X-Trans-Id"))
	}
	// An empty listing: 204 in plain text, [] in JSON.
	tc.must(204, tc.do("GET", acct(tc.demoProject), tc.demo, nil))
	if res := tc.must(200, tc.do("GET", acct(tc.demoProject)+"?format=json", tc.demo, nil)); string(res.Body) != "[]" {
		t.Errorf("empty JSON listing %q", res.Body)
	}
	// Trailing slash (gophercloud's endpoint) is the account too.
	tc.must(204, tc.do("HEAD", acct(tc.demoProject)+"/", tc.demo, nil))

	// Counters follow containers and objects.
	tc.mkContainer("a")
	tc.mkContainer("b")
	tc.put("a", "x", "12345")
	tc.put("b", "y", "123")
	res = tc.must(204, tc.do("HEAD", acct(tc.demoProject), tc.demo, nil))
	for h, want := range map[string]string{
		"X-Account-Container-Count": "2", "X-Account-Object-Count": "2", "X-Account-Bytes-Used": "8",
		"X-Account-Storage-Policy-Policy-0-Bytes-Used": "8",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	l := tc.must(200, tc.do("GET", acct(tc.demoProject)+"?format=json", tc.demo, nil)).List(t)
	if len(l) != 2 || l[0]["name"] != "a" || l[0]["count"] != 1.0 || l[0]["bytes"] != 5.0 || l[0]["last_modified"] == nil {
		t.Errorf("account listing %v", l)
	}
}

func TestAccountMetadata(t *testing.T) {
	tc := newTestCloud(t)
	a := acct(tc.demoProject)
	tc.must(204, tc.do("POST", a, tc.demo, nil, "X-Account-Meta-Color", "blue", "X-Account-Meta-Temp-URL-Key", "secret"))
	res := tc.must(204, tc.do("HEAD", a, tc.demo, nil))
	if res.Header.Get("X-Account-Meta-Color") != "blue" || res.Header.Get("X-Account-Meta-Temp-Url-Key") != "secret" {
		t.Fatalf("metadata not kept: %v", res.Header)
	}
	tc.must(204, tc.do("POST", a, tc.demo, nil, "X-Remove-Account-Meta-Color", "x"))
	tc.must(204, tc.do("POST", a, tc.demo, nil, "X-Account-Meta-Temp-URL-Key", ""))
	res = tc.must(204, tc.do("HEAD", a, tc.demo, nil))
	if res.Header.Get("X-Account-Meta-Color") != "" || res.Header.Get("X-Account-Meta-Temp-Url-Key") != "" {
		t.Fatalf("metadata not removed: %v", res.Header)
	}
}

func TestAccountAccess(t *testing.T) {
	tc := newTestCloud(t)
	reader, readerProject, _ := tc.newUser("carol", "reader")
	other, _, _ := tc.newUser("dave", "member")
	reseller, _, _ := tc.newUser("rita", "ResellerAdmin")
	demoAcct := acct(tc.demoProject)
	cases := []struct {
		name, method, path, token string
		status                    int
	}{
		{"owner HEAD", "HEAD", demoAcct, tc.demo, 204},
		{"other project HEAD", "HEAD", demoAcct, other, 403},
		{"other project GET", "GET", demoAcct, other, 403},
		{"other project POST", "POST", demoAcct, other, 403},
		{"anonymous HEAD", "HEAD", demoAcct, "", 401},
		{"bad token", "HEAD", demoAcct, "not-a-token", 401},
		{"cloud admin reaches any account", "HEAD", demoAcct, tc.admin, 204},
		{"cloud admin POST any account", "POST", demoAcct, tc.admin, 204},
		{"reseller admin reaches any account", "GET", demoAcct, reseller, 204},
		{"any project's account exists for admin", "HEAD", acct("0123456789abcdef"), tc.admin, 204},
		{"reader reads its account", "HEAD", acct(readerProject), reader, 204},
		{"reader cannot POST", "POST", acct(readerProject), reader, 403},
		{"reader cannot create containers", "PUT", p(readerProject, "c"), reader, 403},
		{"account PUT not allowed", "PUT", demoAcct, tc.demo, 405},
		{"account DELETE not allowed", "DELETE", demoAcct, tc.demo, 405},
		{"no reseller prefix", "HEAD", Prefix + "/v1/" + tc.demoProject, tc.demo, 404},
		{"unknown method", "PATCH", demoAcct, tc.demo, 405},
	}
	for _, c := range cases {
		res := tc.do(c.method, c.path, c.token, nil)
		if res.StatusCode != c.status {
			t.Errorf("%s: %s %s: %d, want %d: %s", c.name, c.method, c.path, res.StatusCode, c.status, res.Body)
		}
		if c.status == 401 && c.method != "HEAD" && !strings.Contains(res.Header.Get("WWW-Authenticate"), "Keystone uri=") {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
		if c.status >= 400 && res.StatusCode >= 400 && c.method != "HEAD" && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: fault is %q, not plain text", c.name, res.Header.Get("Content-Type"))
		}
	}
	// A reader does not see the TempURL keys of its account.
	tc.must(204, tc.do("POST", acct(readerProject), tc.admin, nil, "X-Account-Meta-Temp-URL-Key", "k", "X-Account-Meta-Color", "red"))
	res := tc.must(204, tc.do("HEAD", acct(readerProject), reader, nil))
	if res.Header.Get("X-Account-Meta-Temp-Url-Key") != "" || res.Header.Get("X-Account-Meta-Color") != "red" {
		t.Errorf("reader sees %v", res.Header)
	}
}

func TestInfo(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(200, tc.do("GET", Prefix+"/info", "", nil))
	var info map[string]map[string]any
	if err := json.Unmarshal(res.Body, &info); err != nil {
		t.Fatal(err)
	}
	sw := info["swift"]
	for k, want := range map[string]float64{
		"max_file_size": 5368709122, "max_meta_name_length": 128, "max_meta_value_length": 256, "max_meta_count": 90,
		"max_meta_overall_size": 4096, "max_object_name_length": 1024, "container_listing_limit": 10000,
		"max_header_size": 8192, "account_listing_limit": 10000, "max_container_name_length": 256,
	} {
		if sw[k] != want {
			t.Errorf("swift.%s = %v, want %v", k, sw[k], want)
		}
	}
	for _, k := range []string{"slo", "bulk_delete", "tempurl"} {
		if info[k] == nil {
			t.Errorf("no %s in /info", k)
		}
	}
	if d := info["tempurl"]["allowed_digests"].([]any); len(d) != 3 {
		t.Errorf("tempurl digests %v", d)
	}
	if res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", res.Header.Get("Content-Type"))
	}
	tc.must(200, tc.do("HEAD", Prefix+"/info", "", nil))
	if res := tc.do("POST", Prefix+"/info", "", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /info: %d", res.StatusCode)
	}
}

func TestInfoHandler(t *testing.T) {
	tc := newTestCloud(t)
	for method, want := range map[string]int{"GET": 200, "HEAD": 200, "POST": 405} {
		rec := httptest.NewRecorder()
		tc.svc.InfoHandler().ServeHTTP(rec, httptest.NewRequest(method, "/info", nil))
		if rec.Code != want {
			t.Errorf("%s /info: %d, want %d", method, rec.Code, want)
		}
	}
}
