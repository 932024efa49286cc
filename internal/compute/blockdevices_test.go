package compute

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/monostack/monostack/internal/api"
)

// bootVolumes is fakeVolumes that also makes volumes (BootVolumes): made
// volumes end in made (available by default), and notBootable volumes
// cannot be booted from.
type bootVolumes struct {
	*fakeVolumes
	made        map[string]NewVolume // under fakeVolumes.mu
	madeStatus  string
	notBootable map[string]bool
}

func (b *bootVolumes) CreateVolume(ctx context.Context, c *api.Credentials, v NewVolume) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.vols[v.ID] != nil {
		return nil
	}
	st := b.madeStatus
	if st == "" {
		st = "available"
	}
	b.vols[v.ID] = &fakeVolume{project: c.ProjectID, status: st}
	b.made[v.ID] = v
	return nil
}

func (b *bootVolumes) Volume(ctx context.Context, c *api.Credentials, id string) (VolumeInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.vols[id]
	if v == nil || !(c.CloudAdmin() || c.ProjectID == v.project) {
		return VolumeInfo{}, api.NotFound("Volume %s could not be found.", id)
	}
	return VolumeInfo{ID: id, Status: v.status, SizeGB: 1, Bootable: !b.notBootable[id]}, nil
}

// madeVolumes are the volumes made, by id.
func (b *bootVolumes) madeVolumes() map[string]NewVolume {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]NewVolume{}
	for k, v := range b.made {
		out[k] = v
	}
	return out
}

// bfvCloud is a volCloud whose Block Storage makes volumes.
type bfvCloud struct {
	*volCloud
	bv *bootVolumes
}

func newBFVCloud(t *testing.T) *bfvCloud {
	t.Helper()
	vc := newVolCloud(t)
	bc := &bfvCloud{volCloud: vc, bv: &bootVolumes{fakeVolumes: vc.vols, made: map[string]NewVolume{}, notBootable: map[string]bool{}}}
	vc.svc.Close()
	bc.start(t)
	return bc
}

