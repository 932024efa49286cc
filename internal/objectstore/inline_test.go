package objectstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// countStored counts where object bytes are kept: files under
// DataDir/objects and blobs in swift_blobs.
func (tc *testCloud) countStored() int {
	tc.t.Helper()
	return tc.countFiles() + tc.countBlobs()
}

func (tc *testCloud) countFiles() int {
	return countFiles(tc.t, filepath.Join(tc.cfg.DataDir, "objects"))
}

func (tc *testCloud) countBlobs() int {
	tc.t.Helper()
	var n int
	if err := tc.db.QueryRow(`SELECT count(*) FROM swift_blobs`).Scan(&n); err != nil {
		tc.t.Fatal(err)
	}
	return n
}

// checkStored checks that every row has its bytes (a blob for a "db/"
// file, a file otherwise), that no blob or file is left over, and that
// the counters agree with the rows.
func (tc *testCloud) checkStored() {
	tc.t.Helper()
	var rows, dbRows, orphans, missing int
	tc.db.QueryRow(`SELECT count(*) FROM swift_objects`).Scan(&rows)
	tc.db.QueryRow(`SELECT count(*) FROM swift_objects WHERE file LIKE 'db/%'`).Scan(&dbRows)
	tc.db.QueryRow(`SELECT count(*) FROM swift_blobs WHERE file NOT IN (SELECT file FROM swift_objects)`).Scan(&orphans)
	tc.db.QueryRow(`SELECT count(*) FROM swift_objects o WHERE file LIKE 'db/%'
		AND NOT EXISTS (SELECT 1 FROM swift_blobs b WHERE b.file = o.file AND length(b.data) = o.stored)`).Scan(&missing)
	if orphans != 0 || missing != 0 || tc.countBlobs() != dbRows {
		tc.t.Errorf("blobs: %d orphans, %d rows without theirs, %d blobs for %d rows", orphans, missing, tc.countBlobs(), dbRows)
	}
	if n := tc.countFiles(); n != rows-dbRows {
		tc.t.Errorf("%d files for %d rows of files", n, rows-dbRows)
	}
	var bad int
	tc.db.QueryRow(`SELECT count(*) FROM swift_containers c WHERE object_count != (SELECT count(*) FROM swift_objects WHERE container_id = c.id)
		OR bytes_used != (SELECT coalesce(sum(stored), 0) FROM swift_objects WHERE container_id = c.id)`).Scan(&bad)
	if bad != 0 {
		tc.t.Errorf("%d containers with counters out of step", bad)
	}
}

// objectFile is the file column of demo's object.
func (tc *testCloud) objectFile(container, name string) string {
	tc.t.Helper()
	c, err := tc.svc.getContainer(context.Background(), nil, "AUTH_"+tc.demoProject, container)
	if err != nil {
		tc.t.Fatal(err)
	}
	o, err := tc.svc.getObject(context.Background(), nil, c.ID, name)
	if err != nil {
		tc.t.Fatal(err)
	}
	return o.File
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return string(b)
}

func chunked(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }

// TestInlineSmallObject: a small PUT's bytes are a blob in the database,
// no file is made, and GET, HEAD, ranges and conditions serve it.
func TestInlineSmallObject(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	body := randomString(4 << 10)
	res := tc.put("c", "small", body, "Etag", md5hex(body))
	if res.Header.Get("Etag") != md5hex(body) {
		t.Errorf("PUT etag %q", res.Header.Get("Etag"))
	}
	f := tc.objectFile("c", "small")
	if !strings.HasPrefix(f, "db/") || !validFileName(strings.TrimPrefix(f, "db/")) || validFileName(f) {
		t.Errorf("file of a small object: %q", f)
	}
	var data []byte
	if err := tc.db.QueryRow(`SELECT data FROM swift_blobs WHERE file=?`, f).Scan(&data); err != nil || string(data) != body {
		t.Errorf("blob: %d bytes, %v", len(data), err)
	}
	if n := tc.countFiles(); n != 0 {
		t.Errorf("%d files for a small object", n)
	}
	if n := countFiles(t, filepath.Join(tc.cfg.DataDir, "tmp")); n != 0 {
		t.Errorf("%d temporary files", n)
	}

	res = tc.must(200, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil))
	if string(res.Body) != body || res.Header.Get("Etag") != md5hex(body) || res.Header.Get("Content-Length") != "4096" {
		t.Errorf("GET: %d bytes, %v", len(res.Body), res.Header)
	}
	res = tc.must(200, tc.do("HEAD", tc.demoPath("c", "small"), tc.demo, nil))
	if res.Header.Get("Content-Length") != "4096" || res.Header.Get("Etag") != md5hex(body) {
		t.Errorf("HEAD: %v", res.Header)
	}
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil, "Range", "bytes=100-199"))
	if string(res.Body) != body[100:200] || res.Header.Get("Content-Range") != "bytes 100-199/4096" {
		t.Errorf("range: %q %v", res.Body, res.Header)
	}
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil, "Range", "bytes=-10"))
	if string(res.Body) != body[4086:] {
		t.Errorf("suffix range: %q", res.Body)
	}
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil, "Range", "bytes=0-9,4000-4009"))
	if !strings.Contains(res.Header.Get("Content-Type"), "multipart/byteranges") ||
		!bytes.Contains(res.Body, []byte(body[0:10])) || !bytes.Contains(res.Body, []byte(body[4000:4010])) {
		t.Errorf("multipart ranges: %v", res.Header)
	}
	tc.must(416, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil, "Range", "bytes=5000-"))
	tc.must(304, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil, "If-None-Match", md5hex(body)))
	tc.must(412, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil, "If-Match", md5hex("other")))

	// An empty object is an empty blob.
	tc.put("c", "empty", "")
	if f := tc.objectFile("c", "empty"); !strings.HasPrefix(f, "db/") {
		t.Errorf("empty object's file %q", f)
	}
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "empty"), tc.demo, nil))
	if len(res.Body) != 0 || res.Header.Get("Etag") != md5hex("") || res.Header.Get("Content-Length") != "0" {
		t.Errorf("empty GET: %q %v", res.Body, res.Header)
	}
	tc.must(200, tc.do("GET", tc.demoPath("c", "empty"), tc.demo, nil, "Range", "bytes=-5"))

	// A wrong ETag stores nothing.
	tc.must(422, tc.do("PUT", tc.demoPath("c", "bad"), tc.demo, "abc", "Etag", md5hex("abd")))
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "bad"), tc.demo, nil))
	// So does a refused If-None-Match, which keeps the old bytes.
	tc.must(412, tc.do("PUT", tc.demoPath("c", "small"), tc.demo, "new", "If-None-Match", "*"))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil)); string(res.Body) != body {
		t.Errorf("after a refused If-None-Match: %d bytes", len(res.Body))
	}
	if n := tc.countBlobs(); n != 2 {
		t.Errorf("%d blobs for 2 objects", n)
	}
	// Counters count a blob's bytes as a file's.
	res = tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
	if res.Header.Get("X-Container-Object-Count") != "2" || res.Header.Get("X-Container-Bytes-Used") != "4096" {
		t.Errorf("counters: %v", res.Header)
	}
	tc.checkStored()
	// And the bytes survive a restart (and its start-up check).
	tc.reopen()
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil)); string(res.Body) != body {
		t.Errorf("after a restart: %d bytes", len(res.Body))
	}
	tc.checkStored()
}

// TestInlineLimit: an object of inlineMax bytes is a blob; one byte more,
// or a body of unknown length, is a file.
func TestInlineLimit(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	atMax, over := randomString(inlineMax), randomString(inlineMax+1)
	tc.put("c", "max", atMax)
	tc.put("c", "over", over)
	tc.must(201, tc.do("PUT", tc.demoPath("c", "chunked"), tc.demo, chunked("tiny")))
	if f := tc.objectFile("c", "max"); !isDBFile(f) {
		t.Errorf("%d bytes: file %q", inlineMax, f)
	}
	for _, name := range []string{"over", "chunked"} {
		if f := tc.objectFile("c", name); isDBFile(f) || !validFileName(f) {
			t.Errorf("%s: file %q", name, f)
		}
	}
	if tc.countFiles() != 2 || tc.countBlobs() != 1 {
		t.Errorf("%d files, %d blobs", tc.countFiles(), tc.countBlobs())
	}
	for name, want := range map[string]string{"max": atMax, "over": over, "chunked": "tiny"} {
		if res := tc.must(200, tc.do("GET", tc.demoPath("c", name), tc.demo, nil)); string(res.Body) != want {
			t.Errorf("GET %s: %d bytes", name, len(res.Body))
		}
	}
	tc.checkStored()
}

