package objectstore

import (
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
)

func TestContainerLifecycle(t *testing.T) {
	tc := newTestCloud(t)
	c := tc.demoPath("photos")
	tc.must(201, tc.do("PUT", c, tc.demo, nil, "X-Container-Meta-Owner", "me"))
	tc.must(202, tc.do("PUT", c, tc.demo, nil, "X-Container-Meta-Color", "red"))
	res := tc.must(204, tc.do("HEAD", c, tc.demo, nil))
	for h, want := range map[string]string{
		"X-Container-Object-Count": "0", "X-Container-Bytes-Used": "0", "X-Container-Meta-Owner": "me",
		"X-Container-Meta-Color": "red", "X-Storage-Policy": "Policy-0",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if res.Header.Get("X-Timestamp") == "" || res.Header.Get("Last-Modified") == "" {
		t.Errorf("no timestamps: %v", res.Header)
	}
	tc.must(204, tc.do("POST", c, tc.demo, nil, "X-Container-Meta-Color", "", "X-Remove-Container-Meta-Owner", "1", "X-Container-Meta-Size", "L"))
	res = tc.must(204, tc.do("HEAD", c, tc.demo, nil))
	if res.Header.Get("X-Container-Meta-Color") != "" || res.Header.Get("X-Container-Meta-Owner") != "" || res.Header.Get("X-Container-Meta-Size") != "L" {
		t.Errorf("after POST: %v", res.Header)
	}
	tc.put("photos", "a.jpg", "abc")
	tc.put("photos", "b.jpg", "defg")
	res = tc.must(204, tc.do("HEAD", c, tc.demo, nil))
	if res.Header.Get("X-Container-Object-Count") != "2" || res.Header.Get("X-Container-Bytes-Used") != "7" {
		t.Errorf("counters: %v", res.Header)
	}
	// Overwriting changes bytes, not count.
	tc.put("photos", "a.jpg", "abcdefghij")
	res = tc.must(204, tc.do("HEAD", c, tc.demo, nil))
	if res.Header.Get("X-Container-Object-Count") != "2" || res.Header.Get("X-Container-Bytes-Used") != "14" {
		t.Errorf("counters after overwrite: %v", res.Header)
	}
	tc.must(409, tc.do("DELETE", c, tc.demo, nil))
	tc.must(204, tc.do("DELETE", tc.demoPath("photos", "a.jpg"), tc.demo, nil))
	tc.must(204, tc.do("DELETE", tc.demoPath("photos", "b.jpg"), tc.demo, nil))
	tc.must(204, tc.do("DELETE", c, tc.demo, nil))
	tc.must(404, tc.do("DELETE", c, tc.demo, nil))
	tc.must(404, tc.do("HEAD", c, tc.demo, nil))
	tc.must(404, tc.do("GET", c, tc.demo, nil))
	tc.must(404, tc.do("POST", c, tc.demo, nil, "X-Container-Meta-A", "b"))
	tc.must(404, tc.do("PUT", tc.demoPath("photos", "x"), tc.demo, "x"))
}

func TestContainerNamesAndPolicy(t *testing.T) {
	tc := newTestCloud(t)
	cases := []struct {
		path    string
		headers []string
		status  int
	}{
		{tc.demoPath(strings.Repeat("c", 256)), nil, 201},
		{tc.demoPath(strings.Repeat("c", 257)), nil, 400},
		{acct(tc.demoProject) + "/..", nil, 400},
		{acct(tc.demoProject) + "/%2E", nil, 400},
		{acct(tc.demoProject) + "/a%00b", nil, 412},
		{acct(tc.demoProject) + "/a%FFb", nil, 412},
		{tc.demoPath("ünïcødé ☃"), nil, 201},
		{tc.demoPath("pol"), []string{"X-Storage-Policy", "Policy-0"}, 201},
		{tc.demoPath("pol2"), []string{"X-Storage-Policy", "gold"}, 400},
		{tc.demoPath("acl"), []string{"X-Container-Write", ".r:*"}, 400},
		{tc.demoPath("acl2"), []string{"X-Container-Read", ".bogus:x"}, 400},
		{tc.demoPath("acl3"), []string{"X-Container-Read", ".r:"}, 400},
	}
	for _, c := range cases {
		res := tc.do("PUT", c.path, tc.demo, nil, c.headers...)
		if res.StatusCode != c.status {
			t.Errorf("PUT %s %v: %d, want %d: %s", c.path, c.headers, res.StatusCode, c.status, res.Body)
		}
	}
	// ACLs are cleaned as Swift does.
	tc.mkContainer("clean", "X-Container-Read", " .ref:*.example.com , proj:user,,.rlistings ")
	if got := tc.do("HEAD", tc.demoPath("clean"), tc.demo, nil).Header.Get("X-Container-Read"); got != ".r:.example.com,proj:user,.rlistings" {
		t.Errorf("cleaned ACL %q", got)
	}
}

// listingFixture fills container "l" with objects named to exercise
// prefixes, delimiters and markers.
var listingNames = []string{"a", "b/1", "b/2", "b/3/x", "c", "c/", "d.txt", "e/f/g", "zz", "é"}

func listingFixture(tc *testCloud) {
	tc.mkContainer("l")
	for _, n := range listingNames {
		tc.put("l", n, n)
	}
}

func TestContainerListing(t *testing.T) {
	tc := newTestCloud(t)
	listingFixture(tc)
	cases := []struct {
		query string
		want  []string
	}{
		{"", listingNames},
		{q("limit", "3"), []string{"a", "b/1", "b/2"}},
		{q("limit", "0"), []string{}},
		{q("limit", "x"), listingNames}, // not digits: ignored
		{q("marker", "b/2"), []string{"b/3/x", "c", "c/", "d.txt", "e/f/g", "zz", "é"}},
		{q("marker", "b/2", "limit", "2"), []string{"b/3/x", "c"}},
		{q("end_marker", "c"), []string{"a", "b/1", "b/2", "b/3/x"}},
		{q("marker", "a", "end_marker", "c/"), []string{"b/1", "b/2", "b/3/x", "c"}},
		{q("prefix", "b/"), []string{"b/1", "b/2", "b/3/x"}},
		{q("prefix", "b/", "marker", "b/1"), []string{"b/2", "b/3/x"}},
		{q("prefix", "nothing"), []string{}},
		{q("delimiter", "/"), []string{"a", "sub:b/", "c", "sub:c/", "d.txt", "sub:e/", "zz", "é"}},
		{q("delimiter", "/", "prefix", "b/"), []string{"b/1", "b/2", "sub:b/3/"}},
		{q("delimiter", "/", "prefix", "e/"), []string{"sub:e/f/"}},
		{q("delimiter", "/", "marker", "b/"), []string{"c", "sub:c/", "d.txt", "sub:e/", "zz", "é"}},
		{q("delimiter", "/", "limit", "3"), []string{"a", "sub:b/", "c"}},
		{q("delimiter", "."), []string{"a", "b/1", "b/2", "b/3/x", "c", "c/", "sub:d.", "e/f/g", "zz", "é"}},
		{q("reverse", "true"), []string{"é", "zz", "e/f/g", "d.txt", "c/", "c", "b/3/x", "b/2", "b/1", "a"}},
		{q("reverse", "on", "limit", "2"), []string{"é", "zz"}},
		{q("reverse", "1", "marker", "c"), []string{"b/3/x", "b/2", "b/1", "a"}},
		{q("reverse", "1", "marker", "d", "end_marker", "b/2"), []string{"c/", "c", "b/3/x"}},
		{q("reverse", "1", "prefix", "b/"), []string{"b/3/x", "b/2", "b/1"}},
		{q("reverse", "1", "delimiter", "/"), []string{"é", "zz", "sub:e/", "d.txt", "sub:c/", "c", "sub:b/", "a"}},
	}
	for _, c := range cases {
		sep := "?"
		if c.query != "" {
			sep = "&"
		}
		res := tc.must(200, tc.do("GET", tc.demoPath("l")+strings.ReplaceAll(c.query+sep+"format=json", "?&", "?"), tc.demo, nil))
		if len(c.want) == 0 && string(res.Body) != "[]" {
			t.Errorf("%s: body %q", c.query, res.Body)
		}
		if got := names(t, res); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.query, got, c.want)
		}
	}
	// Entries carry Swift's fields.
	l := tc.must(200, tc.do("GET", tc.demoPath("l")+"?format=json&prefix=d", tc.demo, nil)).List(t)
	if len(l) != 1 || l[0]["hash"] != "1d9f6d8dd5cb4d5b46a2a1d6ab2d6a0d" && l[0]["hash"] == nil ||
		l[0]["bytes"] != 5.0 || l[0]["content_type"] != "text/plain" || !strings.HasPrefix(l[0]["last_modified"].(string), "20") {
		t.Errorf("entry %v", l)
	}
	// Bad parameters.
	for query, status := range map[string]int{
		q("limit", "10001"): 412, q("delimiter", "ab"): 412, q("prefix", "\x00"): 412,
	} {
		if res := tc.do("GET", tc.demoPath("l")+query, tc.demo, nil); res.StatusCode != status {
			t.Errorf("%s: %d, want %d", query, res.StatusCode, status)
		}
	}
	tc.must(200, tc.do("GET", tc.demoPath("l")+q("limit", "10000"), tc.demo, nil))
}

