package objectstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
)

// Benchmarks run real HTTP through httptest against the handler, with
// every PUT fsynced. Parallel clients: SetParallelism makes
// GOMAXPROCS*p goroutines, so p is chosen for the wanted client count.
//
//	go test -run '^$' -bench . -benchtime 5s ./internal/objectstore/

func setClients(b *testing.B, n int) {
	p := (n + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(p)
}

func benchPut(b *testing.B, size, clients int) {
	tc := newTestCloud(b)
	tc.mkContainer("bench")
	body := make([]byte, size)
	rand.Read(body)
	var seq atomic.Int64
	url := tc.srv.URL + tc.demoPath("bench")
	b.SetBytes(int64(size))
	setClients(b, clients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/obj-%d", url, seq.Add(1)), bytes.NewReader(body))
			req.Header.Set("X-Auth-Token", tc.demo)
			res, err := tc.client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 201 {
				b.Fatalf("PUT: %d", res.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func benchGet(b *testing.B, size, clients, objects int) {
	tc := newTestCloud(b)
	tc.mkContainer("bench")
	body := make([]byte, size)
	rand.Read(body)
	for i := range objects {
		tc.put("bench", fmt.Sprintf("obj-%d", i), string(body))
	}
	var seq atomic.Int64
	url := tc.srv.URL + tc.demoPath("bench")
	b.SetBytes(int64(size))
	setClients(b, clients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64<<10)
		for pb.Next() {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/obj-%d", url, seq.Add(1)%int64(objects)), nil)
			req.Header.Set("X-Auth-Token", tc.demo)
			res, err := tc.client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.CopyBuffer(io.Discard, res.Body, buf)
			res.Body.Close()
			if res.StatusCode != 200 || n != int64(size) {
				b.Fatalf("GET: %d, %d bytes", res.StatusCode, n)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func BenchmarkPut4KiB(b *testing.B) { benchPut(b, 4<<10, 8) }
func BenchmarkGet4KiB(b *testing.B) { benchGet(b, 4<<10, 8, 1000) }
func BenchmarkPut4MiB(b *testing.B) { benchPut(b, 4<<20, 4) }
func BenchmarkGet4MiB(b *testing.B) { benchGet(b, 4<<20, 4, 16) }

// BenchmarkList10000JSON lists a container of 10,000 objects as JSON (the
// rows are inserted directly: a listing reads only rows).
func BenchmarkList10000JSON(b *testing.B) {
	tc := newTestCloud(b)
	tc.mkContainer("big")
	c, err := tc.svc.getContainer(b.Context(), nil, "AUTH_"+tc.demoProject, "big")
	if err != nil {
		b.Fatal(err)
	}
	err = tc.svc.write(func(ctx context.Context, tx *sql.Tx) error {
		for i := range 10000 {
			o := Object{ContainerID: c.ID, Name: fmt.Sprintf("dir%02d/object-%06d.dat", i%50, i), File: fmt.Sprintf("000/%064d-%d", 0, i),
				Size: int64(i), Stored: int64(i), ETag: "d41d8cd98f00b204e9800998ecf8427e", ContentType: "application/octet-stream",
				Modified: nowMicro(), Meta: meta{}}
			if _, err := tc.svc.putObjectRow(ctx, tx, &o, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	url := tc.srv.URL + tc.demoPath("big") + "?format=json"
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Auth-Token", tc.demo)
		res, err := tc.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || n < 10000*100 {
			b.Fatalf("GET: %d, %d bytes", res.StatusCode, n)
		}
	}
}
