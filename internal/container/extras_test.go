package container

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"testing"
)

func TestRebuild(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "phoenix")
	port := tc.nets.portsOf(id)[0].ID
	tc.action(t, tc.Demo, id, "pause")
	tc.waitStatus(t, tc.Demo, id, stPaused)
	zunError(t, tc.do(t, "POST", "/v1/containers/"+id+"/rebuild", tc.Demo, nil), 409, "container.invalid-state-exception",
		fmt.Sprintf("Cannot rebuild container %s in Paused state", id))
	tc.action(t, tc.Demo, id, "unpause")
	tc.waitStatus(t, tc.Demo, id, stRunning)

	// Running: made again from its image, running again, same port.
	tc.action(t, tc.Demo, id, "rebuild")
	tc.waitStatus(t, tc.Demo, id, stRunning)
	calls := tc.hosts.callsOf(id)
	if !slices.Equal(calls[len(calls)-3:], []string{"delete", "ensure running=false", "ensure running=true"}) {
		t.Errorf("host calls of a rebuild: %v", calls)
	}
	if ports := tc.nets.portsOf(id); len(ports) != 1 || ports[0].ID != port || ports[0].host != hostName {
		t.Errorf("ports after rebuild: %+v", ports)
	}
	// From another image (a commit of it).
	imageID := must(t, 202, tc.do(t, "POST", "/v1/containers/"+id+"/commit?repository=phoenix-image", tc.Demo, nil)).JSON(t)["uuid"].(string)
	tc.action(t, tc.Demo, id, "stop")
	tc.waitStatus(t, tc.Demo, id, stStopped)
	tc.action(t, tc.Demo, id, "rebuild?image=phoenix-image")
	ct := tc.waitStatus(t, tc.Demo, id, stCreated)
	if ct["image"] != "phoenix-image" || tc.hosts.spec(id).Image != imageID {
		t.Errorf("rebuilt from %v (%s)", ct["image"], tc.hosts.spec(id).Image)
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/"+id+"/rebuild?image=nope", tc.Demo, nil), 404, "container.image-not-found",
		"Image nope could not be found.")

	// A rebuild cut short by a restart of the service: Error, then it can
	// be rebuilt again.
	g := tc.hosts.hold("ensure")
	tc.action(t, tc.Demo, id, "rebuild")
	<-g.reached
	if ct := tc.show(t, tc.Demo, id); ct["status"] != "Rebuilding" || ct["task_state"] != "container_rebuilding" {
		t.Errorf("while rebuilding: %v %v", ct["status"], ct["task_state"])
	}
	zunError(t, tc.do(t, "DELETE", "/v1/containers/"+id, tc.Demo, nil), 409, "container.invalid-state-exception",
		fmt.Sprintf("Cannot delete container %s in Rebuilding state", id))
	tc.svc.Close()
	tc.hosts.release("ensure", nil)
	tc.start(t)
	ct = tc.waitStatus(t, tc.Demo, id, stError)
	if ct["status_reason"] == nil {
		t.Error("no reason for the interrupted rebuild")
	}
	tc.action(t, tc.Demo, id, "rebuild")
	tc.waitStatus(t, tc.Demo, id, stCreated)

	// A delete (force) during a rebuild that then fails: deleted.
	g = tc.hosts.hold("ensure")
	tc.action(t, tc.Demo, id, "rebuild")
	<-g.reached
	must(t, 204, tc.do(t, "DELETE", "/v1/containers/"+id+"?force=True", tc.Admin, nil))
	tc.hosts.release("ensure", fmt.Errorf("no space left"))
	tc.waitStatus(t, tc.Demo, id, "gone")
	if n := tc.nets.count(); n != 0 {
		t.Errorf("%d ports left", n)
	}
}

