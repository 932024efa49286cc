package acceptance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The containers API (Zun, "openstack appcontainer") against a real
// monostack: plain HTTP and JSON (gophercloud has no containers package),
// and the stock CLI for what the walkthrough does not cover.

// zun is a containers API client of one user: the catalog's "container"
// endpoint (…/container/v1) and a token, speaking microversion 1.40 as
// zunclient does.
type zun struct {
	t     *testing.T
	url   string
	token string
	// admin is an admin's token of the same cloud, for what Zun's policy
	// keeps to admins (a forced delete).
	admin string
}

// containerEndpoint finds the public "container" endpoint in the
// session's token catalog.
func containerEndpoint(t *testing.T, s session) string {
	t.Helper()
	sc, err := authResult(t, s).ExtractServiceCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range sc.Entries {
		if e.Type != "container" {
			continue
		}
		for _, ep := range e.Endpoints {
			if ep.Interface == "public" {
				return strings.TrimSuffix(ep.URL, "/")
			}
		}
	}
	t.Fatalf("no public container endpoint in the catalog: %+v", sc.Entries)
	return ""
}

func newZun(t *testing.T, s, admin session) zun {
	t.Helper()
	return zun{t: t, url: containerEndpoint(t, s), token: s.token(), admin: admin.token()}
}

// asAdmin is z calling with the admin's token.
func (z zun) asAdmin() zun {
	z.token = z.admin
	return z
}

