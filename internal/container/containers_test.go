package container

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/testcloud"
)

func TestVersionDiscovery(t *testing.T) {
	tc := newTestCloud(t)
	// zunclient reads the endpoint minus /v1 before every command, with no
	// token; gophercloud may read the endpoint itself.
	for _, path := range []string{"", "/"} {
		res := must(t, 200, tc.doV(t, "container 1.1", "GET", path, "", nil))
		m := res.JSON(t)
		vs, _ := m["versions"].([]any)
		if len(vs) != 1 || m["default_version"] == nil {
			t.Fatalf("GET /container%s: %s", path, res.Body)
		}
		v := vs[0].(map[string]any)
		if v["id"] != "v1" || v["status"] != "CURRENT" || v["max_version"] != "1.40" || v["min_version"] != "1.1" {
			t.Errorf("GET /container%s: version %v", path, v)
		}
		links := v["links"].([]any)
		if href := links[0].(map[string]any)["href"]; href != tc.URL()+"/container/v1/" {
			t.Errorf("version link %v", href)
		}
	}
	for _, path := range []string{"/v1", "/v1/"} {
		m := must(t, 200, tc.doV(t, "", "GET", path, "", nil)).JSON(t)
		if m["id"] != "v1" || m["containers"] == nil || m["media_types"] == nil {
			t.Errorf("GET /container%s: %v", path, m)
		}
	}
	// Everything else needs a token, in Zun's error format.
	zunError(t, tc.do(t, "GET", "/v1/containers", "", nil), 401, "container.", "")

	// Microversions: the headers say the range and the version used.
	res := must(t, 200, tc.do(t, "GET", "/v1/containers", tc.Demo, nil))
	if res.Header.Get("OpenStack-API-Version") != "container 1.40" || res.Header.Get("OpenStack-API-Minimum-Version") != "container 1.1" ||
		res.Header.Get("OpenStack-API-Maximum-Version") != "container 1.40" {
		t.Errorf("version headers: %v", res.Header)
	}
	res = must(t, 200, tc.doV(t, "", "GET", "/v1/containers", tc.Demo, nil))
	if res.Header.Get("OpenStack-API-Version") != "container 1.1" {
		t.Errorf("no version asked: %v", res.Header.Get("OpenStack-API-Version"))
	}
	// gophercloud's service name is taken for container's.
	res = must(t, 200, tc.doV(t, "application-container 1.32", "GET", "/v1/containers", tc.Demo, nil))
	if res.Header.Get("OpenStack-API-Version") != "container 1.32" {
		t.Errorf("application-container 1.32: %v", res.Header.Get("OpenStack-API-Version"))
	}
	res = must(t, 200, tc.doV(t, "container latest", "GET", "/v1/containers", tc.Demo, nil))
	if res.Header.Get("OpenStack-API-Version") != "container 1.40" {
		t.Errorf("latest: %v", res.Header.Get("OpenStack-API-Version"))
	}
	zunError(t, tc.doV(t, "container 1.41", "GET", "/v1/containers", tc.Demo, nil), 406, "container.", "")
	zunError(t, tc.doV(t, "container 1.0", "GET", "/v1/containers", tc.Demo, nil), 406, "container.", "")
	zunError(t, tc.doV(t, "container one", "GET", "/v1/containers", tc.Demo, nil), 400, "container.invalid-value", "")
	// An unknown path is a 404 in Zun's format, an unknown method a 405.
	zunError(t, tc.do(t, "GET", "/v1/nothing", tc.Demo, nil), 404, "container.container-not-found", "")
	zunError(t, tc.do(t, "PUT", "/v1/containers", tc.Demo, map[string]any{}), 405, "container.", "")
}

var viewTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)

