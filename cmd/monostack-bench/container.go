package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The "container" benchmark (root only, like server-create and volume):
// the containers API (Zun v1, /container/v1) of a monostack started here,
// through the real API as admin, with busybox running `sleep 3600`.
//
//  0. The admin project's container quota (containers 1000, cpu, memory
//     and disk unlimited) and Neutron port quota (unlimited) are raised.
//  1. run → Running: n times, one at a time, POST /v1/containers?run=true
//     with nets [{"network": "private"}] and, interleaved, with no nets (an
//     admin's container then has no network: admin owns none), each timed
//     until the first GET that shows it Running; each is deleted (force)
//     before the next, and that time, until the GET answers 404, is a row
//     of its own;
//  2. exec: POST /v1/containers/{uuid}/execute?command=… of `true` and of
//     `echo x` (its output checked) against one running container, from 1
//     and then 4 clients, each for --duration after --warmup;
//  3. burst: burstN containers (on --container-net) posted by burstClients
//     clients at once, each timed from its POST to the first list that
//     shows it Running, and the wall time until all are; then all deleted
//     (force) by as many clients, timed until the list no longer shows
//     them;
//  4. scale: the monostack process's VmRSS and VmHWM (the shims not
//     counted) with 0 containers, then with each of scaleCounts running
//     (filled by burstClients clients, read --idle after the last is
//     Running); the shims' memory with the most; there, shows, lists and
//     execs are timed one at a time; then all are deleted, timed as in 3.
//
// Sequential states are polled with GET every containerPoll; many at a
// time with one list (GET /v1/containers) every listPoll, so that the
// polling itself does not load the 2 cores with hundreds of requests a
// second. Either way a time is up to a poll interval (plus a list) late.
// Whatever is left when the benchmark stops (an error, SIGINT or SIGTERM)
// is deleted through the API, and `monostack purge` then removes what
// the API missed (all of it when the signal went to the whole process
// group and the monostack stopped too).
const (
	containerPoll = 5 * time.Millisecond
	listPoll      = 100 * time.Millisecond
	zunVersion    = "container 1.40"
	burstN        = 200
	burstClients  = 20
	// runLimit bounds the wait for one container to run, or to go.
	runLimit = 2 * time.Minute
	// fleetLimit bounds the wait for many containers to run, or to go.
	fleetLimit = 10 * time.Minute
	// atScaleSamples is how many lists, shows and execs are timed with
	// the most containers running.
	atScaleSamples = 20
	// syncGap is more than the 100 ms within which the service answers a
	// show or a list without reading the host's states again.
	syncGap = 150 * time.Millisecond
	// apiGone is how long lists may fail without an answer before a wait
	// gives up: the monostack is gone (a signal to the whole process
	// group, a crash), and the purge that follows cleans up.
	apiGone = 10 * time.Second
)

// scaleCounts are the numbers of running containers at which the
// monostack's memory is read (besides 0).
var scaleCounts = []int{100, 500}

// zunClient is an admin's token and the containers API calls made with it.
type zunClient struct {
	*osClient
	mu   sync.Mutex
	live map[string]bool // containers made and not yet seen deleted
}

func (z *zunClient) add(id string) {
	z.mu.Lock()
	z.live[id] = true
	z.mu.Unlock()
}

func (z *zunClient) gone(id string) {
	z.mu.Lock()
	delete(z.live, id)
	z.mu.Unlock()
}

const zunPath = "/container/v1/containers"

// ctr is what the benchmark reads of a container.
type ctr struct {
	UUID         string  `json:"uuid"`
	Name         string  `json:"name"`
	Status       string  `json:"status"`
	StatusReason *string `json:"status_reason"`
}

func (c ctr) reason() string {
	if c.StatusReason == nil {
		return ""
	}
	return *c.StatusReason
}

