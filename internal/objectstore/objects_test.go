package objectstore

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// raw sends a hand-written HTTP request and returns the response. With
// halfClose the client then closes its side, as one that gives up.
func (tc *testCloud) raw(request string, halfClose ...bool) *http.Response {
	tc.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(tc.srv.URL, "http://"))
	if err != nil {
		tc.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		tc.t.Fatal(err)
	}
	if len(halfClose) > 0 && halfClose[0] {
		conn.(*net.TCPConn).CloseWrite()
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tc.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body = io.NopCloser(strings.NewReader(string(b)))
	return res
}

func TestObjectPutGetHeadDelete(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	body := "hello, object storage"
	res := tc.put("c", "greeting.txt", body, "X-Object-Meta-Mood", "happy", "Content-Disposition", "attachment; filename=g.txt",
		"Content-Encoding", "identity", "X-Object-Meta-Empty", "")
	if res.Header.Get("Etag") != md5hex(body) || res.Header.Get("Last-Modified") == "" {
		t.Errorf("PUT headers %v", res.Header)
	}
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "greeting.txt"), tc.demo, nil))
	if string(res.Body) != body {
		t.Fatalf("GET body %q", res.Body)
	}
	for h, want := range map[string]string{
		"Etag": md5hex(body), "Content-Length": strconv.Itoa(len(body)), "Content-Type": "text/plain",
		"X-Object-Meta-Mood": "happy", "Content-Disposition": "attachment; filename=g.txt", "Content-Encoding": "identity",
		"Accept-Ranges": "bytes",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("GET %s = %q, want %q", h, got, want)
		}
	}
	if _, ok := res.Header["X-Object-Meta-Empty"]; ok {
		t.Errorf("empty metadata kept")
	}
	if res.Header.Get("X-Timestamp") == "" || res.Header.Get("Last-Modified") == "" || res.Header.Get("X-Trans-Id") == "" {
		t.Errorf("GET headers %v", res.Header)
	}
	head := tc.must(200, tc.do("HEAD", tc.demoPath("c", "greeting.txt"), tc.demo, nil))
	if head.Header.Get("Content-Length") != strconv.Itoa(len(body)) || len(head.Body) != 0 || head.Header.Get("X-Object-Meta-Mood") != "happy" {
		t.Errorf("HEAD %v", head.Header)
	}
	// POST replaces the metadata, keeps the bytes.
	tc.must(202, tc.do("POST", tc.demoPath("c", "greeting.txt"), tc.demo, nil, "X-Object-Meta-Color", "green", "Content-Type", "text/x-greeting"))
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "greeting.txt"), tc.demo, nil))
	if res.Header.Get("X-Object-Meta-Mood") != "" || res.Header.Get("X-Object-Meta-Color") != "green" ||
		res.Header.Get("Content-Type") != "text/x-greeting" || string(res.Body) != body {
		t.Errorf("after POST: %v %q", res.Header, res.Body)
	}
	tc.must(404, tc.do("POST", tc.demoPath("c", "nope"), tc.demo, nil, "X-Object-Meta-A", "b"))
	tc.must(204, tc.do("DELETE", tc.demoPath("c", "greeting.txt"), tc.demo, nil))
	tc.must(404, tc.do("DELETE", tc.demoPath("c", "greeting.txt"), tc.demo, nil))
	tc.must(404, tc.do("GET", tc.demoPath("c", "greeting.txt"), tc.demo, nil))
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "greeting.txt"), tc.demo, nil))
	tc.must(404, tc.do("GET", tc.demoPath("nocontainer", "x"), tc.demo, nil))
	// Its file (or blob) is gone too.
	if n := tc.countStored(); n != 0 {
		t.Errorf("%d files or blobs left", n)
	}
}