// start (re)opens the compute service over bv, as a restart does.
func (bc *bfvCloud) start(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	svc, err := New(ctx, bc.db, Config{}, bc.images, bc.nets, bc.gh, bc.place, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc.SetVolumes(bc.bv)
	svc.router = svc.Router(bc.ident, bc.ident.URL(), nil)
	if err := svc.RegisterHost(ctx, HostInfo{Name: "host1", IP: "10.1.0.1", VCPUs: 4, MemoryMB: 8192, DiskGB: 100}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	bc.svc = svc
	bc.Mount("/compute", svc.router)
}

// bootBody is a create request booting from a block device mapping, as
// novaclient sends it (imageRef "").
func (bc *bfvCloud) bootBody(name string, bdms ...map[string]any) map[string]any {
	list := []any{}
	for _, b := range bdms {
		list = append(list, b)
	}
	return map[string]any{"server": map[string]any{"name": name, "imageRef": "", "flavorRef": "42",
		"networks": []any{map[string]any{"uuid": bc.privateNet}}, "block_device_mapping_v2": list}}
}

// boot creates a server from bdms as demo and returns its id.
func (bc *bfvCloud) boot(t *testing.T, name string, bdms ...map[string]any) string {
	t.Helper()
	res := bc.must(t, 202, bc.do(t, "POST", "/compute/v2.1/servers", bc.demo, bc.bootBody(name, bdms...)))
	return res.JSON(t)["server"].(map[string]any)["id"].(string)
}

func volumeRoot(id string) map[string]any {
	return map[string]any{"boot_index": 0, "uuid": id, "source_type": "volume", "destination_type": "volume"}
}

// attachmentsOf is os-volume_attachments of a server as volume@device.
func (bc *bfvCloud) attachmentsOf(t *testing.T, server string) []string {
	t.Helper()
	list := bc.must(t, 200, bc.do(t, "GET", attachmentsPath(server), bc.demo, nil)).JSON(t)["volumeAttachments"].([]any)
	out := []string{}
	for _, a := range list {
		m := a.(map[string]any)
		out = append(out, m["volumeId"].(string)+"@"+m["device"].(string))
	}
	sort.Strings(out)
	return out
}

func (bc *bfvCloud) rows(t *testing.T) int {
	t.Helper()
	var n int
	if err := bc.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_volume_attachments`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBootFromVolume: `server create --volume V`. The volume is reserved
// at once, then is the server's root on /dev/vda: the host gets it as the
// root (not as a device), Block Storage has it in-use there, the server
// shows image "" and the volume attached. It cannot be detached, the
// server stops and starts, takes data volumes at /dev/vdb on, refuses a
// rebuild, and its delete gives the volume back.
func TestBootFromVolume(t *testing.T) {
	bc := newBFVCloud(t)
	vol := bc.vols.add(bc.demoProject, false)
	g := bc.gh.hold("EnsureServer")
	sv := bc.boot(t, "bfv", volumeRoot(vol))
	<-g.entered
	if st := bc.vols.status(vol); st != "attaching" {
		t.Fatalf("the root volume is %s while the server builds, want attaching (reserved by the API)", st)
	}
	bc.gh.open("EnsureServer")
	view := bc.waitStatus(t, bc.demo, sv, "ACTIVE")
	if view["image"] != "" {
		t.Fatalf("image %v, want \"\" for a volume-backed server", view["image"])
	}
	if got := bc.volumesAttached(t, sv); !sameStrings(got, []string{vol + ":false"}) {
		t.Fatalf("volumes_attached %v", got)
	}
	if got := bc.attachmentsOf(t, sv); !sameStrings(got, []string{vol + "@/dev/vda"}) {
		t.Fatalf("os-volume_attachments %v", got)
	}
	spec, _ := bc.hosts.Spec(sv)
	if spec.RootVolume == nil || *spec.RootVolume != (HostVolume{Block: fakeBlock(vol), Device: "/dev/vda"}) || spec.Image.ID != "" {
		t.Fatalf("the host got root volume %+v, image %q", spec.RootVolume, spec.Image.ID)
	}
	if got := bc.hostBlocks(sv); len(got) != 0 {
		t.Fatalf("the root volume was given as a device: %v", got)
	}
	if _, a, ok := bc.vols.attachment(vol); !ok || bc.vols.status(vol) != "in-use" || a.server != sv || a.host != "host1" || a.device != "/dev/vda" {
		t.Fatalf("Block Storage: %s, attachment %+v", bc.vols.status(vol), a)
	}

	res := bc.detach(t, bc.demo, sv, vol)
	if res.StatusCode != 403 || !strings.Contains(string(res.Body), "Can't detach root device volume") {
		t.Fatalf("detaching the root volume: %d %s", res.StatusCode, res.Body)
	}
	res = bc.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", bc.demo, map[string]any{"rebuild": map[string]any{"imageRef": bc.cirros}})
	if res.StatusCode != 400 {
		t.Fatalf("rebuild of a volume-backed server: %d %s", res.StatusCode, res.Body)
	}
	bc.must(t, 202, bc.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", bc.demo, map[string]any{"os-stop": nil}))
	bc.waitStatus(t, bc.demo, sv, "SHUTOFF")
	bc.must(t, 202, bc.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", bc.demo, map[string]any{"os-start": nil}))
	bc.waitStatus(t, bc.demo, sv, "ACTIVE")

	data := bc.vols.add(bc.demoProject, false)
	bc.must(t, 200, bc.attach(t, bc.demo, sv, data, "", nil))
	bc.settle(t, sv)
	if got := bc.attachmentsOf(t, sv); !sameStrings(got, sortedOf(vol+"@/dev/vda", data+"@/dev/vdb")) {
		t.Fatalf("os-volume_attachments with a data volume %v", got)
	}
	if got := bc.hostBlocks(sv); !sameStrings(got, []string{fakeBlock(data) + "@/dev/vdb"}) {
		t.Fatalf("host devices %v", got)
	}

	bc.must(t, 204, bc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, bc.demo, nil))
	bc.waitStatus(t, bc.demo, sv, "DELETED")
	if bc.vols.status(vol) != "available" || bc.vols.status(data) != "available" || len(bc.vols.deletedOnTermination()) != 0 {
		t.Fatalf("after the delete: root %s, data %s, deleted %v", bc.vols.status(vol), bc.vols.status(data), bc.vols.deletedOnTermination())
	}
	if n := bc.rows(t); n != 0 {
		t.Fatalf("%d attachment rows left", n)
	}
	// The volume boots another server.
	sv2 := bc.boot(t, "again", volumeRoot(vol))
	bc.waitStatus(t, bc.demo, sv2, "ACTIVE")
}

func sortedOf(s ...string) []string {
	sort.Strings(s)
	return s
}

// TestBootFromImageVolume: `server create --boot-from-volume N --image I`.
// The build makes the volume from the image (task block_device_mapping),
// boots from it, and the delete deletes it (delete_on_termination). Two
// servers of one request get a volume each.
func TestBootFromImageVolume(t *testing.T) {
	bc := newBFVCloud(t)
	root := map[string]any{"boot_index": "0", "uuid": bc.cirros, "source_type": "image", "destination_type": "volume",
		"volume_size": 2, "delete_on_termination": true}
	sv := bc.boot(t, "bfv", root)
	bc.waitStatus(t, bc.demo, sv, "ACTIVE")
	made := bc.bv.madeVolumes()
	if len(made) != 1 {
		t.Fatalf("made %v", made)
	}
	var vol string
	for id, nv := range made {
		vol = id
		if nv.ImageID != bc.cirros || nv.SizeGB != 2 || nv.SnapshotID != "" {
			t.Fatalf("volume made %+v", nv)
		}
	}
	if got := bc.volumesAttached(t, sv); !sameStrings(got, []string{vol + ":true"}) {
		t.Fatalf("volumes_attached %v", got)
	}
	if _, a, ok := bc.vols.attachment(vol); !ok || a.device != "/dev/vda" || bc.vols.status(vol) != "in-use" {
		t.Fatalf("the made volume is %s, attachment %+v", bc.vols.status(vol), a)
	}
	if spec, _ := bc.hosts.Spec(sv); spec.RootVolume == nil || spec.RootVolume.Block != fakeBlock(vol) {
		t.Fatalf("the host's root volume %+v", spec.RootVolume)
	}
	bc.must(t, 204, bc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, bc.demo, nil))
	bc.waitStatus(t, bc.demo, sv, "DELETED")
	if st := bc.vols.status(vol); st != "deleted" {
		t.Fatalf("the volume made for the server is %s after its delete", st)
	}

	body := bc.bootBody("two", root)
	body["server"].(map[string]any)["min_count"] = 2
	bc.must(t, 202, bc.do(t, "POST", "/compute/v2.1/servers", bc.demo, body))
	eventually(t, "two more volumes", func() bool { return len(bc.bv.madeVolumes()) == 3 })
	eventually(t, "both attached", func() bool {
		var n int
		bc.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_volume_attachments WHERE status='attached' AND device='/dev/vda'`).Scan(&n)
		return n == 2
	})
}