func TestRunAndCreate(t *testing.T) {
	tc := newTestCloud(t)
	res := must(t, 202, tc.do(t, "POST", "/v1/containers?run=true", tc.Demo, map[string]any{
		"name": "web", "image": "busybox", "command": []string{"sleep", "600"}, "cpu": "0.5", "memory": "128",
		"environment": map[string]string{"A": "1"}, "labels": map[string]string{"app": "web"}, "workdir": "/",
		"restart_policy": map[string]any{"Name": "on-failure", "MaximumRetryCount": "3"}, "hints": map[string]string{},
		"nets": []any{map[string]any{"network": "private"}}, "mounts": []any{}, "auto_remove": false,
	}))
	ct := res.JSON(t)
	id, _ := ct["uuid"].(string)
	if ct["status"] != stCreating || ct["addresses"] != nil || ct["ports"] != nil || ct["name"] != "web" ||
		res.Header.Get("Location") != tc.URL()+"/container/v1/containers/"+id {
		t.Errorf("create answer: %s (Location %s)", res.Body, res.Header.Get("Location"))
	}
	if _, ok := ct["host"]; ok {
		t.Errorf("demo sees the host: %v", ct["host"])
	}
	ct = tc.waitStatus(t, tc.Demo, id, stRunning)
	if ct["memory"] != "128" || ct["cpu"] != 0.5 || !slices.Equal(toStrings(ct["command"]), []string{"sleep", "600"}) ||
		ct["entrypoint"] != nil || ct["image"] != "busybox" || ct["image_driver"] != "glance" {
		t.Errorf("container: %v", ct)
	}
	if rp := ct["restart_policy"].(map[string]any); rp["Name"] != "on-failure" || rp["MaximumRetryCount"] != "3" {
		t.Errorf("restart_policy %v", rp)
	}
	if !strings.HasPrefix(fmt.Sprint(ct["status_detail"]), "Up ") || ct["status_reason"] != nil {
		t.Errorf("status_detail %v, reason %v", ct["status_detail"], ct["status_reason"])
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if s, _ := ct[k].(string); !viewTimeRE.MatchString(s) {
			t.Errorf("%s = %v, want YYYY-MM-DD HH:MM:SS", k, ct[k])
		}
	}
	if l, _ := ct["links"].([]any); len(l) != 2 {
		t.Errorf("show has no links: %v", ct["links"])
	}
	addrs, _ := ct["addresses"].(map[string]any)[tc.private].([]any)
	if len(addrs) != 1 {
		t.Fatalf("addresses %v", ct["addresses"])
	}
	a := addrs[0].(map[string]any)
	ports := tc.nets.portsOf(id)
	if len(ports) != 1 || a["port"] != ports[0].ID || a["addr"] != ports[0].Addresses[0].Addr().String() || a["version"] != 4.0 ||
		a["preserve_on_delete"] != false || ports[0].host != hostName {
		t.Errorf("address %v, ports %+v", a, ports)
	}
	// What the host was asked to run.
	spec := tc.hosts.spec(id)
	if !slices.Equal(spec.Process.Cmd, []string{"sleep", "600"}) || spec.Resources.MemoryBytes != 128<<20 ||
		spec.Resources.VCPUs != 0.5 || !slices.Contains(spec.Process.Env, "A=1") || spec.Image != tc.busybox {
		t.Errorf("spec %+v", spec)
	}
	if st, err := tc.hosts.rt.State(t.Context(), id); err != nil || st.Status != runtime.Running {
		t.Errorf("on the host: %+v %v", st, err)
	}
	// The admin sees where it runs.
	if adm := tc.show(t, tc.Admin, id); adm["host"] != hostName || adm["runtime"] != "runc" || adm["privileged"] != false {
		t.Errorf("admin's view: host %v runtime %v", adm["host"], adm["runtime"])
	}
	// network_list: one entry per port.
	nl := must(t, 200, tc.do(t, "GET", "/v1/containers/web/network_list", tc.Demo, nil)).JSON(t)
	nets := nl["networks"].([]any)
	if len(nets) != 1 || nets[0].(map[string]any)["port_id"] != ports[0].ID ||
		nets[0].(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != a["addr"] {
		t.Errorf("network_list %v", nl)
	}

	// create without run: Created, and made on the host, not started.
	ct = tc.create(t, tc.Demo, false, map[string]any{"name": "idle", "command": []string{"sleep", "600"}})
	idle := ct["uuid"].(string)
	ct = tc.waitStatus(t, tc.Demo, idle, stCreated)
	if ct["status_detail"] != "Created" {
		t.Errorf("status_detail %v", ct["status_detail"])
	}
	if st, err := tc.hosts.rt.State(t.Context(), idle); err != nil || st.Status != runtime.Created {
		t.Errorf("created container on the host: %+v %v", st, err)
	}
	// No cpu or memory asked: Zun's defaults, given to the host too.
	if ct["cpu"] != 1.0 || ct["memory"] != "512" {
		t.Errorf("defaults: cpu %v memory %v", ct["cpu"], ct["memory"])
	}
	if spec := tc.hosts.spec(idle); spec.Resources.MemoryBytes != 512<<20 || spec.Resources.VCPUs != 1 {
		t.Errorf("default limits on the host: %+v", spec.Resources)
	}
	// No nets: the project's default network.
	if ports := tc.nets.portsOf(idle); len(ports) != 1 || ports[0].NetworkID != tc.private {
		t.Errorf("default network ports %+v", ports)
	}

	// At 1.1 (no header), command is a string split like a shell.
	res = must(t, 202, tc.doV(t, "", "POST", "/v1/containers", tc.Demo, map[string]any{
		"image": "busybox", "command": `"sh" "-c" "echo 'hi there'"`}))
	legacy := res.JSON(t)
	if !slices.Equal(toStrings(legacy["command"]), []string{"sh", "-c", "echo 'hi there'"}) {
		t.Errorf("1.1 command %v", legacy["command"])
	}
	if name, _ := legacy["name"].(string); !namePattern.MatchString(name) {
		t.Errorf("generated name %q", name)
	}
	tc.waitStatus(t, tc.Demo, legacy["uuid"].(string), stCreated)
	zunError(t, tc.doV(t, "", "POST", "/v1/containers", tc.Demo, map[string]any{"image": "busybox", "command": `sh -c "unclosed`}),
		400, "container.schema-validation-error", "")

	// The action log.
	act := tc.lastAction(t, id)
	acts := must(t, 200, tc.do(t, "GET", "/v1/containers/"+id+"/container_actions", tc.Demo, nil)).JSON(t)["containerActions"].([]any)
	if len(acts) != 1 || act["action"] != "run" || act["user_id"] == nil || act["project_id"] != tc.DemoProject {
		t.Fatalf("actions %v", acts)
	}
	req := act["request_id"].(string)
	one := must(t, 200, tc.do(t, "GET", "/v1/containers/"+id+"/container_actions/"+req, tc.Demo, nil)).JSON(t)
	if one["action"] != "run" || one["events"] == nil || one["message"] != nil {
		t.Errorf("action %v", one)
	}
	zunError(t, tc.do(t, "GET", "/v1/containers/"+id+"/container_actions/req-nope", tc.Demo, nil), 404, "container.resource-not-found", "")

	for _, c := range []string{id, idle, legacy["uuid"].(string)} {
		tc.remove(t, tc.Demo, c)
	}
	if n := tc.nets.count(); n != 0 {
		t.Errorf("%d ports left", n)
	}
	// Their actions went with them (no call reaches them any more).
	var left int
	if err := tc.DB.QueryRow(`SELECT count(*) FROM container_actions WHERE container_uuid IN (?,?,?)`, id, idle, legacy["uuid"]).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d actions of the deleted containers left (%v)", left, err)
	}
}

