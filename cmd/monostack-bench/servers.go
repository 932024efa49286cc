package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// serverCreates is the "server-create" benchmark: n servers of the default
// image and flavor m1.nano on network private, conc at a time, each timed
// from POST /servers to the first GET that shows it ACTIVE. It needs a
// cloud whose host side runs (root, --datapath linuxbridge). Each server is
// deleted once measured (not timed); the rate counts that time too.
func serverCreates(ctx context.Context, base string, c credentials, n, conc int) (row, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2 * conc}}
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": c.user, "domain": map[string]any{"id": "default"}, "password": c.password}}},
		"scope": map[string]any{"project": map[string]any{"name": c.project, "domain": map[string]any{"id": "default"}}},
	}})
	res, err := client.Post(base+"/identity/v3/auth/tokens", "application/json", bytes.NewReader(body))
	if err != nil {
		return row{}, err
	}
	res.Body.Close()
	token := res.Header.Get("X-Subject-Token")
	call := func(method, path string, in any, out any) (int, error) {
		var rd io.Reader
		if in != nil {
			b, _ := json.Marshal(in)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return 0, err
		}
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		if out != nil && res.StatusCode < 300 {
			return res.StatusCode, json.NewDecoder(res.Body).Decode(out)
		}
		io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	var imgs struct {
		Images []struct{ ID string } `json:"images"`
	}
	var nets struct {
		Networks []struct{ ID string } `json:"networks"`
	}
	if _, err := call("GET", "/image/v2/images?name=busybox", nil, &imgs); err != nil || len(imgs.Images) == 0 {
		return row{}, fmt.Errorf("no busybox image: %v", err)
	}
	if _, err := call("GET", "/network/v2.0/networks?name=private", nil, &nets); err != nil || len(nets.Networks) == 0 {
		return row{}, fmt.Errorf("no private network: %v", err)
	}
	var mu sync.Mutex
	var samples []time.Duration
	var ids []string // measured servers
	r := row{name: fmt.Sprintf("server create → ACTIVE (%d at a time)", conc), target: "< 300ms"}
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var out struct {
					Server struct{ ID string } `json:"server"`
				}
				t0 := time.Now()
				code, err := call("POST", "/compute/v2.1/servers", map[string]any{"server": map[string]any{
					"name": fmt.Sprintf("bench-%d", i), "imageRef": imgs.Images[0].ID, "flavorRef": "42",
					"networks": []any{map[string]any{"uuid": nets.Networks[0].ID}}}}, &out)
				if err != nil || code != http.StatusAccepted {
					mu.Lock()
					r.errs++
					r.errText = fmt.Sprintf("create: %d %v", code, err)
					mu.Unlock()
					continue
				}
				status := ""
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					var s struct {
						Server struct{ Status string } `json:"server"`
					}
					if _, err := call("GET", "/compute/v2.1/servers/"+out.Server.ID, nil, &s); err == nil {
						if status = s.Server.Status; status == "ACTIVE" || status == "ERROR" {
							break
						}
					}
				}
				d := time.Since(t0)
				// Deleted at once (untimed), so that the project's quota of
				// instances does not bound the run.
				call("DELETE", "/compute/v2.1/servers/"+out.Server.ID, nil, nil)
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					if code, _ := call("GET", "/compute/v2.1/servers/"+out.Server.ID, nil, nil); code == http.StatusNotFound {
						break
					}
				}
				mu.Lock()
				ids = append(ids, out.Server.ID)
				if status == "ACTIVE" {
					samples = append(samples, d)
				} else {
					r.errs++
					r.errText = "server ended " + status
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(samples)
	r.n = len(samples)
	if len(samples) > 0 {
		r.p50, r.p99, r.max = pct(samples, 50), pct(samples, 99), samples[len(samples)-1]
		r.rate = float64(len(samples)) / elapsed.Seconds()
	}
	return r, nil
}