// countFiles counts the regular files under dir.
func countFiles(t testing.TB, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func TestObjectPutBodies(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	// Chunked transfer encoding.
	body := strings.Repeat("chunky bacon ", 100000)
	res := tc.must(201, tc.do("PUT", tc.demoPath("c", "chunked"), tc.demo, io.MultiReader(strings.NewReader(body))))
	if res.Header.Get("Etag") != md5hex(body) {
		t.Errorf("chunked etag %q", res.Header.Get("Etag"))
	}
	if got := tc.must(200, tc.do("GET", tc.demoPath("c", "chunked"), tc.demo, nil)); string(got.Body) != body {
		t.Errorf("chunked body differs (%d bytes)", len(got.Body))
	}
	// Large bodies bypass the page cache: aligned and unaligned sizes.
	for _, size := range []int{1 << 20, 1<<20 + 1, 3<<20 - 7, 2<<20 + 4096} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i * 7 / 3)
		}
		name := fmt.Sprintf("large-%d", size)
		res := tc.must(201, tc.do("PUT", tc.demoPath("c", name), tc.demo, b))
		if res.Header.Get("Etag") != md5hex(string(b)) {
			t.Errorf("%d bytes: etag %q", size, res.Header.Get("Etag"))
		}
		if got := tc.must(200, tc.do("GET", tc.demoPath("c", name), tc.demo, nil)); string(got.Body) != string(b) {
			t.Errorf("%d bytes: body differs", size)
		}
	}
	// ETag checked: a mismatch is a 422 and stores nothing; quotes and case are fine.
	tc.must(422, tc.do("PUT", tc.demoPath("c", "e"), tc.demo, "data", "Etag", md5hex("other")))
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "e"), tc.demo, nil))
	tc.must(201, tc.do("PUT", tc.demoPath("c", "e"), tc.demo, "data", "Etag", `"`+strings.ToUpper(md5hex("data"))+`"`))
	// Zero bytes.
	res = tc.must(201, tc.do("PUT", tc.demoPath("c", "empty"), tc.demo, ""))
	if res.Header.Get("Etag") != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Errorf("empty etag %q", res.Header.Get("Etag"))
	}
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "empty"), tc.demo, nil)); len(res.Body) != 0 || res.Header.Get("Content-Length") != "0" {
		t.Errorf("empty GET %v", res.Header)
	}
	// No length at all: 411. Too long: 413.
	host := strings.TrimPrefix(tc.srv.URL, "http://")
	r := tc.raw("PUT " + tc.demoPath("c", "nolength") + " HTTP/1.1\r\nHost: " + host + "\r\nX-Auth-Token: " + tc.demo + "\r\nConnection: close\r\n\r\n")
	if r.StatusCode != 411 {
		b, _ := io.ReadAll(r.Body)
		t.Errorf("no Content-Length: %d %s %v", r.StatusCode, b, r.Header)
	}
	r = tc.raw("PUT " + tc.demoPath("c", "huge") + " HTTP/1.1\r\nHost: " + host + "\r\nX-Auth-Token: " + tc.demo +
		"\r\nContent-Length: 5368709123\r\nConnection: close\r\n\r\n")
	if r.StatusCode != 413 {
		t.Errorf("over max_file_size: %d", r.StatusCode)
	}
	// A body shorter than its Content-Length: the client went away; nothing stored.
	r = tc.raw("PUT "+tc.demoPath("c", "short")+" HTTP/1.1\r\nHost: "+host+"\r\nX-Auth-Token: "+tc.demo+
		"\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this", true)
	_ = r
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "short"), tc.demo, nil))
	// If-None-Match: * refuses to overwrite.
	tc.must(201, tc.do("PUT", tc.demoPath("c", "once"), tc.demo, "1", "If-None-Match", "*"))
	tc.must(412, tc.do("PUT", tc.demoPath("c", "once"), tc.demo, "2", "If-None-Match", "*"))
	tc.must(400, tc.do("PUT", tc.demoPath("c", "once"), tc.demo, "2", "If-None-Match", "abc"))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "once"), tc.demo, nil)); string(res.Body) != "1" {
		t.Errorf("overwritten despite If-None-Match")
	}
	// Temporary files do not pile up.
	if n := countFiles(t, filepath.Join(tc.cfg.DataDir, "tmp")); n != 0 {
		t.Errorf("%d temporary files left", n)
	}
}

func TestObjectContentType(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"page.html", nil, "text/html"},
		{"pic.png", nil, "image/png"},
		{"data.json", nil, "application/json"},
		{"noext", nil, "application/octet-stream"},
		{"given.png", []string{"Content-Type", "application/x-mine; charset=x"}, "application/x-mine; charset=x"},
		{"detect.png", []string{"Content-Type", "text/plain", "X-Detect-Content-Type", "true"}, "image/png"},
	}
	for _, c := range cases {
		tc.put("c", c.name, "x", c.headers...)
		if got := tc.do("HEAD", tc.demoPath("c", c.name), tc.demo, nil).Header.Get("Content-Type"); got != c.want {
			t.Errorf("%s: content type %q, want %q", c.name, got, c.want)
		}
	}
}