// run posts a running busybox `sleep 3600` named name, on network net
// ("" for none), and returns its uuid.
func (z *zunClient) run(name, net string) (string, error) {
	body := map[string]any{"name": name, "image": "busybox", "command": []string{"sleep", "3600"}}
	if net != "" {
		body["nets"] = []any{map[string]any{"network": net}}
	}
	var c ctr
	if _, err := z.do(http.MethodPost, zunPath+"?run=true", body, &c, http.StatusAccepted); err != nil {
		return "", fmt.Errorf("run %s: %w", name, err)
	}
	z.add(c.UUID)
	return c.UUID, nil
}

// show is a container, or ok false when it is gone.
func (z *zunClient) show(id string) (c ctr, ok bool, err error) {
	_, err = z.do(http.MethodGet, zunPath+"/"+id, nil, &c, http.StatusOK)
	if statusOf(err) == http.StatusNotFound {
		return c, false, nil
	}
	return c, err == nil, err
}

// list is every container of every project, by uuid.
func (z *zunClient) list() (map[string]ctr, error) {
	var l struct {
		Containers []ctr `json:"containers"`
	}
	if _, err := z.do(http.MethodGet, zunPath+"?all_projects=True&limit=1000", nil, &l, http.StatusOK); err != nil {
		return nil, err
	}
	out := make(map[string]ctr, len(l.Containers))
	for _, c := range l.Containers {
		out[c.UUID] = c
	}
	return out, nil
}