func TestNetworkAttachDetach(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "multi") // on demo's one network, private
	second := newUUID()
	tc.nets.mu.Lock()
	tc.nets.nets[second] = fakeNet{name: "second", project: tc.DemoProject}
	tc.nets.mu.Unlock()

	must(t, 200, tc.do(t, "POST", "/v1/containers/multi/network_attach?network=second", tc.Demo, nil))
	nl := must(t, 200, tc.do(t, "GET", "/v1/containers/multi/network_list", tc.Demo, nil)).JSON(t)["networks"].([]any)
	if len(nl) != 2 || nl[1].(map[string]any)["net_id"] != second {
		t.Fatalf("network_list %v", nl)
	}
	if ports := tc.nets.portsOf(id); len(ports) != 2 || ports[0].host != hostName || ports[1].host != hostName {
		t.Errorf("ports %+v", ports)
	}
	if addrs := tc.show(t, tc.Demo, id)["addresses"].(map[string]any); len(addrs) != 2 || addrs[second] == nil {
		t.Errorf("addresses %v", addrs)
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/multi/network_attach?network=second", tc.Demo, nil), 400, "container.invalid-value", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/multi/network_attach?network=admin-net", tc.Demo, nil), 404, "", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/multi/network_attach", tc.Demo, nil), 400, "container.invalid-value", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/multi/network_detach?port=nope", tc.Demo, nil), 400, "container.invalid-value", "")

	tc.action(t, tc.Demo, "multi", "network_detach?network=second")
	if ports := tc.nets.portsOf(id); len(ports) != 1 || ports[0].NetworkID != tc.private {
		t.Errorf("ports after detach %+v", ports)
	}
	nl = must(t, 200, tc.do(t, "GET", "/v1/containers/multi/network_list", tc.Demo, nil)).JSON(t)["networks"].([]any)
	if len(nl) != 1 {
		t.Errorf("network_list after detach %v", nl)
	}
	tc.remove(t, tc.Demo, id)
	if n := tc.nets.count(); n != 0 {
		t.Errorf("%d ports left", n)
	}
}

func TestCopyFiles(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "files")
	got := must(t, 200, tc.do(t, "GET", "/v1/containers/files/get_archive?path=/etc/hosts", tc.Demo, nil)).JSON(t)
	raw, err := base64.StdEncoding.DecodeString(fmt.Sprint(got["data"]))
	if err != nil {
		t.Fatalf("data is not base64: %v", got["data"])
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	h, err := tr.Next()
	body, _ := io.ReadAll(tr)
	if err != nil || h.Name != "hosts" || string(body) != "hello\n" {
		t.Errorf("archive: %v %v %q", h, err, body)
	}
	if st := got["stat"].(map[string]any); st["name"] != "hosts" || st["size"] != 6.0 || st["mode"] != 0o644*1.0 {
		t.Errorf("stat %v", st)
	}
	zunError(t, tc.do(t, "GET", "/v1/containers/files/get_archive?path=etc", tc.Demo, nil), 400, "container.schema-validation-error", "")

	data := base64.StdEncoding.EncodeToString(raw)
	res := must(t, 200, tc.do(t, "POST", "/v1/containers/files/put_archive?path=/tmp", tc.Demo, map[string]any{"data": data}))
	if string(bytes.TrimSpace(res.Body)) != "null" {
		t.Errorf("put_archive answer %s", res.Body)
	}
	tc.hosts.mu.Lock()
	n := len(tc.hosts.stdin)
	tc.hosts.mu.Unlock()
	if n != 1 {
		t.Errorf("%d inputs", n)
	}
	zunError(t, tc.do(t, "POST", "/v1/containers/files/put_archive?path=/tmp", tc.Demo, map[string]any{"data": "!!"}), 400,
		"container.schema-validation-error", "")
	zunError(t, tc.do(t, "POST", "/v1/containers/files/put_archive?path=/tmp", tc.Demo,
		map[string]any{"data": base64.StdEncoding.EncodeToString([]byte("not a tarball"))}), 400, "container.invalid-value", "")

	tc.action(t, tc.Demo, id, "stop")
	tc.waitStatus(t, tc.Demo, id, stStopped)
	zunError(t, tc.do(t, "GET", "/v1/containers/files/get_archive?path=/etc/hosts", tc.Demo, nil), 409, "container.invalid-state-exception", "")
	tc.remove(t, tc.Demo, id)
}