// TestBootWithDataVolumes: a server booted from an image with volumes
// mapped too gets them at the devices asked for, or the next free ones.
func TestBootWithDataVolumes(t *testing.T) {
	bc := newBFVCloud(t)
	a, b := bc.vols.add(bc.demoProject, false), bc.vols.add(bc.demoProject, false)
	body := bc.bootBody("data",
		map[string]any{"boot_index": 0, "uuid": bc.cirros, "source_type": "image", "destination_type": "local"},
		map[string]any{"uuid": a, "source_type": "volume", "destination_type": "volume", "device_name": "vdc"},
		map[string]any{"boot_index": -1, "uuid": b, "source_type": "volume", "destination_type": "volume"},
		map[string]any{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true})
	body["server"].(map[string]any)["imageRef"] = bc.cirros
	res := bc.must(t, 202, bc.do(t, "POST", "/compute/v2.1/servers", bc.demo, body))
	sv := res.JSON(t)["server"].(map[string]any)["id"].(string)
	view := bc.waitStatus(t, bc.demo, sv, "ACTIVE")
	if img, _ := view["image"].(map[string]any); img == nil || img["id"] != bc.cirros {
		t.Fatalf("image %v", view["image"])
	}
	var blank string
	for id := range bc.bv.madeVolumes() {
		blank = id
	}
	if got := bc.attachmentsOf(t, sv); !sameStrings(got, sortedOf(a+"@/dev/vdc", b+"@/dev/vdb", blank+"@/dev/vdd")) {
		t.Fatalf("os-volume_attachments %v", got)
	}
	if got := bc.hostBlocks(sv); len(got) != 3 {
		t.Fatalf("host devices %v", got)
	}
	if spec, _ := bc.hosts.Spec(sv); spec.RootVolume != nil || spec.Image.ID != bc.cirros {
		t.Fatalf("a server of an image got root volume %+v", spec.RootVolume)
	}
	for _, v := range []string{a, b, blank} {
		if st := bc.vols.status(v); st != "in-use" {
			t.Fatalf("volume %s is %s", v, st)
		}
	}
	bc.must(t, 204, bc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, bc.demo, nil))
	bc.waitStatus(t, bc.demo, sv, "DELETED")
	if bc.vols.status(a) != "available" || bc.vols.status(b) != "available" || bc.vols.status(blank) != "deleted" {
		t.Fatalf("after the delete: %s %s %s", bc.vols.status(a), bc.vols.status(b), bc.vols.status(blank))
	}
}