// del asks for a forced delete; a container already gone is not an error.
func (z *zunClient) del(id string) error {
	_, err := z.do(http.MethodDelete, zunPath+"/"+id+"?force=True", nil, nil, http.StatusNoContent)
	if statusOf(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// wait polls a container every containerPoll until it is Running (want
// "Running") or gone (want ""), and returns the time from t0 to the first
// answer that showed it. Error, or limit passing, is an error.
func (z *zunClient) wait(id, want string, t0 time.Time) (time.Duration, error) {
	deadline := t0.Add(runLimit)
	last := ""
	for {
		c, ok, err := z.show(id)
		if err != nil {
			return 0, err
		}
		if !ok {
			z.gone(id)
			if want == "" {
				return time.Since(t0), nil
			}
			return 0, fmt.Errorf("container %s is gone, waiting for %q", id, want)
		}
		if c.Status == want {
			return time.Since(t0), nil
		}
		if c.Status == "Error" {
			return 0, fmt.Errorf("container %s is Error (%s), waiting for %q", id, c.reason(), want)
		}
		last = c.Status
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("container %s still %q after %s, waiting for %q", id, last, runLimit, want)
		}
		select {
		case <-z.ctx.Done():
			return 0, z.ctx.Err()
		case <-time.After(containerPoll):
		}
	}
}

// exec runs a command in a container and returns its output, checking
// that it exited 0.
func (z *zunClient) exec(id, command string) (string, error) {
	var r struct {
		Output   *string `json:"output"`
		ExitCode *int    `json:"exit_code"`
	}
	if _, err := z.do(http.MethodPost, zunPath+"/"+id+"/execute?command="+url.QueryEscape(command), nil, &r, http.StatusOK); err != nil {
		return "", err
	}
	if r.ExitCode == nil || *r.ExitCode != 0 || r.Output == nil {
		out := ""
		if r.Output != nil {
			out = *r.Output
		}
		return out, fmt.Errorf("exec %q: exit code %v: %s", command, r.ExitCode, out)
	}
	return *r.Output, nil
}

// fleetResult is what a fleet operation measured.
type fleetResult struct {
	times   []time.Duration // per container: its request → the first list that showed the result
	wall    time.Duration   // first request → the last container done
	errs    int
	errText string
	ids     []string // the containers the requests were accepted for
	done    []string // those done (Running, or gone)
}

func (f *fleetResult) fail(text string) {
	f.errs++
	if f.errText == "" {
		f.errText = text
	}
}

// fleet runs op(0) … op(n-1) from clients clients at once; op returns the
// container it acted on. One poller lists the containers every listPoll
// and, for each container acted on, calls done on what the list shows
// (ok false: not in the list) to see whether it is done or failed.
func (z *zunClient) fleet(n, clients int, op func(i int) (string, error), done func(c ctr, ok bool) (bool, string)) (fleetResult, error) {
	var res fleetResult
	var mu sync.Mutex
	// pending: the containers acted on and not yet done, with when their
	// request was sent and when it was answered.
	type sent struct{ t0, answered time.Time }
	pending := map[string]sent{}
	next := make(chan int)
	posted := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				id, err := op(i)
				mu.Lock()
				if err != nil {
					if z.ctx.Err() == nil {
						res.fail(err.Error())
					}
				} else {
					pending[id] = sent{t0, time.Now()}
					res.ids = append(res.ids, id)
				}
				mu.Unlock()
			}
		})
	}
	go func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-z.ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(posted) }()
	deadline := start.Add(fleetLimit)
	// progress is when a container was last done (or the last request
	// answered): a container stuck, with no progress for runLimit, ends
	// the wait.
	progress := start
	allPosted, postedCh := false, posted
	var listFailed time.Time // since when lists have failed without an answer
	for {
		select {
		case <-postedCh:
			allPosted, postedCh = true, nil
		case <-z.ctx.Done():
			<-posted
			return res, z.ctx.Err()
		case <-time.After(listPoll):
		}
		asked := time.Now()
		l, err := z.list()
		at := time.Now()
		if err != nil {
			if z.ctx.Err() != nil {
				<-posted
				return res, z.ctx.Err()
			}
			// A monostack that stopped answering (it went away) ends
			// the wait; one that answers with an error is retried.
			if statusOf(err) == 0 {
				if listFailed.IsZero() {
					listFailed = at
				}
				if at.Sub(listFailed) > apiGone {
					<-posted
					return res, fmt.Errorf("the containers API has not answered for %s: %w", apiGone, err)
				}
			}
			mu.Lock()
			res.fail("list: " + err.Error())
			mu.Unlock()
		} else {
			listFailed = time.Time{}
		}
		mu.Lock()
		for id, p := range pending {
			if err != nil || p.answered.After(asked) {
				continue // the list may have been read before the request was done
			}
			c, ok := l[id]
			fin, failed := done(c, ok)
			switch {
			case failed != "":
				res.fail(fmt.Sprintf("container %s: %s", id, failed))
				delete(pending, id)
			case fin:
				res.times = append(res.times, at.Sub(p.t0))
				res.done = append(res.done, id)
				delete(pending, id)
				progress = at
			}
			if p.answered.After(progress) {
				progress = p.answered
			}
		}
		left := len(pending)
		mu.Unlock()
		if allPosted && left == 0 {
			res.wall = time.Since(start)
			return res, nil
		}
		if now := time.Now(); now.After(deadline) || (allPosted && now.Sub(progress) > runLimit) {
			<-posted
			mu.Lock()
			defer mu.Unlock()
			stuck := map[string]int{}
			for id := range pending {
				stuck[l[id].Status]++
			}
			msg := fmt.Sprintf("%d containers not done after %s, none done in the last %s (by status: %v)",
				len(pending), fmtDur(time.Since(start)), fmtDur(time.Since(progress)), stuck)
			if res.errText != "" {
				msg += "; first other error: " + res.errText
			}
			res.errs += len(pending)
			res.errText = msg
			res.wall = time.Since(start)
			return res, nil
		}
	}
}

// runMany runs n containers (names prefix-0 …) on network net from
// clients clients at once, until each is Running.
func (z *zunClient) runMany(prefix string, n, clients int, net string) (fleetResult, error) {
	return z.fleet(n, clients, func(i int) (string, error) {
		return z.run(fmt.Sprintf("%s-%d", prefix, i), net)
	}, func(c ctr, ok bool) (bool, string) {
		switch {
		case !ok:
			return false, "gone from the list"
		case c.Status == "Error":
			return false, "Error: " + c.reason()
		}
		return c.Status == "Running", ""
	})
}

