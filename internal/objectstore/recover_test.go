package objectstore

import (
	"crypto/md5"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestStartupCheck leaves what a kill -9 can leave (a temporary file, a
// file no row names, a row whose file is gone, a file cut short, counters
// out of step) and checks that New puts it right. (Blobs in the database:
// TestStartupCheckBlobs.)
func TestStartupCheck(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.mkContainer("d")
	tc.put("c", "keep", "kept bytes")
	// Chunked, so that they are files, not blobs.
	tc.must(201, tc.do("PUT", tc.demoPath("c", "lose"), tc.demo, io.MultiReader(strings.NewReader("this file will vanish"))))
	tc.must(201, tc.do("PUT", tc.demoPath("c", "cut"), tc.demo, io.MultiReader(strings.NewReader("this file will be cut short"))))
	tc.put("d", "other", "12345")
	ctx := t.Context()
	objects := filepath.Join(tc.cfg.DataDir, "objects")
	cid := func(name string) int64 {
		c, err := tc.svc.getContainer(ctx, nil, "AUTH_"+tc.demoProject, name)
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	fileOf := func(name string) string {
		o, err := tc.svc.getObject(ctx, nil, cid("c"), name)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(objects, o.File)
	}
	loseFile, cutFile := fileOf("lose"), fileOf("cut")
	tc.svc.Close()

	// A PUT killed while streaming: a temporary file.
	if err := os.WriteFile(filepath.Join(tc.cfg.DataDir, "tmp", "put-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A PUT killed between its fsyncs and its commit: a file no row names.
	orphan := filepath.Join(objects, "abc", "abc"+strings.Repeat("0", 61)+"-1234")
	os.MkdirAll(filepath.Dir(orphan), 0o700)
	if err := os.WriteFile(orphan, []byte("orphan"), 0o600); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(objects, "not-a-dir-entry")
	os.WriteFile(stray, []byte("x"), 0o600)
	// A row whose file is gone, and one whose file is short.
	if err := os.Remove(loseFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cutFile, 3); err != nil {
		t.Fatal(err)
	}
	// Counters out of step with the rows.
	if _, err := tc.db.Exec(`UPDATE swift_containers SET object_count = 999, bytes_used = -5`); err != nil {
		t.Fatal(err)
	}

	tc.open()

	for _, f := range []string{filepath.Join(tc.cfg.DataDir, "tmp", "put-123"), orphan, stray} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s survived the start-up check", f)
		}
	}
	tc.must(404, tc.do("GET", tc.demoPath("c", "lose"), tc.demo, nil))
	tc.must(404, tc.do("GET", tc.demoPath("c", "cut"), tc.demo, nil))
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "keep"), tc.demo, nil)); string(res.Body) != "kept bytes" {
		t.Errorf("kept object: %q", res.Body)
	}
	res := tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
	if res.Header.Get("X-Container-Object-Count") != "1" || res.Header.Get("X-Container-Bytes-Used") != "10" {
		t.Errorf("container counters: %v", res.Header)
	}
	res = tc.must(204, tc.do("HEAD", acct(tc.demoProject), tc.demo, nil))
	if res.Header.Get("X-Account-Object-Count") != "2" || res.Header.Get("X-Account-Bytes-Used") != "15" {
		t.Errorf("account counters: %v", res.Header)
	}
	if names := names(t, tc.do("GET", tc.demoPath("c")+"?format=json", tc.demo, nil)); strings.Join(names, ",") != "keep" {
		t.Errorf("listing %v", names)
	}
	// Rows and files agree: one file (or blob) per row.
	var rows int
	tc.db.QueryRow(`SELECT count(*) FROM swift_objects`).Scan(&rows)
	if n := tc.countStored(); n != rows {
		t.Errorf("%d files and blobs for %d rows", n, rows)
	}
	// A second start finds nothing to fix.
	rep, err := tc.svc.check(ctx)
	if err != nil || rep != (recoverReport{}) {
		t.Errorf("second check: %+v %v", rep, err)
	}
}