// TestBootFromVolumeErrors: bad mappings are 400s (a quota refusal its
// 403) and leave every volume as it was, with no attachment recorded.
func TestBootFromVolumeErrors(t *testing.T) {
	bc := newBFVCloud(t)
	vol := bc.vols.add(bc.demoProject, false)
	flat := bc.vols.add(bc.demoProject, false)
	bc.bv.notBootable[flat] = true
	other := bc.vols.add(bc.AdminProject, false)
	busy := bc.activeServer(t, "busy")
	used := bc.vols.add(bc.demoProject, false)
	bc.must(t, 200, bc.attach(t, bc.demo, busy, used, "", nil))
	bc.settle(t, busy)

	img := func(size any) map[string]any {
		m := map[string]any{"boot_index": 0, "uuid": bc.cirros, "source_type": "image", "destination_type": "volume"}
		if size != nil {
			m["volume_size"] = size
		}
		return m
	}
	cases := []struct {
		name string
		bdms []map[string]any
		want string
	}{
		{"unknown volume", []map[string]any{volumeRoot(newUUID())}, "failed to get volume"},
		{"another project's volume", []map[string]any{volumeRoot(other)}, "failed to get volume"},
		{"not bootable", []map[string]any{volumeRoot(flat)}, "is not bootable"},
		{"in use", []map[string]any{volumeRoot(used)}, "status must be available"},
		{"image without a size", []map[string]any{img(nil)}, "need to have a non-zero size"},
		{"image of size 0", []map[string]any{img(0)}, "need to have a non-zero size"},
		{"unknown image", []map[string]any{{"boot_index": 0, "uuid": newUUID(), "source_type": "image", "destination_type": "volume", "volume_size": 1}}, "failed to get image"},
		{"volume too small for the image", []map[string]any{{"boot_index": 0, "uuid": bc.bigImage, "source_type": "image", "destination_type": "volume", "volume_size": 1}}, "smaller than the minimum size"},
		{"two roots", []map[string]any{volumeRoot(vol), img(1)}, "Boot sequence"},
		{"no root", []map[string]any{{"uuid": vol, "source_type": "volume", "destination_type": "volume"}}, "Boot sequence"},
		{"blank root", []map[string]any{{"boot_index": 0, "source_type": "blank", "destination_type": "volume", "volume_size": 1}}, "Boot sequence"},
		{"blank without a size", []map[string]any{volumeRoot(vol), {"source_type": "blank", "destination_type": "volume"}}, "non-zero size"},
		{"image to local without imageRef", []map[string]any{{"boot_index": 0, "uuid": bc.cirros, "source_type": "image", "destination_type": "local"}}, "Mapping image to local is not supported"},
		{"ephemeral disk", []map[string]any{volumeRoot(vol), {"source_type": "blank", "destination_type": "local", "volume_size": 1}}, "Local disks"},
		{"bad source", []map[string]any{{"boot_index": 0, "uuid": vol, "source_type": "disk", "destination_type": "volume"}}, "source_type"},
		{"bad boot index", []map[string]any{{"boot_index": "first", "uuid": vol, "source_type": "volume", "destination_type": "volume"}}, "boot_index"},
		{"missing uuid", []map[string]any{{"boot_index": 0, "source_type": "volume", "destination_type": "volume"}}, "Missing device UUID"},
		{"bad device", []map[string]any{volumeRoot(vol), {"uuid": flat, "source_type": "volume", "destination_type": "volume", "device_name": "/dev/nvme0"}}, "device path"},
		{"bad delete_on_termination", []map[string]any{{"boot_index": 0, "uuid": vol, "source_type": "volume", "destination_type": "volume", "delete_on_termination": "maybe"}}, "delete_on_termination"},
		{"a volume twice", []map[string]any{volumeRoot(vol), {"uuid": vol, "source_type": "volume", "destination_type": "volume"}}, "mapped twice"},
	}
	for _, c := range cases {
		res := bc.do(t, "POST", "/compute/v2.1/servers", bc.demo, bc.bootBody(c.name, c.bdms...))
		if res.StatusCode != 400 || !strings.Contains(string(res.Body), c.want) || !strings.Contains(string(res.Body), "badRequest") {
			t.Errorf("%s: %d %s, want 400 with %q", c.name, res.StatusCode, res.Body, c.want)
		}
	}
	// Not a list; legacy mappings; several servers of one volume.
	for name, body := range map[string]map[string]any{
		"not a list": {"server": map[string]any{"name": "x", "flavorRef": "42", "block_device_mapping_v2": "vda"}},
		"legacy":     {"server": map[string]any{"name": "x", "flavorRef": "42", "block_device_mapping": []any{map[string]any{"volume_id": vol, "device_name": "vda"}}}},
		"multiple":   {"server": map[string]any{"name": "x", "flavorRef": "42", "min_count": 2, "block_device_mapping_v2": []any{volumeRoot(vol)}}},
	} {
		if res := bc.do(t, "POST", "/compute/v2.1/servers", bc.demo, body); res.StatusCode != 400 {
			t.Errorf("%s: %d %s", name, res.StatusCode, res.Body)
		}
	}
	// Over quota: refused after the volume was reserved, which it gives back.
	bc.must(t, 200, bc.do(t, "PUT", "/compute/v2.1/os-quota-sets/"+bc.demoProject, bc.admin, map[string]any{"quota_set": map[string]any{"instances": 1}}))
	if res := bc.do(t, "POST", "/compute/v2.1/servers", bc.demo, bc.bootBody("over", volumeRoot(vol))); res.StatusCode != 403 {
		t.Fatalf("over quota: %d %s", res.StatusCode, res.Body)
	}
	for _, v := range []string{vol, flat, other} {
		if st := bc.vols.status(v); st != "available" {
			t.Errorf("volume %s is %s after refused creates", v, st)
		}
	}
	if n := bc.rows(t); n != 1 {
		t.Fatalf("%d attachment rows, want only the busy server's", n)
	}
	if len(bc.bv.madeVolumes()) != 0 {
		t.Fatalf("refused creates made volumes: %v", bc.bv.madeVolumes())
	}
}

