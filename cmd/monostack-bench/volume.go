package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The "volume" benchmark (root only, like server-create): Block Storage
// through the real API of a monostack started here, and the throughput of
// a volume inside a server.
//
//  1. create → available of n volumes of 1, 10 and 100 GiB, interleaved
//     (each deleted, untimed, before the next; the delete → gone times are
//     a row of their own);
//  2. attach → in-use and detach → available of n fresh 1 GiB volumes on
//     one server (busybox, m1.tiny, network private), one at a time;
//  3. sequential write (conv=fsync) and read of 1 GiB through the
//     server's /dev/vdb (a 2 GiB volume) with the image's dd, run by
//     `runc exec`, against the host's dd on a plain file in the data
//     dir's filesystem; ddRounds rounds, the first writes allocate and the
//     next overwrite, on both sides; page caches are dropped before each
//     read. Each dd is timed here, from exec to exit, less (in the server)
//     the median time of a `runc exec` of true.
//
// Every state change is seen by polling GET on the volume every
// volumePoll, so each time is up to volumePoll late. The CPU columns of
// a group of rows are over the whole of its phase; runc and the kernel's
// work (loop devices) count as "other".
const (
	volumePoll = 5 * time.Millisecond
	// ddRounds is how many times each of the four dd runs is repeated; the
	// median is reported.
	ddRounds = 5
	ddMiB    = 1024 // written and read by each dd
)

// volumeSizes are the sizes of the create benchmark, in GiB.
var volumeSizes = []int{1, 10, 100}

// osClient is a token and the calls the volume benchmark makes with it.
type osClient struct {
	ctx     context.Context
	http    *http.Client
	base    string
	token   string
	project string
	header  http.Header // more headers of every request (a microversion)
}

func newOSClient(ctx context.Context, base string, c credentials) (*osClient, error) {
	oc := &osClient{ctx: ctx, base: base,
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}}
	var tok struct {
		Token struct {
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	res, err := oc.do(http.MethodPost, "/identity/v3/auth/tokens", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": c.user, "domain": map[string]any{"id": "default"}, "password": c.password}}},
		"scope": map[string]any{"project": map[string]any{"name": c.project, "domain": map[string]any{"id": "default"}}},
	}}, &tok, http.StatusCreated)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	oc.token, oc.project = res.Header.Get("X-Subject-Token"), tok.Token.Project.ID
	return oc, nil
}

// apiError is an answer with an unexpected status.
type apiError struct {
	code int
	text string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.code, e.text) }

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.code
	}
	return 0
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil); an answer whose status is not one of want is an *apiError.
func (c *osClient) do(method, path string, in, out any, want ...int) (*http.Response, error) {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if !slices.Contains(want, res.StatusCode) {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return res, &apiError{res.StatusCode, strings.TrimSpace(string(b))}
	}
	if out != nil {
		return res, json.NewDecoder(res.Body).Decode(out)
	}
	_, err = io.Copy(io.Discard, res.Body)
	return res, err
}

func (c *osClient) volPath(rest string) string { return "/volume/v3/" + c.project + rest }

// volumeStatus is a volume's status, or "" and no error when it is gone.
func (c *osClient) volumeStatus(id string) (string, error) {
	var v struct {
		Volume struct{ Status string } `json:"volume"`
	}
	_, err := c.do(http.MethodGet, c.volPath("/volumes/"+id), nil, &v, http.StatusOK)
	if statusOf(err) == http.StatusNotFound {
		return "", nil
	}
	return v.Volume.Status, err
}

// waitVolume polls a volume until its status is want ("" for gone), and
// returns the time from t0 to the first answer that showed it. An error
// status, or limit passing, is an error.
func (c *osClient) waitVolume(id, want string, t0 time.Time, limit time.Duration) (time.Duration, error) {
	deadline := t0.Add(limit)
	last := ""
	for {
		st, err := c.volumeStatus(id)
		if err != nil {
			return 0, err
		}
		if st == want {
			return time.Since(t0), nil
		}
		if strings.HasPrefix(st, "error") {
			return 0, fmt.Errorf("volume %s is %s, waiting for %q", id, st, want)
		}
		last = st
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("volume %s still %q after %s, waiting for %q", id, last, limit, want)
		}
		select {
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		case <-time.After(volumePoll):
		}
	}
}