func TestObjectExpiry(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	now := time.Now().Unix()
	tc.put("c", "later", "x", "X-Delete-After", "3600")
	res := tc.must(200, tc.do("HEAD", tc.demoPath("c", "later"), tc.demo, nil))
	if at, _ := strconv.ParseInt(res.Header.Get("X-Delete-At"), 10, 64); at < now+3599 || at > now+3601+5 {
		t.Errorf("X-Delete-At %q", res.Header.Get("X-Delete-At"))
	}
	for _, c := range []struct {
		h, v string
		msg  string
	}{
		{"X-Delete-At", strconv.FormatInt(now-10, 10), "X-Delete-At in past"},
		{"X-Delete-At", "soon", "Non-integer X-Delete-At"},
		{"X-Delete-After", "-5", "X-Delete-After in past"},
		{"X-Delete-After", "1.5", "Non-integer X-Delete-After"},
	} {
		res := tc.do("PUT", tc.demoPath("c", "bad"), tc.demo, "x", c.h, c.v)
		if res.StatusCode != 400 || string(res.Body) != c.msg {
			t.Errorf("%s: %s: %d %q", c.h, c.v, res.StatusCode, res.Body)
		}
	}
	// Expire it for real: it is gone for GET, HEAD and listings at once,
	// then the expirer removes the row and the file.
	tc.put("c", "keep", "kept")
	tc.put("c", "soon", "bye", "X-Delete-At", strconv.FormatInt(now+1, 10))
	tc.must(200, tc.do("GET", tc.demoPath("c", "soon"), tc.demo, nil))
	time.Sleep(time.Until(time.Unix(now+2, 0)))
	tc.must(404, tc.do("GET", tc.demoPath("c", "soon"), tc.demo, nil))
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "soon"), tc.demo, nil))
	if got := names(t, tc.do("GET", tc.demoPath("c")+"?format=json", tc.demo, nil)); strings.Join(got, ",") != "keep,later" {
		t.Errorf("listing with an expired object: %v", got)
	}
	files := tc.countStored()
	n, err := tc.svc.reapExpired(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("reaped %d, %v", n, err)
	}
	if got := tc.countStored(); got != files-1 {
		t.Errorf("files and blobs %d -> %d", files, got)
	}
	res = tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
	if res.Header.Get("X-Container-Object-Count") != "2" || res.Header.Get("X-Container-Bytes-Used") != "5" {
		t.Errorf("counters after expiry: %v", res.Header)
	}
	// POST can set and remove the expiry.
	tc.must(202, tc.do("POST", tc.demoPath("c", "keep"), tc.demo, nil, "X-Delete-After", "100"))
	if tc.do("HEAD", tc.demoPath("c", "keep"), tc.demo, nil).Header.Get("X-Delete-At") == "" {
		t.Error("POST X-Delete-After not kept")
	}
	tc.must(202, tc.do("POST", tc.demoPath("c", "keep"), tc.demo, nil, "X-Remove-Delete-At", "1"))
	if tc.do("HEAD", tc.demoPath("c", "keep"), tc.demo, nil).Header.Get("X-Delete-At") != "" {
		t.Error("X-Remove-Delete-At ignored")
	}
	// A container holding only expired objects can be deleted.
	tc.mkContainer("gone")
	tc.put("gone", "x", "x", "X-Delete-At", strconv.FormatInt(time.Now().Unix()+1, 10))
	tc.must(409, tc.do("DELETE", tc.demoPath("gone"), tc.demo, nil))
	time.Sleep(time.Until(time.Unix(time.Now().Unix()+1, 0)) + 100*time.Millisecond)
	tc.must(204, tc.do("DELETE", tc.demoPath("gone"), tc.demo, nil))
}