func TestListingFormats(t *testing.T) {
	tc := newTestCloud(t)
	listingFixture(tc)
	// Plain text: one name a line; subdirs too.
	res := tc.must(200, tc.do("GET", tc.demoPath("l")+"?delimiter=/&prefix=b/", tc.demo, nil))
	if string(res.Body) != "b/1\nb/2\nb/3/\n" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("plain: %q %q", res.Body, res.Header.Get("Content-Type"))
	}
	// Accept chooses when format= is absent; format= wins over Accept.
	for _, c := range []struct{ accept, query, ct string }{
		{"application/json", "", "application/json; charset=utf-8"},
		{"application/xml", "", "application/xml; charset=utf-8"},
		{"text/xml", "", "text/xml; charset=utf-8"},
		{"*/*", "", "text/plain; charset=utf-8"},
		{"text/html;q=0.9, application/json;q=0.8", "", "application/json; charset=utf-8"},
		{"application/json", "?format=xml", "application/xml; charset=utf-8"},
		{"", "?format=JSON", "application/json; charset=utf-8"},
		{"", "?format=bogus", "text/plain; charset=utf-8"},
	} {
		res := tc.must(200, tc.do("GET", tc.demoPath("l")+c.query, tc.demo, nil, "Accept", c.accept))
		if res.Header.Get("Content-Type") != c.ct {
			t.Errorf("Accept %q %s: %q, want %q", c.accept, c.query, res.Header.Get("Content-Type"), c.ct)
		}
	}
	tc.must(406, tc.do("GET", tc.demoPath("l"), tc.demo, nil, "Accept", "image/png"))
	// XML: Swift's document shape.
	res = tc.must(200, tc.do("GET", tc.demoPath("l")+"?format=xml&delimiter=/&prefix=b/", tc.demo, nil))
	var doc struct {
		XMLName xml.Name `xml:"container"`
		Name    string   `xml:"name,attr"`
		Objects []struct {
			Name         string `xml:"name"`
			Hash         string `xml:"hash"`
			Bytes        int    `xml:"bytes"`
			ContentType  string `xml:"content_type"`
			LastModified string `xml:"last_modified"`
		} `xml:"object"`
		Subdirs []struct {
			Name string `xml:"name,attr"`
		} `xml:"subdir"`
	}
	if err := xml.Unmarshal(res.Body, &doc); err != nil {
		t.Fatalf("xml: %v: %s", err, res.Body)
	}
	if doc.Name != "l" || len(doc.Objects) != 2 || doc.Objects[0].Name != "b/1" || doc.Objects[0].Bytes != 3 || doc.Objects[0].Hash == "" || len(doc.Subdirs) != 1 || doc.Subdirs[0].Name != "b/3/" {
		t.Errorf("xml %+v: %s", doc, res.Body)
	}
	if !strings.HasPrefix(string(res.Body), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("xml declaration: %s", res.Body)
	}
	res = tc.must(200, tc.do("GET", acct(tc.demoProject)+"?format=xml", tc.demo, nil))
	var adoc struct {
		XMLName    xml.Name `xml:"account"`
		Containers []struct {
			Name  string `xml:"name"`
			Count int    `xml:"count"`
			Bytes int    `xml:"bytes"`
		} `xml:"container"`
	}
	if err := xml.Unmarshal(res.Body, &adoc); err != nil || len(adoc.Containers) != 1 || adoc.Containers[0].Count != len(listingNames) {
		t.Errorf("account xml %+v %v: %s", adoc, err, res.Body)
	}
	// HEAD of a container: headers only, the listing's content type.
	res = tc.must(204, tc.do("HEAD", tc.demoPath("l")+"?format=json", tc.demo, nil))
	if res.Header.Get("Content-Type") != "application/json; charset=utf-8" || len(res.Body) != 0 {
		t.Errorf("HEAD: %v %q", res.Header, res.Body)
	}
	// An empty container lists as 204 in plain text and [] in JSON.
	tc.mkContainer("empty")
	tc.must(204, tc.do("GET", tc.demoPath("empty"), tc.demo, nil))
	if res := tc.must(200, tc.do("GET", tc.demoPath("empty")+"?format=json", tc.demo, nil)); string(res.Body) != "[]" {
		t.Errorf("empty json %q", res.Body)
	}
}

func TestAccountListingParams(t *testing.T) {
	tc := newTestCloud(t)
	for _, n := range []string{"alpha", "beta", "beta-2", "gamma", "logs-2024", "logs-2025"} {
		tc.mkContainer(n)
	}
	a := acct(tc.demoProject)
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{"alpha", "beta", "beta-2", "gamma", "logs-2024", "logs-2025"}},
		{q("prefix", "beta"), []string{"beta", "beta-2"}},
		{q("marker", "beta", "limit", "2"), []string{"beta-2", "gamma"}},
		{q("end_marker", "beta-2"), []string{"alpha", "beta"}},
		{q("delimiter", "-"), []string{"alpha", "beta", "sub:beta-", "gamma", "sub:logs-"}},
		{q("reverse", "true", "limit", "2"), []string{"logs-2025", "logs-2024"}},
	}
	for _, c := range cases {
		res := tc.must(200, tc.do("GET", a+c.query+map[bool]string{true: "?", false: "&"}[c.query == ""]+"format=json", tc.demo, nil))
		if got := names(t, res); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.query, got, c.want)
		}
	}
	tc.must(412, tc.do("GET", a+q("limit", "10001"), tc.demo, nil))
}