// pages lists containers following next, and returns their uuids.
func (tc *testCloud) pages(t testing.TB, token, query string) []string {
	t.Helper()
	var got []string
	next := tc.URL() + "/container/v1/containers" + query
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("too many pages")
		}
		m := must(t, 200, testcloud.Do(t, "GET", next, token, nil, "OpenStack-API-Version", latest)).JSON(t)
		for _, c := range m["containers"].([]any) {
			got = append(got, c.(map[string]any)["uuid"].(string))
		}
		next, _ = m["next"].(string)
	}
	return got
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func names(t testing.TB, res response) []string {
	t.Helper()
	var out []string
	for _, c := range res.JSON(t)["containers"].([]any) {
		out = append(out, c.(map[string]any)["name"].(string))
	}
	return out
}

func TestListAndFind(t *testing.T) {
	tc := newTestCloud(t)
	var demo []string
	for _, n := range []string{"a1", "a2", "a3"} {
		demo = append(demo, tc.create(t, tc.Demo, false, map[string]any{"name": n})["uuid"].(string))
	}
	adminA1 := tc.create(t, tc.Admin, false, map[string]any{"name": "a1"})["uuid"].(string)
	for _, id := range demo {
		tc.waitStatus(t, tc.Demo, id, stCreated)
	}
	tc.waitStatus(t, tc.Admin, adminA1, stCreated)

	// Each sees its project's; all_projects is for admins only.
	if got := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers", tc.Demo, nil))); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("demo's list %v", got)
	}
	if got := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers/?all_projects=1", tc.Demo, nil))); len(got) != 3 {
		t.Errorf("demo's all_projects list %v", got)
	}
	if got := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers", tc.Admin, nil))); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("admin's list %v", got)
	}
	all := must(t, 200, tc.do(t, "GET", "/v1/containers/?all_projects=True", tc.Admin, nil)).JSON(t)["containers"].([]any)
	if len(all) != 4 {
		t.Errorf("admin's all_projects list: %d", len(all))
	}
	for _, c := range all {
		if _, ok := c.(map[string]any)["links"]; ok {
			t.Errorf("a list item has links: %v", c)
		}
	}
	// Filters, sorting.
	if got := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers?name=a2", tc.Demo, nil))); !slices.Equal(got, []string{"a2"}) {
		t.Errorf("name=a2: %v", got)
	}
	if got := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers?status=Running", tc.Demo, nil))); len(got) != 0 {
		t.Errorf("status=Running: %v", got)
	}
	if got := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers?sort_key=name&sort_dir=desc", tc.Demo, nil))); !slices.Equal(got, []string{"a3", "a2", "a1"}) {
		t.Errorf("sorted desc: %v", got)
	}
	zunError(t, tc.do(t, "GET", "/v1/containers?foo=1", tc.Demo, nil), 400, "container.invalid-value", "Unknown parameters: foo")
	zunError(t, tc.do(t, "GET", "/v1/containers?limit=0", tc.Demo, nil), 400, "container.invalid-value", "Limit must be positive integer")
	zunError(t, tc.do(t, "GET", "/v1/containers?limit=x", tc.Demo, nil), 400, "container.invalid-value", "Limit must be positive integer")
	zunError(t, tc.do(t, "GET", "/v1/containers?sort_dir=up", tc.Demo, nil), 400, "container.invalid-value", "")
	zunError(t, tc.do(t, "GET", "/v1/containers?sort_key=secret", tc.Demo, nil), 400, "container.invalid-value", "")
	zunError(t, tc.do(t, "GET", "/v1/containers?marker="+adminA1, tc.Demo, nil), 400, "container.invalid-value", "")

	// Paging: limit and marker, next until the end.
	var got []string
	next := tc.URL() + "/container/v1/containers?limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		m := must(t, 200, testcloud.Do(t, "GET", next, tc.Demo, nil, "OpenStack-API-Version", latest)).JSON(t)
		for _, c := range m["containers"].([]any) {
			got = append(got, c.(map[string]any)["uuid"].(string))
		}
		next, _ = m["next"].(string)
		if next != "" {
			u, err := url.Parse(next)
			if err != nil || u.Query().Get("marker") != got[len(got)-1] || u.Query().Get("limit") != "2" {
				t.Fatalf("next %q", next)
			}
		}
	}
	if !slices.Equal(got, demo) {
		t.Errorf("pages %v, want %v", got, demo)
	}

	// Paging keeps the order and the filters.
	if got := tc.pages(t, tc.Demo, "?limit=2&sort_key=name&sort_dir=desc"); !slices.Equal(got, []string{demo[2], demo[1], demo[0]}) {
		t.Errorf("pages sorted desc: %v", got)
	}
	if got := tc.pages(t, tc.Demo, "?limit=1&name=a2"); !slices.Equal(got, []string{demo[1]}) {
		t.Errorf("pages of name=a2: %v", got)
	}
	if got := tc.pages(t, tc.Admin, "?limit=1&all_projects=True"); len(got) != 4 {
		t.Errorf("admin's pages of all projects: %v", got)
	}

	// By uuid and by name; another project's is not found.
	if ct := tc.show(t, tc.Demo, "a2"); ct["uuid"] != demo[1] {
		t.Errorf("a2 is %v", ct["uuid"])
	}
	nf := fmt.Sprintf("Container %s could not be found.", adminA1)
	zunError(t, tc.do(t, "GET", "/v1/containers/"+adminA1, tc.Demo, nil), 404, "container.container-not-found", nf)
	zunError(t, tc.do(t, "DELETE", "/v1/containers/"+adminA1+"?force=True", tc.Demo, nil), 404, "container.container-not-found", nf)
	zunError(t, tc.do(t, "POST", "/v1/containers/"+adminA1+"/stop", tc.Demo, nil), 404, "container.container-not-found", nf)
	zunError(t, tc.do(t, "GET", "/v1/containers/nothing", tc.Demo, nil), 404, "container.container-not-found",
		"Container nothing could not be found.")
	// demo's a1 is demo's; the admin sees two a1 (its own and demo's).
	if ct := tc.show(t, tc.Demo, "a1"); ct["uuid"] != demo[0] {
		t.Errorf("demo's a1 is %v", ct["uuid"])
	}
	zunError(t, tc.do(t, "GET", "/v1/containers/a1", tc.Admin, nil), 409, "container.conflict",
		"Multiple containers exist with same name. Please use the container uuid instead.")
	if ct := tc.show(t, tc.Admin, demo[1]); ct["project_id"] != tc.DemoProject {
		t.Errorf("admin gets demo's a2: %v", ct["project_id"])
	}
	if ct := tc.show(t, tc.Admin, "a3"); ct["uuid"] != demo[2] {
		t.Errorf("admin gets demo's a3 by name: %v", ct["uuid"])
	}

	// Names are unique within a project: create and rename.
	zunError(t, tc.do(t, "POST", "/v1/containers", tc.Demo, map[string]any{"image": "busybox", "name": "a1"}), 409, "container.conflict", "")
	zunError(t, tc.do(t, "PATCH", "/v1/containers/a2", tc.Demo, map[string]any{"name": "a1"}), 409, "container.conflict", "")
	if ct := tc.show(t, tc.Demo, demo[1]); ct["name"] != "a2" {
		t.Errorf("a refused rename changed the name to %v", ct["name"])
	}

	// Another member of demo's project sees and acts on them; a reader
	// sees them and may not change them.
	other, _, _ := tc.AddUser("alice", "demo", "member")
	if got := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers", other, nil))); len(got) != 3 {
		t.Errorf("alice's list %v", got)
	}
	reader, _, _ := tc.AddUser("rita", "demo", "reader")
	must(t, 200, tc.do(t, "GET", "/v1/containers/a1", reader, nil))
	zunError(t, tc.do(t, "POST", "/v1/containers", reader, map[string]any{"image": "busybox"}), 403, "container.policy-not-authorized", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/a1/start", reader, nil), 403, "container.policy-not-authorized", "")

	for _, id := range demo {
		tc.remove(t, other, id)
	}
	tc.remove(t, tc.Admin, adminA1)
}

