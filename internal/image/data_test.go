package image

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	tc := newTestCloud(t, Config{})
	data := randomBytes(3<<20+12345, 1) // several pipeline blocks and a partial one
	id := tc.create(tc.demo, map[string]any{"name": "blob", "disk_format": "raw", "container_format": "bare"})["id"].(string)
	if res := tc.do("GET", "/image/v2/images/"+id+"/file", tc.demo, nil); res.StatusCode != 204 {
		t.Errorf("download of a queued image: %d", res.StatusCode)
	}
	tc.must(204, tc.do("PUT", "/image/v2/images/"+id+"/file", tc.demo, data))
	im := tc.show(tc.demo, id)
	md := md5.Sum(data)
	sh := sha512.Sum512(data)
	if im["status"] != "active" || im["size"] != float64(len(data)) || im["checksum"] != hex.EncodeToString(md[:]) ||
		im["os_hash_algo"] != "sha512" || im["os_hash_value"] != hex.EncodeToString(sh[:]) || im["stores"] != "file" ||
		im["virtual_size"] != float64(len(data)) {
		t.Fatalf("after upload: %v", im)
	}
	res := tc.must(200, tc.do("GET", "/image/v2/images/"+id+"/file", tc.demo, nil))
	if string(res.Body) != string(data) {
		t.Fatal("downloaded bytes differ")
	}
	if res.Header.Get("Content-MD5") != im["checksum"] || res.Header.Get("Content-Length") != fmt.Sprint(len(data)) ||
		res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("download headers %v", res.Header)
	}
	// Data is write-once.
	res = tc.do("PUT", "/image/v2/images/"+id+"/file", tc.demo, []byte("again"))
	if res.StatusCode != 409 {
		t.Errorf("second upload: %d %s", res.StatusCode, res.Body)
	}
	// Format info recorded: raw bytes under bare/raw are fine, just not a rootfs.
	rc, img, err := tc.img.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if img.Format.Kind != KindRaw || img.Format.IsRootfs() {
		t.Errorf("format %+v", img.Format)
	}
	if files := tc.dataFiles(); len(files) != 1 || files[0] != filepath.Join("images", id) {
		t.Errorf("data files %v", files)
	}

	ranges := []struct {
		header string
		status int
		body   string
		cr     string
	}{
		{"bytes=0-9", 206, string(data[:10]), fmt.Sprintf("bytes 0-9/%d", len(data))},
		{"bytes=100-", 206, string(data[100:]), fmt.Sprintf("bytes 100-%d/%d", len(data)-1, len(data))},
		{"bytes=-5", 206, string(data[len(data)-5:]), fmt.Sprintf("bytes %d-%d/%d", len(data)-5, len(data)-1, len(data))},
		{"bytes=5-99999999", 206, string(data[5:]), fmt.Sprintf("bytes 5-%d/%d", len(data)-1, len(data))},
		{"bytes=99999999-", 416, "", ""},
		{"bytes=9-5", 416, "", ""},
		{"bytes=a-b", 416, "", ""},
		{"lines=1-2", 416, "", ""},
		{"bytes=0-1,5-6", 400, "", ""},
		// The Content-Range request header old clients send, honoured
		// when there is no Range, as Glance does.
		{"Content-Range: bytes 0-9/*", 206, string(data[:10]), fmt.Sprintf("bytes 0-9/%d", len(data))},
		{fmt.Sprintf("Content-Range: bytes 3-4/%d", len(data)), 206, string(data[3:5]), fmt.Sprintf("bytes 3-4/%d", len(data))},
		{fmt.Sprintf("Content-Range: bytes 5-%d/%d", len(data)+100, len(data)+200), 206, string(data[5:]), fmt.Sprintf("bytes 5-%d/%d", len(data)-1, len(data))},
		{"Content-Range: bytes 5-2/*", 416, "", ""},
		{"Content-Range: bytes 0-9/5", 416, "", ""},
		{"Content-Range: bytes=0-9", 416, "", ""},
		{fmt.Sprintf("Content-Range: bytes 0-%d/*", len(data)), 416, "", ""},
		{"Content-Range: bytes 99999999-99999999/100000000", 416, "", ""},
	}
	for _, c := range ranges {
		name, value := "Range", c.header
		if v, ok := strings.CutPrefix(c.header, "Content-Range: "); ok {
			name, value = "Content-Range", v
		}
		res := tc.do("GET", "/image/v2/images/"+id+"/file", tc.demo, nil, name, value)
		if res.StatusCode != c.status {
			t.Errorf("Range %s: %d, want %d", c.header, res.StatusCode, c.status)
			continue
		}
		if c.status == 206 && (string(res.Body) != c.body || res.Header.Get("Content-Range") != c.cr ||
			res.Header.Get("Content-Length") != fmt.Sprint(len(c.body))) {
			t.Errorf("Range %s: %d bytes, Content-Range %q", c.header, len(res.Body), res.Header.Get("Content-Range"))
		}
		if c.status >= 400 {
			faultMessage(t, res)
		}
	}
}