// TestInlineReplace: overwriting and deleting remove the old bytes, blob
// or file, whichever replaces which.
func TestInlineReplace(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	big := randomString(inlineMax + 100)
	steps := []struct {
		body         any
		want         string
		files, blobs int
		bytesUsed    int
		description  string
		blob         bool
	}{
		{"first", "first", 0, 1, 5, "a blob", true},
		{"second!", "second!", 0, 1, 7, "a blob over a blob", true},
		{big, big, 1, 0, len(big), "a file over a blob", false},
		{"third", "third", 0, 1, 5, "a blob over a file", true},
		{chunked("fourth"), "fourth", 1, 0, 6, "a chunked file over a blob", false},
		{"", "", 0, 1, 0, "an empty blob over a file", true},
	}
	for _, st := range steps {
		tc.must(201, tc.do("PUT", tc.demoPath("c", "o"), tc.demo, st.body))
		if tc.countFiles() != st.files || tc.countBlobs() != st.blobs {
			t.Errorf("%s: %d files, %d blobs", st.description, tc.countFiles(), tc.countBlobs())
		}
		if isDBFile(tc.objectFile("c", "o")) != st.blob {
			t.Errorf("%s: file %q", st.description, tc.objectFile("c", "o"))
		}
		if res := tc.must(200, tc.do("GET", tc.demoPath("c", "o"), tc.demo, nil)); string(res.Body) != st.want {
			t.Errorf("%s: GET %d bytes", st.description, len(res.Body))
		}
		res := tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
		if res.Header.Get("X-Container-Object-Count") != "1" || res.Header.Get("X-Container-Bytes-Used") != strconv.Itoa(st.bytesUsed) {
			t.Errorf("%s: counters %v", st.description, res.Header)
		}
		tc.checkStored()
	}
	// POST changes the row, not the bytes.
	tc.put("c", "o", "kept")
	tc.must(202, tc.do("POST", tc.demoPath("c", "o"), tc.demo, nil, "X-Object-Meta-A", "b"))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "o"), tc.demo, nil)); string(res.Body) != "kept" || res.Header.Get("X-Object-Meta-A") != "b" {
		t.Errorf("after POST: %q %v", res.Body, res.Header)
	}
	tc.must(204, tc.do("DELETE", tc.demoPath("c", "o"), tc.demo, nil))
	if n := tc.countStored(); n != 0 {
		t.Errorf("after DELETE: %d files and blobs", n)
	}
	tc.must(204, tc.do("DELETE", tc.demoPath("c"), tc.demo, nil))
	tc.checkStored()
}

// TestInlineCopy: COPY and X-Copy-From read a blob source and write a
// blob (or a file, when the copy is large).
func TestInlineCopy(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	small := randomString(1000)
	tc.put("c", "src", small, "X-Object-Meta-Color", "blue")
	tc.must(201, tc.do("PUT", tc.demoPath("c", "filesrc"), tc.demo, chunked(small)))
	tc.must(201, tc.do("COPY", tc.demoPath("c", "src"), tc.demo, nil, "Destination", "c/copied"))
	tc.must(201, tc.do("PUT", tc.demoPath("c", "fromfile"), tc.demo, "", "X-Copy-From", "c/filesrc"))
	tc.must(201, tc.do("PUT", tc.demoPath("c", "copied2"), tc.demo, "", "X-Copy-From", "c/src"))
	for _, name := range []string{"copied", "fromfile", "copied2"} {
		res := tc.must(200, tc.do("GET", tc.demoPath("c", name), tc.demo, nil))
		if string(res.Body) != small || res.Header.Get("Etag") != md5hex(small) {
			t.Errorf("%s: %d bytes", name, len(res.Body))
		}
		if f := tc.objectFile("c", name); !isDBFile(f) {
			t.Errorf("%s: file %q", name, f)
		}
	}
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "copied"), tc.demo, nil)); res.Header.Get("X-Object-Meta-Color") != "blue" {
		t.Errorf("metadata not copied: %v", res.Header)
	}
	// A copy onto its own source.
	tc.must(201, tc.do("COPY", tc.demoPath("c", "src"), tc.demo, nil, "Destination", "c/src", "X-Object-Meta-Color", "red"))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "src"), tc.demo, nil)); string(res.Body) != small || res.Header.Get("X-Object-Meta-Color") != "red" {
		t.Errorf("self copy: %d bytes %v", len(res.Body), res.Header)
	}
	// A large copy of a small source made large by a DLO of blobs.
	seg := randomString(40 << 10)
	tc.put("c", "seg/1", seg)
	tc.put("c", "seg/2", seg)
	tc.put("c", "dlo", "", "X-Object-Manifest", "c/seg/")
	tc.must(201, tc.do("COPY", tc.demoPath("c", "dlo"), tc.demo, nil, "Destination", "c/flat"))
	if f := tc.objectFile("c", "flat"); isDBFile(f) {
		t.Errorf("an 80 KiB copy is a blob")
	}
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "flat"), tc.demo, nil)); string(res.Body) != seg+seg {
		t.Errorf("flattened DLO: %d bytes", len(res.Body))
	}
	tc.checkStored()
}

