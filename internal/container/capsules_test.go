package container

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// podTemplate is a capsule of two containers: a "web" one and a
// "sidecar" one.
func podTemplate(name string) map[string]any {
	return map[string]any{
		"kind":     "capsule",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"app": "web"}, "annotations": map[string]any{"note": "x"}},
		"spec": map[string]any{
			"restartPolicy": "OnFailure",
			"containers": []any{
				map[string]any{"name": "web", "image": "busybox", "command": []any{"sh", "-c"}, "args": []any{"sleep 600"},
					"resources": map[string]any{"requests": map[string]any{"cpu": 0.5, "memory": 64}},
					"ports":     []any{map[string]any{"containerPort": 8080, "protocol": "TCP"}}, "env": map[string]any{"A": "1"},
					"workDir": "/"},
				map[string]any{"name": "sidecar", "image": "busybox", "command": []any{"sleep", "600"},
					"resources": map[string]any{"requests": map[string]any{"cpu": "0.25", "memory": "32"}}},
			},
		},
	}
}

const podYAML = `kind: capsule
metadata:
  name: yamlpod
  labels:
    app: yaml
spec:
  containers:
  - name: one
    image: busybox
    command: ["sleep", "600"]
    resources:
      requests:
        cpu: 1
        memory: 64
  - image: busybox
    command:
    - sleep
    - "600"
`

// capsuleStatusOf polls a capsule until its status is want ("gone": 404).
func (tc *testCloud) waitCapsule(t testing.TB, id, want string) map[string]any {
	t.Helper()
	var last map[string]any
	waitFor(t, "capsule "+id+" to be "+want, func() bool {
		res := tc.do(t, "GET", "/v1/capsules/"+id, tc.Demo, nil)
		if res.StatusCode == 404 {
			return want == "gone"
		}
		last = must(t, 200, res).JSON(t)
		return last["status"] == want
	})
	return last
}

func capsuleContainerIDs(t testing.TB, cp map[string]any) []string {
	t.Helper()
	var ids []string
	for _, c := range cp["containers"].([]any) {
		ids = append(ids, c.(map[string]any)["uuid"].(string))
	}
	return ids
}