func TestUploadRefusals(t *testing.T) {
	tc := newTestCloud(t, Config{})
	noFormats := tc.create(tc.demo, nil)["id"].(string)
	res := tc.do("PUT", "/image/v2/images/"+noFormats+"/file", tc.demo, []byte("x"))
	if res.StatusCode != 400 || !strings.Contains(faultMessage(t, res), "disk_format, container_format") {
		t.Errorf("upload without formats: %d %s", res.StatusCode, res.Body)
	}
	id := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	cases := []struct {
		name    string
		token   string
		id      string
		headers []string
		status  int
	}{
		{"json content type", tc.demo, id, []string{"Content-Type", "application/json"}, 415},
		{"no content type", tc.demo, id, []string{"Content-Type", ""}, 415},
		{"unknown store", tc.demo, id, []string{"X-Image-Meta-Store", "ceph"}, 400},
		{"bad size header", tc.demo, id, []string{"X-Openstack-Image-Size", "lots"}, 400},
		{"size header disagrees", tc.demo, id, []string{"X-Openstack-Image-Size", "5"}, 400},
		{"no such image", tc.demo, "0b8e0dfc-04d0-4fcd-8a39-9a1e1a5a7b8e", nil, 404},
		{"another project's image", tc.alt, id, nil, 404},
		{"reader", tc.reader, id, nil, 403},
	}
	for _, c := range cases {
		res := tc.do("PUT", "/image/v2/images/"+c.id+"/file", c.token, []byte("some bytes"), c.headers...)
		if res.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		faultMessage(t, res)
	}
	if im := tc.show(tc.demo, id); im["status"] != "queued" || im["size"] != nil {
		t.Errorf("after refused uploads: %v", im)
	}
	if files := tc.dataFiles(); len(files) != 0 {
		t.Errorf("bytes left: %v", files)
	}
	// Chunked uploads (no Content-Length) work.
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("chunked ")); pw.Write([]byte("data")); pw.Close() }()
	tc.must(204, tc.do("PUT", "/image/v2/images/"+id+"/file", tc.demo, pr))
	if im := tc.show(tc.demo, id); im["size"] != float64(12) {
		t.Errorf("chunked upload size %v", im["size"])
	}
}