// TestInlineSLO: an SLO of blob segments (and its manifest, a blob too)
// serves whole, by ranges and as its manifest; it can be copied, and
// deleted with its segments, leaving no blob behind.
func TestInlineSLO(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("segs")
	tc.mkContainer("c")
	a, b := randomString(3000), randomString(2000)
	big := randomString(inlineMax + 10) // a segment that is a file
	tc.put("segs", "a", a)
	tc.put("segs", "b", b)
	tc.put("segs", "big", big)
	manifest := []map[string]any{
		{"path": "/segs/a", "etag": md5hex(a), "size_bytes": len(a)},
		{"path": "/segs/big", "etag": md5hex(big), "size_bytes": len(big)},
		{"data": base64.StdEncoding.EncodeToString([]byte("inline data"))},
		{"path": "/segs/b", "range": "100-1099"},
		{"path": "/segs/a"},
	}
	tc.must(201, sloPut(tc, "c", "slo", manifest))
	whole := a + big + "inline data" + b[100:1100] + a
	if f := tc.objectFile("c", "slo"); !isDBFile(f) {
		t.Errorf("manifest's file %q", f)
	}
	res := tc.must(200, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil))
	if string(res.Body) != whole {
		t.Errorf("SLO GET: %d bytes, want %d", len(res.Body), len(whole))
	}
	res = tc.must(200, tc.do("HEAD", tc.demoPath("c", "slo"), tc.demo, nil))
	if res.Header.Get("Content-Length") != strconv.Itoa(len(whole)) {
		t.Errorf("SLO HEAD: %v", res.Header)
	}
	// Ranges within a blob segment, across blob and file segments, and
	// several at once.
	for _, rg := range [][2]int{{10, 20}, {2990, 3010}, {len(whole) - 2500, len(whole) - 1}, {0, len(whole) - 1}} {
		res := tc.must(206, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil, "Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1])))
		if string(res.Body) != whole[rg[0]:rg[1]+1] {
			t.Errorf("SLO range %v: %d bytes", rg, len(res.Body))
		}
	}
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "slo"), tc.demo, nil, "Range", "bytes=0-4,70000-70009"))
	if !bytes.Contains(res.Body, []byte(whole[0:5])) || !bytes.Contains(res.Body, []byte(whole[70000:70010])) {
		t.Errorf("SLO multipart range")
	}
	res = tc.must(200, tc.do("GET", tc.demoPath("c", "slo")+"?multipart-manifest=get", tc.demo, nil))
	if !strings.Contains(string(res.Body), `"/segs/a"`) {
		t.Errorf("manifest GET: %s", res.Body)
	}
	// A nested SLO, and a small SLO copied flat into a blob.
	tc.must(201, sloPut(tc, "c", "small", []map[string]any{{"path": "/segs/a"}, {"path": "/segs/b"}}))
	tc.must(201, sloPut(tc, "c", "outer", []map[string]any{{"path": "/c/small"}, {"path": "/segs/b", "range": "0-9"}}))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "outer"), tc.demo, nil)); string(res.Body) != a+b+b[:10] {
		t.Errorf("nested SLO: %d bytes", len(res.Body))
	}
	tc.must(201, tc.do("COPY", tc.demoPath("c", "small"), tc.demo, nil, "Destination", "c/flat"))
	if f := tc.objectFile("c", "flat"); !isDBFile(f) {
		t.Errorf("flat copy's file %q", f)
	}
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "flat"), tc.demo, nil)); string(res.Body) != a+b {
		t.Errorf("flat copy: %d bytes", len(res.Body))
	}
	// The manifest itself copied (?multipart-manifest=get) stays an SLO.
	tc.must(201, tc.do("COPY", tc.demoPath("c", "small")+"?multipart-manifest=get", tc.demo, nil, "Destination", "c/small2"))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "small2"), tc.demo, nil)); string(res.Body) != a+b {
		t.Errorf("copied manifest: %d bytes", len(res.Body))
	}
	// A segment replaced is a 409, as for files.
	tc.put("segs", "b", "changed")
	tc.must(409, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil))
	tc.put("segs", "b", b)
	tc.checkStored()

	// Deleting with the segments leaves nothing.
	for _, name := range []string{"outer", "slo"} {
		res := tc.must(200, tc.do("DELETE", tc.demoPath("c", name)+"?multipart-manifest=delete", tc.demo, nil, "Accept", "application/json"))
		if !strings.Contains(string(res.Body), `"Response Status":"200 OK"`) {
			t.Errorf("delete %s: %s", name, res.Body)
		}
	}
	tc.must(204, tc.do("DELETE", tc.demoPath("c", "flat"), tc.demo, nil))
	tc.must(204, tc.do("DELETE", tc.demoPath("c", "small2"), tc.demo, nil))
	if n := tc.countStored(); n != 0 {
		t.Errorf("%d files and blobs left", n)
	}
	tc.checkStored()
}