// TestConcurrentWrites overwrites, deletes and writes objects from many
// goroutines at once, as files and as blobs; counters must match the rows
// and every row must have its file or blob, and only those exist.
func TestConcurrentWrites(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				name := fmt.Sprintf("shared-%d", i%5)
				body := strings.Repeat("x", g*10+i)
				// Chunked bodies are files, the others blobs: each
				// replaces the other.
				var sent any = body
				if (g+i)%3 == 0 {
					sent = io.MultiReader(strings.NewReader(body))
				}
				res := tc.do("PUT", tc.demoPath("c", name), tc.demo, sent)
				if res.StatusCode != 201 {
					t.Errorf("PUT: %d %s", res.StatusCode, res.Body)
				}
				if i%7 == 0 {
					tc.do("DELETE", tc.demoPath("c", name), tc.demo, nil)
				}
				tc.do("PUT", tc.demoPath("c", fmt.Sprintf("own-%d-%d", g, i)), tc.demo, body)
			}
		}()
	}
	wg.Wait()
	var count, bytes, rows, sum int64
	tc.db.QueryRow(`SELECT object_count, bytes_used FROM swift_containers WHERE name='c'`).Scan(&count, &bytes)
	tc.db.QueryRow(`SELECT count(*), coalesce(sum(stored), 0) FROM swift_objects`).Scan(&rows, &sum)
	if count != rows || bytes != sum {
		t.Errorf("counters %d/%d, rows %d/%d", count, bytes, rows, sum)
	}
	if n := tc.countStored(); int64(n) != rows {
		t.Errorf("%d files and blobs for %d rows", n, rows)
	}
	rep, err := tc.svc.check(t.Context())
	if err != nil || rep != (recoverReport{}) {
		t.Errorf("check after concurrent writes: %+v %v", rep, err)
	}
}

func TestStorageErrors(t *testing.T) {
	for _, err := range []error{
		&os.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC},
		fmt.Errorf("wrapped: %w", syscall.EDQUOT),
	} {
		if !isStatus(storageError(err), 507) {
			t.Errorf("%v is not a 507", err)
		}
	}
	if isStatus(storageError(os.ErrPermission), 507) {
		t.Error("EPERM is a 507")
	}
}

// TestDiskFull puts the object files on a 1 MiB tmpfs (root only): a PUT
// that does not fit is a 507 that leaves nothing behind, and the store
// goes on working.
func TestDiskFull(t *testing.T) {
	small := smallDisk(t, "1m")
	// No reserve: the write itself runs out of space.
	tc := newTestCloudConfig(t, Config{DataDir: small, FallocateReserve: -1})
	tc.mkContainer("c")
	res := tc.do("PUT", tc.demoPath("c", "big"), tc.demo, strings.Repeat("x", 2<<20))
	if res.StatusCode != 507 {
		t.Fatalf("PUT on a full disk: %d %s", res.StatusCode, res.Body)
	}
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "big"), tc.demo, nil))
	if n := countFiles(t, small); n != 0 {
		t.Errorf("%d files left on the full disk", n)
	}
	tc.put("c", "small", "fits")
	if res := tc.must(200, tc.do("GET", tc.demoPath("c", "small"), tc.demo, nil)); string(res.Body) != "fits" {
		t.Errorf("after a full disk: %q", res.Body)
	}
}

// TestCopyInWriterFailure: when writing fails mid-upload (here, a file
// that cannot be written), the pipelined copy stops and reports it.
func TestCopyInWriterFailure(t *testing.T) {
	tc := newTestCloud(t)
	name := filepath.Join(t.TempDir(), "ro")
	os.WriteFile(name, nil, 0o600)
	for _, direct := range []bool{true, false} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := tc.svc.copyIn(f, direct, md5.New(), strings.NewReader(strings.Repeat("x", 5<<20)))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("direct=%v: no error writing a read-only file", direct)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("direct=%v: copy hangs after a write failure", direct)
		}
		f.Close()
	}
}