// createVolume posts a volume of size GiB and returns its id.
func (c *osClient) createVolume(name string, size int) (string, error) {
	var v struct {
		Volume struct{ ID string } `json:"volume"`
	}
	_, err := c.do(http.MethodPost, c.volPath("/volumes"), map[string]any{"volume": map[string]any{"size": size, "name": name}},
		&v, http.StatusAccepted)
	return v.Volume.ID, err
}

// deleteVolume deletes a volume and waits until it is gone.
func (c *osClient) deleteVolume(id string) (time.Duration, error) {
	t0 := time.Now()
	if _, err := c.do(http.MethodDelete, c.volPath("/volumes/"+id), nil, nil, http.StatusAccepted); err != nil {
		if statusOf(err) == http.StatusNotFound {
			return 0, nil
		}
		return 0, err
	}
	return c.waitVolume(id, "", t0, time.Minute)
}

// attach attaches a volume to a server and returns the device it is given.
func (c *osClient) attach(serverID, volumeID string) (string, error) {
	var a struct {
		VolumeAttachment struct{ Device string } `json:"volumeAttachment"`
	}
	_, err := c.do(http.MethodPost, "/compute/v2.1/servers/"+serverID+"/os-volume_attachments",
		map[string]any{"volumeAttachment": map[string]any{"volumeId": volumeID}}, &a, http.StatusOK)
	return a.VolumeAttachment.Device, err
}

// detach asks for a detach, retrying every volumePoll while compute
// answers 400 or 409: it may not have recorded the attachment as done yet
// when the volume already shows in-use.
// It returns when the DELETE was accepted, and the refusals.
func (c *osClient) detach(serverID, volumeID string) (time.Time, []int, error) {
	var refused []int
	deadline := time.Now().Add(30 * time.Second)
	for {
		t0 := time.Now()
		_, err := c.do(http.MethodDelete, "/compute/v2.1/servers/"+serverID+"/os-volume_attachments/"+volumeID, nil, nil, http.StatusAccepted)
		if err == nil {
			return t0, refused, nil
		}
		code := statusOf(err)
		if (code != http.StatusBadRequest && code != http.StatusConflict) || time.Now().After(deadline) {
			return t0, refused, err
		}
		refused = append(refused, code)
		time.Sleep(volumePoll)
	}
}

// cpuPhase measures how the host's cores were shared during a part of the
// benchmark: the server, this program, anything else.
type cpuPhase struct {
	pid                int
	t0                 time.Time
	srv0, self0, host0 time.Duration
	ok                 bool
}

func startPhase(pid int) cpuPhase {
	p := cpuPhase{pid: pid, t0: time.Now()}
	var ok1, ok2, ok3 bool
	p.srv0, ok1 = cpuTime(pid)
	p.self0, ok2 = cpuTime(os.Getpid())
	p.host0, ok3 = hostBusy()
	p.ok = pid != 0 && ok1 && ok2 && ok3
	return p
}

// fill sets the CPU columns of rows from the phase's start to now.
func (p cpuPhase) fill(rows []row) {
	srv1, ok1 := cpuTime(p.pid)
	self1, ok2 := cpuTime(os.Getpid())
	host1, ok3 := hostBusy()
	el := time.Since(p.t0)
	if !p.ok || !ok1 || !ok2 || !ok3 || el <= 0 {
		return
	}
	srv, self := float64(srv1-p.srv0)/float64(el), float64(self1-p.self0)/float64(el)
	other := max(float64(host1-p.host0)/float64(el)-srv-self, 0)
	for i := range rows {
		rows[i].srvCPU, rows[i].cliCPU, rows[i].other, rows[i].otherOK = srv, self, other, true
	}
}

// latencyRow is a row of latencies with p95 and min in its note.
func latencyRow(name, target string, d []time.Duration, errs int, errText string) row {
	slices.Sort(d)
	r := row{name: name, n: len(d), target: target, errs: errs, errText: errText}
	if len(d) > 0 {
		r.p50, r.p99, r.max = pct(d, 50), pct(d, 99), d[len(d)-1]
		r.extra = fmt.Sprintf("p95 %s, min %s", fmtDur(pct(d, 95)), fmtDur(d[0]))
	}
	return r
}