// deleteMany deletes ids (force) from clients clients at once, until the
// list no longer shows them.
func (z *zunClient) deleteMany(ids []string, clients int) (fleetResult, error) {
	res, err := z.fleet(len(ids), clients, func(i int) (string, error) {
		return ids[i], z.del(ids[i])
	}, func(c ctr, ok bool) (bool, string) {
		if ok && c.Status == "Error" {
			return false, "Error: " + c.reason()
		}
		return !ok, ""
	})
	for _, id := range res.ids {
		z.gone(id)
	}
	return res, err
}

// fleetRow is a row of the per-container times of a fleet operation, with
// the wall time and the rate in its note.
func fleetRow(name, target string, f fleetResult) row {
	r := latencyRow(name, target, f.times, f.errs, f.errText)
	if f.wall > 0 {
		r.rate = float64(len(f.times)) / f.wall.Seconds()
		r.extra = strings.TrimPrefix(r.extra+"; all done after "+fmtDur(f.wall), "; ")
	}
	return r
}

// cleanup deletes (force) every container the API lists, and any it
// made that the list does not show, and waits until they are gone.
func (z *zunClient) cleanup() error {
	l, err := z.list()
	if err != nil {
		return err
	}
	z.mu.Lock()
	ids := make([]string, 0, len(l))
	for id := range l {
		ids = append(ids, id)
	}
	for id := range z.live {
		if _, ok := l[id]; !ok {
			ids = append(ids, id)
		}
	}
	z.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	f, err := z.deleteMany(ids, burstClients)
	if err == nil && f.errs > 0 {
		err = fmt.Errorf("%d containers not deleted (first: %s)", f.errs, f.errText)
	}
	return err
}

// procFields reads fields given in kB ("VmRSS", "Pss", …) from a file of
// /proc/<pid> ("status", "smaps_rollup"), in bytes; every one of keys
// must be there.
func procFields(pid int, file string, keys ...string) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(keys, k) {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return nil, err
		}
		out[k] = n * 1024
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("no %s in /proc/%d/%s", k, pid, file)
		}
	}
	return out, nil
}

// procStatus returns a process's VmRSS and VmHWM from /proc (Linux).
func procStatus(pid int) (rss, hwm int64, err error) {
	m, err := procFields(pid, "status", "VmRSS", "VmHWM")
	return m["VmRSS"], m["VmHWM"], err
}

// shimMemory is what the shims of a data dir hold: the sums of their
// VmRSS (which counts the pages of the binary they share once per shim),
// of RssAnon (their own pages) and of Pss (shared pages divided among
// the processes that map them: what they cost together).
type shimMemory struct {
	n              int
	rss, anon, pss int64
	pssOK          bool
}

// shimsRSS sums the memory of the `monostack shim` processes of dataDir's
// containers.
func shimsRSS(dataDir string) (m shimMemory, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return m, err
	}
	m.pssOK = true
	prefix := filepath.Clean(dataDir) + "/"
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 4 || args[1] != "shim" {
			continue
		}
		i := slices.Index(args, "--dir")
		if i < 0 || i+1 >= len(args) || !strings.HasPrefix(args[i+1], prefix) {
			continue
		}
		st, err := procFields(pid, "status", "VmRSS", "RssAnon")
		if err != nil {
			continue // gone meanwhile
		}
		m.n++
		m.rss += st["VmRSS"]
		m.anon += st["RssAnon"]
		if sm, err := procFields(pid, "smaps_rollup", "Pss"); err == nil {
			m.pss += sm["Pss"]
		} else {
			m.pssOK = false
		}
	}
	return m, nil
}

// rssNow is a row of the monostack's VmRSS and VmHWM.
func rssNow(name string, pid int) row {
	rss, hwm, err := procStatus(pid)
	if err != nil {
		return row{name: name, errs: 1, errText: err.Error()}
	}
	return row{name: name, n: 1, extra: fmt.Sprintf("VmRSS %s, VmHWM %s", formatBytes(rss), formatBytes(hwm))}
}