// TestInlineDLO: a DLO of blob segments, whole and by range.
func TestInlineDLO(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	parts := []string{randomString(100), randomString(inlineMax + 1), randomString(5000)}
	for i, p := range parts {
		tc.put("c", fmt.Sprintf("seg/%d", i), p)
	}
	tc.put("c", "dlo", "", "X-Object-Manifest", "c/seg/")
	whole := strings.Join(parts, "")
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "dlo"), tc.demo, nil)); string(res.Body) != whole {
		t.Errorf("DLO GET: %d bytes", len(res.Body))
	}
	res := tc.must(206, tc.do("GET", tc.demoPath("c", "dlo"), tc.demo, nil, "Range", "bytes=50-66000"))
	if string(res.Body) != whole[50:66001] {
		t.Errorf("DLO range: %d bytes", len(res.Body))
	}
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "dlo"), tc.demo, nil, "Range", "bytes=-4000"))
	if string(res.Body) != whole[len(whole)-4000:] {
		t.Errorf("DLO suffix range: %d bytes", len(res.Body))
	}
	tc.checkStored()
}

// TestInlineBulkDeleteAndContainers: bulk delete and container deletes
// (of a container holding only expired objects) delete the blobs with the
// rows.
func TestInlineBulkDeleteAndContainers(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.mkContainer("d")
	var list []string
	for i := range 20 {
		body := fmt.Sprint("object ", i)
		if i%5 == 0 {
			tc.must(201, tc.do("PUT", tc.demoPath("c", fmt.Sprint(i)), tc.demo, chunked(body)))
		} else {
			tc.put("c", fmt.Sprint(i), body)
		}
		list = append(list, "/c/"+fmt.Sprint(i))
	}
	tc.put("d", "x", "in d")
	if tc.countFiles() != 4 || tc.countBlobs() != 17 {
		t.Fatalf("%d files, %d blobs", tc.countFiles(), tc.countBlobs())
	}
	body := strings.Join(append(list, "/c/missing", "/c"), "\n")
	res := tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", tc.demo, body, "Accept", "application/json"))
	r := res.JSON(t)
	if r["Number Deleted"] != 21.0 || r["Number Not Found"] != 1.0 {
		t.Errorf("bulk delete: %s", res.Body)
	}
	if tc.countFiles() != 0 || tc.countBlobs() != 1 {
		t.Errorf("after bulk delete: %d files, %d blobs", tc.countFiles(), tc.countBlobs())
	}
	tc.checkStored()

	// A container of expired objects is deleted with their blobs.
	now := time.Now().Unix()
	tc.put("d", "x", "soon gone", "X-Delete-At", strconv.FormatInt(now+1, 10))
	tc.must(201, tc.do("PUT", tc.demoPath("d", "y"), tc.demo, chunked("also soon gone"), "X-Delete-At", strconv.FormatInt(now+1, 10)))
	time.Sleep(time.Until(time.Unix(now+2, 0)))
	tc.must(204, tc.do("DELETE", tc.demoPath("d"), tc.demo, nil))
	if n := tc.countStored(); n != 0 {
		t.Errorf("after the container delete: %d files and blobs", n)
	}
	tc.checkStored()
}

