package container

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
)

func TestDelete(t *testing.T) {
	tc := newTestCloud(t)
	// Running (or Paused): refused without force or stop; nothing changes.
	id := tc.runSleeper(t, "victim")
	for _, q := range []string{"", "?force=False&stop=False&all_projects=False"} {
		zunError(t, tc.do(t, "DELETE", "/v1/containers/victim"+q, tc.Demo, nil), 409, "container.invalid-state-exception",
			fmt.Sprintf("Cannot delete container %s in Running state", id))
	}
	tc.action(t, tc.Demo, id, "pause")
	tc.waitStatus(t, tc.Demo, id, stPaused)
	zunError(t, tc.do(t, "DELETE", "/v1/containers/"+id, tc.Demo, nil), 409, "container.invalid-state-exception",
		fmt.Sprintf("Cannot delete container %s in Paused state", id))
	zunError(t, tc.do(t, "DELETE", "/v1/containers/"+id+"?force=maybe", tc.Demo, nil), 400, "container.schema-validation-error", "")
	if ct := tc.show(t, tc.Demo, id); ct["status"] != stPaused {
		t.Fatalf("a refused delete left %v", ct["status"])
	}
	ports := tc.nets.portsOf(id)
	if len(ports) != 1 {
		t.Fatalf("ports %+v", ports)
	}
	// force is the admin's (Zun's policy): a member is refused, nothing changes.
	zunError(t, tc.do(t, "DELETE", "/v1/containers/victim?force=True", tc.Demo, nil), 403, "container.policy-not-authorized",
		"Policy doesn't allow container:delete_force to be performed.")
	if ct := tc.show(t, tc.Demo, id); ct["status"] != stPaused {
		t.Fatalf("a refused force delete left %v", ct["status"])
	}
	// force: killed and removed, its port deleted; then 404.
	res := must(t, 204, tc.do(t, "DELETE", "/v1/containers/victim?force=True", tc.Admin, nil))
	if len(res.Body) != 0 {
		t.Errorf("204 with a body: %q", res.Body)
	}
	tc.waitStatus(t, tc.Demo, id, "gone")
	if calls := tc.hosts.callsOf(id); calls[len(calls)-1] != "delete" || slices.Contains(calls, "stop") {
		t.Errorf("host calls %v", calls)
	}
	if _, err := tc.hosts.rt.State(t.Context(), id); err == nil {
		t.Error("the container is still on the host")
	}
	if len(tc.nets.portsOf(id)) != 0 {
		t.Error("its port is left")
	}
	zunError(t, tc.do(t, "DELETE", "/v1/containers/"+id+"?force=True", tc.Admin, nil), 404, "container.container-not-found", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/"+id+"/start", tc.Demo, nil), 404, "container.container-not-found", "")

	// stop: stopped first (gracefully, with the stop's timeout), then removed.
	id = tc.runSleeper(t, "graceful")
	must(t, 204, tc.do(t, "DELETE", "/v1/containers/graceful?stop=True", tc.Demo, nil))
	tc.waitStatus(t, tc.Demo, id, "gone")
	if calls := tc.hosts.callsOf(id); !slices.Equal(calls[len(calls)-2:], []string{"stop", "delete"}) {
		t.Errorf("host calls for delete?stop: %v", calls)
	}

	// Created and Stopped: deleted without flags.
	created := tc.stateOf(t, stCreated)
	stopped := tc.stateOf(t, stStopped)
	for _, id := range []string{created, stopped} {
		must(t, 204, tc.do(t, "DELETE", "/v1/containers/"+id, tc.Demo, nil))
		tc.waitStatus(t, tc.Demo, id, "gone")
	}

	// A port the user gave is unbound, not deleted.
	portID, err := tc.nets.CreatePort(t.Context(), tc.DemoProject, tc.private, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ct := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"}, "nets": []any{map[string]any{"port": portID.ID}}})
	id = ct["uuid"].(string)
	ct = tc.waitStatus(t, tc.Demo, id, stRunning)
	if a := ct["addresses"].(map[string]any)[tc.private].([]any)[0].(map[string]any); a["port"] != portID.ID || a["preserve_on_delete"] != true {
		t.Errorf("given port: %v", a)
	}
	tc.remove(t, tc.Demo, id)
	if p, ok := tc.nets.port(portID.ID); !ok || p.host != "" || p.device != "" {
		t.Errorf("the given port after delete: %+v %v", p, ok)
	}
	tc.nets.DeletePort(t.Context(), portID.ID)

	// A host that fails the delete: Error with the reason, the record and
	// the port kept; deleting again works.
	id = tc.runSleeper(t, "stubborn")
	tc.hosts.fail("delete", fmt.Errorf("device busy"))
	must(t, 204, tc.do(t, "DELETE", "/v1/containers/stubborn?force=True", tc.Admin, nil))
	ct = tc.waitStatus(t, tc.Demo, id, stError)
	tc.hosts.fail("delete", nil)
	if !strings.Contains(fmt.Sprint(ct["status_reason"]), "device busy") || len(tc.nets.portsOf(id)) != 1 {
		t.Errorf("failed delete: reason %v, ports %v", ct["status_reason"], tc.nets.portsOf(id))
	}
	must(t, 204, tc.do(t, "DELETE", "/v1/containers/stubborn", tc.Demo, nil))
	tc.waitStatus(t, tc.Demo, id, "gone")
	if n := tc.nets.count(); n != 0 {
		t.Errorf("%d ports left", n)
	}
}

// TestDeleteWhileCreating: a container deleted (force) while its host is
// still making it is deleted once the build ends, whether the build
// succeeds or fails; without force the delete is refused.
func TestDeleteWhileCreating(t *testing.T) {
	tc := newTestCloud(t)
	for _, failBuild := range []bool{false, true} {
		g := tc.hosts.hold("ensure")
		id := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"}})["uuid"].(string)
		<-g.reached
		zunError(t, tc.do(t, "DELETE", "/v1/containers/"+id, tc.Demo, nil), 409, "container.invalid-state-exception",
			fmt.Sprintf("Cannot delete container %s in Creating state", id))
		must(t, 204, tc.do(t, "DELETE", "/v1/containers/"+id+"?force=True", tc.Admin, nil))
		var err error
		if failBuild {
			err = fmt.Errorf("out of disk")
		}
		tc.hosts.release("ensure", err)
		tc.waitStatus(t, tc.Demo, id, "gone")
		if _, err := tc.hosts.rt.State(t.Context(), id); err == nil {
			t.Errorf("build failed=%v: the container is on the host", failBuild)
		}
		if len(tc.nets.portsOf(id)) != 0 {
			t.Errorf("build failed=%v: its port is left", failBuild)
		}
	}
}

func TestExecLogsTopStats(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "box")
	exec := func(query string) map[string]any {
		t.Helper()
		return must(t, 200, tc.do(t, "POST", "/v1/containers/box/execute?"+query, tc.Demo, nil)).JSON(t)
	}
	// zunclient quotes each argument: "echo" "hello world".
	r := exec("command=" + url.QueryEscape(`"echo" "hello world" "again"`))
	if r["output"] != "hello world again" || r["exit_code"] != 0.0 || r["exec_id"] != nil || r["proxy_url"] != nil {
		t.Errorf("exec echo: %v", r)
	}
	if calls := tc.hosts.callsOf(id); calls[len(calls)-1] != "exec echo hello world again" {
		t.Errorf("exec args: %v", calls[len(calls)-1])
	}
	if r := exec("command=false&run=True&interactive=False"); r["exit_code"] != 1.0 || r["output"] != "" {
		t.Errorf("exec false: %v", r)
	}
	if r := exec("command=warn"); r["exit_code"] != 2.0 || r["output"] != "out\nerr" {
		t.Errorf("exec warn: %v", r)
	}
	if r := exec("command=nosuch"); r["exit_code"] != 126.0 || !strings.Contains(fmt.Sprint(r["output"]), "not found") {
		t.Errorf("exec nosuch: %v", r)
	}
	// The command may come in the body too.
	r = must(t, 200, tc.do(t, "POST", "/v1/containers/box/execute", tc.Demo, map[string]any{"command": "echo body"})).JSON(t)
	if r["output"] != "body" {
		t.Errorf("exec with a body: %v", r)
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/box/execute", tc.Demo, nil), 400, "container.schema-validation-error", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/box/execute?command="+url.QueryEscape(`"echo`), tc.Demo, nil), 400,
		"container.schema-validation-error", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/box/execute?command=sh&interactive=True&run=False", tc.Demo, nil), 400,
		"container.invalid-value", "")
	acts := must(t, 200, tc.do(t, "GET", "/v1/containers/box/container_actions", tc.Demo, nil)).JSON(t)["containerActions"].([]any)
	if a := acts[0].(map[string]any); a["action"] != "exec_cmd" {
		t.Errorf("last action %v", a)
	}

	// top and stats of a running container.
	top := must(t, 200, tc.do(t, "GET", "/v1/containers/box/top?ps_args=None", tc.Demo, nil)).JSON(t)
	if !slices.Equal(toStrings(top["Titles"]), []string{"UID", "PID", "PPID", "CMD"}) || len(top["Processes"].([]any)) != 1 ||
		!slices.Equal(toStrings(top["Processes"].([]any)[0]), []string{"0", "4242", "4200", "sleep 600"}) {
		t.Errorf("top %v", top)
	}
	st := must(t, 200, tc.do(t, "GET", "/v1/containers/box/stats", tc.Demo, nil)).JSON(t)
	if st["CONTAINER"] != "box" || st["CPU %"] != 12.35 || st["MEM USAGE(MiB)"] != 64.0 || st["MEM LIMIT(MiB)"] != 128.0 ||
		st["MEM %"] != 50.0 || st["BLOCK I/O(B)"] != "1/2" || st["NET I/O(B)"] != "3/4" {
		t.Errorf("stats %v", st)
	}

	// Logs: a JSON string; tail keeps the last lines. Each start of the
	// fake writes one line.
	tc.action(t, tc.Demo, id, "reboot")
	tc.waitStatus(t, tc.Demo, id, stRunning)
	tc.action(t, tc.Demo, id, "reboot")
	tc.waitStatus(t, tc.Demo, id, stRunning)
	line := "fake: " + id + " started"
	if all := tc.logs(t, id, "?stdout=True&stderr=True&timestamps=False&tail=all"); all != strings.Repeat(line+"\n", 2)+line {
		t.Errorf("logs %q", all)
	}
	if last := tc.logs(t, "box", "?tail=1"); last != line {
		t.Errorf("tail=1: %q", last)
	}
	if none := tc.logs(t, "box", "?tail=0"); none != "" {
		t.Errorf("tail=0: %q", none)
	}
	zunError(t, tc.do(t, "GET", "/v1/containers/box/logs?tail=-1", tc.Demo, nil), 400, "container.schema-validation-error", "")
	zunError(t, tc.do(t, "GET", "/v1/containers/box/logs?timestamps=maybe", tc.Demo, nil), 400, "container.invalid-value", "")
	zunError(t, tc.do(t, "GET", "/v1/containers/box/logs?since=yesterday", tc.Demo, nil), 400, "container.invalid-value", "")
	// since (an epoch or Zun's datetime), streams and timestamps reach the host.
	for q, want := range map[string]LogOptions{
		"?since=1700000000&stderr=False&timestamps=True":   {Stdout: true, Since: time.Unix(1700000000, 0), Timestamps: true, Tail: -1},
		"?since=2026-11-26 01:02:03,5&stdout=false&tail=3": {Stderr: true, Since: time.Date(2026, 11, 26, 1, 2, 3, 5e8, time.UTC), Tail: 3},
	} {
		tc.logs(t, "box", strings.ReplaceAll(q, " ", "%20"))
		tc.hosts.mu.Lock()
		got := tc.hosts.logOpts
		tc.hosts.mu.Unlock()
		if got.Stdout != want.Stdout || got.Stderr != want.Stderr || got.Timestamps != want.Timestamps || got.Tail != want.Tail ||
			!got.Since.Equal(want.Since) {
			t.Errorf("logs%s: the host was asked %+v, want %+v", q, got, want)
		}
	}

	// A stopped container: no exec, top or stats (409); logs still.
	tc.action(t, tc.Demo, id, "stop")
	tc.waitStatus(t, tc.Demo, id, stStopped)
	for _, c := range []struct{ method, path, action string }{
		{"POST", "/execute?command=echo+hi", "execute"}, {"GET", "/top", "top"}, {"GET", "/stats", "stats"},
	} {
		zunError(t, tc.do(t, c.method, "/v1/containers/box"+c.path, tc.Demo, nil), 409, "container.invalid-state-exception",
			fmt.Sprintf("Cannot %s container %s in Stopped state", c.action, id))
	}
	if logs := tc.logs(t, "box", ""); strings.Count(logs, "started") != 3 {
		t.Errorf("logs of the stopped container: %q", logs)
	}
	tc.remove(t, tc.Demo, id)
}

