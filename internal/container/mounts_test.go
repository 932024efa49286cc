package container

import (
	"context"
	"encoding/base64"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/monostack/monostack/internal/api"
)

// fakeVolumes is Cinder in memory. A new volume is "creating" until it
// has been looked at once.
type fakeVolumes struct {
	mu   sync.Mutex
	vols map[string]*fakeVolume
}

type fakeVolume struct {
	VolumeInfo
	name, project string
	attachment    string // its attachment's id
	container     string
	device        string // where it is attached
}

func (f *fakeVolumes) add(project, name, status string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := newUUID()
	f.vols[id] = &fakeVolume{VolumeInfo: VolumeInfo{ID: id, Status: status, Size: 1}, name: name, project: project}
	return id
}

func (f *fakeVolumes) get(id string) (fakeVolume, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[id]
	if !ok {
		return fakeVolume{}, false
	}
	return *v, true
}

func (f *fakeVolumes) Find(ctx context.Context, c *api.Credentials, ref string) (VolumeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.vols {
		if (v.ID == ref || v.name == ref) && v.project == c.ProjectID {
			return v.VolumeInfo, nil
		}
	}
	return VolumeInfo{}, api.NotFound("Volume %s could not be found.", ref)
}

func (f *fakeVolumes) Create(ctx context.Context, c *api.Credentials, size int64, name string) (VolumeInfo, error) {
	id := f.add(c.ProjectID, name, "creating")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vols[id].Size = size
	return f.vols[id].VolumeInfo, nil
}

func (f *fakeVolumes) Get(ctx context.Context, id string) (VolumeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[id]
	if !ok {
		return VolumeInfo{}, api.NotFound("Volume %s could not be found.", id)
	}
	info := v.VolumeInfo
	if v.Status == "creating" {
		v.Status = "available"
	}
	return info, nil
}

func (f *fakeVolumes) Reserve(ctx context.Context, c *api.Credentials, volumeID, containerID, attachmentID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[volumeID]
	if !ok {
		return "", api.NotFound("Volume %s could not be found.", volumeID)
	}
	if v.attachment == attachmentID {
		return "volume-" + v.ID, nil // again, after a crash
	}
	if v.Status != "available" || v.name == "taken" {
		return "", api.BadRequest("Volume %s is %s.", volumeID, v.Status)
	}
	v.Status, v.attachment, v.container = "reserved", attachmentID, containerID
	return "volume-" + v.ID, nil
}

func (f *fakeVolumes) byAttachment(id string) *fakeVolume {
	for _, v := range f.vols {
		if v.attachment == id {
			return v
		}
	}
	return nil
}

func (f *fakeVolumes) Attached(ctx context.Context, attachmentID, host, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.byAttachment(attachmentID)
	if v == nil {
		return api.NotFound("Attachment %s could not be found.", attachmentID)
	}
	v.Status, v.device = "in-use", device
	return nil
}

func (f *fakeVolumes) Detached(ctx context.Context, attachmentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.byAttachment(attachmentID); v != nil {
		v.Status, v.attachment, v.container, v.device = "available", "", "", ""
	}
	return nil
}

func (f *fakeVolumes) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vols[id]; !ok {
		return api.NotFound("Volume %s could not be found.", id)
	}
	delete(f.vols, id)
	return nil
}

func (f *fakeVolumes) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.vols)
}