// TestInlineExpiry: the expirer deletes an expired object's blob with its
// row.
func TestInlineExpiry(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	now := time.Now().Unix()
	tc.put("c", "keep", "kept")
	tc.put("c", "soon", "bye", "X-Delete-At", strconv.FormatInt(now+1, 10))
	tc.must(201, tc.do("PUT", tc.demoPath("c", "soonfile"), tc.demo, chunked("bye file"), "X-Delete-At", strconv.FormatInt(now+1, 10)))
	time.Sleep(time.Until(time.Unix(now+2, 0)))
	tc.must(404, tc.do("GET", tc.demoPath("c", "soon"), tc.demo, nil))
	n, err := tc.svc.reapExpired(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("reaped %d, %v", n, err)
	}
	if tc.countBlobs() != 1 || tc.countFiles() != 0 {
		t.Errorf("after expiry: %d blobs, %d files", tc.countBlobs(), tc.countFiles())
	}
	tc.checkStored()
}

// TestInlineDirect: the in-process API reads blobs as it reads files.
func TestInlineDirect(t *testing.T) {
	tc := newTestCloud(t)
	ctx := t.Context()
	if err := tc.svc.PutObject(ctx, tc.demoProject, "backups", "file", strings.NewReader("from PutObject")); err != nil {
		t.Fatal(err)
	}
	tc.put("backups", "blob", "from a PUT")
	for name, want := range map[string]string{"file": "from PutObject", "blob": "from a PUT"} {
		r, err := tc.svc.GetObject(ctx, tc.demoProject, "backups", name)
		if err != nil {
			t.Fatalf("GetObject %s: %v", name, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(b) != want {
			t.Errorf("GetObject %s: %q %v", name, b, err)
		}
	}
	if err := tc.svc.DeleteObject(ctx, tc.demoProject, "backups", "blob"); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.svc.GetObject(ctx, tc.demoProject, "backups", "blob"); !isStatus(err, 404) {
		t.Errorf("GetObject of a deleted blob: %v", err)
	}
	if tc.countBlobs() != 0 {
		t.Errorf("%d blobs after DeleteObject", tc.countBlobs())
	}
	tc.checkStored()
}

// TestInlineListingsSkipBlobs: listings and HEADs of accounts and
// containers never read swift_blobs: they work with the table gone.
func TestInlineListingsSkipBlobs(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	for i := range 10 {
		tc.put("c", fmt.Sprintf("dir/%d", i), "x")
	}
	if _, err := tc.db.Exec(`ALTER TABLE swift_blobs RENAME TO swift_blobs_away`); err != nil {
		t.Fatal(err)
	}
	defer tc.db.Exec(`ALTER TABLE swift_blobs_away RENAME TO swift_blobs`)
	for _, path := range []string{
		tc.demoPath("c") + "?format=json", tc.demoPath("c"), tc.demoPath("c") + "?delimiter=/&format=xml",
		acct(tc.demoProject) + "?format=json",
	} {
		if res := tc.do("GET", path, tc.demo, nil); res.StatusCode != 200 {
			t.Errorf("GET %s without swift_blobs: %d %s", path, res.StatusCode, res.Body)
		}
	}
	tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
	tc.must(200, tc.do("HEAD", tc.demoPath("c", "dir/1"), tc.demo, nil))
	// A GET does read it.
	if res := tc.do("GET", tc.demoPath("c", "dir/1"), tc.demo, nil); res.StatusCode == 200 {
		t.Error("GET of a blob without swift_blobs")
	}
}

// TestStartupCheckBlobs: the start-up check deletes blobs no row names and
// drops rows whose blob is missing, reading only the blobs' key.
func TestStartupCheckBlobs(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.put("c", "keep", "kept bytes")
	tc.put("c", "lose", "this blob will vanish")
	ctx := t.Context()
	lose := tc.objectFile("c", "lose")
	tc.svc.Close()
	if _, err := tc.db.Exec(`DELETE FROM swift_blobs WHERE file=?`, lose); err != nil {
		t.Fatal(err)
	}
	for _, orphan := range []string{"db/" + newFileName("AUTH_x", "c", "o"), "not even a name"} {
		if _, err := tc.db.Exec(`INSERT INTO swift_blobs (file, data) VALUES (?, ?)`, orphan, []byte("orphan")); err != nil {
			t.Fatal(err)
		}
	}
	tc.open()
	tc.must(404, tc.do("GET", tc.demoPath("c", "lose"), tc.demo, nil))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "keep"), tc.demo, nil)); string(res.Body) != "kept bytes" {
		t.Errorf("kept: %q", res.Body)
	}
	res := tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
	if res.Header.Get("X-Container-Object-Count") != "1" || res.Header.Get("X-Container-Bytes-Used") != "10" {
		t.Errorf("counters: %v", res.Header)
	}
	tc.checkStored()
	if rep, err := tc.svc.check(ctx); err != nil || rep != (recoverReport{}) {
		t.Errorf("second check: %+v %v", rep, err)
	}
	// What it reports.
	keep := tc.objectFile("c", "keep")
	tc.svc.Close()
	tc.db.Exec(`INSERT INTO swift_blobs (file, data) VALUES ('db/x', x'00')`)
	tc.db.Exec(`DELETE FROM swift_blobs WHERE file=?`, keep)
	rep, err := tc.svc.check(ctx)
	if err != nil || rep.OrphanBlobs != 1 || rep.MissingFiles != 1 || rep.OrphanFiles != 0 {
		t.Errorf("check: %+v %v", rep, err)
	}
	tc.open()
	tc.checkStored()
	// The check lists blobs from the primary key's index, not the table.
	var plan strings.Builder
	rows, err := tc.db.Query(`EXPLAIN QUERY PLAN SELECT file FROM swift_blobs`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		plan.WriteString(detail)
	}
	rows.Close()
	if !strings.Contains(plan.String(), "COVERING INDEX") {
		t.Errorf("the start-up check reads the blobs: %s", plan.String())
	}
}