func TestUpdate(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "old")
	ct := tc.show(t, tc.Demo, id)

	// Rename (zunclient's "set --name").
	up := must(t, 200, tc.do(t, "PATCH", "/v1/containers/old", tc.Demo, map[string]any{"name": "new"})).JSON(t)
	if up["name"] != "new" || up["uuid"] != id || up["links"] == nil {
		t.Errorf("rename answer %v", up)
	}
	if tc.show(t, tc.Demo, "new")["uuid"] != id {
		t.Error("not found by its new name")
	}
	zunError(t, tc.do(t, "GET", "/v1/containers/old", tc.Demo, nil), 404, "container.container-not-found", "")
	zunError(t, tc.do(t, "PATCH", "/v1/containers/new", tc.Demo, map[string]any{"name": "new"}), 409, "container.conflict",
		"The new name for the container is the same as the old name.")
	acts := must(t, 200, tc.do(t, "GET", "/v1/containers/new/container_actions", tc.Demo, nil)).JSON(t)["containerActions"].([]any)
	if a := acts[0].(map[string]any); a["action"] != "update" || a["finish_time"] == nil {
		t.Errorf("update action %v", a)
	}

	// Bad input: 400, nothing changed.
	for _, body := range []map[string]any{
		{}, {"name": "-x"}, {"name": "x"}, {"name": 5}, {"name": strings.Repeat("n", 256)}, {"memory": "128M"}, {"memory": 2},
		{"cpu": 100}, {"cpu": "NaN"}, {"image": "other"}, {"name": "fine", "memory": "1x"}, {"auto_heal": "perhaps"},
	} {
		zunError(t, tc.do(t, "PATCH", "/v1/containers/"+id, tc.Demo, body), 400, "container.schema-validation-error", "")
	}
	zunError(t, tc.do(t, "PATCH", "/v1/containers/"+id, tc.Demo, "not json"), 400, "container.invalid-value", "")

	// memory and cpu: this host cannot resize a container: 409, and
	// nothing changed (not the name given with it either).
	zunError(t, tc.do(t, "PATCH", "/v1/containers/"+id, tc.Demo, map[string]any{"memory": "256", "name": "renamed"}), 409,
		"container.conflict", "Containers cannot be resized on this cloud.")
	zunError(t, tc.do(t, "PATCH", "/v1/containers/"+id, tc.Demo, map[string]any{"cpu": "1"}), 409, "container.conflict", "")
	after := tc.show(t, tc.Demo, id)
	if after["name"] != "new" || after["memory"] != ct["memory"] || after["cpu"] != ct["cpu"] {
		t.Errorf("a refused resize changed the container: %v %v %v", after["name"], after["memory"], after["cpu"])
	}
	// auto_heal needs no host.
	if up := must(t, 200, tc.do(t, "PATCH", "/v1/containers/"+id, tc.Demo, map[string]any{"auto_heal": true})).JSON(t); up["auto_heal"] != true {
		t.Errorf("auto_heal %v", up["auto_heal"])
	}
	// Not while it is being made or deleted.
	g := tc.hosts.hold("ensure")
	creating := tc.create(t, tc.Demo, true, map[string]any{"command": []string{"sleep", "600"}})["uuid"].(string)
	<-g.reached
	zunError(t, tc.do(t, "PATCH", "/v1/containers/"+creating, tc.Demo, map[string]any{"name": "early"}), 409,
		"container.invalid-state-exception", fmt.Sprintf("Cannot update container %s in Creating state", creating))
	tc.hosts.release("ensure", nil)
	tc.waitStatus(t, tc.Demo, creating, stRunning)
	tc.remove(t, tc.Demo, creating)
	tc.remove(t, tc.Demo, id)
}