// volumeBenchmarks runs the volume benchmark against the monostack at base
// whose data dir is dataDir and process pid; n is the number of samples
// of each latency.
func volumeBenchmarks(ctx context.Context, base string, creds credentials, dataDir string, pid, n int) (rows []row, retErr error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("volume: needs root (loop devices, runc, drop_caches)")
	}
	c, err := newOSClient(ctx, base, creds)
	if err != nil {
		return nil, err
	}
	defer c.http.CloseIdleConnections()

	// What is left when the benchmark stops half-way: removed through the
	// API (and the purge that follows removes whatever this misses).
	live := map[string]bool{} // volumes
	var server string
	attached := map[string]bool{}
	defer func() {
		cc := *c
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		cc.ctx = cctx
		for id := range attached {
			if _, _, err := cc.detach(server, id); err == nil {
				cc.waitVolume(id, "available", time.Now(), time.Minute)
			}
		}
		for id := range live {
			if _, err := cc.deleteVolume(id); err != nil && retErr == nil {
				retErr = fmt.Errorf("cleaning up volume %s: %w", id, err)
			}
		}
		if server != "" {
			if err := deleteServer(&cc, server); err != nil && retErr == nil {
				retErr = fmt.Errorf("cleaning up server %s: %w", server, err)
			}
		}
	}()

	// Room for everything below: at most two volumes live at a time, the
	// largest 100 GiB.
	if _, err := c.do(http.MethodPut, c.volPath("/os-quota-sets/"+c.project),
		map[string]any{"quota_set": map[string]any{"volumes": 20, "gigabytes": 1024, "per_volume_gigabytes": -1}},
		nil, http.StatusOK); err != nil {
		return nil, fmt.Errorf("setting the volume quota: %w", err)
	}

	// 1. create → available, the sizes interleaved so that a drift of the
	// machine's load touches them alike.
	phase := startPhase(pid)
	created := make(map[int][]time.Duration)
	var deletes []time.Duration
	cErrs, dErrs := 0, 0
	var cErrText, dErrText string
	for i := range n {
		for _, size := range volumeSizes {
			t0 := time.Now()
			id, err := c.createVolume(fmt.Sprintf("bench-%dg-%d", size, i), size)
			if err != nil {
				return rows, fmt.Errorf("create a %d GiB volume: %w", size, err)
			}
			live[id] = true
			d, err := c.waitVolume(id, "available", t0, time.Minute)
			if err != nil {
				cErrs++
				cErrText = err.Error()
			} else {
				created[size] = append(created[size], d)
			}
			d, err = c.deleteVolume(id)
			if err != nil {
				dErrs++
				dErrText = err.Error()
				continue
			}
			delete(live, id)
			deletes = append(deletes, d)
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
		}
	}
	var part []row
	for _, size := range volumeSizes {
		target := "-"
		if size == 1 {
			target = "< 200ms"
		}
		part = append(part, latencyRow(fmt.Sprintf("volume create → available, %d GiB", size), target, created[size], 0, ""))
	}
	part[0].errs, part[0].errText = cErrs, cErrText
	part = append(part, latencyRow("volume delete → gone (all sizes)", "-", deletes, dErrs, dErrText))
	phase.fill(part)
	rows = append(rows, part...)

	// 2. One server, then attach → in-use and detach → available.
	t0 := time.Now()
	server, err = bootServer(c)
	if err != nil {
		return rows, err
	}
	boot := time.Since(t0)
	rows = append(rows, row{name: "server create → ACTIVE (m1.tiny, for the attaches)", n: 1, p50: boot, p99: boot, max: boot})

	phase = startPhase(pid)
	var attaches, detaches []time.Duration
	aErrs := 0
	refusals := map[int]int{} // by status
	var aErrText string
	for i := range n {
		id, err := c.createVolume(fmt.Sprintf("bench-attach-%d", i), 1)
		if err != nil {
			return rows, err
		}
		live[id] = true
		if _, err := c.waitVolume(id, "available", time.Now(), time.Minute); err != nil {
			return rows, err
		}
		t0 := time.Now()
		if _, err := c.attach(server, id); err != nil {
			return rows, fmt.Errorf("attach: %w", err)
		}
		attached[id] = true
		d, err := c.waitVolume(id, "in-use", t0, time.Minute)
		if err != nil {
			aErrs++
			aErrText = err.Error()
		} else {
			attaches = append(attaches, d)
		}
		t0, refused, err := c.detach(server, id)
		for _, code := range refused {
			refusals[code]++
		}
		if err != nil {
			return rows, fmt.Errorf("detach: %w", err)
		}
		d, err = c.waitVolume(id, "available", t0, time.Minute)
		if err != nil {
			return rows, fmt.Errorf("detach: %w", err)
		}
		delete(attached, id)
		detaches = append(detaches, d)
		if _, err := c.deleteVolume(id); err != nil {
			return rows, err
		}
		delete(live, id)
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	part = []row{
		latencyRow("attach → in-use (os-volume_attachments)", "-", attaches, aErrs, aErrText),
		latencyRow("detach → available", "-", detaches, 0, ""),
	}
	for code, k := range refusals {
		part[1].extra += fmt.Sprintf("; %d DELETEs refused (%d) after in-use", k, code)
	}
	phase.fill(part)
	rows = append(rows, part...)

	// 3. dd through /dev/vdb of the server and on the host.
	r, err := volumeThroughput(c, dataDir, server, live, attached)
	rows = append(rows, r...)
	return rows, err
}

