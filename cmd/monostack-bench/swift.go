package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The "swift" benchmark: issue 3's object storage figures, measured as the
// issue asks, against a monostack over loopback from this separate
// process (the go test benchmarks in internal/objectstore run client and
// server in one process, sharing its scheduler):
//
//   - PUT of 4 KiB objects, 8 clients, for --duration (every object
//     fsynced before its 201);
//   - GET of 4 KiB objects, 8 clients, over the first 1,000 of them;
//   - PUT of 4 MiB objects, 4 clients; GET of 4 MiB, 4 clients, over 16;
//   - a JSON listing of a container of 10,000 objects (made untimed by 8
//     clients), one client, for --duration.
//
// Bodies are random, sent with their length; the answers are read whole.
// The objects are removed at the end by bulk delete.
const (
	swiftSmall     = 4 << 10
	swiftLarge     = 4 << 20
	swiftGetSmall  = 1000
	swiftGetLarge  = 16
	swiftListCount = 10000
)

func swiftBenchmarks(ctx context.Context, base string, creds credentials, pid int, d time.Duration) (rows []row, err error) {
	oc, err := newOSClient(ctx, base, creds)
	if err != nil {
		return nil, err
	}
	account := base + "/object-store/v1/AUTH_" + oc.project
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil, DisableCompression: true,
		MaxIdleConnsPerHost: 16, MaxConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	send := func(ctx context.Context, method, url string, body []byte, want ...int) error {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return err
		}
		req.Header.Set("X-Auth-Token", oc.token)
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "text/plain")
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		// A bulk delete answers 200 whatever happened; its body says
		// ("Response Status: 200 OK" when all went).
		if strings.Contains(url, "?bulk-delete") && res.StatusCode == http.StatusOK &&
			!strings.Contains(string(b), "Response Status: 200") {
			return fmt.Errorf("%s %s: %s", method, url, strings.TrimSpace(string(b)))
		}
		for _, w := range want {
			if res.StatusCode == w {
				return nil
			}
		}
		return fmt.Errorf("%s %s: %s: %s", method, url, res.Status, strings.TrimSpace(string(b)))
	}
	// Two containers: the load's objects, and the listing's.
	objs, list := account+"/bench-swift", account+"/bench-swift-list"
	for _, c := range []string{objs, list} {
		if err := send(ctx, http.MethodPut, c, nil, http.StatusCreated, http.StatusAccepted); err != nil {
			return nil, err
		}
	}
	var made sync.Map // container URL → names, for the clean-up
	defer func() {
		if cerr := swiftCleanup(context.WithoutCancel(ctx), send, account, &made); cerr != nil && err == nil {
			err = cerr
		}
	}()
	track := func(c, name string) {
		v, _ := made.LoadOrStore(c, &nameList{})
		v.(*nameList).add(name)
	}

	// timedLoad runs conc clients of mk for d, with the cores' use measured.
	timedLoad := func(name, target string, conc int, mk func(context.Context) (*http.Request, error), want int, size int64) row {
		p := startPhase(pid)
		res := load(ctx, client, conc, d, mk, want)
		rs := []row{res.row(name, target)}
		p.fill(rs)
		r := rs[0]
		if size > 0 && res.elapsed > 0 {
			note := fmt.Sprintf("%.0f MB/s", float64(res.n)*float64(size)/1e6/res.elapsed.Seconds())
			if r.extra != "" {
				note += "; " + r.extra
			}
			r.extra = note
		}
		return r
	}
	put := func(size, conc int, prefix, target string) (row, int64) {
		body := make([]byte, size)
		rand.Read(body)
		var seq atomic.Int64
		r := timedLoad(fmt.Sprintf("Swift PUT %s, %d clients (fsynced)", sizeName(size), conc), target, conc,
			func(ctx context.Context) (*http.Request, error) {
				name := fmt.Sprintf("%s-%07d", prefix, seq.Add(1))
				track(objs, name)
				req, err := http.NewRequestWithContext(ctx, http.MethodPut, objs+"/"+name, bytes.NewReader(body))
				if err == nil {
					req.Header.Set("X-Auth-Token", oc.token)
				}
				return req, err
			}, http.StatusCreated, int64(size))
		return r, seq.Load()
	}
	get := func(size, conc int, prefix string, count int64, target string) row {
		var seq atomic.Int64
		return timedLoad(fmt.Sprintf("Swift GET %s, %d clients", sizeName(size), conc), target, conc,
			func(ctx context.Context) (*http.Request, error) {
				name := fmt.Sprintf("%s-%07d", prefix, seq.Add(1)%count+1)
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, objs+"/"+name, nil)
				if err == nil {
					req.Header.Set("X-Auth-Token", oc.token)
				}
				return req, err
			}, http.StatusOK, int64(size))
	}

	r, n := put(swiftSmall, 8, "small", "≥ 1,500/s")
	rows = append(rows, r)
	if r.errs > 0 || n < swiftGetSmall {
		return rows, fmt.Errorf("PUT 4 KiB: %d made, %d failed (%s)", n, r.errs, r.errText)
	}
	rows = append(rows, get(swiftSmall, 8, "small", swiftGetSmall, "≥ 5,000/s"))
	r, n = put(swiftLarge, 4, "large", "≥ 600 MB/s")
	rows = append(rows, r)
	if r.errs > 0 || n < swiftGetLarge {
		return rows, fmt.Errorf("PUT 4 MiB: %d made, %d failed (%s)", n, r.errs, r.errText)
	}
	rows = append(rows, get(swiftLarge, 4, "large", swiftGetLarge, "≥ 1 GB/s"))

	// The listing's container: 10,000 empty objects, 8 clients, untimed.
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= swiftListCount; i = next.Add(1) {
				name := fmt.Sprintf("dir%02d/object-%06d.dat", i%50, i)
				track(list, name)
				if err := send(ctx, http.MethodPut, list+"/"+name, []byte{}, http.StatusCreated); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return rows, err
	}
	rows = append(rows, timedLoad(fmt.Sprintf("Swift JSON listing of %d objects, 1 client", swiftListCount), "< 50 ms", 1,
		func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, list+"?format=json", nil)
			if err == nil {
				req.Header.Set("X-Auth-Token", oc.token)
			}
			return req, err
		}, http.StatusOK, 0))
	return rows, nil
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// nameList is the names a benchmark made in one container.
type nameList struct {
	mu    sync.Mutex
	names []string
}

func (l *nameList) add(name string) {
	l.mu.Lock()
	l.names = append(l.names, name)
	l.mu.Unlock()
}

// swiftCleanup removes what the benchmark made: its objects by bulk delete
// (10,000 a request), then the containers.
func swiftCleanup(ctx context.Context, send func(context.Context, string, string, []byte, ...int) error, account string, made *sync.Map) error {
	var first error
	made.Range(func(k, v any) bool {
		c := k.(string)
		cname := c[strings.LastIndexByte(c, '/')+1:]
		names := v.(*nameList).names
		for len(names) > 0 {
			batch := names[:min(len(names), 10000)]
			names = names[len(batch):]
			var b strings.Builder
			for _, n := range batch {
				b.WriteString(cname + "/" + n + "\n")
			}
			if err := send(ctx, http.MethodPost, account+"?bulk-delete", []byte(b.String()), http.StatusOK); err != nil && first == nil {
				first = err
			}
		}
		return true
	})
	for _, c := range []string{account + "/bench-swift", account + "/bench-swift-list"} {
		if err := send(ctx, http.MethodDelete, c, nil, http.StatusNoContent, http.StatusNotFound); err != nil && first == nil {
			first = err
		}
	}
	return first
}