// containerBenchmarks runs the container benchmark against the monostack
// at base whose data dir is dataDir and process pid; n is the number of
// samples of each sequential latency, net the network of the burst and
// scale phases ("" for none), d and warmup the length of each exec load.
func containerBenchmarks(ctx context.Context, base string, creds credentials, dataDir string, pid, n int, net string, d, warmup, idle time.Duration) (rows []row, retErr error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("container: needs root (runc, namespaces)")
	}
	oc, err := newOSClient(ctx, base, creds)
	if err != nil {
		return nil, err
	}
	oc.http = &http.Client{Timeout: 2 * time.Minute,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2 * burstClients, DisableCompression: true}}
	defer oc.http.CloseIdleConnections()
	oc.header = http.Header{"Openstack-Api-Version": {zunVersion}}
	z := &zunClient{osClient: oc, live: map[string]bool{}}

	// Whatever is left, on an error or a signal: deleted through the API
	// (the purge that follows removes what this misses).
	defer func() {
		cc := *oc
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fleetLimit)
		defer cancel()
		cc.ctx = cctx
		zc := &zunClient{osClient: &cc, live: z.live}
		if err := zc.cleanup(); err != nil && retErr == nil {
			retErr = fmt.Errorf("cleaning up containers: %w", err)
		}
	}()

	most := slices.Max(scaleCounts)
	if _, err := z.do(http.MethodPut, "/container/v1/quotas/"+z.project,
		map[string]any{"containers": 2 * most, "cpu": -1, "memory": -1, "disk": -1}, nil, http.StatusOK); err != nil {
		return nil, fmt.Errorf("setting the container quota: %w", err)
	}
	// Each container on a network has a port of the project: the
	// project's port quota (500) would refuse the last ones.
	if _, err := z.do(http.MethodPut, "/network/v2.0/quotas/"+z.project,
		map[string]any{"quota": map[string]any{"port": -1}}, nil, http.StatusOK); err != nil {
		return nil, fmt.Errorf("setting the port quota: %w", err)
	}
	rows = append(rows, rssNow("monostack RSS, 0 containers (before any)", pid))

	// 1. run → Running, one at a time, with and without a network.
	phase := startCtrPhase(pid)
	kinds := []struct{ name, net string }{{"nets private", "private"}, {"no nets", ""}}
	runs := make([][]time.Duration, len(kinds))
	var deletes []time.Duration
	rErrs := make([]int, len(kinds))
	rErrText := make([]string, len(kinds))
	dErrs, dErrText := 0, ""
	for i := range n {
		for k, kind := range kinds {
			t0 := time.Now()
			id, err := z.run(fmt.Sprintf("bench-seq-%d-%d", k, i), kind.net)
			if err != nil {
				return rows, err
			}
			if d, err := z.wait(id, "Running", t0); err != nil {
				if ctx.Err() != nil {
					return rows, ctx.Err()
				}
				rErrs[k]++
				rErrText[k] = err.Error()
			} else {
				runs[k] = append(runs[k], d)
			}
			t0 = time.Now()
			if err := z.del(id); err != nil {
				return rows, fmt.Errorf("delete: %w", err)
			}
			d, err := z.wait(id, "", t0)
			if err != nil {
				if ctx.Err() != nil {
					return rows, ctx.Err()
				}
				dErrs++
				dErrText = err.Error()
				continue
			}
			deletes = append(deletes, d)
		}
	}
	var part []row
	for k, kind := range kinds {
		part = append(part, latencyRow("run → Running, one at a time, "+kind.name, "p50 < 200ms", runs[k], rErrs[k], rErrText[k]))
	}
	part = append(part, latencyRow("delete (force) → gone, one at a time", "-", deletes, dErrs, dErrText))
	phase.fill(part)
	rows = append(rows, part...)

	// 2. exec round trips against one running container.
	t0 := time.Now()
	id, err := z.run("bench-exec", "")
	if err != nil {
		return rows, err
	}
	if _, err := z.wait(id, "Running", t0); err != nil {
		return rows, err
	}
	for _, cmd := range []struct{ command, want string }{{"true", ""}, {"echo x", "x"}} {
		for _, clients := range []int{1, 4} {
			if warmup > 0 {
				execLoad(z, id, cmd.command, cmd.want, clients, warmup)
			}
			phase := startCtrPhase(pid)
			r := execLoad(z, id, cmd.command, cmd.want, clients, d)
			r.name = fmt.Sprintf("exec %q, %d client(s)", cmd.command, clients)
			rs := []row{r}
			phase.fill(rs)
			rows = append(rows, rs...)
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
		}
	}
	if err := z.del(id); err != nil {
		return rows, err
	}
	if _, err := z.wait(id, "", time.Now()); err != nil {
		return rows, err
	}
	rows = append(rows, rssNow("monostack RSS, 0 containers (after phases 1-2)", pid))

	netName := net
	if netName == "" {
		netName = "no nets"
	}
	// 3. A burst of runs at once, then of deletes.
	phase = startCtrPhase(pid)
	f, err := z.runMany("bench-burst", burstN, burstClients, net)
	if err != nil {
		return rows, err
	}
	part = []row{fleetRow(fmt.Sprintf("run → Running, %d at once (%d clients, %s)", burstN, burstClients, netName), "-", f)}
	phase.fill(part)
	rows = append(rows, part...)
	phase = startCtrPhase(pid)
	f, err = z.deleteMany(f.ids, burstClients)
	if err != nil {
		return rows, err
	}
	part = []row{fleetRow(fmt.Sprintf("delete (force) → gone, %d at once (%d clients)", len(f.ids), burstClients), "-", f)}
	phase.fill(part)
	rows = append(rows, part...)

	// 4. Memory with more and more containers running.
	var made, running []string // all made, and those that ran
	for _, count := range scaleCounts {
		phase := startCtrPhase(pid)
		f, err := z.runMany(fmt.Sprintf("bench-scale-%d", count), count-len(made), burstClients, net)
		from := len(made)
		made, running = append(made, f.ids...), append(running, f.done...)
		if err != nil {
			return rows, err
		}
		part := []row{fleetRow(fmt.Sprintf("run → Running, %d → %d containers (%d clients, %s)", from, count, burstClients, netName), "-", f)}
		phase.fill(part)
		rows = append(rows, part...)
		select {
		case <-time.After(idle):
		case <-ctx.Done():
			return rows, ctx.Err()
		}
		rows = append(rows, rssNow(fmt.Sprintf("monostack RSS, %d containers, %d Running", len(made), len(running)), pid))
		if count == most {
			m, err := shimsRSS(dataDir)
			r := row{name: fmt.Sprintf("shims' memory, %d containers, %d Running", len(made), len(running)), n: m.n}
			if err != nil {
				r.errs, r.errText = 1, err.Error()
			} else if k := int64(m.n); k > 0 {
				r.extra = fmt.Sprintf("sum of VmRSS %s (%s each), of RssAnon %s (%s each)",
					formatBytes(m.rss), formatBytes(m.rss/k), formatBytes(m.anon), formatBytes(m.anon/k))
				if m.pssOK {
					r.extra += fmt.Sprintf(", of Pss %s (%s each)", formatBytes(m.pss), formatBytes(m.pss/k))
				}
			}
			rows = append(rows, r)
			if len(running) > 0 {
				r2, err := atScale(z, running)
				rows = append(rows, r2...)
				if err != nil {
					return rows, err
				}
			}
		}
	}
	phase = startCtrPhase(pid)
	f, err = z.deleteMany(made, burstClients)
	if err != nil {
		return rows, err
	}
	part = []row{fleetRow(fmt.Sprintf("delete (force) → gone, %d at once (%d clients)", len(made), burstClients), "-", f)}
	phase.fill(part)
	rows = append(rows, part...)
	rows = append(rows, rssNow("monostack RSS, 0 containers (after deleting them)", pid))
	return rows, nil
}