func TestUpdateResize(t *testing.T) {
	tc := newTestCloud(t, options{resize: true})
	id := tc.create(t, tc.Demo, true, map[string]any{"name": "big", "memory": 128, "cpu": 1, "command": []string{"sleep", "600"}})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	up := must(t, 200, tc.do(t, "PATCH", "/v1/containers/big", tc.Demo, map[string]any{"memory": "256", "cpu": "0.5"})).JSON(t)
	if up["memory"] != "256" || up["cpu"] != 0.5 {
		t.Errorf("resized view %v %v", up["memory"], up["cpu"])
	}
	if r := tc.resize.get(id); r.MemoryBytes != 256<<20 || r.VCPUs != 0.5 {
		t.Errorf("host resize %+v", r)
	}
	// Over the memory quota: 403, nothing changed.
	must(t, 200, tc.do(t, "PUT", "/v1/quotas/"+tc.DemoProject, tc.Admin, map[string]any{"memory": "300"}))
	zunError(t, tc.do(t, "PATCH", "/v1/containers/big", tc.Demo, map[string]any{"memory": "512"}), 403, "container.over-quota",
		"Quota exceeded for resources: ['memory']")
	// A host that fails the resize: its error, nothing changed.
	tc.resize.fail(fmt.Errorf("%w: cannot lower memory below usage", runtime.ErrInvalid))
	zunError(t, tc.do(t, "PATCH", "/v1/containers/big", tc.Demo, map[string]any{"memory": "200"}), 409, "container.conflict",
		fmt.Sprintf("Cannot resize container %s: invalid: cannot lower memory below usage", id))
	tc.resize.fail(nil)
	if ct := tc.show(t, tc.Demo, id); ct["memory"] != "256" {
		t.Errorf("memory %v after refused resizes", ct["memory"])
	}
	tc.remove(t, tc.Demo, id)
}