func TestObjectNames(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	a := acct(tc.demoProject)
	long := strings.Repeat("n", 1024)
	cases := []struct {
		path, body string
		status     int
	}{
		{a + "/c/" + long, "1024 bytes", 201},
		{a + "/c/" + long + "x", "1025 bytes", 400},
		{a + "/c/" + strings.Repeat("é", 512), "1024 bytes of UTF-8", 201},
		{a + "/c/a/b", "slash", 201},
		{a + "/c/a%252Fb", "literal percent", 201},
		{a + "/c/../../../../etc/passwd", "traversal", 201},
		{a + "/c/a/../b", "dots", 201},
		{a + "/c/a//b", "double slash", 201},
		{a + "/c/./x", "dot", 201},
		{a + "/c/dir/", "pseudo dir", 201},
		{a + "/c/sp%20ace%3F%23", "escapes", 201},
		{a + "/c/nul%00byte", "nul", 412},
		{a + "/c/bad%FFutf8", "invalid UTF-8", 412},
	}
	for _, c := range cases {
		res := tc.do("PUT", c.path, tc.demo, c.body)
		if res.StatusCode != c.status {
			t.Errorf("PUT %.80s: %d, want %d: %s", c.path, res.StatusCode, c.status, res.Body)
			continue
		}
		if c.status == 201 {
			if got := tc.do("GET", c.path, tc.demo, nil); got.StatusCode != 200 || string(got.Body) != c.body {
				t.Errorf("GET %.80s: %d %q", c.path, got.StatusCode, got.Body)
			}
		}
	}
	// An encoded slash is a slash (as in Swift, and gophercloud relies on it);
	// a literal "%2F" in a name is another object.
	if got := tc.do("GET", a+"/c/a%2Fb", tc.demo, nil); string(got.Body) != "slash" {
		t.Errorf("a%%2Fb: %q", got.Body)
	}
	listing := names(t, tc.do("GET", tc.demoPath("c")+"?format=json&prefix=a", tc.demo, nil))
	if strings.Join(listing, "|") != "a%2Fb|a/../b|a//b|a/b" {
		t.Errorf("listing %v", listing)
	}
	// Names never reach the file system: every file is a hash under objects/.
	objects := filepath.Join(tc.cfg.DataDir, "objects")
	filepath.WalkDir(tc.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasPrefix(p, objects) {
			rel, _ := filepath.Rel(objects, p)
			if !validFileName(filepath.ToSlash(rel)) {
				t.Errorf("unexpected file %s", rel)
			}
		}
		if err == nil && (d.Name() == "passwd" || d.Name() == "etc") {
			t.Errorf("traversal reached %s", p)
		}
		return nil
	})
	// Containers: an encoded slash splits the path as in Swift.
	tc.mkContainer("x")
	tc.must(201, tc.do("PUT", a+"/x%2Fy", tc.demo, "in x"))
	if got := tc.do("GET", tc.demoPath("x", "y"), tc.demo, nil); string(got.Body) != "in x" {
		t.Errorf("x%%2Fy: %q", got.Body)
	}
	tc.must(400, tc.do("PUT", a+"//obj", tc.demo, "no container"))
}

func TestObjectMetadataLimits(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	many := func(prefix string, n, size int) []string {
		var h []string
		for i := range n {
			h = append(h, fmt.Sprintf("%s%03d", prefix, i), strings.Repeat("v", size))
		}
		return h
	}
	cases := []struct {
		name    string
		method  string
		path    string
		headers []string
		status  int
		msg     string
	}{
		{"object name ok", "PUT", tc.demoPath("c", "o"), []string{"X-Object-Meta-" + strings.Repeat("n", 128), "v"}, 201, ""},
		{"object name long", "PUT", tc.demoPath("c", "o"), []string{"X-Object-Meta-" + strings.Repeat("n", 129), "v"}, 400, "Metadata name too long: x-object-meta-N" + strings.Repeat("n", 128)},
		{"object value ok", "PUT", tc.demoPath("c", "o"), []string{"X-Object-Meta-A", strings.Repeat("v", 256)}, 201, ""},
		{"object value long", "PUT", tc.demoPath("c", "o"), []string{"X-Object-Meta-A", strings.Repeat("v", 257)}, 400, "Metadata value longer than 256: x-object-meta-A"},
		{"object count ok", "PUT", tc.demoPath("c", "o"), many("X-Object-Meta-K", 90, 1), 201, ""},
		{"object count high", "PUT", tc.demoPath("c", "o"), many("X-Object-Meta-K", 91, 1), 400, "Too many metadata items; max 90"},
		{"object total high", "PUT", tc.demoPath("c", "o"), many("X-Object-Meta-K", 20, 250), 400, "Total metadata too large; max 4096"},
		{"object POST", "POST", tc.demoPath("c", "o"), []string{"X-Object-Meta-A", strings.Repeat("v", 257)}, 400, ""},
		{"container value long", "POST", tc.demoPath("c"), []string{"X-Container-Meta-A", strings.Repeat("v", 257)}, 400, ""},
		{"container count high", "PUT", tc.demoPath("c2"), many("X-Container-Meta-K", 91, 1), 400, "Too many metadata items; max 90"},
		{"account name long", "POST", acct(tc.demoProject), []string{"X-Account-Meta-" + strings.Repeat("n", 129), "v"}, 400, ""},
		{"account total high", "POST", acct(tc.demoProject), many("X-Account-Meta-K", 20, 250), 400, ""},
		{"header too long", "PUT", tc.demoPath("c", "o"), []string{"X-Something", strings.Repeat("h", 8193)}, 400, "Header value too long: X-Something"},
		{"empty name", "PUT", tc.demoPath("c", "o"), []string{"X-Object-Meta-", "v"}, 400, "Metadata name cannot be empty"},
	}
	for _, c := range cases {
		var body any
		if c.method == "PUT" {
			body = "x"
		}
		res := tc.do(c.method, c.path, tc.demo, body, c.headers...)
		if res.StatusCode != c.status || c.msg != "" && string(res.Body) != c.msg {
			t.Errorf("%s: %d %q, want %d %q", c.name, res.StatusCode, res.Body, c.status, c.msg)
		}
	}
	// The totals hold across several POSTs to a container or an account.
	for i := range 9 {
		tc.must(204, tc.do("POST", tc.demoPath("c"), tc.demo, nil, many(fmt.Sprintf("X-Container-Meta-P%d-", i), 10, 1)...))
	}
	tc.must(400, tc.do("POST", tc.demoPath("c"), tc.demo, nil, "X-Container-Meta-One-More", "x"))
}