// do sends a request (body: nil or a value sent as JSON) and returns the
// status and the body.
func (z zun) do(method, path string, body any) (int, []byte) {
	z.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			z.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, z.url+path, rd)
	if err != nil {
		z.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OpenStack-API-Version", "container 1.40")
	req.Header.Set("X-Auth-Token", z.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		z.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		z.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusNoContent && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		z.t.Errorf("%s %s: %d with content type %q", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, raw
}

// call sends a request, fails unless it answers want, and decodes the
// body into out (when not nil).
func (z zun) call(method, path string, body any, want int, out any) {
	z.t.Helper()
	code, raw := z.do(method, path, body)
	if code != want {
		z.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			z.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

func (z zun) show(id string) map[string]any {
	z.t.Helper()
	var m map[string]any
	z.call("GET", "/containers/"+id, nil, 200, &m)
	return m
}

// wait polls a container until it has the status and no task; "Error" or
// the deadline fails the test.
func (z zun) wait(id, status string, d time.Duration) map[string]any {
	z.t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, raw := z.do("GET", "/containers/"+id, nil)
		if status == "gone" && code == 404 {
			return nil
		}
		var m map[string]any
		if code == 200 {
			json.Unmarshal(raw, &m)
			if m["status"] == status && m["task_state"] == nil {
				return m
			}
			if m["status"] == "Error" && status != "Error" {
				z.t.Fatalf("container %s is Error: %v", id, m["status_reason"])
			}
		}
		if time.Now().After(deadline) {
			z.t.Fatalf("container %s: %d %s, waiting %s for %s", id, code, raw, d, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// action posts a container action: 202 with a null body.
func (z zun) action(id, action string) {
	z.t.Helper()
	code, raw := z.do("POST", "/containers/"+id+"/"+action, nil)
	if code != 202 || string(bytes.TrimSpace(raw)) != "null" {
		z.t.Fatalf("%s %s: %d %s", action, id, code, raw)
	}
}

// exec runs a command in a container (as zunclient quotes it) and returns
// its output and exit code.
func (z zun) exec(id string, args ...string) (string, int) {
	z.t.Helper()
	var quoted []string
	for _, a := range args {
		quoted = append(quoted, `"`+a+`"`)
	}
	var r struct {
		Output   string `json:"output"`
		ExitCode int    `json:"exit_code"`
	}
	z.call("POST", "/containers/"+id+"/execute?command="+url.QueryEscape(strings.Join(quoted, " ")), nil, 200, &r)
	return r.Output, r.ExitCode
}

// logs returns a container's logs (a JSON string).
func (z zun) logs(id string) string {
	z.t.Helper()
	var s string
	z.call("GET", "/containers/"+id+"/logs?stdout=True&stderr=True&timestamps=False&tail=all", nil, 200, &s)
	return s
}

// waitLogs polls a container's logs until they contain want n times.
func (z zun) waitLogs(id, want string, n int) string {
	z.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := z.logs(id)
		if strings.Count(l, want) >= n {
			return l
		}
		if time.Now().After(deadline) {
			z.t.Fatalf("logs of %s: %q, waiting for %d × %q", id, l, n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a container of busybox on the private network with a shell
// script as its command; it is force-deleted when the test ends.
func (z zun) run(name, script string) string {
	z.t.Helper()
	var m map[string]any
	z.call("POST", "/containers?run=true", map[string]any{"name": name, "image": "busybox",
		"command": []string{"sh", "-c", script}, "nets": []any{map[string]any{"network": "private"}}}, 202, &m)
	id, _ := m["uuid"].(string)
	if m["status"] != "Creating" || id == "" {
		z.t.Fatalf("run %s: %v", name, m)
	}
	z.t.Cleanup(func() { z.forget(id) })
	return id
}

// forget force-deletes a container the test may have left (when it
// failed), unless the daemon is down by then.
func (z zun) forget(id string) {
	req, _ := http.NewRequest("DELETE", z.url+"/containers/"+id+"?force=True", nil)
	req.Header.Set("X-Auth-Token", z.admin)
	req.Header.Set("OpenStack-API-Version", "container 1.40")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // the daemon is stopped: its purge removes the container
	}
	resp.Body.Close()
	if resp.StatusCode != 204 && resp.StatusCode != 404 {
		z.t.Errorf("cleanup: delete container %s: %d", id, resp.StatusCode)
	}
}

// portAddress returns a container's one port and its address.
func portAddress(t *testing.T, ct map[string]any) (portID, addr string) {
	t.Helper()
	addrs, _ := ct["addresses"].(map[string]any)
	for _, l := range addrs {
		for _, a := range l.([]any) {
			a := a.(map[string]any)
			if a["version"] == 4.0 {
				return a["port"].(string), a["addr"].(string)
			}
		}
	}
	t.Fatalf("container %v has no IPv4 address: %v", ct["uuid"], ct["addresses"])
	return "", ""
}

// runcState is runc's view of a container of the daemon's agent: its
// status ("running", "paused", "stopped"), or "" when runc has no such
// container.
func runcState(t *testing.T, d *daemon, id string) string {
	t.Helper()
	out, err := exec.Command("runc", "--root", d.agentRuncRoot(t), "state", id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("runc state %s: %v: %s", id, err, out)
	}
	return st.Status
}

// flagValue is the value of a flag the daemon was started with.
func (d *daemon) flagValue(name string) string {
	for i, a := range d.args {
		if a == name && i+1 < len(d.args) {
			return d.args[i+1]
		}
	}
	return ""
}

// hostLeftovers lists what the host still has of the containers: runc
// containers, network namespaces and the taps of their ports.
func hostLeftovers(t *testing.T, d *daemon, ids, ports []string) []string {
	t.Helper()
	var left []string
	out, _ := exec.Command("runc", "--root", d.agentRuncRoot(t), "list", "-q").Output()
	netns, _ := exec.Command("ip", "netns", "list").Output()
	agent, err := os.ReadFile(filepath.Join(d.dataDir, "agent-id"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if strings.Contains(string(out), id) {
			left = append(left, "runc container "+id)
		}
		if ns := "ms-" + strings.TrimSpace(string(agent)) + "-" + id; strings.Contains(string(netns), ns) {
			left = append(left, "netns "+ns)
		}
	}
	for _, p := range ports {
		if _, err := net.InterfaceByName("tap" + p[:11]); err == nil {
			left = append(left, "tap"+p[:11])
		}
	}
	return left
}

// TestContainerKill9: the walkthrough's containers (busybox on the private
// network) as demo, then kill -9 of the daemon while they run: they go on
// running, the daemon finds them as they are, a container whose process
// exited meanwhile is Stopped with its exit code, and deleting them all
// leaves nothing of them on the host.
func TestContainerKill9(t *testing.T) {
	needRoot(t)
	d := startTestDaemon(t)
	z := newZun(t, d.session(t, "demo"), d.session(t, "admin"))
	if !strings.HasSuffix(z.url, "/container/v1") {
		t.Errorf("container endpoint %s", z.url)
	}

	a := z.run(uniq("ctr-a"), "echo started; sleep 600")
	b := z.run(uniq("ctr-b"), "echo b started; sleep 600")
	ctA := z.wait(a, "Running", 60*time.Second)
	ctB := z.wait(b, "Running", 60*time.Second)
	portA, addrA := portAddress(t, ctA)
	portB, addrB := portAddress(t, ctB)
	private := netip.MustParsePrefix(d.flagValue("--private-cidr"))
	for _, addr := range []string{addrA, addrB} {
		if ip, err := netip.ParseAddr(addr); err != nil || !private.Contains(ip) {
			t.Errorf("address %s is not on the private network %s", addr, private)
		}
	}
	if runcState(t, d, a) != "running" {
		t.Errorf("runc: container a is %q", runcState(t, d, a))
	}
	z.waitLogs(a, "started", 1)

	// exec runs in the container: PID 1 is the container's command (the
	// shell runs its last command in its place: sleep 600).
	out, code := z.exec(a, "cat", "/proc/1/cmdline")
	if code != 0 || out != "sleep\x00600\x00" {
		t.Errorf("exec cat /proc/1/cmdline: %d %q", code, out)
	}
	if out, code := z.exec(a, "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exec exit 3: %d %q", code, out)
	}

	// pause, unpause, reboot.
	z.action(a, "pause")
	z.wait(a, "Paused", 30*time.Second)
	if st := runcState(t, d, a); st != "paused" {
		t.Errorf("runc: paused container is %q", st)
	}
	z.action(a, "unpause")
	z.wait(a, "Running", 30*time.Second)
	z.action(a, "reboot?timeout=1")
	z.wait(a, "Running", 60*time.Second)
	z.waitLogs(a, "started", 2)
	if _, code := z.exec(a, "true"); code != 0 {
		t.Errorf("exec after reboot: %d", code)
	}

	// stats and top.
	var stats map[string]any
	z.call("GET", "/containers/"+a+"/stats", nil, 200, &stats)
	if stats["CONTAINER"] != ctA["name"] || stats["MEM USAGE(MiB)"] == nil || stats["NET I/O(B)"] == nil {
		t.Errorf("stats %v", stats)
	}
	var top struct {
		Titles    []string   `json:"Titles"`
		Processes [][]string `json:"Processes"`
	}
	z.call("GET", "/containers/"+a+"/top?ps_args=None", nil, 200, &top)
	found := false
	for _, p := range top.Processes {
		found = found || (len(p) == 4 && strings.Contains(p[3], "sleep 600"))
	}
	if len(top.Titles) != 4 || !found {
		t.Errorf("top %+v", top)
	}

	// b reaches a over the private network. Both are in demo's default
	// security group (no group given), whose rules let in whatever comes
	// from a port of the same group: the ping is allowed.
	if out, code := z.exec(b, "ping", "-c1", "-W2", addrA); code != 0 || !strings.Contains(out, "1 packets received") {
		t.Errorf("b pings a (%s): %d %q", addrA, code, out)
	}
	if out, code := z.exec(a, "ping", "-c1", "-W2", addrB); code != 0 {
		t.Errorf("a pings b (%s): %d %q", addrB, code, out)
	}

	// A third container exits with 7 three seconds after it starts; the
	// daemon is killed before that and is down when it exits.
	c := z.run(uniq("ctr-c"), "echo c started; sleep 3; exit 7")
	z.wait(c, "Running", 60*time.Second)
	d.kill()
	for _, id := range []string{a, b} {
		if st := runcState(t, d, id); st != "running" {
			t.Errorf("runc: after kill -9 of the daemon, %s is %q", id, st)
		}
	}
	time.Sleep(5 * time.Second)
	if err := d.start(); err != nil {
		t.Fatal(err)
	}

	// As they were: a and b Running, with their logs; c Stopped, exit 7.
	var list struct {
		Containers []map[string]any `json:"containers"`
	}
	z.call("GET", "/containers", nil, 200, &list)
	status := map[string]any{}
	for _, ct := range list.Containers {
		status[ct["uuid"].(string)] = ct["status"]
	}
	if status[a] != "Running" || status[b] != "Running" {
		t.Errorf("after the restart: a %v, b %v", status[a], status[b])
	}
	if l := z.logs(a); strings.Count(l, "started") != 2 {
		t.Errorf("a's logs after the restart: %q", l)
	}
	if out, code := z.exec(a, "cat", "/proc/1/cmdline"); code != 0 || out != "sleep\x00600\x00" {
		t.Errorf("exec after the restart: %d %q", code, out)
	}
	ctC := z.wait(c, "Stopped", 30*time.Second)
	if detail, _ := ctC["status_detail"].(string); !strings.HasPrefix(detail, "Exited(7) ") {
		t.Errorf("c: status_detail %q", detail)
	}
	// Its restart policy (none) started nothing: it stays Stopped, with
	// one start in its log.
	time.Sleep(2 * time.Second)
	if ct := z.show(c); ct["status"] != "Stopped" || strings.Count(z.logs(c), "c started") != 1 {
		t.Errorf("c after a while: %v, logs %q", ct["status"], z.logs(c))
	}
	// b still reaches a.
	if out, code := z.exec(b, "ping", "-c1", "-W2", addrA); code != 0 {
		t.Errorf("b pings a after the restart: %d %q", code, out)
	}

	// Delete them all (force): nothing of them is left on the host.
	portC, _ := portAddress(t, ctC)
	ids := []string{a, b, c}
	for _, id := range ids {
		z.asAdmin().call("DELETE", "/containers/"+id+"?force=True", nil, 204, nil)
	}
	for _, id := range ids {
		z.wait(id, "gone", 60*time.Second)
	}
	ports := []string{portA, portB, portC}
	deadline := time.Now().Add(30 * time.Second)
	for left := hostLeftovers(t, d, ids, ports); len(left) > 0; left = hostLeftovers(t, d, ids, ports) {
		if time.Now().After(deadline) {
			t.Errorf("left on the host 30s after the containers were deleted: %v", left)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Nor once the daemon is stopped (what purge would find).
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if left := hostLeftovers(t, d, ids, ports); len(left) > 0 {
		t.Errorf("left on the host after the daemon stopped: %v", left)
	}
}

// openrcEnv reads a daemon's openrc file (export K='v' lines) into an
// environment for the openstack CLI.
func openrcEnv(t *testing.T, d *daemon, user string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(d.dataDir, "openrc."+user))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kv, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		v = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'"), `'\''`, "'")
		env = append(env, k+"="+v)
	}
	return env
}

// osc runs the openstack CLI with env and returns its output; a failure
// fails the test.
func osc(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openstack", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestContainerCLI: what of `openstack appcontainer` the walkthrough does
// not run: set --name, commit and a container of the committed image,
// quota get --usages, host list (admin), action list.
func TestContainerCLI(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("no openstack CLI (python3-openstackclient, python3-zunclient)")
	}
	demo, admin := openrcEnv(t, cloud, "demo"), openrcEnv(t, cloud, "admin")
	z := newZun(t, demoSession(t), adminSession(t))
	name := uniq("cli")
	id := z.run(name, "echo cli started; sleep 600")
	z.wait(id, "Running", 60*time.Second)
	z.waitLogs(id, "cli started", 1)

	// set --name renames it.
	renamed := name + "-renamed"
	out := osc(t, demo, "appcontainer", "set", "--name", renamed, name, "-f", "value", "-c", "name")
	if strings.TrimSpace(out) != renamed {
		t.Errorf("appcontainer set --name: %q", out)
	}
	if ct := z.show(id); ct["name"] != renamed {
		t.Errorf("after set --name: %v", ct["name"])
	}

	// commit makes an image of it (with what it wrote), which runs.
	if out, code := z.exec(id, "sh", "-c", "echo written-before-commit > /marker"); code != 0 {
		t.Fatalf("exec: %d %q", code, out)
	}
	repo := uniq("committed")
	out = osc(t, demo, "appcontainer", "commit", renamed, repo+":v1")
	m := regexp.MustCompile(`The image is ([0-9a-f-]{36})\.`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("appcontainer commit: %q", out)
	}
	imageID := m[1]
	t.Cleanup(func() {
		ic := imageClient(t, demoSession(t))
		code, body := call(t, "DELETE", ic.ServiceURL("images", imageID), demoSession(t).token(), nil)
		if code != 204 && code != 404 {
			t.Errorf("cleanup: delete image %s: %d %v", imageID, code, body)
		}
	})
	copyName := uniq("copy")
	var copyID string
	out = osc(t, demo, "appcontainer", "run", "--name", copyName, "--net", "network=private", "-f", "value", "-c", "uuid",
		repo, "sh", "-c", "echo copy started; sleep 600")
	copyID = strings.TrimSpace(out)
	t.Cleanup(func() { z.forget(copyID) })
	z.wait(copyID, "Running", 60*time.Second)
	z.waitLogs(copyID, "copy started", 1)
	if ct := z.show(copyID); ct["image"] != repo {
		t.Errorf("the copy's image is %v", ct["image"])
	}
	// It runs what it was given, on the committed root filesystem.
	if out, code := z.exec(copyID, "cat", "/proc/1/cmdline"); code != 0 || out != "sleep\x00600\x00" {
		t.Errorf("exec in the copy: %d %q", code, out)
	}
	if out, code := z.exec(copyID, "cat", "/marker"); code != 0 || out != "written-before-commit" {
		t.Errorf("the copy's /marker: %d %q", code, out)
	}

	// quota get --usages: two containers of demo at least.
	project := tokenProject(t, demoSession(t)).ID
	out = osc(t, demo, "appcontainer", "quota", "get", "--usages", project, "-f", "json")
	var q map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		t.Fatalf("quota get --usages: %v: %s", err, out)
	}
	if n, _ := q["containers"]["in_use"].(float64); n < 2 || q["containers"]["limit"] != 40.0 {
		t.Errorf("quota get --usages: %v", q)
	}

	// host list (admin): this host.
	out = osc(t, admin, "appcontainer", "host", "list", "-f", "json")
	var hosts []map[string]any
	if err := json.Unmarshal([]byte(out), &hosts); err != nil || len(hosts) != 1 {
		t.Fatalf("host list: %v: %s", err, out)
	}
	if hn, _ := os.Hostname(); hosts[0]["hostname"] != hn {
		t.Logf("host list names %v (this machine is %s)", hosts[0]["hostname"], hn)
	}
	if hosts[0]["cpus"] == nil || hosts[0]["mem_total"] == nil {
		t.Errorf("host list: %v", hosts)
	}
	// A non-admin may not list hosts.
	cmd := exec.Command("openstack", "appcontainer", "host", "list")
	cmd.Env = demo
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "403") {
		t.Errorf("demo's host list: %v %s", err, out)
	}

	// action list: what was done to it, newest first.
	z.exec(id, "true")
	out = osc(t, demo, "appcontainer", "action", "list", renamed, "-f", "json")
	var acts []map[string]any
	if err := json.Unmarshal([]byte(out), &acts); err != nil {
		t.Fatalf("action list: %v: %s", err, out)
	}
	var names []string
	for _, a := range acts {
		names = append(names, fmt.Sprint(a["action"]))
	}
	if strings.Join(names, ",") != "exec_cmd,commit,exec_cmd,update,run" {
		t.Errorf("action list: %v", names)
	}
	for _, a := range acts {
		if a["request_id"] == nil || a["container_uuid"] != id {
			t.Errorf("action %v", a)
		}
	}

	// --mount type=bind injects a local file (the client sends its
	// bytes); the container reads it at the destination, a directory
	// that did not exist in the image, and can write to it.
	local := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(local, []byte("listen 8080\nname monostack\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	injected := uniq("bind")
	out = osc(t, demo, "appcontainer", "run", "--name", injected, "--mount", "type=bind,source="+local+",destination=/etc/app/app.conf",
		"-f", "value", "-c", "uuid", "busybox", "sh", "-c", "cat /etc/app/app.conf; echo more >> /etc/app/app.conf; wc -l < /etc/app/app.conf; sleep 600")
	bindID := strings.TrimSpace(out)
	t.Cleanup(func() { z.forget(bindID) })
	z.wait(bindID, "Running", 60*time.Second)
	if logs := z.waitLogs(bindID, "3", 1); !strings.Contains(logs, "listen 8080\nname monostack\n3") {
		t.Errorf("the injected file, as the container read it: %q", logs)
	}

	// logs tells stdout from stderr and when each line was written.
	streams := uniq("streams")
	out = osc(t, demo, "appcontainer", "run", "--name", streams, "-f", "value", "-c", "uuid",
		"busybox", "sh", "-c", "echo to-out; echo to-err >&2; sleep 600")
	streamsID := strings.TrimSpace(out)
	t.Cleanup(func() { z.forget(streamsID) })
	z.wait(streamsID, "Running", 60*time.Second)
	z.waitLogs(streamsID, "to-err", 1)
	if got := strings.TrimSpace(osc(t, demo, "appcontainer", "logs", "--stderr", streams)); got != "to-err" {
		t.Errorf("logs --stderr: %q", got)
	}
	if got := strings.TrimSpace(osc(t, demo, "appcontainer", "logs", "--stdout", streams)); got != "to-out" {
		t.Errorf("logs --stdout: %q", got)
	}
	// (--stdout: the two streams come through two pipes, so which of two
	// lines written back to back on each lands last is not fixed.)
	got := strings.TrimSpace(osc(t, demo, "appcontainer", "logs", "--stdout", "--timestamps", "--tail", "1", "--since",
		strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10), streams))
	if ts, line, _ := strings.Cut(got, " "); line != "to-out" {
		t.Errorf("logs --timestamps --tail 1: %q", got)
	} else if at, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(at) > time.Minute {
		t.Errorf("logs --timestamps: time %q: %v", ts, err)
	}
	if got := strings.TrimSpace(osc(t, demo, "appcontainer", "logs", "--since", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10), streams)); got != "" {
		t.Errorf("logs --since in an hour: %q", got)
	}

	// add floating ip (the client finds the container's port by device
	// and associates the address): the host reaches the container's
	// server through it; remove floating ip takes it away.
	// A security group letting port 8080 in (the default one lets in only
	// its own members), deleted after the container.
	web := uniq("fipweb")
	osc(t, demo, "security", "group", "create", web)
	t.Cleanup(func() {
		// The container's delete goes on in the background: its port may
		// still hold the group for a moment.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			cmd := exec.Command("openstack", "security", "group", "delete", web)
			cmd.Env = demo
			out, err := cmd.CombinedOutput()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("cleanup: security group delete: %v %s", err, out)
				return
			}
		}
	})
	osc(t, demo, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "8080", web)
	out = osc(t, demo, "appcontainer", "run", "--name", web, "--net", "network=private", "-f", "value", "-c", "uuid",
		"busybox", "sh", "-c", "mkdir -p /www && echo through-fip > /www/index.html && exec httpd -f -p 8080 -h /www")
	webID := strings.TrimSpace(out)
	t.Cleanup(func() { z.forget(webID) })
	z.wait(webID, "Running", 60*time.Second)
	fip := strings.TrimSpace(osc(t, demo, "floating", "ip", "create", "public", "-f", "value", "-c", "floating_ip_address"))
	t.Cleanup(func() {
		cmd := exec.Command("openstack", "floating", "ip", "delete", fip)
		cmd.Env = demo
		cmd.Run()
	})
	osc(t, demo, "appcontainer", "add", "floating", "ip", web, fip)
	client := &http.Client{Timeout: 2 * time.Second}
	// Its default group lets nothing in from the host...
	if res, err := client.Get("http://" + fip + ":8080/"); err == nil {
		res.Body.Close()
		t.Errorf("port 8080 open before the security group was added: %d", res.StatusCode)
	}
	// ...until the group is added (Zun's API up to 1.14).
	if out := osc(t, demo, "--os-container-api-version", "1.14", "appcontainer", "add", "security", "group", web, web); !strings.Contains(out, "accepted") {
		t.Errorf("add security group: %q", out)
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if res, err := client.Get("http://" + fip + ":8080/"); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if body = string(b); res.StatusCode == 200 {
				break
			}
		}
	}
	if strings.TrimSpace(body) != "through-fip" {
		t.Errorf("GET http://%s:8080/ from the host: %q", fip, body)
	}
	osc(t, demo, "appcontainer", "remove", "floating", "ip", fip)
	// The datapath applies it within a second or so.
	short := &http.Client{Timeout: 500 * time.Millisecond}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		res, err := short.Get("http://" + fip + ":8080/")
		if err != nil {
			break
		}
		res.Body.Close()
		if time.Now().After(deadline) {
			t.Errorf("the floating IP still reaches the container 10 s after remove floating ip: %d", res.StatusCode)
			break
		}
	}
}