// TestInlineConcurrent: GETs and COPYs while the object is overwritten
// (blob over blob, file over blob, blob over file) always get one whole
// version.
func TestInlineConcurrent(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	versions := []string{randomString(100), randomString(3000), randomString(inlineMax + 5)}
	valid := map[string]bool{}
	for _, v := range versions {
		valid[v] = true
	}
	tc.put("c", "o", versions[0])
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var body any = versions[i%3]
			if i%4 == 3 {
				body = chunked(versions[i%3])
			}
			if res := tc.do("PUT", tc.demoPath("c", "o"), tc.demo, body); res.StatusCode != 201 {
				t.Errorf("PUT: %d", res.StatusCode)
			}
		}
	}()
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range 50 {
				res := tc.do("GET", tc.demoPath("c", "o"), tc.demo, nil)
				if res.StatusCode != 200 || !valid[string(res.Body)] {
					t.Errorf("GET during overwrites: %d, %d bytes", res.StatusCode, len(res.Body))
				}
				// COPY takes the source's bytes up front (a file opened
				// stays readable once replaced): never a 409.
				if res := tc.do("COPY", tc.demoPath("c", "o"), tc.demo, nil, "Destination", "c/copy"); res.StatusCode != 201 {
					t.Errorf("COPY during overwrites: %d %s", res.StatusCode, res.Body)
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "copy"), tc.demo, nil)); !valid[string(res.Body)] {
		t.Errorf("copy: %d bytes", len(res.Body))
	}
	tc.checkStored()
}

// TestDeletedSmallObjectsFreeTheDisk: small objects live in the database;
// once deleted, the pages they took go back to the file system (all but
// shrinkKeep), as deleting Swift objects frees their disk, and the objects
// left read back whole.
func TestDeletedSmallObjectsFreeTheDisk(t *testing.T) {
	tc := newTestCloudConfig(t, Config{ExpiryInterval: 50 * time.Millisecond})
	ctx := context.Background()
	tc.mkContainer("c")
	body := strings.Repeat("0123456789abcdef", inlineMax/16)
	var victims strings.Builder
	for i := range 700 { // ~45 MiB of blobs
		tc.must(201, tc.put("c", fmt.Sprint("o", i), body))
		if i%7 != 0 {
			fmt.Fprintf(&victims, "/c/o%d\n", i)
		}
	}
	before, err := tc.db.FreeBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", tc.demo, victims.String(), "Content-Type", "text/plain"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		free, err := tc.db.FreeBytes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if free <= shrinkKeep {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database keeps %d free bytes (%d before the delete)", free, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 700; i += 7 {
		if got := tc.must(200, tc.do("GET", tc.demoPath("c", fmt.Sprint("o", i)), tc.demo, nil)).Body; string(got) != body {
			t.Fatalf("o%d reads back %d bytes", i, len(got))
		}
	}
}
