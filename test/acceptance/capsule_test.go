package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// TestCapsule: a capsule (Zun's pod) of two busybox containers on the
// shared cloud: one serves HTTP on 8080, the other reaches it on
// 127.0.0.1 (they share one network namespace), the capsule has one
// private address, and deleting it leaves no container, namespace or port.
func TestCapsule(t *testing.T) {
	needRoot(t)
	z := newZun(t, demoSession(t), adminSession(t))
	name := uniq("pod")
	tpl := map[string]any{
		"kind":     "capsule",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"restartPolicy": "Always",
			"containers": []any{
				map[string]any{"name": "web", "image": "busybox",
					"command": []any{"sh", "-c", "mkdir -p /www && echo pod > /www/index.html && exec httpd -f -p 8080 -h /www"},
					"ports":   []any{map[string]any{"containerPort": 8080}}},
				map[string]any{"name": "side", "image": "busybox", "command": []any{"sleep", "600"},
					"volumeMounts": []any{map[string]any{"name": "scratch", "mountPath": "/data"}}},
			},
			// A new Cinder volume for the capsule, deleted with it.
			"volumes": []any{map[string]any{"name": "scratch", "cinder": map[string]any{"size": 1, "autoRemove": true}}},
		},
	}
	var cp map[string]any
	z.call("POST", "/capsules", map[string]any{"template": tpl}, 202, &cp)
	id, _ := cp["uuid"].(string)
	if id == "" || cp["status"] != "Creating" || cp["name"] != name {
		t.Fatalf("create: %v", cp)
	}
	t.Cleanup(func() { forgetCapsule(z, id) })

	cp = waitCapsule(z, id, "Running", 60*time.Second)
	var ids []string
	for _, c := range cp["containers"].([]any) {
		ids = append(ids, c.(map[string]any)["uuid"].(string))
	}
	if len(ids) != 2 {
		t.Fatalf("containers: %v", cp["containers"])
	}
	// One private address: the first container's port.
	var portIDs []string
	for _, l := range cp["addresses"].(map[string]any) {
		for _, a := range l.([]any) {
			portIDs = append(portIDs, a.(map[string]any)["port"].(string))
		}
	}
	if len(portIDs) != 1 {
		t.Errorf("addresses: %v", cp["addresses"])
	}
	first := z.show(ids[0])
	if p, _ := portAddress(t, first); len(portIDs) == 1 && p != portIDs[0] {
		t.Errorf("the capsule's port %s is not its first container's %s", portIDs[0], p)
	}
	if second := z.show(ids[1]); len(second["addresses"].(map[string]any)) != 0 {
		t.Errorf("the second container has addresses of its own: %v", second["addresses"])
	}

	// The second reaches the first's server on localhost.
	var out string
	var code int
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code = z.exec(ids[1], "wget", "-qO-", "http://127.0.0.1:8080/")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 0 || strings.TrimSpace(out) != "pod" {
		t.Errorf("wget from the second container: %d %q", code, out)
	}
	// The volume is an ext4 filesystem at /data in the second container.
	out, code = z.exec(ids[1], "sh", "-c", "echo kept > /data/f && cat /data/f && grep ' /data ' /proc/mounts")
	if code != 0 || !strings.HasPrefix(out, "kept\n") || !strings.Contains(out, " ext4 ") {
		t.Errorf("the capsule's volume in the second container: %d %q", code, out)
	}
	// A capsule's containers are not in the containers list, nor
	// deleted on their own.
	var list struct {
		Containers []map[string]any `json:"containers"`
	}
	z.call("GET", "/containers", nil, 200, &list)
	for _, c := range list.Containers {
		if c["uuid"] == ids[0] || c["uuid"] == ids[1] {
			t.Errorf("the containers list shows capsule container %v", c["name"])
		}
	}
	if code, raw := z.asAdmin().do("DELETE", "/containers/"+ids[1]+"?force=True", nil); code != 409 {
		t.Errorf("deleting a capsule's container: %d %s", code, raw)
	}

	// Without a version (gophercloud's default), on the unversioned
	// path, the legacy view.
	legacy := rawGet(t, strings.TrimSuffix(z.url, "/v1")+"/capsules/"+id, z.token)
	if legacy["meta_name"] != name || legacy["restart_policy"] != "always" || legacy["memory"] == nil {
		t.Errorf("legacy view: %v", legacy)
	}

	// Delete: nothing of it is left.
	z.call("DELETE", "/capsules/"+id, nil, 204, nil)
	waitCapsule(z, id, "gone", 60*time.Second)
	for _, c := range ids {
		z.wait(c, "gone", 10*time.Second)
	}
	deadline = time.Now().Add(30 * time.Second)
	for left := hostLeftovers(t, cloud, ids, portIDs); len(left) > 0; left = hostLeftovers(t, cloud, ids, portIDs) {
		if time.Now().After(deadline) {
			t.Errorf("left on the host 30s after the capsule was deleted: %v", left)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range portIDs {
		_, err := ports.Get(context.Background(), demoNet(t), p).Extract()
		wantCode(t, err, 404, "the capsule's port after its delete")
	}
}

// waitCapsule polls a capsule until it has the status ("gone": 404);
// Error fails the test.
func waitCapsule(z zun, id, status string, d time.Duration) map[string]any {
	z.t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, raw := z.do("GET", "/capsules/"+id, nil)
		if status == "gone" && code == 404 {
			return nil
		}
		var m map[string]any
		if code == 200 {
			json.Unmarshal(raw, &m)
			if m["status"] == status {
				return m
			}
			if m["status"] == "Error" {
				z.t.Fatalf("capsule %s is Error: %v", id, m["status_reason"])
			}
		}
		if time.Now().After(deadline) {
			z.t.Fatalf("capsule %s: %d %s, waiting %s for %s", id, code, raw, d, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// forgetCapsule deletes a capsule the test may have left.
func forgetCapsule(z zun, id string) {
	req, _ := http.NewRequest("DELETE", z.url+"/capsules/"+id, nil)
	req.Header.Set("X-Auth-Token", z.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	resp.Body.Close()
	if resp.StatusCode != 204 && resp.StatusCode != 404 {
		z.t.Errorf("cleanup: delete capsule %s: %d", id, resp.StatusCode)
	}
}

// rawGet gets a JSON object with no microversion header.
func rawGet(t *testing.T, url, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, raw)
	}
	return m
}

// TestCapsuleInitContainers: an init container runs to its end before the
// capsule's containers start (each prints the time it started), and the
// others then share its network namespace, which outlives it.
func TestCapsuleInitContainers(t *testing.T) {
	needRoot(t)
	z := newZun(t, demoSession(t), adminSession(t))
	tpl := map[string]any{
		"kind":     "capsule",
		"metadata": map[string]any{"name": uniq("initpod")},
		"spec": map[string]any{
			"initContainers": []any{
				map[string]any{"name": "setup", "image": "busybox", "command": []any{"sh", "-c", "date +%s; sleep 2; echo setup done"}},
			},
			"containers": []any{
				map[string]any{"name": "web", "image": "busybox",
					"command": []any{"sh", "-c", "date +%s; mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www"}},
				map[string]any{"name": "side", "image": "busybox", "command": []any{"sleep", "600"}},
			},
		},
	}
	var cp map[string]any
	z.call("POST", "/capsules", map[string]any{"template": tpl}, 202, &cp)
	id, _ := cp["uuid"].(string)
	t.Cleanup(func() { forgetCapsule(z, id) })
	cp = waitCapsule(z, id, "Running", 60*time.Second)
	inits, cts := cp["init_containers"].([]any), cp["containers"].([]any)
	if len(inits) != 1 || len(cts) != 2 {
		t.Fatalf("init containers %d, containers %d", len(inits), len(cts))
	}
	initID := inits[0].(map[string]any)["uuid"].(string)
	init := z.wait(initID, "Stopped", 30*time.Second)
	initLogs := z.logs(initID)
	if d, _ := init["status_detail"].(string); !strings.HasPrefix(d, "Exited(0)") || !strings.Contains(initLogs, "setup done") {
		t.Errorf("the init container: %v, %v, logs %q", init["status"], init["status_detail"], initLogs)
	}
	webID, sideID := cts[0].(map[string]any)["uuid"].(string), cts[1].(map[string]any)["uuid"].(string)
	webLogs := z.waitLogs(webID, "17", 1) // a Unix time
	var initAt, webAt int64
	fmt.Sscan(initLogs, &initAt)
	fmt.Sscan(webLogs, &webAt)
	if initAt == 0 || webAt < initAt+2 {
		t.Errorf("web started at %d, the init container at %d and ran 2 s", webAt, initAt)
	}
	// The capsule's address is the init container's port; the others
	// share its namespace after it ended.
	if len(cp["addresses"].(map[string]any)) != 1 {
		t.Errorf("addresses %v", cp["addresses"])
	}
	var out string
	var code int
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code = z.exec(sideID, "wget", "-qO-", "http://127.0.0.1:8080/")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 0 || strings.TrimSpace(out) != "served" {
		t.Errorf("wget from side: %d %q", code, out)
	}
	z.call("DELETE", "/capsules/"+id, nil, 204, nil)
	waitCapsule(z, id, "gone", 60*time.Second)
}