// TestBootVolumeNotMade: a volume that ends in error fails the build with
// Nova's fault, and the server's delete deletes it (delete_on_termination).
func TestBootVolumeNotMade(t *testing.T) {
	bc := newBFVCloud(t)
	bc.bv.madeStatus = "error"
	sv := bc.boot(t, "bfv", map[string]any{"boot_index": 0, "uuid": bc.cirros, "source_type": "image",
		"destination_type": "volume", "volume_size": 1, "delete_on_termination": "True"})
	view := bc.waitStatus(t, bc.demo, sv, "ERROR")
	fault, _ := view["fault"].(map[string]any)
	if msg, _ := fault["message"].(string); !strings.Contains(msg, "did not finish being created") || !strings.Contains(msg, "status is error") {
		t.Fatalf("fault %v", view["fault"])
	}
	if n := bc.rows(t); n != 0 {
		t.Fatalf("%d attachment rows after a failed build", n)
	}
	var vol string
	for id := range bc.bv.madeVolumes() {
		vol = id
	}
	bc.bv.mu.Lock()
	bc.bv.vols[vol].status = "available" // Cinder deletes volumes in error; the fake only available ones
	bc.bv.mu.Unlock()
	bc.must(t, 204, bc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, bc.demo, nil))
	bc.waitStatus(t, bc.demo, sv, "DELETED")
	if st := bc.vols.status(vol); st != "deleted" {
		t.Fatalf("the volume made for the failed server is %s", st)
	}
}

// TestBootFromVolumeRestart: a restart in the middle of a build finishes
// it with the volume it made (not another), and a volume reserved for a
// server whose create never got recorded is given back.
func TestBootFromVolumeRestart(t *testing.T) {
	bc := newBFVCloud(t)
	g := bc.gh.hold("EnsureServer")
	sv := bc.boot(t, "bfv", map[string]any{"boot_index": 0, "uuid": bc.cirros, "source_type": "image",
		"destination_type": "volume", "volume_size": 1})
	<-g.entered
	bc.svc.Close() // the build stops where it is
	bc.gh.open("EnsureServer")
	// A create that reserved its volume and stopped before recording its
	// server.
	lost := bc.vols.add(bc.demoProject, false)
	if err := bc.svc.reserveVolumes(context.Background(), &api.Credentials{ProjectID: bc.demoProject, Roles: []string{"member"}}, newUUID(),
		[]blockDevice{{BootIndex: 0, Source: "volume", VolumeID: lost}}); err != nil {
		t.Fatal(err)
	}
	if st := bc.vols.status(lost); st != "attaching" {
		t.Fatalf("reserved volume %s", st)
	}
	bc.start(t)
	bc.waitStatus(t, bc.demo, sv, "ACTIVE")
	if made := bc.bv.madeVolumes(); len(made) != 1 {
		t.Fatalf("volumes made across the restart: %v", made)
	}
	if got := bc.volumesAttached(t, sv); len(got) != 1 {
		t.Fatalf("volumes_attached %v", got)
	}
	eventually(t, "the lost reservation given back", func() bool { return bc.vols.status(lost) == "available" })
	if n := bc.rows(t); n != 1 {
		t.Fatalf("%d attachment rows, want the server's root", n)
	}
}