// stateOf puts a new container of demo in status (Created, Running,
// Stopped, Paused) and returns its uuid.
func (tc *testCloud) stateOf(t testing.TB, status string) string {
	t.Helper()
	if status == stCreated {
		id := tc.create(t, tc.Demo, false, map[string]any{"command": []string{"sleep", "600"}})["uuid"].(string)
		tc.waitStatus(t, tc.Demo, id, stCreated)
		return id
	}
	id := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"}})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	switch status {
	case stStopped:
		tc.action(t, tc.Demo, id, "stop")
		tc.waitStatus(t, tc.Demo, id, stStopped)
	case stPaused:
		tc.action(t, tc.Demo, id, "pause")
		tc.waitStatus(t, tc.Demo, id, stPaused)
	}
	return id
}

func TestActionStates(t *testing.T) {
	tc := newTestCloud(t, options{quotas: map[string]int64{"containers": 100}})
	// For each action, from each status: the status it ends in, or "" when
	// it is refused.
	cases := []struct {
		action string
		to     map[string]string
		exit   int // for those ending Stopped
	}{
		{"start", map[string]string{stCreated: stRunning, stStopped: stRunning}, 0},
		{"stop", map[string]string{stRunning: stStopped}, 0},
		{"reboot", map[string]string{stCreated: stRunning, stRunning: stRunning, stStopped: stRunning}, 0},
		{"pause", map[string]string{stRunning: stPaused}, 0},
		{"unpause", map[string]string{stPaused: stRunning}, 0},
		{"kill", map[string]string{stRunning: stStopped}, 137},
	}
	for _, c := range cases {
		for _, from := range []string{stCreated, stRunning, stStopped, stPaused} {
			t.Run(c.action+"/"+from, func(t *testing.T) {
				id := tc.stateOf(t, from)
				defer tc.remove(t, tc.Demo, id)
				starts := tc.hosts.startsOf(id)
				to := c.to[from]
				if to == "" {
					zunError(t, tc.do(t, "POST", "/v1/containers/"+id+"/"+c.action, tc.Demo, nil), 409, "container.invalid-state-exception",
						fmt.Sprintf("Cannot %s container %s in %s state", c.action, id, from))
					if ct := tc.show(t, tc.Demo, id); ct["status"] != from || ct["task_state"] != nil {
						t.Errorf("a refused %s changed %s to %v/%v", c.action, from, ct["status"], ct["task_state"])
					}
					return
				}
				tc.action(t, tc.Demo, id, c.action)
				ct := tc.waitStatus(t, tc.Demo, id, to)
				st, err := tc.hosts.rt.State(t.Context(), id)
				if err != nil || string(st.Status) != strings.ToLower(to) {
					t.Errorf("on the host: %+v %v", st, err)
				}
				if to == stStopped {
					if d := fmt.Sprint(ct["status_detail"]); !strings.HasPrefix(d, fmt.Sprintf("Exited(%d) ", c.exit)) {
						t.Errorf("status_detail %q", d)
					}
				}
				if c.action == "start" || c.action == "reboot" {
					if n := tc.hosts.startsOf(id); n != starts+1 {
						t.Errorf("%d starts, want %d", n, starts+1)
					}
				}
				// The action is in the log, finished.
				if a := tc.lastAction(t, id); a["action"] != c.action || a["message"] != nil {
					t.Errorf("last action %v", a)
				}
			})
		}
	}

	// By name; the message names the uuid.
	id := tc.stateOf(t, stStopped)
	tc.remove(t, tc.Demo, id)
	id = tc.create(t, tc.Demo, true, map[string]any{"name": "named", "command": []string{"sleep", "600"}})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	zunError(t, tc.do(t, "POST", "/v1/containers/named/start", tc.Demo, nil), 409, "container.invalid-state-exception",
		fmt.Sprintf("Cannot start container %s in Running state", id))
	// Query parameters.
	zunError(t, tc.do(t, "POST", "/v1/containers/named/stop?timeout=abc", tc.Demo, nil), 400, "container.schema-validation-error", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/named/kill?signal=SIGNOPE", tc.Demo, nil), 400, "container.invalid-value", "")
	// A signal that does not end it (the fake ignores all but SIGKILL):
	// still Running; then kill?signal=None is SIGKILL.
	tc.action(t, tc.Demo, "named", "kill?signal=SIGTERM")
	tc.waitStatus(t, tc.Demo, id, stRunning)
	tc.action(t, tc.Demo, "named", "kill?signal=None")
	ct := tc.waitStatus(t, tc.Demo, id, stStopped)
	if !strings.HasPrefix(fmt.Sprint(ct["status_detail"]), "Exited(137) ") {
		t.Errorf("after SIGKILL: %v", ct["status_detail"])
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/nothing/start", tc.Demo, nil), 404, "container.container-not-found", "")

	// A container whose build failed is Error, with the reason; start is
	// allowed from Error (and fails again: nothing was made), stop is not.
	tc.hosts.fail("ensure", fmt.Errorf("the host is on fire"))
	broken := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"}})["uuid"].(string)
	ct = tc.waitStatus(t, tc.Demo, broken, stError)
	tc.hosts.fail("ensure", nil)
	if !strings.Contains(fmt.Sprint(ct["status_reason"]), "the host is on fire") || ct["status_detail"] != nil {
		t.Errorf("error container: reason %v detail %v", ct["status_reason"], ct["status_detail"])
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/"+broken+"/stop", tc.Demo, nil), 409, "container.invalid-state-exception",
		fmt.Sprintf("Cannot stop container %s in Error state", broken))
	tc.action(t, tc.Demo, broken, "start")
	tc.waitStatus(t, tc.Demo, broken, stError)
	// It can be deleted without force.
	must(t, 204, tc.do(t, "DELETE", "/v1/containers/"+broken, tc.Demo, nil))
	tc.waitStatus(t, tc.Demo, broken, "gone")
	tc.remove(t, tc.Demo, id)
}

// TestConcurrentActions: of two actions racing on one container, one is
// accepted and the other refused; the container ends in a status.
func TestConcurrentActions(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "racer")
	g := tc.hosts.hold("stop")
	tc.action(t, tc.Demo, id, "stop")
	<-g.reached
	// While the stop runs, every other action is refused.
	for _, a := range []string{"stop", "pause", "kill", "reboot"} {
		res := tc.do(t, "POST", "/v1/containers/"+id+"/"+a, tc.Demo, nil)
		zunError(t, res, 409, "container.invalid-state-exception", "")
	}
	if ct := tc.show(t, tc.Demo, id); ct["task_state"] != "container_stopping" {
		t.Errorf("task_state while stopping: %v", ct["task_state"])
	}
	tc.hosts.release("stop", nil)
	tc.waitStatus(t, tc.Demo, id, stStopped)
	// A host that fails an action: the container stays as it was, with
	// the reason, and the failure is in the action log.
	tc.hosts.fail("start", fmt.Errorf("no more pids"))
	tc.action(t, tc.Demo, id, "start")
	ct := tc.waitStatus(t, tc.Demo, id, stStopped)
	tc.hosts.fail("start", nil)
	if !strings.Contains(fmt.Sprint(ct["status_reason"]), "no more pids") {
		t.Errorf("status_reason %v", ct["status_reason"])
	}
	if a := tc.lastAction(t, id); a["action"] != "start" || !strings.Contains(fmt.Sprint(a["message"]), "no more pids") {
		t.Errorf("failed action %v", a)
	}
	tc.action(t, tc.Demo, id, "start")
	if ct := tc.waitStatus(t, tc.Demo, id, stRunning); ct["status_reason"] != nil {
		t.Errorf("status_reason after a good start: %v", ct["status_reason"])
	}
	tc.remove(t, tc.Demo, id)
}

func TestProcessExit(t *testing.T) {
	tc := newTestCloud(t)
	// A process that exits on its own: Stopped with its exit code.
	id := tc.runSleeper(t, "short")
	tc.hosts.exit(t, id, 5)
	ct := tc.waitStatus(t, tc.Demo, id, stStopped)
	if d := fmt.Sprint(ct["status_detail"]); !regexp.MustCompile(`^Exited\(5\) \d+ seconds ago $`).MatchString(d) {
		t.Errorf("status_detail %q", d)
	}
	// Its log is still there; it starts again.
	if logs := tc.logs(t, id, ""); !strings.Contains(logs, "started") {
		t.Errorf("logs %q", logs)
	}
	tc.action(t, tc.Demo, id, "start")
	tc.waitStatus(t, tc.Demo, id, stRunning)
	tc.remove(t, tc.Demo, id)

	// A command that exits at once (run): Running, then Stopped with its code.
	ct = tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sh", "-c", "exit 7"}})
	id = ct["uuid"].(string)
	ct = tc.waitStatus(t, tc.Demo, id, stStopped)
	if d := fmt.Sprint(ct["status_detail"]); !strings.HasPrefix(d, "Exited(7) ") {
		t.Errorf("status_detail %q", d)
	}
	tc.waitLists(t, 3)
	if n := tc.hosts.startsOf(id); n != 1 {
		t.Errorf("restart policy no: %d starts", n)
	}
	// A container gone from its host (deleted behind the service's back)
	// is Error.
	other := tc.runSleeper(t, "vanishing")
	tc.hosts.rt.Delete(t.Context(), other)
	ct = tc.waitStatus(t, tc.Demo, other, stError)
	if !strings.Contains(fmt.Sprint(ct["status_reason"]), "gone") {
		t.Errorf("status_reason %v", ct["status_reason"])
	}
	tc.remove(t, tc.Demo, other)
	tc.remove(t, tc.Demo, id)
}

func TestRestartPolicy(t *testing.T) {
	tc := newTestCloud(t)
	run := func(name, policy string, cmd ...string) string {
		t.Helper()
		rp := map[string]any{"Name": policy}
		if n, k, ok := strings.Cut(policy, ":"); ok {
			rp = map[string]any{"Name": n, "MaximumRetryCount": k}
		}
		return tc.create(t, tc.Demo, true, map[string]any{"name": name, "command": cmd, "restart_policy": rp})["uuid"].(string)
	}
	// on-failure:2, failing: started, then restarted twice, then left Stopped.
	failing := run("failing", "on-failure:2", "sh", "-c", "exit 3")
	// on-failure:2, exiting 0: not restarted.
	fine := run("fine", "on-failure:2", "sh", "-c", "exit 0")
	// on-failure with no count: restarted without end, as always.
	forever := run("forever", "on-failure", "sh", "-c", "exit 1")
	// always, exiting 0: restarted again and again.
	always := run("always", "always", "sh", "-c", "exit 0")
	// unless-stopped: as always.
	unless := run("unless", "unless-stopped", "sh", "-c", "exit 2")
	// no: not restarted.
	no := run("never", "no", "sh", "-c", "exit 4")
	// always, stopped by the user: not restarted.
	stopped := run("stopped", "always", "sleep", "600")
	killed := run("killed", "always", "sleep", "600")

	tc.waitStatus(t, tc.Demo, stopped, stRunning)
	tc.action(t, tc.Demo, stopped, "stop")
	tc.waitStatus(t, tc.Demo, stopped, stStopped)
	tc.waitStatus(t, tc.Demo, killed, stRunning)
	tc.action(t, tc.Demo, killed, "kill")
	tc.waitStatus(t, tc.Demo, killed, stStopped)

	for _, id := range []string{forever, always, unless} {
		waitFor(t, "five starts of "+id, func() bool { return tc.hosts.startsOf(id) >= 5 })
	}
	ct := tc.waitStatus(t, tc.Demo, failing, stStopped)
	if d := fmt.Sprint(ct["status_detail"]); !strings.HasPrefix(d, "Exited(3) ") {
		t.Errorf("failing: %q", d)
	}
	tc.waitStatus(t, tc.Demo, fine, stStopped)
	tc.waitStatus(t, tc.Demo, no, stStopped)
	// Nothing more happens to those over a few rounds of the watcher.
	tc.waitLists(t, 5)
	for id, want := range map[string]int{failing: 3, fine: 1, no: 1, stopped: 1, killed: 1} {
		if n := tc.hosts.startsOf(id); n != want {
			t.Errorf("%s: %d starts, want %d", tc.show(t, tc.Demo, id)["name"], n, want)
		}
		if ct := tc.show(t, tc.Demo, id); ct["status"] != stStopped {
			t.Errorf("%s is %v", ct["name"], ct["status"])
		}
	}
	// Each start is in the container's log.
	if logs := tc.logs(t, failing, ""); strings.Count(logs, "started") != 3 {
		t.Errorf("failing's logs: %q", logs)
	}
	// A user start of a stopped container puts it under its policy again.
	tc.action(t, tc.Demo, stopped, "start")
	tc.waitStatus(t, tc.Demo, stopped, stRunning)
	tc.hosts.exit(t, stopped, 0)
	waitFor(t, "a restart of stopped after it exited on its own", func() bool { return tc.hosts.startsOf(stopped) >= 3 })
	for _, id := range []string{failing, fine, forever, always, unless, no, stopped, killed} {
		tc.remove(t, tc.Demo, id)
	}
}

func (tc *testCloud) logs(t testing.TB, id, query string) string {
	t.Helper()
	res := must(t, 200, tc.do(t, "GET", "/v1/containers/"+id+"/logs"+query, tc.Demo, nil))
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("logs content type %q", res.Header.Get("Content-Type"))
	}
	var s string
	if err := json.Unmarshal(res.Body, &s); err != nil {
		t.Fatalf("logs are not a JSON string: %s", res.Body)
	}
	return s
}