func TestCommit(t *testing.T) {
	tc := newTestCloud(t)
	created := tc.stateOf(t, stCreated)
	zunError(t, tc.do(t, "POST", "/v1/containers/"+created+"/commit?repository=snap", tc.Demo, nil), 409, "container.invalid-state-exception",
		fmt.Sprintf("Cannot commit container %s in Created state", created))
	tc.remove(t, tc.Demo, created)

	id := tc.runSleeper(t, "src")
	zunError(t, tc.do(t, "POST", "/v1/containers/src/commit", tc.Demo, nil), 400, "container.schema-validation-error", "")
	res := must(t, 202, tc.do(t, "POST", "/v1/containers/src/commit?repository=snap&tag=v1", tc.Demo, nil))
	imageID, _ := res.JSON(t)["uuid"].(string)
	im, owner := tc.images.get(imageID)
	if im.Name != "snap" || im.Status != "active" || owner != tc.DemoProject {
		t.Fatalf("committed image %+v of %q", im, owner)
	}
	if data, _ := tc.images.open(imageID); !slices.Equal(data, rootfsTar(t)) {
		t.Errorf("committed image's bytes are not the container's root filesystem")
	}
	// A container runs from it.
	ct := tc.create(t, tc.Demo, true, map[string]any{"image": "snap", "command": []string{"sleep", "600"}})
	copyID := ct["uuid"].(string)
	tc.waitStatus(t, tc.Demo, copyID, stRunning)
	if spec := tc.hosts.spec(copyID); spec.Image != imageID {
		t.Errorf("spec image %s, want %s", spec.Image, imageID)
	}
	// The image is demo's: the admin's project cannot run it by name...
	// (admins see every image: by id they can).
	other, _, _ := tc.AddUser("bob", "other", "member")
	zunError(t, tc.do(t, "POST", "/v1/containers", other, map[string]any{"image": imageID}), 404, "container.image-not-found", "")
	tc.remove(t, tc.Demo, copyID)
	tc.remove(t, tc.Demo, id)
}

