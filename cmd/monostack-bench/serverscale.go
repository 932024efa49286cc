package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// The "server-scale" benchmark (issue 5's figures): a burst of servers
// created at once, then servers added until --scale run together on this
// host, and what the control plane costs and answers with all of them
// running. Servers are m1.nano of the default image on network private,
// made by the admin (whose compute and port quotas are lifted first); the
// private network must hold them all: start the daemon with a /22
// (--up-args "--private-cidr 198.18.52.0/22").

const (
	scaleBurst   = 100 // servers POSTed at once
	scaleClients = 20  // clients that add the rest
	scaleSamples = 20  // samples of each latency at scale
	scaleLimit   = 15 * time.Minute
)

// serverFleet tracks servers the benchmark made, by id, with what the
// last list said of them.
type serverFleet struct {
	oc    *osClient
	image string
	net   string
	mu    sync.Mutex
	made  map[string]time.Time // id → when its POST was sent
}

type serverView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Task   string `json:"OS-EXT-STS:task_state"`
	Fault  struct {
		Message string `json:"message"`
	} `json:"fault"`
}

func (f *serverFleet) create(name string) (string, time.Time, error) {
	var out struct {
		Server struct{ ID string } `json:"server"`
	}
	t0 := time.Now()
	_, err := f.oc.do(http.MethodPost, "/compute/v2.1/servers", map[string]any{"server": map[string]any{
		"name": name, "imageRef": f.image, "flavorRef": "42",
		"networks": []any{map[string]any{"uuid": f.net}}}}, &out, http.StatusAccepted)
	if err != nil {
		return "", t0, err
	}
	f.mu.Lock()
	f.made[out.Server.ID] = t0
	f.mu.Unlock()
	return out.Server.ID, t0, nil
}

func (f *serverFleet) list() (map[string]serverView, error) {
	var out struct {
		Servers []serverView `json:"servers"`
	}
	if _, err := f.oc.do(http.MethodGet, "/compute/v2.1/servers/detail?limit=1000", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	m := make(map[string]serverView, len(out.Servers))
	for _, s := range out.Servers {
		m[s.ID] = s
	}
	return m, nil
}

// waitAll polls the list until every id in ids is ACTIVE (or fails),
// and returns each one's time from its POST to the first list showing it
// ACTIVE.
func (f *serverFleet) waitAll(ids []string, sent map[string]time.Time) ([]time.Duration, int, string, error) {
	var times []time.Duration
	errs, errText := 0, ""
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	deadline := time.Now().Add(scaleLimit)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return times, errs + len(pending), fmt.Sprintf("%d servers not ACTIVE after %s", len(pending), scaleLimit), nil
		}
		select {
		case <-f.oc.ctx.Done():
			return times, errs, errText, f.oc.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		l, err := f.list()
		at := time.Now()
		if err != nil {
			continue
		}
		for id := range pending {
			s, ok := l[id]
			switch {
			case !ok:
			case s.Status == "ERROR":
				errs++
				if errText == "" {
					errText = "ERROR: " + s.Fault.Message
				}
				delete(pending, id)
			case s.Status == "ACTIVE" && s.Task == "":
				times = append(times, at.Sub(sent[id]))
				delete(pending, id)
			}
		}
	}
	return times, errs, errText, nil
}