// TestCutUpload: a client that goes away mid-body leaves the image queued
// and no bytes on disk, and the image can be uploaded again.
func TestCutUpload(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	for _, chunked := range []bool{false, true} {
		u, _ := url.Parse(tc.srv.URL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		te := "Content-Length: 10485760\r\n"
		if chunked {
			te = "Transfer-Encoding: chunked\r\n"
		}
		fmt.Fprintf(conn, "PUT /image/v2/images/%s/file HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\n"+
			"Content-Type: application/octet-stream\r\n%s\r\n", id, u.Host, tc.demo, te)
		half := randomBytes(3<<20, 2)
		if chunked {
			fmt.Fprintf(conn, "%x\r\n", len(half))
		}
		conn.Write(half)
		// Wait until the server is saving, then hang up.
		waitFor(t, func() bool { return tc.show(tc.demo, id)["status"] == "saving" })
		conn.Close()
		waitFor(t, func() bool { return tc.show(tc.demo, id)["status"] == "queued" })
		if im := tc.show(tc.demo, id); im["size"] != nil || im["checksum"] != nil {
			t.Errorf("cut upload left %v", im)
		}
		if files := tc.dataFiles(); len(files) != 0 {
			t.Errorf("cut upload (chunked=%v) left bytes: %v", chunked, files)
		}
	}
	tc.must(204, tc.do("PUT", "/image/v2/images/"+id+"/file", tc.demo, []byte("complete")))
	if st := tc.show(tc.demo, id)["status"]; st != "active" {
		t.Errorf("status after a good upload: %v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQuotas(t *testing.T) {
	tc := newTestCloud(t, Config{ImageCountQuota: 3, StorageQuota: 1000, MaxImageSize: 600})
	mk := func() string {
		return tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	}
	a, b, c := mk(), mk(), mk()
	res := tc.do("POST", "/image/v2/images", tc.demo, map[string]any{})
	if res.StatusCode != 413 || !strings.Contains(faultMessage(t, res), "quota") {
		t.Errorf("fourth image: %d %s", res.StatusCode, res.Body)
	}
	tc.create(tc.alt, nil) // quotas are per project
	// Over the size cap: refused from Content-Length, and when streamed.
	tc.must(413, tc.do("PUT", "/image/v2/images/"+a+"/file", tc.demo, make([]byte, 601)))
	pr, pw := io.Pipe()
	go func() { pw.Write(make([]byte, 700)); pw.Close() }()
	tc.must(413, tc.do("PUT", "/image/v2/images/"+a+"/file", tc.demo, pr))
	tc.must(204, tc.do("PUT", "/image/v2/images/"+a+"/file", tc.demo, make([]byte, 600)))
	// 400 bytes of storage left.
	tc.must(413, tc.do("PUT", "/image/v2/images/"+b+"/file", tc.demo, make([]byte, 401)))
	tc.must(204, tc.do("PUT", "/image/v2/images/"+b+"/file", tc.demo, make([]byte, 400)))
	tc.must(413, tc.do("PUT", "/image/v2/images/"+c+"/stage", tc.demo, make([]byte, 1)))
	if im := tc.show(tc.demo, c); im["status"] != "queued" {
		t.Errorf("refused upload left %v", im["status"])
	}
	if files := tc.dataFiles(); len(files) != 2 {
		t.Errorf("data files %v", files)
	}
	tc.must(204, tc.do("DELETE", "/image/v2/images/"+a, tc.demo, nil))
	tc.must(204, tc.do("PUT", "/image/v2/images/"+c+"/file", tc.demo, make([]byte, 600)))
}

func TestStageAndImport(t *testing.T) {
	tc := newTestCloud(t, Config{})
	data := []byte("staged image data")
	id := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	imp := func(token string, body any) response {
		return tc.do("POST", "/image/v2/images/"+id+"/import", token, body)
	}
	gd := map[string]any{"method": map[string]any{"name": "glance-direct"}}
	res := imp(tc.demo, gd)
	if res.StatusCode != 409 || !strings.Contains(faultMessage(t, res), "staged") {
		t.Errorf("import before staging: %d %s", res.StatusCode, res.Body)
	}
	tc.must(204, tc.do("PUT", "/image/v2/images/"+id+"/stage", tc.demo, data))
	im := tc.show(tc.demo, id)
	if im["status"] != "uploading" || im["size"] != float64(len(data)) || im["checksum"] != nil {
		t.Fatalf("after staging: %v", im)
	}
	tc.must(409, tc.do("PUT", "/image/v2/images/"+id+"/stage", tc.demo, data))
	tc.must(409, tc.do("PUT", "/image/v2/images/"+id+"/file", tc.demo, data))
	tc.must(204, tc.do("GET", "/image/v2/images/"+id+"/file", tc.demo, nil))
	for _, c := range []struct {
		body   any
		status int
	}{
		{map[string]any{}, 400},
		{map[string]any{"method": map[string]any{}}, 400},
		{map[string]any{"method": map[string]any{"name": "web-download", "uri": "http://example.com/x"}}, 400},
		{map[string]any{"method": map[string]any{"name": "copy-image"}}, 400},
		{map[string]any{"method": map[string]any{"name": "glance-direct"}, "all_stores": "yes"}, 400},
		{map[string]any{"method": map[string]any{"name": "glance-direct"}, "stores": []string{"ceph"}}, 409},
		{"[]", 400},
	} {
		if res := imp(tc.demo, c.body); res.StatusCode != c.status {
			t.Errorf("import %v: %d, want %d: %s", c.body, res.StatusCode, c.status, res.Body)
		}
	}
	tc.must(404, imp(tc.alt, gd))
	tc.must(202, imp(tc.demo, map[string]any{"method": map[string]any{"name": "glance-direct"}, "stores": []string{"file"}}))
	im = tc.show(tc.demo, id)
	md := md5.Sum(data)
	if im["status"] != "active" || im["checksum"] != hex.EncodeToString(md[:]) || im["os_hash_algo"] != "sha512" ||
		im["os_glance_failed_import"] != "" {
		t.Fatalf("after import: %v", im)
	}
	if res := tc.must(200, tc.do("GET", "/image/v2/images/"+id+"/file", tc.demo, nil)); string(res.Body) != string(data) {
		t.Errorf("imported bytes %q", res.Body)
	}
	if res := imp(tc.demo, gd); res.StatusCode != 409 {
		t.Errorf("import of an active image: %d", res.StatusCode)
	}
	if files := tc.dataFiles(); len(files) != 1 || files[0] != filepath.Join("images", id) {
		t.Errorf("data files %v", files)
	}
	// Staged bytes that do not match the container format are refused at
	// import: the image goes back to queued and the bytes are removed.
	bad := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "docker"})["id"].(string)
	tc.must(204, tc.do("PUT", "/image/v2/images/"+bad+"/stage", tc.demo, []byte("not a tarball")))
	tc.must(400, tc.do("POST", "/image/v2/images/"+bad+"/import", tc.demo, gd))
	if im := tc.show(tc.demo, bad); im["status"] != "queued" || im["size"] != nil {
		t.Errorf("after a failed import: %v", im)
	}
	if files := tc.dataFiles(); len(files) != 1 {
		t.Errorf("data files after failed import %v", files)
	}
	// Deleting a staged image removes the staged bytes.
	staged := tc.create(tc.demo, nil)["id"].(string)
	tc.must(204, tc.do("PUT", "/image/v2/images/"+staged+"/stage", tc.demo, data))
	res = tc.do("POST", "/image/v2/images/"+staged+"/import", tc.demo, gd)
	if res.StatusCode != 409 || !strings.Contains(faultMessage(t, res), "container_format") {
		t.Errorf("import without formats: %d %s", res.StatusCode, res.Body)
	}
	tc.must(204, tc.do("DELETE", "/image/v2/images/"+staged, tc.demo, nil))
	if files := tc.dataFiles(); len(files) != 1 {
		t.Errorf("data files after deleting a staged image %v", files)
	}
}

// TestRecovery: what a crash leaves (an upload in flight, a half-done
// import, stray files) is repaired when the service starts again.
func TestRecovery(t *testing.T) {
	tc := newTestCloud(t, Config{})
	ctx := context.Background()
	active := tc.upload(tc.demo, nil, []byte("keep me"))
	saving := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	importing := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	tc.must(204, tc.do("PUT", "/image/v2/images/"+importing+"/stage", tc.demo, []byte("staged")))
	lost := tc.create(tc.demo, nil)["id"].(string)
	tc.must(204, tc.do("PUT", "/image/v2/images/"+lost+"/stage", tc.demo, []byte("staged")))

	// The crash: saving with bytes already renamed into place, importing,
	// staged bytes lost, and leftovers.
	exec := func(q string, args ...any) {
		if _, err := tc.db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE images SET status='saving' WHERE id=?`, saving)
	exec(`UPDATE images SET status='importing' WHERE id=?`, importing)
	write := func(p string) {
		if err := os.WriteFile(filepath.Join(tc.dataDir, p), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("images/" + saving)
	write("tmp/upload-123")
	write("images/orphan")
	os.Remove(filepath.Join(tc.dataDir, "staging", lost))

	tc.restart()
	for id, want := range map[string]string{active: "active", saving: "queued", importing: "uploading", lost: "queued"} {
		if st := tc.show(tc.demo, id)["status"]; st != want {
			t.Errorf("%s: status %v, want %s", id, st, want)
		}
	}
	files := map[string]bool{}
	for _, f := range tc.dataFiles() {
		files[f] = true
	}
	want := map[string]bool{filepath.Join("images", active): true, filepath.Join("staging", importing): true}
	if fmt.Sprint(files) != fmt.Sprint(want) {
		t.Errorf("files after restart %v, want %v", files, want)
	}
	tc.must(202, tc.do("POST", "/image/v2/images/"+importing+"/import", tc.demo, map[string]any{"method": map[string]any{"name": "glance-direct"}}))
	if res := tc.must(200, tc.do("GET", "/image/v2/images/"+active+"/file", tc.demo, nil)); string(res.Body) != "keep me" {
		t.Errorf("active data after restart: %q", res.Body)
	}
}

// TestDeleteDuringUpload: deleting an image while its bytes arrive makes
// the upload fail with 410 and leaves nothing behind.
func TestDeleteDuringUpload(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	pr, pw := io.Pipe()
	done := make(chan response)
	go func() {
		req, _ := http.NewRequest("PUT", tc.srv.URL+"/image/v2/images/"+id+"/file", bufio.NewReader(pr))
		req.Header.Set("X-Auth-Token", tc.demo)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- response{}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- response{StatusCode: res.StatusCode, Body: b}
	}()
	pw.Write(make([]byte, 1<<20))
	waitFor(t, func() bool { return tc.show(tc.demo, id)["status"] == "saving" })
	tc.must(204, tc.do("DELETE", "/image/v2/images/"+id, tc.demo, nil))
	pw.Write(make([]byte, 1<<20))
	pw.Close()
	if res := <-done; res.StatusCode != http.StatusGone {
		t.Errorf("upload after delete: %d %s", res.StatusCode, res.Body)
	}
	if files := tc.dataFiles(); len(files) != 0 {
		t.Errorf("bytes left: %v", files)
	}
}