func TestQuotas(t *testing.T) {
	tc := newTestCloud(t)
	q := must(t, 200, tc.do(t, "GET", "/v1/quotas/"+tc.DemoProject, tc.Demo, nil)).JSON(t)
	if q["containers"] != 40.0 || q["cpu"] != 20.0 || q["memory"] != 51200.0 || q["disk"] != 100.0 {
		t.Errorf("default quotas %v", q)
	}
	zunError(t, tc.do(t, "GET", "/v1/quotas/"+tc.AdminProject, tc.Demo, nil), 403, "container.policy-not-authorized", "")
	zunError(t, tc.do(t, "PUT", "/v1/quotas/"+tc.DemoProject, tc.Demo, map[string]any{"containers": 100}), 403, "container.policy-not-authorized", "")
	for _, bad := range []map[string]any{{"containers": "many"}, {"containers": -2}, {"pods": 1}, {"memory": 1.5}} {
		zunError(t, tc.do(t, "PUT", "/v1/quotas/"+tc.DemoProject, tc.Admin, bad), 400, "container.schema-validation-error", "")
	}
	// zunclient sends strings.
	q = must(t, 200, tc.do(t, "PUT", "/v1/quotas/"+tc.DemoProject, tc.Admin, map[string]any{"containers": "1", "cpu": -1})).JSON(t)
	if q["containers"] != 1.0 || q["cpu"] != -1.0 || q["memory"] != 51200.0 {
		t.Errorf("updated quotas %v", q)
	}

	id := tc.create(t, tc.Demo, false, map[string]any{"name": "only", "memory": 64, "cpu": 2})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stCreated)
	u := must(t, 200, tc.do(t, "GET", "/v1/quotas/"+tc.DemoProject+"?usages=True", tc.Demo, nil)).JSON(t)
	want := map[string][2]float64{"containers": {1, 1}, "cpu": {-1, 2}, "memory": {51200, 64}, "disk": {100, 0}}
	for k, w := range want {
		m, _ := u[k].(map[string]any)
		if m["limit"] != w[0] || m["in_use"] != w[1] {
			t.Errorf("usage of %s: %v, want limit %v in_use %v", k, u[k], w[0], w[1])
		}
	}
	// Over the containers quota: 403, nothing made.
	ports, containers := tc.nets.count(), tc.count(t)
	zunError(t, tc.do(t, "POST", "/v1/containers?run=true", tc.Demo, map[string]any{"image": "busybox", "name": "second"}), 403,
		"container.over-quota", "Quota exceeded for resources: ['containers']")
	if tc.nets.count() != ports || tc.count(t) != containers {
		t.Errorf("an over-quota create made something: %d ports, %d containers", tc.nets.count(), tc.count(t))
	}
	// Other projects are not limited by demo's quota.
	other := tc.create(t, tc.Admin, false, map[string]any{"name": "admins"})["uuid"].(string)
	// Memory: 64 used of 100.
	must(t, 200, tc.do(t, "PUT", "/v1/quotas/"+tc.DemoProject, tc.Admin, map[string]any{"containers": 10, "memory": 100}))
	zunError(t, tc.do(t, "POST", "/v1/containers", tc.Demo, map[string]any{"image": "busybox", "memory": 64}), 403,
		"container.over-quota", "Quota exceeded for resources: ['memory']")
	ok := tc.create(t, tc.Demo, false, map[string]any{"memory": 36})["uuid"].(string)
	// Defaults and delete.
	d := must(t, 200, tc.do(t, "GET", "/v1/quotas/"+tc.DemoProject+"/defaults", tc.Demo, nil)).JSON(t)
	if d["containers"] != 40.0 {
		t.Errorf("defaults %v", d)
	}
	must(t, 200, tc.do(t, "DELETE", "/v1/quotas/"+tc.DemoProject, tc.Admin, nil))
	if q := must(t, 200, tc.do(t, "GET", "/v1/quotas/"+tc.DemoProject, tc.Demo, nil)).JSON(t); q["containers"] != 40.0 || q["memory"] != 51200.0 {
		t.Errorf("quotas after delete %v", q)
	}
	// The default class changes every project's defaults.
	must(t, 200, tc.do(t, "PUT", "/v1/quota_classes/default", tc.Admin, map[string]any{"containers": 2}))
	if q := must(t, 200, tc.do(t, "GET", "/v1/quota_classes/default", tc.Admin, nil)).JSON(t); q["containers"] != 2.0 {
		t.Errorf("quota class %v", q)
	}
	zunError(t, tc.do(t, "POST", "/v1/containers", tc.Demo, map[string]any{"image": "busybox"}), 403, "container.over-quota", "")
	zunError(t, tc.do(t, "GET", "/v1/quota_classes/default", tc.Demo, nil), 403, "container.policy-not-authorized", "")
	for _, c := range []string{id, ok} {
		tc.waitStatus(t, tc.Demo, c, stCreated)
		tc.remove(t, tc.Demo, c)
	}
	tc.remove(t, tc.Admin, other)
}