// cleanup deletes every server the benchmark made and waits until the
// list shows none of them.
func (f *serverFleet) cleanup() error {
	f.mu.Lock()
	ids := make([]string, 0, len(f.made))
	for id := range f.made {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	next := make(chan string)
	var wg sync.WaitGroup
	for range scaleClients {
		wg.Go(func() {
			for id := range next {
				f.oc.do(http.MethodDelete, "/compute/v2.1/servers/"+id, nil, nil, http.StatusNoContent, http.StatusNotFound)
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	deadline := time.Now().Add(scaleLimit)
	for {
		l, err := f.list()
		if err == nil {
			left := 0
			for _, id := range ids {
				if _, ok := l[id]; ok {
					left++
				}
			}
			if left == 0 {
				f.mu.Lock()
				f.made = map[string]time.Time{}
				f.mu.Unlock()
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d servers still listed %s after their delete", left, scaleLimit)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// serverScale runs the benchmark: scale servers in all (at least the
// burst) on the monostack at base, whose process is pid and data dir
// dataDir.
func serverScale(ctx context.Context, base string, creds credentials, dataDir string, pid, scale int) (rows []row, retErr error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("server-scale: needs root (runc, namespaces)")
	}
	oc, err := newOSClient(ctx, base, creds)
	if err != nil {
		return nil, err
	}
	oc.http = &http.Client{Timeout: 2 * time.Minute,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: scaleBurst, DisableCompression: true}}
	defer oc.http.CloseIdleConnections()
	f := &serverFleet{oc: oc, made: map[string]time.Time{}}
	defer func() {
		cc := *oc
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), scaleLimit)
		defer cancel()
		cc.ctx = cctx
		g := &serverFleet{oc: &cc, made: f.made}
		if err := g.cleanup(); err != nil && retErr == nil {
			retErr = fmt.Errorf("cleaning up servers: %w", err)
		}
	}()
	var imgs struct {
		Images []struct{ ID string } `json:"images"`
	}
	if _, err := oc.do(http.MethodGet, "/image/v2/images?name=busybox", nil, &imgs, http.StatusOK); err != nil || len(imgs.Images) == 0 {
		return nil, fmt.Errorf("no busybox image: %v", err)
	}
	var nets struct {
		Networks []struct{ ID string } `json:"networks"`
	}
	if _, err := oc.do(http.MethodGet, "/network/v2.0/networks?name=private", nil, &nets, http.StatusOK); err != nil || len(nets.Networks) == 0 {
		return nil, fmt.Errorf("no private network: %v", err)
	}
	f.image, f.net = imgs.Images[0].ID, nets.Networks[0].ID
	if _, err := oc.do(http.MethodPut, "/compute/v2.1/os-quota-sets/"+oc.project, map[string]any{"quota_set": map[string]any{
		"instances": -1, "cores": -1, "ram": -1}}, nil, http.StatusOK); err != nil {
		return nil, fmt.Errorf("lifting the compute quota: %w", err)
	}
	if _, err := oc.do(http.MethodPut, "/network/v2.0/quotas/"+oc.project,
		map[string]any{"quota": map[string]any{"port": -1}}, nil, http.StatusOK); err != nil {
		return nil, fmt.Errorf("lifting the port quota: %w", err)
	}
	rows = append(rows, rssNow("monostack RSS, 0 servers", pid))

	// 1. The burst: scaleBurst POSTs at once.
	sent := map[string]time.Time{}
	var ids []string
	var mu sync.Mutex
	cErrs, cErrText := 0, ""
	var wg sync.WaitGroup
	start := time.Now()
	for i := range scaleBurst {
		wg.Go(func() {
			id, t0, err := f.create(fmt.Sprintf("bench-burst-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				cErrs++
				cErrText = err.Error()
				return
			}
			sent[id] = t0
			ids = append(ids, id)
		})
	}
	wg.Wait()
	answered := time.Since(start)
	times, errs, errText, err := f.waitAll(ids, sent)
	wall := time.Since(start)
	if err != nil {
		return rows, err
	}
	if errText == "" {
		errText = cErrText
	}
	r := latencyRow(fmt.Sprintf("server create → ACTIVE, %d POSTed at once", scaleBurst), "-", times, errs+cErrs, errText)
	r.rate = float64(len(times)) / wall.Seconds()
	r.extra = fmt.Sprintf("all POSTs answered after %s; all ACTIVE after %s", fmtDur(answered), fmtDur(wall))
	rows = append(rows, r)

	// 2. More, scaleClients at a time, until scale run together.
	if scale > len(ids) {
		next := make(chan int)
		var more []string
		moreSent := map[string]time.Time{}
		start := time.Now()
		for range scaleClients {
			wg.Go(func() {
				for i := range next {
					id, t0, err := f.create(fmt.Sprintf("bench-scale-%d", i))
					mu.Lock()
					if err != nil {
						cErrs++
						cErrText = err.Error()
					} else {
						moreSent[id] = t0
						more = append(more, id)
					}
					mu.Unlock()
				}
			})
		}
		for i := len(ids); i < scale; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		times, errs, errText, err := f.waitAll(more, moreSent)
		if err != nil {
			return rows, err
		}
		r := latencyRow(fmt.Sprintf("server create → ACTIVE, %d → %d servers, %d clients", len(ids), scale, scaleClients), "-", times, errs, errText)
		r.rate = float64(len(times)) / time.Since(start).Seconds()
		rows = append(rows, r)
		ids = append(ids, more...)
	}

	// 3. At scale: memory, and the API's answers.
	l, err := f.list()
	if err != nil {
		return rows, err
	}
	active := 0
	for _, s := range l {
		if s.Status == "ACTIVE" {
			active++
		}
	}
	rows = append(rows, rssNow(fmt.Sprintf("monostack RSS, %d servers ACTIVE", active), pid))
	if m, err := shimsRSS(dataDir); err == nil {
		rows = append(rows, row{name: fmt.Sprintf("shims of %d servers", m.n), n: 1,
			extra: fmt.Sprintf("VmRSS %s, own (RssAnon) %s, Pss %s", formatBytes(m.rss), formatBytes(m.anon), formatBytes(m.pss))})
	}
	var lists, shows, flavors []time.Duration
	timed := func(into *[]time.Duration, path string) error {
		t0 := time.Now()
		if _, err := oc.do(http.MethodGet, path, nil, nil, http.StatusOK); err != nil {
			return err
		}
		*into = append(*into, time.Since(t0))
		return nil
	}
	for i := range scaleSamples {
		id := ids[i*len(ids)/scaleSamples]
		if err := timed(&lists, "/compute/v2.1/servers/detail?limit=1000"); err != nil {
			return rows, err
		}
		if err := timed(&shows, "/compute/v2.1/servers/"+id); err != nil {
			return rows, err
		}
		if err := timed(&flavors, "/compute/v2.1/flavors/detail"); err != nil {
			return rows, err
		}
	}
	rows = append(rows,
		latencyRow(fmt.Sprintf("GET /servers/detail (all %d)", active), "-", lists, 0, ""),
		latencyRow(fmt.Sprintf("GET /servers/{id}, %d running", active), "-", shows, 0, ""),
		latencyRow(fmt.Sprintf("GET /flavors/detail, %d running", active), "-", flavors, 0, ""))

	// 4. Delete them all.
	t0 := time.Now()
	if err := f.cleanup(); err != nil {
		return rows, err
	}
	rows = append(rows, row{name: fmt.Sprintf("delete all %d servers, %d clients", len(ids), scaleClients), n: len(ids),
		rate: float64(len(ids)) / time.Since(t0).Seconds(), extra: "all gone after " + fmtDur(time.Since(t0))})
	rows = append(rows, rssNow("monostack RSS, after deleting them", pid))
	return rows, nil
}
