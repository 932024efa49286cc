package objectstore

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/store"
)

const kill9Env = "OBJECTSTORE_KILL9_DIR"

// TestKill9 runs writers in a child process, kills it with SIGKILL at a
// random moment, and checks what the next start finds: every write the
// child saw acknowledged is there with its bytes, every acknowledged
// delete is gone, and rows, files, blobs and counters agree.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.v")
		cmd.Env = append(os.Environ(), kill9Env+"="+dir)
		out, _ := os.Create(filepath.Join(dir, "child.log"))
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it write for a while, then kill it mid-flight.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if b, _ := os.ReadFile(filepath.Join(dir, "acks")); strings.Count(string(b), "\n") >= 20 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		out.Close()

		acked := map[string]string{}   // name -> md5 ("" once deleted)
		maybe := map[string]bool{}     // deletes begun, not acknowledged
		putting := map[string]string{} // overwrites begun, not acknowledged: name -> md5
		f, err := os.Open(filepath.Join(dir, "acks"))
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "child.log"))
			t.Fatalf("no acks: %v\n%s", err, log)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			op, rest, _ := strings.Cut(sc.Text(), " ")
			name, sum, _ := strings.Cut(rest, " ")
			switch op {
			case "put":
				acked[name] = sum
				delete(putting, name)
			case "putting":
				putting[name] = sum
			case "deleting":
				maybe[name] = true
			case "del":
				acked[name] = ""
				delete(maybe, name)
			}
		}
		f.Close()

		db, err := store.Open(filepath.Join(dir, "db"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(t.Context(), db, Config{DataDir: filepath.Join(dir, "data")}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.getContainer(t.Context(), nil, "AUTH_kill9", "c")
		if err != nil {
			t.Fatal(err)
		}
		for name, sum := range acked {
			o, err := s.getObject(t.Context(), nil, c.ID, name)
			if p, ok := putting[name]; ok && err == nil && o.ETag == p {
				sum = p // an overwrite committed; the child was killed before it could say so
			}
			if sum == "" {
				if err == nil {
					t.Errorf("round %d: acknowledged delete of %s undone", round, name)
				}
				continue
			}
			if err != nil && maybe[name] {
				continue // deleted; the child was killed before it could say so
			}
			if err != nil {
				t.Errorf("round %d: acknowledged %s lost: %v", round, name, err)
				continue
			}
			var b []byte
			r, err := s.openBytes(t.Context(), o.File)
			if err == nil {
				b, err = io.ReadAll(r)
				r.Close()
			}
			h := md5.Sum(b)
			if err != nil || hex.EncodeToString(h[:]) != sum || o.ETag != sum {
				t.Errorf("round %d: %s has the wrong bytes", round, name)
			}
		}
		var count, bytes, rows, sum int64
		db.QueryRow(`SELECT object_count, bytes_used FROM swift_containers WHERE id=?`, c.ID).Scan(&count, &bytes)
		db.QueryRow(`SELECT count(*), coalesce(sum(stored), 0) FROM swift_objects`).Scan(&rows, &sum)
		if count != rows || bytes != sum {
			t.Errorf("round %d: counters %d/%d, rows %d/%d", round, count, bytes, rows, sum)
		}
		// Small objects are blobs in the database, the others files: one
		// of either per row, and none other.
		var dbRows, blobs, orphans int64
		db.QueryRow(`SELECT count(*) FROM swift_objects WHERE file LIKE 'db/%'`).Scan(&dbRows)
		db.QueryRow(`SELECT count(*) FROM swift_blobs`).Scan(&blobs)
		db.QueryRow(`SELECT count(*) FROM swift_blobs WHERE file NOT IN (SELECT file FROM swift_objects)`).Scan(&orphans)
		if n := countFiles(t, filepath.Join(dir, "data", "objects")); int64(n) != rows-dbRows {
			t.Errorf("round %d: %d files for %d rows of files", round, n, rows-dbRows)
		}
		if blobs != dbRows || orphans != 0 {
			t.Errorf("round %d: %d blobs (%d orphans) for %d rows of blobs", round, blobs, orphans, dbRows)
		}
		if dbRows == 0 || dbRows == rows {
			t.Logf("round %d: %d of %d rows are blobs: one kind not exercised", round, dbRows, rows)
		}
		if n := countFiles(t, filepath.Join(dir, "data", "tmp")); n != 0 {
			t.Errorf("round %d: %d temporary files", round, n)
		}
		t.Logf("round %d: %d acknowledged operations, %d rows (%d blobs) after the kill", round, len(acked), rows, dbRows)
		s.Close()
		db.Close()
	}
}

// TestKill9Child is the child of TestKill9: it writes and deletes objects
// until killed, logging each acknowledged operation.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(kill9Env)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	ctx := context.Background()
	db, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, db, Config{DataDir: filepath.Join(dir, "data")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.putContainer(ctx, "AUTH_kill9", "c", func(meta) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c, err := s.getContainer(ctx, nil, "AUTH_kill9", "c")
	if err != nil {
		t.Fatal(err)
	}
	acks, err := os.OpenFile(filepath.Join(dir, "acks"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ack := func(line string) {
		mu.Lock()
		io.WriteString(acks, line+"\n") // a kill -9 keeps the page cache
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("g%d/%06d", g, i)
				// 10 to 100,000 bytes: blobs up to inlineMax, files beyond.
				body := strings.Repeat(fmt.Sprintf("%s-", name), 1+rand.IntN(10000))
				o, err := s.storeObject(ctx, &c, name, objectData{body: strings.NewReader(body), length: int64(len(body)), size: -1,
					contentType: "text/plain", meta: meta{}})
				if err != nil {
					continue
				}
				ack("put " + name + " " + o.ETag)
				if i%4 == 1 {
					// Overwrite the previous object, a blob with a file or
					// the other way round as the sizes fall.
					victim := fmt.Sprintf("g%d/%06d", g, i-1)
					body := strings.Repeat(fmt.Sprintf("%s+", victim), 1+rand.IntN(10000))
					ack("putting " + victim + " " + md5hex(body))
					o, err := s.storeObject(ctx, &c, victim, objectData{body: strings.NewReader(body), length: int64(len(body)), size: -1,
						contentType: "text/plain", meta: meta{}})
					if err == nil {
						ack("put " + victim + " " + o.ETag)
					}
				}
				if i%3 == 0 {
					victim := fmt.Sprintf("g%d/%06d", g, i/2)
					ack("deleting " + victim)
					if _, err := s.deleteObject(ctx, c.ID, victim); err == nil {
						ack("del " + victim)
					}
				}
			}
		}()
	}
	wg.Wait()
}