// TestWatcherSeesNewContainers: a container recorded Running after the
// watcher listed the host (without it) is not taken for one gone from
// its host.
func TestWatcherSeesNewContainers(t *testing.T) {
	tc := newTestCloud(t)
	g := tc.hosts.hold("listed")
	<-g.reached // the watcher has the host's list, without the new container
	id := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"}})["uuid"].(string)
	waitFor(t, "the build to record the container Running", func() bool {
		var status string
		tc.DB.QueryRow(`SELECT status FROM container_containers WHERE uuid=?`, id).Scan(&status)
		return status == stRunning
	})
	tc.hosts.release("listed", nil)
	tc.waitLists(t, 3)
	if ct := tc.show(t, tc.Demo, id); ct["status"] != stRunning {
		t.Errorf("the new container is %v: %v", ct["status"], ct["status_reason"])
	}
	tc.remove(t, tc.Demo, id)
}

// TestWatcherLeavesActions: while an action runs, the watcher does not
// record the states the host goes through (a rebooting container is
// stopped for a moment): it is Restarting until the reboot is done.
func TestWatcherLeavesActions(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"},
		"restart_policy": map[string]any{"Name": "always"}})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	g := tc.hosts.hold("rebooting")
	tc.action(t, tc.Demo, id, "reboot")
	<-g.reached
	tc.waitLists(t, 3)
	if ct := tc.show(t, tc.Demo, id); ct["status"] != stRestarting || ct["task_state"] != "container_rebooting" || ct["status_detail"] != "Restarting" {
		t.Errorf("while rebooting: %v %v %v", ct["status"], ct["task_state"], ct["status_detail"])
	}
	tc.hosts.release("rebooting", nil)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	tc.waitLists(t, 3)
	if n := tc.hosts.startsOf(id); n != 2 {
		t.Errorf("%d starts: the restart policy fired during the reboot", n)
	}
	var exit any
	tc.DB.QueryRow(`SELECT exit_code FROM container_containers WHERE uuid=?`, id).Scan(&exit)
	if exit != nil {
		t.Errorf("exit code %v recorded during a reboot", exit)
	}
	tc.remove(t, tc.Demo, id)
}