// atScale times, one at a time, shows of a container (the first after
// syncGap, when the service syncs its records with the host before it
// answers, and one right after it, when it does not), lists of all
// containers and execs of `true`, with many running.
func atScale(z *zunClient, running []string) ([]row, error) {
	var synced, shows, lists, execs []time.Duration
	timed := func(into *[]time.Duration, fn func() error) error {
		t0 := time.Now()
		if err := fn(); err != nil {
			return err
		}
		*into = append(*into, time.Since(t0))
		return nil
	}
	for i := range atScaleSamples {
		id := running[i*len(running)/atScaleSamples]
		select {
		case <-time.After(syncGap):
		case <-z.ctx.Done():
			return nil, z.ctx.Err()
		}
		show := func() error { _, _, err := z.show(id); return err }
		if err := timed(&synced, show); err != nil {
			return nil, err
		}
		if err := timed(&shows, show); err != nil {
			return nil, err
		}
		if err := timed(&lists, func() error {
			l, err := z.list()
			if err == nil && len(l) < len(running) {
				err = fmt.Errorf("the list shows %d containers, %d are Running", len(l), len(running))
			}
			return err
		}); err != nil {
			return nil, err
		}
		if err := timed(&execs, func() error { _, err := z.exec(id, "true"); return err }); err != nil {
			return nil, err
		}
	}
	k := len(running)
	return []row{
		latencyRow(fmt.Sprintf("GET /v1/containers/{uuid}, %d running, first in %s", k, syncGap), "-", synced, 0, ""),
		latencyRow(fmt.Sprintf("GET /v1/containers/{uuid}, %d running, right after", k), "-", shows, 0, ""),
		latencyRow(fmt.Sprintf("GET /v1/containers (all %d), right after", k), "-", lists, 0, ""),
		latencyRow(fmt.Sprintf("exec \"true\", 1 client, %d running", k), "-", execs, 0, ""),
	}, nil
}