// TestCapsuleLifecycle: a capsule from a JSON object: its view, the
// specs its host gets (the first container holds the ports, the other
// joins its namespace), its containers hidden from the list but
// reachable, and its delete (the namespace's holder last).
func TestCapsuleLifecycle(t *testing.T) {
	tc := newTestCloud(t)
	res := must(t, 202, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": podTemplate("pod")}))
	cp := res.JSON(t)
	id, _ := cp["uuid"].(string)
	if loc := res.Header.Get("Location"); id == "" || !strings.HasSuffix(loc, "/container/v1/capsules/"+id) {
		t.Fatalf("create: location %q, body %v", loc, cp)
	}
	rp, _ := cp["restart_policy"].(map[string]any)
	if cp["name"] != "pod" || cp["status"] != stCreating || cp["memory"] != "96" || cp["cpu"] != 0.75 ||
		rp["Name"] != "on-failure" || rp["MaximumRetryCount"] != "0" || cp["labels"].(map[string]any)["app"] != "web" ||
		cp["annotations"].(map[string]any)["note"] != "x" || len(cp["links"].([]any)) != 2 || cp["meta_name"] != nil {
		t.Errorf("create view %v", cp)
	}
	if _, ok := cp["host"]; ok {
		t.Errorf("a member sees the capsule's host: %v", cp)
	}
	cp = tc.waitCapsule(t, id, stRunning)
	ids := capsuleContainerIDs(t, cp)
	if len(ids) != 2 {
		t.Fatalf("containers %v", cp["containers"])
	}
	first, second := ids[0], ids[1]
	for i, c := range cp["containers"].([]any) {
		c := c.(map[string]any)
		if _, ok := c["links"]; ok || c["status"] != stRunning || c["name"] != "capsule-pod-"+[]string{"web", "sidecar"}[i] {
			t.Errorf("capsule container %v", c)
		}
	}
	// The host: the first has its own namespace and the ports, the
	// other joins it.
	s1, s2 := tc.hosts.spec(first), tc.hosts.spec(second)
	if s1.NetnsOf != "" || s2.NetnsOf != first {
		t.Errorf("netns_of: first %q, second %q (first is %s)", s1.NetnsOf, s2.NetnsOf, first)
	}
	if !slices.Equal(s1.Process.Cmd, []string{"sh", "-c", "sleep 600"}) || s1.Process.Cwd != "/" ||
		!slices.Contains(s1.Process.Env, "A=1") || s1.Resources.MemoryBytes != 64<<20 || s2.Resources.VCPUs != 0.25 {
		t.Errorf("first spec %+v, second %+v", s1, s2)
	}
	if p := tc.nets.portsOf(first); len(p) != 1 || p[0].host != hostName {
		t.Errorf("ports of the first: %+v", p)
	}
	if p := tc.nets.portsOf(second); len(p) != 0 {
		t.Errorf("ports of the second: %+v", p)
	}
	// The capsule's addresses are the first's.
	addrs := cp["addresses"].(map[string]any)[tc.private].([]any)
	if len(addrs) != 1 || addrs[0].(map[string]any)["addr"] == nil {
		t.Errorf("addresses %v", cp["addresses"])
	}
	// By name too, and in the list; its containers are not in the
	// containers list but are there by uuid and name.
	if byName := must(t, 200, tc.do(t, "GET", "/capsules/pod", tc.Demo, nil)).JSON(t); byName["uuid"] != id {
		t.Errorf("by name: %v", byName)
	}
	list := must(t, 200, tc.do(t, "GET", "/v1/capsules/", tc.Demo, nil)).JSON(t)
	if l := list["capsules"].([]any); len(l) != 1 || l[0].(map[string]any)["uuid"] != id || list["next"] != nil {
		t.Errorf("list %v", list)
	}
	if l := must(t, 200, tc.do(t, "GET", "/v1/capsules", tc.Admin, nil)).JSON(t)["capsules"].([]any); len(l) != 0 {
		t.Errorf("admin's own list: %v", l)
	}
	if l := must(t, 200, tc.do(t, "GET", "/v1/capsules?all_projects=True", tc.Admin, nil)).JSON(t)["capsules"].([]any); len(l) != 1 ||
		l[0].(map[string]any)["host"] != hostName {
		t.Errorf("all projects: %v", l)
	}
	zunError(t, tc.do(t, "GET", "/v1/capsules/"+id, tc.Admin2(t), nil), 404, "container.capsule-not-found", "Capsule "+id+" could not be found.")
	if n := names(t, must(t, 200, tc.do(t, "GET", "/v1/containers", tc.Demo, nil))); len(n) != 0 {
		t.Errorf("the containers list shows %v", n)
	}
	tc.show(t, tc.Demo, second)
	tc.show(t, tc.Demo, "capsule-pod-sidecar")
	out := must(t, 200, tc.do(t, "POST", "/v1/containers/"+second+"/execute?command=%22echo%22+%22hi%22", tc.Demo, nil)).JSON(t)
	if out["output"] != "hi" {
		t.Errorf("exec: %v", out)
	}
	// A capsule's container is not deleted on its own.
	zunError(t, tc.do(t, "DELETE", "/v1/containers/"+second+"?force=True", tc.Admin, nil), 409, "container.invalid-state-exception", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/"+first+"/rebuild", tc.Demo, nil), 409, "container.invalid-state-exception", "")
	// The same name again is a conflict.
	zunError(t, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": podTemplate("pod")}), 409, "", "")

	// The watcher keeps the containers' states: one exits, and (on-failure,
	// exit 0) stays stopped; the capsule runs while the other does.
	tc.hosts.exit(t, second, 0)
	tc.waitStatus(t, tc.Demo, second, stStopped)
	if st := tc.waitCapsule(t, id, stRunning); st["status"] != stRunning {
		t.Errorf("capsule with one running: %v", st["status"])
	}
	tc.hosts.exit(t, first, 0)
	tc.waitCapsule(t, id, capSucceeded)

	must(t, 204, tc.do(t, "DELETE", "/capsules/"+id, tc.Demo, nil))
	tc.waitCapsule(t, id, "gone")
	tc.waitStatus(t, tc.Demo, first, "gone")
	tc.waitStatus(t, tc.Demo, second, "gone")
	if tc.nets.count() != 0 || tc.count(t) != 0 {
		t.Errorf("left: %d ports, %d containers", tc.nets.count(), tc.count(t))
	}
	// The namespace's holder is deleted last.
	var order []string
	tc.hosts.mu.Lock()
	calls := slices.Clone(tc.hosts.calls)
	tc.hosts.mu.Unlock()
	for _, c := range calls {
		if strings.HasPrefix(c, "delete ") {
			order = append(order, strings.TrimPrefix(c, "delete "))
		}
	}
	if !slices.Equal(order, []string{second, first}) {
		t.Errorf("deleted in order %v, want %s then %s", order, second, first)
	}
	zunError(t, tc.do(t, "DELETE", "/v1/capsules/"+id, tc.Demo, nil), 404, "container.capsule-not-found", "")
}

// Admin2 is a token of a user of another project (not an admin).
func (tc *testCloud) Admin2(t testing.TB) string {
	t.Helper()
	token, _, _ := tc.AddUser("other-"+newUUID()[:8], "other-project-"+newUUID()[:8], "member")
	return token
}

// TestCapsuleYAMLLegacy: a template as a YAML string, sent without a
// version as gophercloud does, answered in the legacy view; the
// unversioned, trailing-slash paths route.
func TestCapsuleYAMLLegacy(t *testing.T) {
	tc := newTestCloud(t)
	cp := must(t, 202, tc.doV(t, "", "POST", "/capsules/", tc.Demo, map[string]any{"template": podYAML})).JSON(t)
	id := cp["uuid"].(string)
	if cp["meta_name"] != "yamlpod" || cp["meta_labels"].(map[string]any)["app"] != "yaml" || cp["restart_policy"] != "always" ||
		cp["capsule_version"] != "" || len(cp["containers_uuids"].([]any)) != 0 || len(cp["volumes_info"].(map[string]any)) != 0 ||
		cp["memory"] != "64" || cp["cpu"] != 1.0 || cp["name"] != nil || cp["labels"] != nil {
		t.Errorf("legacy view %v", cp)
	}
	tc.waitCapsule(t, id, stRunning)
	// At 1.31 still legacy, at 1.32 the new view.
	if v := must(t, 200, tc.doV(t, "container 1.31", "GET", "/v1/capsules/"+id, tc.Demo, nil)).JSON(t); v["restart_policy"] != "always" {
		t.Errorf("1.31 view %v", v)
	}
	v := must(t, 200, tc.doV(t, "container 1.32", "GET", "/v1/capsules/"+id, tc.Demo, nil)).JSON(t)
	if rp, _ := v["restart_policy"].(map[string]any); rp["Name"] != "always" || v["name"] != "yamlpod" || v["meta_name"] != nil {
		t.Errorf("1.32 view %v", v)
	}
	ids := capsuleContainerIDs(t, v)
	if len(ids) != 2 || tc.hosts.spec(ids[1]).NetnsOf != ids[0] || !strings.HasPrefix(v["containers"].([]any)[1].(map[string]any)["name"].(string), "capsule-yamlpod-") {
		t.Errorf("containers %v", v["containers"])
	}
	if r := tc.show(t, tc.Demo, ids[0])["restart_policy"].(map[string]any); r["Name"] != "always" {
		t.Errorf("a capsule container's restart policy: %v", r)
	}
	must(t, 204, tc.doV(t, "", "DELETE", "/capsules/"+id, tc.Demo, nil))
	tc.waitCapsule(t, id, "gone")
}

// gcCapsule has the types gophercloud v2's capsules package decodes a
// legacy capsule into (results.go): a wrong JSON type fails it.
type gcCapsule struct {
	UUID           string                 `json:"uuid"`
	CPU            float64                `json:"cpu"`
	Memory         string                 `json:"memory"`
	MetaName       string                 `json:"meta_name"`
	Status         string                 `json:"status"`
	StatusReason   string                 `json:"status_reason"`
	Links          []any                  `json:"links"`
	CapsuleVersion string                 `json:"capsule_version"`
	RestartPolicy  string                 `json:"restart_policy"`
	MetaLabels     map[string]string      `json:"meta_labels"`
	ContainersUUID []string               `json:"containers_uuids"`
	Addresses      map[string][]gcAddress `json:"addresses"`
	VolumesInfo    map[string][]string    `json:"volumes_info"`
	Containers     []gcContainer          `json:"containers"`
	Host           string                 `json:"host"`
	CreatedAt      string                 `json:"created_at"`
}

type gcAddress struct {
	PreserveOnDelete bool    `json:"preserve_on_delete"`
	Addr             string  `json:"addr"`
	Port             string  `json:"port"`
	Version          float64 `json:"version"`
	SubnetID         string  `json:"subnet_id"`
}

type gcContainer struct {
	Addresses     map[string][]gcAddress `json:"addresses"`
	UUID          string                 `json:"uuid"`
	CPU           float64                `json:"cpu"`
	Memory        string                 `json:"memory"`
	Labels        map[string]string      `json:"labels"`
	Disk          int                    `json:"disk"`
	Environment   map[string]string      `json:"environment"`
	Status        string                 `json:"status"`
	StatusDetail  string                 `json:"status_detail"`
	Command       []string               `json:"command"`
	Interactive   bool                   `json:"interactive"`
	RestartPolicy map[string]string      `json:"restart_policy"`
	Ports         []int                  `json:"ports"`
	CreatedAt     string                 `json:"created_at"`
}

// TestCapsuleGophercloudShapes: what gophercloud's capsules package sends
// (no microversion, the template as a string, 202 expected) and reads
// (the legacy view, with its types and times). The package itself
// imports gopkg.in/yaml.v2, which this module does not require.
func TestCapsuleGophercloudShapes(t *testing.T) {
	tc := newTestCloud(t)
	res := must(t, 202, tc.doV(t, "", "POST", "/capsules", tc.Demo, map[string]any{"template": podYAML}))
	var cp gcCapsule
	if err := json.Unmarshal(res.Body, &cp); err != nil {
		t.Fatalf("gophercloud cannot read the create answer: %v: %s", err, res.Body)
	}
	if cp.MetaName != "yamlpod" || cp.RestartPolicy != "always" || len(cp.Containers) != 2 || cp.Memory != "64" {
		t.Fatalf("created %+v", cp)
	}
	tc.waitCapsule(t, cp.UUID, stRunning)
	var got gcCapsule
	body := must(t, 200, tc.doV(t, "", "GET", "/capsules/"+cp.UUID, tc.Demo, nil)).Body
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("gophercloud cannot read a capsule: %v: %s", err, body)
	}
	if got.Status != stRunning || len(got.Addresses) != 1 || got.Containers[0].Status != stRunning ||
		got.Containers[1].RestartPolicy["Name"] != "always" {
		t.Errorf("got %+v", got)
	}
	for _, ts := range []string{got.CreatedAt, got.Containers[0].CreatedAt} {
		if _, err := time.Parse("2006-01-02 15:04:05", ts); err != nil {
			t.Errorf("time %q: %v", ts, err)
		}
	}
	// Its pages follow "next".
	page := must(t, 200, tc.doV(t, "", "GET", "/capsules?limit=1&all_projects=false", tc.Demo, nil)).JSON(t)
	if l := page["capsules"].([]any); len(l) != 1 || page["next"] != nil {
		t.Errorf("list %v", page)
	}
	must(t, 204, tc.doV(t, "", "DELETE", "/capsules/"+cp.UUID, tc.Demo, nil))
	tc.waitCapsule(t, cp.UUID, "gone")
}

// TestCapsuleBadTemplates: bad templates are 400s (an unknown image a
// 404) in Zun's format, and nothing is made.
func TestCapsuleBadTemplates(t *testing.T) {
	tc := newTestCloud(t)
	with := func(edit func(m map[string]any)) map[string]any {
		m := podTemplate("bad")
		edit(m)
		return map[string]any{"template": m}
	}
	containers := func(m map[string]any) []any { return m["spec"].(map[string]any)["containers"].([]any) }
	first := func(m map[string]any) map[string]any { return containers(m)[0].(map[string]any) }
	for name, c := range map[string]struct {
		body   any
		status int
		code   string
	}{
		"no template":       {map[string]any{}, 400, "container.schema-validation-error"},
		"extra key":         {map[string]any{"template": podTemplate("x"), "nets": []any{}}, 400, "container.schema-validation-error"},
		"not an object":     {map[string]any{"template": 42}, 400, "container.schema-validation-error"},
		"not JSON nor YAML": {map[string]any{"template": "{kind: [capsule"}, 400, "container.invalid-capsule-template"},
		"a YAML list":       {map[string]any{"template": "- a\n- b\n"}, 400, "container.invalid-capsule-template"},
		"no kind":           {with(func(m map[string]any) { delete(m, "kind") }), 400, "container.schema-validation-error"},
		"wrong kind":        {with(func(m map[string]any) { m["kind"] = "Pod" }), 400, "container.invalid-capsule-template"},
		"no metadata":       {with(func(m map[string]any) { delete(m, "metadata") }), 400, "container.schema-validation-error"},
		"unknown top key":   {with(func(m map[string]any) { m["apiVersion"] = "v1" }), 400, "container.schema-validation-error"},
		"no containers":     {with(func(m map[string]any) { m["spec"] = map[string]any{} }), 400, "container.invalid-capsule-template"},
		"empty containers":  {with(func(m map[string]any) { m["spec"].(map[string]any)["containers"] = []any{} }), 400, "container.invalid-capsule-template"},
		"no image":          {with(func(m map[string]any) { delete(first(m), "image") }), 400, "container.schema-validation-error"},
		"unknown image":     {with(func(m map[string]any) { first(m)["image"] = "nosuch" }), 404, "container.image-not-found"},
		"unknown field":     {with(func(m map[string]any) { first(m)["privileged"] = true }), 400, "container.schema-validation-error"},
		"command not list":  {with(func(m map[string]any) { first(m)["command"] = "sleep 1" }), 400, "container.schema-validation-error"},
		"bad memory": {with(func(m map[string]any) {
			first(m)["resources"] = map[string]any{"requests": map[string]any{"memory": "64Mi"}}
		}), 400, "container.schema-validation-error"},
		"bad cpu":            {with(func(m map[string]any) { first(m)["resources"] = map[string]any{"requests": map[string]any{"cpu": 100}} }), 400, "container.schema-validation-error"},
		"bad restart policy": {with(func(m map[string]any) { m["spec"].(map[string]any)["restartPolicy"] = "Sometimes" }), 400, "container.schema-validation-error"},
		"bad name":           {with(func(m map[string]any) { m["metadata"].(map[string]any)["name"] = "-x" }), 400, "container.schema-validation-error"},
		"same names":         {with(func(m map[string]any) { containers(m)[1].(map[string]any)["name"] = "web" }), 400, "container.invalid-capsule-template"},
		"bad env":            {with(func(m map[string]any) { first(m)["env"] = map[string]any{"A": 1} }), 400, "container.schema-validation-error"},
		"port no number":     {with(func(m map[string]any) { first(m)["ports"] = []any{map[string]any{"name": "http"}} }), 400, "container.schema-validation-error"},
		"volumes": {with(func(m map[string]any) {
			m["spec"].(map[string]any)["volumes"] = []any{map[string]any{"name": "v", "cinder": map[string]any{"size": 1}}}
		}), 400, "container.invalid-capsule-template"},
		"volume mounts": {with(func(m map[string]any) {
			first(m)["volumeMounts"] = []any{map[string]any{"name": "v", "mountPath": "/v"}}
		}), 400, "container.invalid-capsule-template"},
		"volume mounted twice": {with(func(m map[string]any) {
			m["spec"].(map[string]any)["volumes"] = []any{map[string]any{"name": "v", "cinder": map[string]any{"size": 1}}}
			first(m)["volumeMounts"] = []any{map[string]any{"name": "v", "mountPath": "/v"}}
			containers(m)[1].(map[string]any)["volumeMounts"] = []any{map[string]any{"name": "v", "mountPath": "/v"}}
		}), 400, "container.invalid-capsule-template"},
		"volume size and id": {with(func(m map[string]any) {
			m["spec"].(map[string]any)["volumes"] = []any{map[string]any{"name": "v", "cinder": map[string]any{"size": 1, "volumeID": "x"}}}
			first(m)["volumeMounts"] = []any{map[string]any{"name": "v", "mountPath": "/v"}}
		}), 400, "container.invalid-capsule-template"},
		"volume not cinder": {with(func(m map[string]any) {
			m["spec"].(map[string]any)["volumes"] = []any{map[string]any{"name": "v"}}
			first(m)["volumeMounts"] = []any{map[string]any{"name": "v", "mountPath": "/v"}}
		}), 400, "container.invalid-capsule-template"},
		"volume mount no path": {with(func(m map[string]any) {
			m["spec"].(map[string]any)["volumes"] = []any{map[string]any{"name": "v", "cinder": map[string]any{"size": 1}}}
			first(m)["volumeMounts"] = []any{map[string]any{"name": "v"}}
		}), 400, "container.schema-validation-error"},
		"other zone": {with(func(m map[string]any) { m["availabilityZone"] = "elsewhere" }), 400, ""},
	} {
		t.Run(name, func(t *testing.T) {
			zunError(t, tc.do(t, "POST", "/v1/capsules", tc.Demo, c.body), c.status, c.code, "")
		})
	}
	req := tc.do(t, "GET", "/v1/capsules?limit=0", tc.Demo, nil)
	zunError(t, req, 400, "container.invalid-value", "Limit must be positive integer")
	var n int
	tc.DB.QueryRow(`SELECT count(*) FROM container_capsules`).Scan(&n)
	if n != 0 || tc.count(t) != 0 || tc.nets.count() != 0 {
		t.Errorf("bad templates made %d capsules, %d containers, %d ports", n, tc.count(t), tc.nets.count())
	}
}

// TestCapsuleQuota: a capsule's containers count against the quotas, all
// together.
func TestCapsuleQuota(t *testing.T) {
	tc := newTestCloud(t)
	must(t, 200, tc.do(t, "PUT", "/v1/quotas/"+tc.DemoProject, tc.Admin, map[string]any{"containers": 3, "memory": 700}))
	one := tc.runSleeper(t, "lonely") // Zun's default memory: 512 MiB
	// Two more containers fit, three do not; nor does more memory.
	three := podTemplate("three")
	spec := three["spec"].(map[string]any)
	spec["containers"] = append(spec["containers"].([]any), map[string]any{"image": "busybox", "command": []any{"sleep", "600"}})
	zunError(t, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": three}), 403, "container.over-quota",
		"Quota exceeded for resources: ['containers']")
	big := podTemplate("big")
	big["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["resources"] = map[string]any{"requests": map[string]any{"memory": 190}}
	zunError(t, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": big}), 403, "container.over-quota",
		"Quota exceeded for resources: ['memory']")
	if tc.count(t) != 1 {
		t.Fatalf("over-quota capsules made containers: %d", tc.count(t))
	}
	cp := must(t, 202, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": podTemplate("fits")})).JSON(t)
	tc.waitCapsule(t, cp["uuid"].(string), stRunning)
	u := must(t, 200, tc.do(t, "GET", "/v1/quotas/"+tc.DemoProject+"?usages=True", tc.Demo, nil)).JSON(t)
	if c := u["containers"].(map[string]any); c["in_use"] != 3.0 {
		t.Errorf("containers in use: %v", c)
	}
	if m := u["memory"].(map[string]any); m["in_use"] != 512.0+96 {
		t.Errorf("memory in use: %v", m)
	}
	zunError(t, tc.do(t, "POST", "/v1/containers", tc.Demo, map[string]any{"image": "busybox"}), 403, "container.over-quota", "")
	must(t, 204, tc.do(t, "DELETE", "/v1/capsules/fits", tc.Demo, nil))
	tc.waitCapsule(t, cp["uuid"].(string), "gone")
	tc.remove(t, tc.Demo, one)
}

// TestCapsuleFirstFails: when the first container cannot be made, the
// others are not made (there is no namespace to join) and the capsule is
// Error; deleting it cleans up.
func TestCapsuleFirstFails(t *testing.T) {
	tc := newTestCloud(t)
	tpl := podTemplate("broken")
	// The fake runtime refuses a command the image does not have.
	tpl["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["command"] = []any{"nosuch"}
	cp := must(t, 202, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": tpl})).JSON(t)
	id := cp["uuid"].(string)
	got := tc.waitCapsule(t, id, stError)
	if got["status_reason"] == nil {
		t.Errorf("no reason: %v", got)
	}
	ids := capsuleContainerIDs(t, got)
	if calls := tc.hosts.callsOf(ids[1]); len(calls) != 0 {
		t.Errorf("the second was made: %v", calls)
	}
	must(t, 204, tc.do(t, "DELETE", "/v1/capsules/"+id, tc.Demo, nil))
	tc.waitCapsule(t, id, "gone")
	if tc.count(t) != 0 || tc.nets.count() != 0 {
		t.Errorf("left %d containers, %d ports", tc.count(t), tc.nets.count())
	}
}

// TestCapsuleRestartResumes: a capsule whose creation a restart cut short
// is made by the next start, in order.
func TestCapsuleRestartResumes(t *testing.T) {
	tc := newTestCloud(t)
	g := tc.hosts.hold("ensure")
	cp := must(t, 202, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": podTemplate("resumed")})).JSON(t)
	<-g.reached
	tc.restart(t)
	tc.hosts.release("ensure", nil)
	id := cp["uuid"].(string)
	got := tc.waitCapsule(t, id, stRunning)
	ids := capsuleContainerIDs(t, got)
	if tc.hosts.spec(ids[1]).NetnsOf != ids[0] {
		t.Errorf("second spec %+v", tc.hosts.spec(ids[1]))
	}
	must(t, 204, tc.do(t, "DELETE", "/v1/capsules/"+id, tc.Demo, nil))
	tc.waitCapsule(t, id, "gone")
}

// TestCapsuleVolumes: a template's Cinder volumes — an existing one by id,
// a new one deleted with the capsule (autoRemove) and a new one kept —
// are attached to the containers that mount them, and given back when the
// capsule is deleted.
func TestCapsuleVolumes(t *testing.T) {
	tc := newTestCloud(t)
	tc.volumes = &fakeVolumes{vols: map[string]*fakeVolume{}}
	tc.restart(t)
	data := tc.volumes.add(tc.DemoProject, "data", "available")
	busy := tc.volumes.add(tc.DemoProject, "busy", "in-use")
	tmpl := podTemplate("vols")
	spec := tmpl["spec"].(map[string]any)
	cts := spec["containers"].([]any)
	spec["volumes"] = []any{
		map[string]any{"name": "data", "cinder": map[string]any{"volumeID": data}},
		map[string]any{"name": "scratch", "cinder": map[string]any{"size": 2, "autoRemove": true}},
		map[string]any{"name": "kept", "cinder": map[string]any{"size": 1}},
	}
	cts[0].(map[string]any)["volumeMounts"] = []any{map[string]any{"name": "data", "mountPath": "/data"}}
	cts[1].(map[string]any)["volumeMounts"] = []any{map[string]any{"name": "scratch", "mountPath": "/scratch"},
		map[string]any{"name": "kept", "mountPath": "/kept"}}

	// A volume in use elsewhere: refused, nothing made.
	bad := podTemplate("bad")
	bad["spec"].(map[string]any)["volumes"] = []any{map[string]any{"name": "b", "cinder": map[string]any{"volumeID": busy}}}
	bad["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["volumeMounts"] = []any{map[string]any{"name": "b", "mountPath": "/b"}}
	zunError(t, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": bad}), 400, "", "")
	if tc.count(t) != 0 || tc.volumes.count() != 2 {
		t.Fatalf("a refused capsule made %d containers, %d volumes", tc.count(t), tc.volumes.count())
	}

	cp := must(t, 202, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": tmpl})).JSON(t)
	id := cp["uuid"].(string)
	got := tc.waitCapsule(t, id, stRunning)
	var uuids []string
	for _, c := range got["containers"].([]any) {
		uuids = append(uuids, c.(map[string]any)["uuid"].(string))
	}
	if len(uuids) != 2 {
		t.Fatalf("containers %v", got["containers"])
	}
	byDest := map[string]fakeVolume{}
	tc.volumes.mu.Lock()
	for _, v := range tc.volumes.vols {
		byDest[v.device] = *v
	}
	tc.volumes.mu.Unlock()
	if v := byDest["/data"]; v.ID != data || v.Status != "in-use" || v.container != uuids[0] {
		t.Errorf("data: %+v", v)
	}
	scratch, kept := byDest["/scratch"], byDest["/kept"]
	if scratch.Size != 2 || scratch.Status != "in-use" || scratch.container != uuids[1] {
		t.Errorf("scratch: %+v", scratch)
	}
	if kept.Size != 1 || kept.Status != "in-use" || kept.container != uuids[1] {
		t.Errorf("kept: %+v", kept)
	}
	tc.hosts.mu.Lock()
	m0, m1 := tc.hosts.mounts[uuids[0]], tc.hosts.mounts[uuids[1]]
	tc.hosts.mu.Unlock()
	if len(m0) != 1 || m0[0].Destination != "/data" || len(m1) != 2 {
		t.Errorf("host mounts %+v %+v", m0, m1)
	}

	must(t, 204, tc.do(t, "DELETE", "/v1/capsules/"+id, tc.Demo, nil))
	tc.waitCapsule(t, id, "gone")
	if v, ok := tc.volumes.get(data); !ok || v.Status != "available" {
		t.Errorf("data after the capsule: %+v %v", v, ok)
	}
	if _, ok := tc.volumes.get(scratch.ID); ok {
		t.Error("the autoRemove volume outlived the capsule")
	}
	if v, ok := tc.volumes.get(kept.ID); !ok || v.Status != "available" {
		t.Errorf("the kept volume after the capsule: %+v %v", v, ok)
	}
}

// TestCapsuleInitContainers: init containers run first, one at a time,
// each to its end; the others are made only once they all exited 0. One
// that fails (Never: no retry) leaves the others in Error, and the capsule
// too.
func TestCapsuleInitContainers(t *testing.T) {
	tc := newTestCloud(t)
	run := func(name, policy string) (string, []map[string]any, []map[string]any) {
		t.Helper()
		tmpl := podTemplate(name)
		spec := tmpl["spec"].(map[string]any)
		spec["restartPolicy"] = policy
		spec["initContainers"] = []any{
			map[string]any{"name": "init1", "image": "busybox", "command": []any{"sh", "-c", "echo one"},
				"resources": map[string]any{"requests": map[string]any{"cpu": 1, "memory": 256}}},
			map[string]any{"name": "init2", "image": "busybox", "command": []any{"sh", "-c", "echo two"}},
		}
		cp := must(t, 202, tc.do(t, "POST", "/v1/capsules", tc.Demo, map[string]any{"template": tmpl})).JSON(t)
		// Zun's sizing: the largest of the init containers and the sum of the others.
		if cp["cpu"] != 1.0 || cp["memory"] != "256" {
			t.Errorf("capsule cpu %v memory %v", cp["cpu"], cp["memory"])
		}
		id := cp["uuid"].(string)
		view := func() ([]map[string]any, []map[string]any) {
			v := must(t, 200, tc.do(t, "GET", "/v1/capsules/"+id, tc.Demo, nil)).JSON(t)
			var inits, cts []map[string]any
			for _, x := range v["init_containers"].([]any) {
				inits = append(inits, x.(map[string]any))
			}
			for _, x := range v["containers"].([]any) {
				cts = append(cts, x.(map[string]any))
			}
			return inits, cts
		}
		inits, cts := view()
		if len(inits) != 2 || len(cts) != 2 {
			t.Fatalf("init containers %d, containers %d", len(inits), len(cts))
		}
		return id, inits, cts
	}

	// Always: each init runs alone, the others wait for it.
	id, inits, cts := run("inits", "Always")
	first := inits[0]["uuid"].(string)
	tc.waitStatus(t, tc.Demo, first, stRunning)
	if rp := tc.show(t, tc.Admin, first)["restart_policy"].(map[string]any); rp["Name"] != "on-failure" || rp["MaximumRetryCount"] != "10" {
		t.Errorf("an Always capsule's init container: restart policy %v", rp)
	}
	if st := tc.show(t, tc.Demo, inits[1]["uuid"].(string))["status"]; st != stCreating {
		t.Errorf("the second init container is %v while the first runs", st)
	}
	tc.hosts.exit(t, first, 0)
	second := inits[1]["uuid"].(string)
	tc.waitStatus(t, tc.Demo, second, stRunning)
	for _, c := range cts {
		if st := tc.show(t, tc.Demo, c["uuid"].(string))["status"]; st != stCreating {
			t.Errorf("container %v is %v before the init containers ended", c["name"], st)
		}
	}
	tc.hosts.exit(t, second, 0)
	tc.waitCapsule(t, id, stRunning)
	for _, c := range cts {
		tc.waitStatus(t, tc.Demo, c["uuid"].(string), stRunning)
	}
	// Done, they stay Stopped (exit 0): not restarted.
	tc.waitLists(t, 3)
	if n := tc.hosts.startsOf(first); n != 1 {
		t.Errorf("the first init container started %d times", n)
	}
	must(t, 204, tc.do(t, "DELETE", "/v1/capsules/"+id, tc.Demo, nil))
	tc.waitCapsule(t, id, "gone")

	// Never: an init container that fails ends the capsule in Error.
	id, inits, cts = run("badinit", "Never")
	first = inits[0]["uuid"].(string)
	tc.waitStatus(t, tc.Demo, first, stRunning)
	tc.hosts.exit(t, first, 3)
	cp := tc.waitCapsule(t, id, stError)
	if !strings.Contains(fmt.Sprint(cp["status_reason"]), "exited with code 3") {
		t.Errorf("status_reason %v", cp["status_reason"])
	}
	for _, c := range append(inits[1:], cts...) {
		if ct := tc.show(t, tc.Demo, c["uuid"].(string)); ct["status"] != stError || tc.hosts.startsOf(c["uuid"].(string)) != 0 {
			t.Errorf("container %v after the init failed: %v, started %d times", c["name"], ct["status"], tc.hosts.startsOf(c["uuid"].(string)))
		}
	}
	must(t, 204, tc.do(t, "DELETE", "/v1/capsules/"+id, tc.Demo, nil))
	tc.waitCapsule(t, id, "gone")
}