func TestMounts(t *testing.T) {
	tc := newTestCloud(t)
	// Without Cinder, mounts are refused.
	zunError(t, tc.do(t, "POST", "/v1/containers", tc.Demo, map[string]any{"image": "busybox",
		"mounts": []any{map[string]any{"source": "data", "destination": "/data"}}}), 400, "container.invalid-value", "")

	tc.volumes = &fakeVolumes{vols: map[string]*fakeVolume{}}
	tc.restart(t)
	data := tc.volumes.add(tc.DemoProject, "data", "available")
	busy := tc.volumes.add(tc.DemoProject, "busy", "in-use")
	tc.volumes.add(tc.AdminProject, "admins", "available")

	// Bad mounts: refused, nothing made.
	mount := func(m ...map[string]any) map[string]any {
		var l []any
		for _, x := range m {
			l = append(l, x)
		}
		return map[string]any{"image": "busybox", "mounts": l}
	}
	for _, c := range []struct {
		body   map[string]any
		status int
	}{
		{mount(map[string]any{"source": "busy", "destination": "/data"}), 400},
		{mount(map[string]any{"source": "nope", "destination": "/data"}), 404},
		{mount(map[string]any{"source": "admins", "destination": "/data"}), 404},
		{mount(map[string]any{"source": "data", "destination": "data"}), 400},
		{mount(map[string]any{"source": "data", "destination": "/"}), 400},
		{mount(map[string]any{"source": "data", "destination": "/a/../b"}), 400},
		{mount(map[string]any{"source": "data", "size": 1, "destination": "/data"}), 400},
		{mount(map[string]any{"destination": "/data"}), 400},
		{mount(map[string]any{"size": "big", "destination": "/data"}), 400},
		{mount(map[string]any{"source": "data", "destination": "/d"}, map[string]any{"size": 1, "destination": "/d"}), 400},
		{mount(map[string]any{"type": "tmpfs", "source": "aGk=", "destination": "/etc/x"}), 400},
		{mount(map[string]any{"type": "bind", "source": "not base64!", "destination": "/etc/x"}), 400},
		{mount(map[string]any{"type": "bind", "source": "aGk=", "size": 1, "destination": "/etc/x"}), 400},
		{mount(map[string]any{"type": "bind", "source": "aGk=", "destination": "etc/x"}), 400},
		{mount(map[string]any{"type": "bind", "source": base64.StdEncoding.EncodeToString(make([]byte, MaxFileBytes+1)),
			"destination": "/etc/x"}), 400},
		{mount(map[string]any{"type": "bind", "source": "aGk=", "destination": "/d"}, map[string]any{"source": "data", "destination": "/d"}), 400},
	} {
		res := tc.do(t, "POST", "/v1/containers?run=true", tc.Demo, c.body)
		if res.StatusCode != c.status {
			t.Errorf("create with %v: %d, want %d: %s", c.body["mounts"], res.StatusCode, c.status, res.Body)
		}
	}
	if n := tc.count(t); n != 0 || tc.volumes.count() != 3 {
		t.Fatalf("bad mounts made %d containers, %d volumes", n, tc.volumes.count())
	}
	if v, _ := tc.volumes.get(data); v.Status != "available" {
		t.Fatalf("data is %s after refused creates", v.Status)
	}

	// An existing volume and a new one.
	id := tc.create(t, tc.Demo, true, mount(map[string]any{"source": "data", "destination": "/data"},
		map[string]any{"size": 2, "destination": "/scratch"}))["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	v, _ := tc.volumes.get(data)
	if v.Status != "in-use" || v.container != id || v.device != "/data" {
		t.Errorf("data volume %+v", v)
	}
	var scratch fakeVolume
	tc.volumes.mu.Lock()
	for _, x := range tc.volumes.vols {
		if x.container == id && x.ID != data {
			scratch = *x
		}
	}
	tc.volumes.mu.Unlock()
	if scratch.Status != "in-use" || scratch.Size != 2 || scratch.device != "/scratch" {
		t.Errorf("scratch volume %+v", scratch)
	}
	tc.hosts.mu.Lock()
	mounts := tc.hosts.mounts[id]
	tc.hosts.mu.Unlock()
	want := []VolumeMount{{Block: "volume-" + data, Destination: "/data"}, {Block: "volume-" + scratch.ID, Destination: "/scratch"}}
	if !reflect.DeepEqual(mounts, want) {
		t.Errorf("host mounts %v, want %v", mounts, want)
	}
	// The volume is taken: another container cannot mount it.
	zunError(t, tc.do(t, "POST", "/v1/containers", tc.Demo, mount(map[string]any{"source": data, "destination": "/data"})), 400, "", "")

	// Deleted with the container: the host lets them go, data is
	// available again, scratch is gone.
	tc.remove(t, tc.Demo, id)
	tc.hosts.mu.Lock()
	released := slices.Clone(tc.hosts.released)
	tc.hosts.mu.Unlock()
	if !slices.Equal(released, []string{"volume-" + data, "volume-" + scratch.ID}) {
		t.Errorf("released %v", released)
	}
	if v, _ := tc.volumes.get(data); v.Status != "available" || v.attachment != "" {
		t.Errorf("data after delete %+v", v)
	}
	if _, ok := tc.volumes.get(scratch.ID); ok {
		t.Error("the volume made for the container is left")
	}
	if v, _ := tc.volumes.get(busy); v.Status != "in-use" {
		t.Errorf("busy is %s", v.Status)
	}

	// A volume taken by someone else between the checks and the
	// reservation ("taken" looks available): the create fails and leaves
	// nothing, not the volume it made for the first mount.
	tc.volumes.add(tc.DemoProject, "taken", "available")
	res := tc.do(t, "POST", "/v1/containers?run=true", tc.Demo, mount(map[string]any{"size": 1, "destination": "/a"},
		map[string]any{"source": "taken", "destination": "/b"}))
	if res.StatusCode != 400 {
		t.Errorf("create with a taken volume: %d %s", res.StatusCode, res.Body)
	}
	if n := tc.count(t); n != 0 || tc.volumes.count() != 4 || tc.nets.count() != 0 {
		t.Errorf("a failed create left %d containers, %d volumes (want 4), %d ports", n, tc.volumes.count(), tc.nets.count())
	}

	// A build cut short by a restart is resumed with its volumes.
	g := tc.hosts.hold("ensure")
	id = tc.create(t, tc.Demo, true, mount(map[string]any{"source": "data", "destination": "/data"}))["uuid"].(string)
	<-g.reached
	tc.svc.Close()
	tc.hosts.release("ensure", nil)
	tc.start(t)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	if v, _ := tc.volumes.get(data); v.Status != "in-use" || v.container != id {
		t.Errorf("data after the resumed build %+v", v)
	}
	tc.remove(t, tc.Demo, id)
	if v, _ := tc.volumes.get(data); v.Status != "available" {
		t.Errorf("data after the second delete %+v", v)
	}
}

// TestBindMounts: a mount of type bind injects the bytes the client sent
// (base64) as a file at its destination, without Cinder; the file is kept
// with the container and given again when it is rebuilt.
func TestBindMounts(t *testing.T) {
	tc := newTestCloud(t)
	body := map[string]any{"image": "busybox", "command": []string{"sleep", "600"}, "mounts": []any{
		map[string]any{"type": "bind", "source": base64.StdEncoding.EncodeToString([]byte("hello file\n")), "destination": "/etc/hello.txt"},
		map[string]any{"type": "bind", "source": "", "destination": "/etc/empty"},
	}}
	id := tc.create(t, tc.Demo, true, body)["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	want := []VolumeMount{{Destination: "/etc/hello.txt", Data: []byte("hello file\n"), File: true},
		{Destination: "/etc/empty", Data: []byte{}, File: true}}
	tc.hosts.mu.Lock()
	got := tc.hosts.mounts[id]
	tc.hosts.mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("host mounts %+v, want %+v", got, want)
	}
	tc.remove(t, tc.Demo, id)
	var n int
	tc.DB.QueryRow(`SELECT count(*) FROM container_files`).Scan(&n)
	if n != 0 {
		t.Errorf("%d file rows left after delete", n)
	}
}