// bootServer creates a server of the default image, flavor m1.tiny, on
// network private, and waits until it is ACTIVE.
func bootServer(c *osClient) (string, error) {
	var imgs struct {
		Images []struct{ ID string } `json:"images"`
	}
	var nets struct {
		Networks []struct{ ID string } `json:"networks"`
	}
	var flavors struct {
		Flavors []struct{ ID, Name string } `json:"flavors"`
	}
	if _, err := c.do(http.MethodGet, "/image/v2/images?name=busybox", nil, &imgs, http.StatusOK); err != nil || len(imgs.Images) == 0 {
		return "", fmt.Errorf("no busybox image: %v", err)
	}
	if _, err := c.do(http.MethodGet, "/network/v2.0/networks?name=private", nil, &nets, http.StatusOK); err != nil || len(nets.Networks) == 0 {
		return "", fmt.Errorf("no private network: %v", err)
	}
	if _, err := c.do(http.MethodGet, "/compute/v2.1/flavors", nil, &flavors, http.StatusOK); err != nil {
		return "", err
	}
	flavor := ""
	for _, f := range flavors.Flavors {
		if f.Name == "m1.tiny" {
			flavor = f.ID
		}
	}
	if flavor == "" {
		return "", errors.New("no flavor m1.tiny")
	}
	var out struct {
		Server struct{ ID string } `json:"server"`
	}
	if _, err := c.do(http.MethodPost, "/compute/v2.1/servers", map[string]any{"server": map[string]any{
		"name": "bench-volume", "imageRef": imgs.Images[0].ID, "flavorRef": flavor,
		"networks": []any{map[string]any{"uuid": nets.Networks[0].ID}}}}, &out, http.StatusAccepted); err != nil {
		return "", fmt.Errorf("create server: %w", err)
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var s struct {
			Server struct{ Status string } `json:"server"`
		}
		if _, err := c.do(http.MethodGet, "/compute/v2.1/servers/"+out.Server.ID, nil, &s, http.StatusOK); err != nil {
			return out.Server.ID, err
		}
		switch s.Server.Status {
		case "ACTIVE":
			return out.Server.ID, nil
		case "ERROR":
			return out.Server.ID, fmt.Errorf("server %s went to ERROR", out.Server.ID)
		}
	}
	return out.Server.ID, fmt.Errorf("server %s not ACTIVE after 2m", out.Server.ID)
}

// deleteServer deletes a server and waits until it is gone.
func deleteServer(c *osClient, id string) error {
	if _, err := c.do(http.MethodDelete, "/compute/v2.1/servers/"+id, nil, nil, http.StatusNoContent, http.StatusNotFound); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := c.do(http.MethodGet, "/compute/v2.1/servers/"+id, nil, nil, http.StatusOK); statusOf(err) == http.StatusNotFound {
			return nil
		}
	}
	return fmt.Errorf("server %s still there a minute after DELETE", id)
}