// execLoad runs command in container id from clients clients for d, each
// checking that it exited 0 and printed want.
func execLoad(z *zunClient, id, command, want string, clients int, d time.Duration) row {
	results := make([]result, clients)
	t0 := time.Now()
	end := t0.Add(d)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			r := &results[i]
			for z.ctx.Err() == nil && time.Now().Before(end) {
				s := time.Now()
				out, err := z.exec(id, command)
				lat := time.Since(s)
				switch {
				case err != nil:
					if z.ctx.Err() == nil {
						r.fail(err.Error())
					}
				case out != want:
					r.fail(fmt.Sprintf("exec %q printed %q, want %q", command, out, want))
				default:
					r.samples = append(r.samples, lat)
					r.n++
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(t0)
	var all []time.Duration
	errs, errText := 0, ""
	for _, r := range results {
		all = append(all, r.samples...)
		errs += r.errs
		if errText == "" {
			errText = r.errText
		}
	}
	out := latencyRow("", "-", all, errs, errText)
	out.rate = float64(len(all)) / el.Seconds()
	return out
}

// childrenCPU returns the CPU time of a process's children that it has
// waited for (cutime+cstime in /proc/<pid>/stat): for the monostack, the
// runc (and ip, nft) commands it ran; not the shims, which it does not
// wait for.
func childrenCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[13], 10, 64)
	st, err2 := strconv.ParseInt(f[14], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * (time.Second / 100), true
}

// ctrPhase is a cpuPhase that also tells, in the rows' notes, how many
// cores the monostack's children (runc) kept busy: they are part of
// "other CPU".
type ctrPhase struct {
	cpuPhase
	child0 time.Duration
	ok     bool
}

func startCtrPhase(pid int) ctrPhase {
	c, ok := childrenCPU(pid)
	return ctrPhase{cpuPhase: startPhase(pid), child0: c, ok: ok}
}

func (p ctrPhase) fill(rows []row) {
	p.cpuPhase.fill(rows)
	c, ok := childrenCPU(p.pid)
	el := time.Since(p.t0)
	if !p.ok || !ok || el <= 0 {
		return
	}
	note := fmt.Sprintf("server's children (runc) %.2f cores, in other CPU", float64(c-p.child0)/float64(el))
	for i := range rows {
		rows[i].extra = strings.TrimPrefix(rows[i].extra+"; "+note, "; ")
	}
}