// TestWatcherDuringRestart: while the restart policy starts a container
// again, the watcher (seeing it still stopped on the host) neither
// records it Stopped nor restarts it a second time.
func TestWatcherDuringRestart(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"},
		"restart_policy": map[string]any{"Name": "on-failure", "MaximumRetryCount": "3"}})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	g := tc.hosts.hold("start")
	tc.hosts.exit(t, id, 1)
	<-g.reached
	tc.waitLists(t, 3)
	if ct := tc.show(t, tc.Demo, id); ct["status"] != stRestarting {
		t.Errorf("while restarting: %v", ct["status"])
	}
	tc.hosts.release("start", nil)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	tc.waitLists(t, 3)
	var count int
	tc.DB.QueryRow(`SELECT restart_count FROM container_containers WHERE uuid=?`, id).Scan(&count)
	if ct := tc.show(t, tc.Demo, id); ct["status"] != stRunning || count != 1 || tc.hosts.startsOf(id) != 2 {
		t.Errorf("after one restart: %v, restart_count %d, %d starts", ct["status"], count, tc.hosts.startsOf(id))
	}
	// A restart by the user starts the count again.
	tc.action(t, tc.Demo, id, "reboot")
	tc.lastAction(t, id)
	tc.DB.QueryRow(`SELECT restart_count FROM container_containers WHERE uuid=?`, id).Scan(&count)
	if count != 0 {
		t.Errorf("restart_count after the user's restart: %d", count)
	}
	tc.remove(t, tc.Demo, id)
}