// volumeThroughput attaches a 2 GiB volume to server and compares dd
// through its device with dd on a file next to the data dir.
func volumeThroughput(c *osClient, dataDir, server string, live, attached map[string]bool) ([]row, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "agent-id"))
	if err != nil {
		return nil, err
	}
	runcRoot := filepath.Join("/run/monostack", strings.TrimSpace(string(b)), "runc")
	id, err := c.createVolume("bench-dd", 2)
	if err != nil {
		return nil, err
	}
	live[id] = true
	if _, err := c.waitVolume(id, "available", time.Now(), time.Minute); err != nil {
		return nil, err
	}
	dev, err := c.attach(server, id)
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	attached[id] = true
	if _, err := c.waitVolume(id, "in-use", time.Now(), time.Minute); err != nil {
		return nil, err
	}
	// The host's file: in the parent of the data dir, the same filesystem.
	file := filepath.Join(filepath.Dir(dataDir), "dd-host.img")
	defer os.Remove(file)

	inServer := func(script string) *exec.Cmd {
		return exec.CommandContext(c.ctx, "runc", "--root", runcRoot, "exec", server, "sh", "-c", script)
	}
	// What a `runc exec` costs with nothing to do, taken off the times
	// of the dds run in the server.
	var execs []time.Duration
	for range 5 {
		t0 := time.Now()
		if out, err := inServer("true").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("runc exec: %v: %s", err, out)
		}
		execs = append(execs, time.Since(t0))
	}
	slices.Sort(execs)
	execCost := execs[len(execs)/2]
	count := strconv.Itoa(ddMiB)
	runs := []struct {
		name     string
		cmd      func() *exec.Cmd
		read     bool
		overhead time.Duration
	}{
		// notrunc: the file is overwritten in place, as the volume is
		// (truncating it would free 1 GiB each round, and this ext4 is
		// mounted with discard).
		{"dd write 1 GiB, host file (conv=notrunc,fsync)", func() *exec.Cmd {
			return exec.CommandContext(c.ctx, "dd", "if=/dev/zero", "of="+file, "bs=1M", "count="+count, "conv=notrunc,fsync")
		}, false, 0},
		{"dd write 1 GiB, server " + dev + " (conv=fsync)", func() *exec.Cmd {
			return inServer("dd if=/dev/zero of=" + dev + " bs=1M count=" + count + " conv=fsync")
		}, false, execCost},
		{"dd read 1 GiB, host file (caches dropped)", func() *exec.Cmd {
			return exec.CommandContext(c.ctx, "dd", "if="+file, "of=/dev/null", "bs=1M", "count="+count)
		}, true, 0},
		{"dd read 1 GiB, server " + dev + " (caches dropped)", func() *exec.Cmd {
			return inServer("dd if=" + dev + " of=/dev/null bs=1M count=" + count)
		}, true, execCost},
	}
	speeds := make([][]float64, len(runs))
	for range ddRounds {
		for i, r := range runs {
			if r.read {
				if err := dropCaches(); err != nil {
					return nil, err
				}
			}
			mbs, err := runDD(r.cmd(), r.overhead)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.name, err)
			}
			speeds[i] = append(speeds[i], mbs)
		}
	}
	rows := []row{{name: "runc exec overhead (taken off the server dds)", n: len(execs), p50: execCost, max: execs[len(execs)-1]}}
	for i, r := range runs {
		var each []string
		for _, v := range speeds[i] {
			each = append(each, fmt.Sprintf("%.0f", v))
		}
		s := slices.Sorted(slices.Values(speeds[i]))
		rows = append(rows, row{name: r.name, n: len(s),
			extra: fmt.Sprintf("%.0f MB/s median; rounds %s", s[len(s)/2], strings.Join(each, " "))})
	}

	t0, _, err := c.detach(server, id)
	if err != nil {
		return rows, err
	}
	if _, err := c.waitVolume(id, "available", t0, time.Minute); err != nil {
		return rows, err
	}
	delete(attached, id)
	if _, err := c.deleteVolume(id); err != nil {
		return rows, err
	}
	delete(live, id)
	return rows, nil
}

// dropCaches writes the dirty pages back and drops the host's page cache.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200)
}

// runDD runs a dd of ddMiB MiB and returns the wall time it took, less
// overhead (what starting it costs). Busybox's dd prints no summary line
// with a time, so both dds are timed from here.
func runDD(cmd *exec.Cmd, overhead time.Duration) (float64, error) {
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0) - overhead
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	if want := fmt.Sprintf("%d+0 records out", ddMiB); !strings.Contains(string(out), want) || d <= 0 {
		return 0, fmt.Errorf("dd did not copy all %d MiB: %s", ddMiB, strings.TrimSpace(string(out)))
	}
	return float64(ddMiB<<20) / d.Seconds() / 1e6, nil
}