func TestBadInput(t *testing.T) {
	tc := newTestCloud(t)
	tc.hosts.mu.Lock()
	callsBefore := len(tc.hosts.calls)
	tc.hosts.mu.Unlock()
	with := func(kv ...any) map[string]any {
		m := map[string]any{"image": "busybox", "name": "bad"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	long := strings.Repeat("x", 256)
	cases := []struct {
		body   any
		status int
		code   string
	}{
		{with("memory", "128M"), 400, "schema-validation-error"},
		{with("memory", 2), 400, "schema-validation-error"},
		{with("memory", 9000), 400, "schema-validation-error"},
		{with("memory", "12.5"), 400, "schema-validation-error"},
		{with("memory", "-64"), 400, "schema-validation-error"},
		{with("cpu", 100), 400, "schema-validation-error"},
		{with("cpu", "0.01"), 400, "schema-validation-error"},
		{with("cpu", "NaN"), 400, "schema-validation-error"},
		{with("cpu", "Inf"), 400, "schema-validation-error"},
		{with("cpu", "1e1"), 400, "schema-validation-error"},
		{with("cpu", "abc"), 400, "schema-validation-error"},
		{with("cpu", true), 400, "schema-validation-error"},
		{with("disk", -1), 400, "schema-validation-error"},
		{with("disk", "-1"), 400, "schema-validation-error"},
		{with("restart_policy", map[string]any{"Name": "sometimes"}), 400, "invalid-value"},
		{with("restart_policy", map[string]any{"Name": "always", "MaximumRetryCount": "3"}), 400, "invalid-value"},
		{with("restart_policy", map[string]any{"Name": "no", "MaximumRetryCount": 1}), 400, "invalid-value"},
		{with("restart_policy", map[string]any{"Name": "on-failure", "MaximumRetryCount": "-1"}), 400, ""},
		{with("restart_policy", map[string]any{"Name": "on-failure", "MaximumRetryCount": "abc"}), 400, "schema-validation-error"},
		{with("restart_policy", map[string]any{"Name": "on-failure", "MaximumRetryCount": 1.5}), 400, "schema-validation-error"},
		{with("restart_policy", map[string]any{"Name": "always"}, "auto_remove", true), 409, "conflict"},
		{with("privileged", true), 403, "policy-not-authorized"},
		{with("privileged", "True"), 403, "policy-not-authorized"},
		{with("privileged", "maybe"), 400, "schema-validation-error"},
		{with("interactive", 3), 400, "schema-validation-error"},
		{with("image", "nope"), 404, "image-not-found"},
		{with("image", ""), 400, "schema-validation-error"},
		{map[string]any{"name": "noimage"}, 400, "schema-validation-error"},
		{with("image", "queued"), 400, "invalid-value"},
		{with("name", "-leading"), 400, "invalid-value"},
		{with("name", "x"), 400, "invalid-value"},
		{with("name", "with space"), 400, "invalid-value"},
		{with("name", long), 400, "invalid-value"},
		{with("name", 42), 400, "invalid-value"},
		{with("mounts", []any{map[string]any{"source": "vol", "destination": "/data"}}), 400, "invalid-value"},
		{with("mounts", []any{map[string]any{"type": "tmpfs", "source": "aGk=", "destination": "/etc/x"}}), 400, "schema-validation-error"},
		{with("nets", []any{map[string]any{"network": "private", "port": "p"}}), 400, "invalid-value"},
		{with("nets", []any{map[string]any{}}), 400, "invalid-value"},
		{with("nets", []any{map[string]any{"network": "admin-net"}}), 404, ""},
		{with("nets", []any{map[string]any{"network": "nowhere"}}), 404, ""},
		{with("availability_zone", "mars"), 400, "invalid-value"},
		{with("host", "elsewhere"), 404, "requested-host-not-found"},
		{with("hostname", "h"), 400, "schema-validation-error"},
		{with("environment", map[string]any{"A": 1}), 400, "invalid-value"},
		{with("environment", map[string]any{"A=B": "1"}), 400, "invalid-value"},
		{with("command", 5), 400, "schema-validation-error"},
		{with("command", []any{"sh", 5}), 400, "schema-validation-error"},
		{with("entrypoint", "sh"), 400, "invalid-value"},
		{with("labels", []any{"a"}), 400, "invalid-value"},
		{`{"image": "busybox"`, 400, "invalid-value"},
		{`["busybox"]`, 400, "invalid-value"},
		{"", 400, "invalid-value"},
	}
	for _, c := range cases {
		b, _ := json.Marshal(c.body)
		if s, ok := c.body.(string); ok {
			b = []byte(s)
		}
		req := strings.NewReader(string(b))
		res := tc.do(t, "POST", "/v1/containers?run=true", tc.Demo, req)
		if res.StatusCode != c.status {
			t.Errorf("create %s: %d, want %d: %s", b, res.StatusCode, c.status, res.Body)
			continue
		}
		if c.code != "" {
			var e struct {
				Errors []struct{ Code string } `json:"errors"`
			}
			json.Unmarshal(res.Body, &e)
			if len(e.Errors) != 1 || e.Errors[0].Code != "container."+c.code {
				t.Errorf("create %s: %s, want code container.%s", b, res.Body, c.code)
			}
		}
	}
	zunError(t, tc.do(t, "POST", "/v1/containers?run=perhaps", tc.Demo, with()), 400, "container.schema-validation-error", "")
	// An oversize body.
	big := `{"image": "busybox", "labels": {"a": "` + strings.Repeat("x", 2<<20) + `"}}`
	if res := tc.do(t, "POST", "/v1/containers", tc.Demo, strings.NewReader(big)); res.StatusCode != 413 {
		t.Errorf("oversize body: %d", res.StatusCode)
	}
	// Nothing was made: no record, no port, no call to the host, no action.
	var actions int
	tc.DB.QueryRow(`SELECT count(*) FROM container_actions`).Scan(&actions)
	tc.hosts.mu.Lock()
	calls := len(tc.hosts.calls) - callsBefore
	tc.hosts.mu.Unlock()
	if n := tc.count(t); n != 0 || tc.nets.count() != 0 || calls != 0 || actions != 0 {
		t.Errorf("bad creates made %d containers, %d ports, %d host calls, %d actions", n, tc.nets.count(), calls, actions)
	}
	// Good values in the accepted spellings.
	for _, body := range []map[string]any{
		with("name", "ok1", "memory", "4", "cpu", "16", "disk", "1", "privileged", "False", "interactive", "true", "auto_remove", false),
		with("name", "ok2", "cpu", 0.1, "restart_policy", map[string]any{"Name": "on-failure", "MaximumRetryCount": 2}),
		with("name", "ok3", "restart_policy", map[string]any{"Name": "no", "MaximumRetryCount": "0"}, "mounts", []any{}, "nets", []any{}),
		with("name", "o."+strings.Repeat("k", 253)),
	} {
		id := tc.create(t, tc.Demo, false, body)["uuid"].(string)
		tc.waitStatus(t, tc.Demo, id, stCreated)
		tc.remove(t, tc.Demo, id)
	}
}

func TestHostsServicesImages(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.create(t, tc.Demo, false, map[string]any{"memory": 64, "cpu": 0.5})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stCreated)

	hosts := must(t, 200, tc.do(t, "GET", "/v1/hosts/", tc.Admin, nil)).JSON(t)
	list := hosts["hosts"].([]any)
	if len(list) != 1 || hosts["next"] != nil {
		t.Fatalf("hosts %v", hosts)
	}
	h := list[0].(map[string]any)
	if h["hostname"] != hostName || h["mem_total"] != 8192.0 || h["cpus"] != 4.0 || h["total_containers"] != 1.0 ||
		h["mem_used"] != 64.0 || h["cpu_used"] != 0.5 || h["os_type"] != "linux" || h["kernel_version"] != "6.1" {
		t.Errorf("host %v", h)
	}
	for _, ref := range []string{h["uuid"].(string), hostName} {
		if one := must(t, 200, tc.do(t, "GET", "/v1/hosts/"+ref, tc.Admin, nil)).JSON(t); one["uuid"] != h["uuid"] {
			t.Errorf("host %s: %v", ref, one)
		}
	}
	zunError(t, tc.do(t, "GET", "/v1/hosts/nowhere", tc.Admin, nil), 404, "container.compute-node-not-found", "")
	zunError(t, tc.do(t, "GET", "/v1/hosts", tc.Demo, nil), 403, "container.policy-not-authorized", "")

	svcs := must(t, 200, tc.do(t, "GET", "/v1/services", tc.Admin, nil)).JSON(t)
	s := svcs["services"].([]any)[0].(map[string]any)
	if s["binary"] != "zun-compute" || s["host"] != hostName || s["state"] != "up" || s["availability_zone"] != "nova" {
		t.Errorf("service %v", s)
	}
	if _, ok := svcs["next"]; ok {
		t.Error("services have a next")
	}
	zunError(t, tc.do(t, "GET", "/v1/services", tc.Demo, nil), 403, "container.policy-not-authorized", "")

	az := must(t, 200, tc.do(t, "GET", "/v1/availability_zones", tc.Demo, nil)).JSON(t)
	if z := az["availability_zones"].([]any); len(z) != 1 || z[0].(map[string]any)["availability_zone"] != "nova" {
		t.Errorf("availability zones %v", az)
	}

	ims := must(t, 200, tc.do(t, "GET", "/v1/images/", tc.Admin, nil)).JSON(t)["images"].([]any)
	var repos []string
	for _, im := range ims {
		repos = append(repos, im.(map[string]any)["repo"].(string))
	}
	if !slices.Contains(repos, "busybox") {
		t.Errorf("images %v", repos)
	}
	if im := must(t, 200, tc.do(t, "GET", "/v1/images/"+tc.busybox, tc.Admin, nil)).JSON(t); im["repo"] != "busybox" || im["image_id"] != tc.busybox {
		t.Errorf("image %v", im)
	}
	zunError(t, tc.do(t, "GET", "/v1/images/"+newUUID(), tc.Admin, nil), 404, "container.image-not-found", "")
	zunError(t, tc.do(t, "GET", "/v1/images", tc.Demo, nil), 403, "container.policy-not-authorized", "")
	tc.remove(t, tc.Demo, id)
}

// TestServiceRestart: work the service had in flight when it went away
// (kill -9: its calls to the host cut short) is finished by the next one
// on the same database.
func TestServiceRestart(t *testing.T) {
	tc := newTestCloud(t)
	running := tc.runSleeper(t, "survivor")
	doomed := tc.runSleeper(t, "doomed")
	stopping := tc.runSleeper(t, "stopping")

	// A container being made.
	g := tc.hosts.hold("ensure")
	building := tc.create(t, tc.Demo, true, map[string]any{"name": "building", "command": []string{"sleep", "600"}})["uuid"].(string)
	<-g.reached
	// A container being deleted.
	g = tc.hosts.hold("delete")
	must(t, 204, tc.do(t, "DELETE", "/v1/containers/doomed?force=True", tc.Admin, nil))
	<-g.reached
	// A container being stopped.
	g = tc.hosts.hold("stop")
	tc.action(t, tc.Demo, stopping, "stop")
	<-g.reached

	tc.svc.Close()
	for id, want := range map[string][2]string{building: {stCreating, taskCreate}, doomed: {stDeleting, taskDelete}} {
		var status, task string
		tc.DB.QueryRow(`SELECT status, coalesce(task, '') FROM container_containers WHERE uuid=?`, id).Scan(&status, &task)
		if status != want[0] || task != want[1] {
			t.Fatalf("after the crash %s is %s/%s, want %v", id, status, task, want)
		}
	}
	for _, op := range []string{"ensure", "delete", "stop"} {
		tc.hosts.release(op, nil)
	}
	portsBefore := len(tc.nets.portsOf(building))
	tc.start(t)

	ct := tc.waitStatus(t, tc.Demo, building, stRunning)
	if len(tc.nets.portsOf(building)) != 1 || portsBefore != 1 || len(ct["addresses"].(map[string]any)) != 1 {
		t.Errorf("the resumed build has %d ports (%d before)", len(tc.nets.portsOf(building)), portsBefore)
	}
	tc.waitStatus(t, tc.Demo, doomed, "gone")
	if _, err := tc.hosts.rt.State(t.Context(), doomed); err == nil || len(tc.nets.portsOf(doomed)) != 0 {
		t.Errorf("the resumed delete left the container (%v) or its port", err)
	}
	// The interrupted stop did not happen; the container is usable again.
	ct = tc.waitStatus(t, tc.Demo, stopping, stRunning)
	tc.action(t, tc.Demo, stopping, "stop")
	tc.waitStatus(t, tc.Demo, stopping, stStopped)
	// The one that was left alone is as it was.
	if ct := tc.show(t, tc.Demo, running); ct["status"] != stRunning {
		t.Errorf("survivor is %v", ct["status"])
	}
	// A process that exited while the service was down is Stopped with
	// its code once the service is back, and its restart policy applies.
	tc.svc.Close()
	tc.hosts.exit(t, running, 9)
	tc.start(t)
	ct = tc.waitStatus(t, tc.Demo, running, stStopped)
	if d := fmt.Sprint(ct["status_detail"]); !strings.HasPrefix(d, "Exited(9) ") {
		t.Errorf("status_detail %q", d)
	}
	for _, id := range []string{running, building, stopping} {
		tc.remove(t, tc.Demo, id)
	}
}

// TestAutoRemove: a container run with auto_remove is deleted when its
// process ends on its own, ports and all; one without it stays Stopped.
func TestAutoRemove(t *testing.T) {
	tc := newTestCloud(t)
	gone := tc.create(t, tc.Demo, true, map[string]any{"name": "rm1", "auto_remove": true,
		"command": []string{"sh", "-c", "exit 0"}})["uuid"].(string)
	kept := tc.create(t, tc.Demo, true, map[string]any{"name": "keep1",
		"command": []string{"sh", "-c", "exit 0"}})["uuid"].(string)
	tc.waitStatus(t, tc.Demo, gone, "gone")
	tc.waitStatus(t, tc.Demo, kept, stStopped)
	tc.remove(t, tc.Demo, kept)
}