// TestActionLog: actions that overlap (an exec while a pause runs) are
// each closed with their own end.
func TestActionLog(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "busy")
	exec := tc.hosts.hold("exec")
	done := make(chan response)
	go func() { done <- tc.do(t, "POST", "/v1/containers/"+id+"/execute?command=nosuch", tc.Demo, nil) }()
	<-exec.reached
	pause := tc.hosts.hold("pause")
	tc.action(t, tc.Demo, id, "pause")
	<-pause.reached
	// The exec (older) ends while the pause (newer) runs.
	tc.hosts.release("exec", nil)
	if res := <-done; res.StatusCode != 200 {
		t.Fatalf("exec: %d %s", res.StatusCode, res.Body)
	}
	tc.hosts.release("pause", nil)
	tc.waitStatus(t, tc.Demo, id, stPaused)
	tc.lastAction(t, id)
	acts := must(t, 200, tc.do(t, "GET", "/v1/containers/"+id+"/container_actions", tc.Demo, nil)).JSON(t)["containerActions"].([]any)
	got := map[string]map[string]any{}
	for _, a := range acts {
		a := a.(map[string]any)
		got[a["action"].(string)] = a
	}
	if a := got["pause"]; a["finish_time"] == nil || a["message"] != nil {
		t.Errorf("pause action %v", a)
	}
	if a := got["exec_cmd"]; a["finish_time"] == nil || !strings.Contains(fmt.Sprint(a["message"]), "cannot exec") {
		t.Errorf("exec action %v", a)
	}
	tc.remove(t, tc.Demo, id)
}