// TestObjectSwiftBytesHidden: swift_bytes is Swift's internal content-type
// parameter (slo's total size); a client's is dropped, never shown by
// HEAD, GET or listings, nor taken as the listed size.
func TestObjectSwiftBytesHidden(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.put("c", "a", "hello", "Content-Type", "text/plain;swift_bytes=5000")
	tc.put("c", "b", "hello", "Content-Type", "text/plain; charset=utf-8; swift_bytes=7")
	tc.put("c", "only", "hello", "Content-Type", ";swift_bytes=7")
	tc.put("c", "post", "hello", "Content-Type", "text/plain")
	tc.must(202, tc.do("POST", tc.demoPath("c", "post"), tc.demo, nil, "Content-Type", "text/csv;swift_bytes=9"))
	want := map[string]string{"a": "text/plain", "b": "text/plain; charset=utf-8", "only": "application/octet-stream", "post": "text/csv"}
	for name, ct := range want {
		for _, m := range []string{"HEAD", "GET"} {
			res := tc.must(200, tc.do(m, tc.demoPath("c", name), tc.demo, nil))
			if res.Header.Get("Content-Type") != ct {
				t.Errorf("%s %s: Content-Type %q, want %q", m, name, res.Header.Get("Content-Type"), ct)
			}
		}
	}
	// A range request's parts too.
	res := tc.must(206, tc.do("GET", tc.demoPath("c", "a"), tc.demo, nil, "Range", "bytes=0-0,2-3"))
	if strings.Contains(string(res.Body), "swift_bytes") {
		t.Errorf("multipart parts show swift_bytes: %q", res.Body)
	}
	for _, e := range tc.must(200, tc.do("GET", tc.demoPath("c")+"?format=json", tc.demo, nil)).List(t) {
		if e["content_type"] != want[e["name"].(string)] || e["bytes"] != 5.0 {
			t.Errorf("listed as %v", e)
		}
	}
	res = tc.must(200, tc.do("GET", tc.demoPath("c")+"?format=xml", tc.demo, nil))
	if strings.Contains(string(res.Body), "swift_bytes") {
		t.Errorf("XML listing shows swift_bytes: %s", res.Body)
	}
	// Rows stored before the parameter was dropped are shown without it.
	if _, err := tc.db.Exec(`UPDATE swift_objects SET content_type = 'image/png;swift_bytes=3' WHERE name = 'a'`); err != nil {
		t.Fatal(err)
	}
	if got := tc.must(200, tc.do("GET", tc.demoPath("c", "a"), tc.demo, nil)).Header.Get("Content-Type"); got != "image/png" {
		t.Errorf("legacy row served as %q", got)
	}
	if l := tc.must(200, tc.do("GET", tc.demoPath("c")+"?format=json&limit=1", tc.demo, nil)).List(t); l[0]["content_type"] != "image/png" {
		t.Errorf("legacy row listed as %v", l[0])
	}
}
