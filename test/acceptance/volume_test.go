package acceptance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/backups"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
)

// volumeClient is a Block Storage v3 client of a session, from the catalog.
func volumeClient(t *testing.T, s session) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewBlockStorageV3(s.pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("block-storage endpoint: %v", err)
	}
	return c
}

// newVolume creates a volume, waits until it is available and deletes it
// when the test ends.
func newVolume(t *testing.T, c *gophercloud.ServiceClient, opts volumes.CreateOpts) *volumes.Volume {
	t.Helper()
	v, err := volumes.Create(context.Background(), c, opts, nil).Extract()
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	t.Cleanup(func() {
		err := volumes.Delete(context.Background(), c, v.ID, volumes.DeleteOpts{Cascade: true}).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: delete volume %s: %v", v.ID, err)
		}
	})
	return waitVolume(t, c, v.ID, "available")
}

// waitVolume polls a volume until its status is want.
func waitVolume(t *testing.T, c *gophercloud.ServiceClient, id, want string) *volumes.Volume {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := volumes.Get(context.Background(), c, id).Extract()
		if err != nil {
			t.Fatalf("get volume %s: %v", id, err)
		}
		if v.Status == want {
			return v
		}
		if strings.HasPrefix(v.Status, "error") || time.Now().After(deadline) {
			t.Fatalf("volume %s is %s, waiting for %s", id, v.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitVolumeGone(t *testing.T, c *gophercloud.ServiceClient, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := volumes.Get(context.Background(), c, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume %s still there: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVolumeLifecycle drives a volume through gophercloud as demo: create,
// extend, snapshot, a volume from the snapshot, backup into the object
// store and restore, bad input, quotas and limits.
func TestVolumeLifecycle(t *testing.T) {
	ctx := context.Background()
	s := demoSession(t)
	c := volumeClient(t, s)
	v := newVolume(t, c, volumes.CreateOpts{Size: 1, Name: uniq("vol"), AvailabilityZone: "nova", Metadata: map[string]string{"k": "v"}})
	if v.Size != 1 || v.AvailabilityZone != "nova" || v.VolumeType != "__DEFAULT__" || v.Metadata["k"] != "v" || v.Bootable != "false" {
		t.Errorf("volume: %+v", v)
	}

	if err := volumes.ExtendSize(ctx, c, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatalf("extend: %v", err)
	}
	if v = waitVolume(t, c, v.ID, "available"); v.Size != 2 {
		t.Errorf("size after extend = %d", v.Size)
	}
	err := volumes.ExtendSize(ctx, c, v.ID, volumes.ExtendSizeOpts{NewSize: 1}).ExtractErr()
	wantCode(t, err, http.StatusBadRequest, "shrink a volume")

	snap, err := snapshots.Create(ctx, c, snapshots.CreateOpts{VolumeID: v.ID, Name: uniq("snap")}).Extract()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); snap.Status != "available"; time.Sleep(50 * time.Millisecond) {
		if snap, err = snapshots.Get(ctx, c, snap.ID).Extract(); err != nil || time.Now().After(deadline) {
			t.Fatalf("snapshot %s: %+v %v", snap.ID, snap, err)
		}
	}
	copyVol := newVolume(t, c, volumes.CreateOpts{SnapshotID: snap.ID, Name: uniq("copy")})
	if copyVol.Size != 2 || copyVol.SnapshotID != snap.ID {
		t.Errorf("volume from snapshot: %+v", copyVol)
	}
	err = volumes.Delete(ctx, c, v.ID, nil).ExtractErr()
	wantCode(t, err, http.StatusBadRequest, "delete a volume that has a snapshot")

	b, err := backups.Create(ctx, c, backups.CreateOpts{VolumeID: v.ID, Name: uniq("backup")}).Extract()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); b.Status != "available"; time.Sleep(50 * time.Millisecond) {
		if b, err = backups.Get(ctx, c, b.ID).Extract(); err != nil || b.Status == "error" || time.Now().After(deadline) {
			t.Fatalf("backup %s: %+v %v", b.ID, b, err)
		}
	}
	if b.Size != 2 || b.Container != "volumebackups" || b.ObjectCount < 1 {
		t.Errorf("backup: %+v", b)
	}
	r, err := backups.RestoreFromBackup(ctx, c, b.ID, backups.RestoreOpts{Name: uniq("restored")}).Extract()
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored := waitVolume(t, c, r.VolumeID, "available")
	if restored.Size != 2 {
		t.Errorf("restored volume: %+v", restored)
	}
	if err := volumes.Delete(ctx, c, restored.ID, nil).ExtractErr(); err != nil {
		t.Errorf("delete restored volume: %v", err)
	}
	if err := backups.Delete(ctx, c, b.ID).ExtractErr(); err != nil {
		t.Errorf("delete backup: %v", err)
	}

	for _, bad := range []map[string]any{
		{"volume": map[string]any{"size": 0}},
		{"volume": map[string]any{"size": -1}},
		{"volume": map[string]any{"size": "big"}},
		{"volume": map[string]any{"size": 1, "availability_zone": "mars"}},
		{"nothing": 1},
	} {
		code, body := call(t, "POST", c.ServiceURL("volumes"), s.token(), bad)
		if code != http.StatusBadRequest || body["badRequest"] == nil {
			t.Errorf("create %v: %d %v", bad, code, body)
		}
	}
	code, body := call(t, "POST", c.ServiceURL("volumes"), s.token(), map[string]any{"volume": map[string]any{"size": 1, "volume_type": "nope"}})
	if code != http.StatusNotFound || body["itemNotFound"] == nil {
		t.Errorf("unknown volume type: %d %v", code, body)
	}
	code, body = call(t, "POST", c.ServiceURL("volumes"), s.token(), map[string]any{"volume": map[string]any{"size": 5000}})
	if code != http.StatusRequestEntityTooLarge && code != http.StatusBadRequest {
		t.Errorf("a volume over the gigabytes quota: %d %v", code, body)
	}
	_, err = volumes.Get(ctx, c, "00000000-0000-4000-8000-000000000000").Extract()
	wantCode(t, err, http.StatusNotFound, "get an unknown volume")

	q, err := quotasets.GetUsage(ctx, c, tokenProject(t, s).ID).Extract()
	if err != nil {
		t.Fatalf("quota usage: %v", err)
	}
	if q.Volumes.InUse < 2 || q.Volumes.Limit != 10 {
		t.Errorf("quota usage: %+v", q.Volumes)
	}
	l, err := limits.Get(ctx, c).Extract()
	if err != nil {
		t.Fatalf("limits: %v", err)
	}
	if l.Absolute.TotalVolumesUsed < 2 || l.Absolute.MaxTotalVolumes != 10 {
		t.Errorf("limits: %+v", l.Absolute)
	}

	// Another project's volume is not there for demo.
	admin := volumeClient(t, adminSession(t))
	other := newVolume(t, admin, volumes.CreateOpts{Size: 1, Name: uniq("admins")})
	_, err = volumes.Get(ctx, c, other.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "demo gets admin's volume")
	err = volumes.Delete(ctx, c, other.ID, nil).ExtractErr()
	wantCode(t, err, http.StatusNotFound, "demo deletes admin's volume")
}

// agentRuncRoot is runc's --root of a daemon's agent, for running commands
// inside its servers the way the runtime does.
func (d *daemon) agentRuncRoot(t *testing.T) string {
	t.Helper()
	id, err := os.ReadFile(filepath.Join(d.dataDir, "agent-id"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join("/run/monostack", strings.TrimSpace(string(id)), "runc")
}

// inServer runs a shell command inside a server's container (runc exec:
// its namespaces, cgroups, capabilities) and returns its output.
func inServer(t *testing.T, d *daemon, serverID, script string) (string, error) {
	t.Helper()
	out, err := exec.Command("runc", "--root", d.agentRuncRoot(t), "exec", serverID, "/bin/sh", "-c", script).CombinedOutput()
	return string(out), err
}

// loopsOf lists the loop devices whose backing file is under dir.
func loopsOf(t *testing.T, dir string) []string {
	t.Helper()
	out, err := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	var loops []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[1], dir) {
			loops = append(loops, f[0])
		}
	}
	return loops
}

// TestVolumeAttachData writes through /dev/vdb inside one server, detaches
// the volume, attaches it to a second server and reads the same bytes
// back there; the attachment survives a server stop/start and a daemon
// restart; deleting the servers leaves no loop device behind.
func TestVolumeAttachData(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	d := startTestDaemon(t)
	s := d.session(t, "demo")
	cc, vc := computeClient(t, s), volumeClient(t, s)
	cc.Microversion = "2.79"
	imageID, flavorID, netID := lookupIDs(t, s)
	boot := func(name string) *servers.Server {
		srv := bootServer(t, cc, servers.CreateOpts{Name: name, ImageRef: imageID, FlavorRef: flavorID,
			Networks: []servers.Network{{UUID: netID}}})
		return waitStatus(t, cc, srv.ID, "ACTIVE", 60*time.Second)
	}
	a, b := boot("vol-a"), boot("vol-b")
	v := newVolume(t, vc, volumes.CreateOpts{Size: 1, Name: "data"})

	att, err := volumeattach.Create(ctx, cc, a.ID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract()
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if att.Device != "/dev/vdb" || att.VolumeID != v.ID || att.ServerID != a.ID {
		t.Errorf("attachment: %+v", att)
	}
	v = waitVolume(t, vc, v.ID, "in-use")
	if len(v.Attachments) != 1 || v.Attachments[0].ServerID != a.ID || v.Attachments[0].Device != "/dev/vdb" {
		t.Errorf("volume attachments: %+v", v.Attachments)
	}
	sv, err := servers.Get(ctx, cc, a.ID).Extract()
	if err != nil || len(sv.AttachedVolumes) != 1 || sv.AttachedVolumes[0].ID != v.ID {
		t.Errorf("server's volumes_attached: %+v %v", sv.AttachedVolumes, err)
	}
	_, err = volumeattach.Create(ctx, cc, b.ID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract()
	wantCode(t, err, http.StatusBadRequest, "attach an in-use volume to a second server")

	marker := make([]byte, 16)
	rand.Read(marker)
	want := hex.EncodeToString(marker)
	// 1 MiB into the device, past anything a filesystem tool would touch.
	write := "printf '%s' " + want + " | dd of=/dev/vdb bs=4096 seek=256 conv=fsync 2>/dev/null && echo written"
	read := "dd if=/dev/vdb bs=4096 skip=256 count=1 2>/dev/null | head -c 32"
	if out, err := inServer(t, d, a.ID, write); err != nil || !strings.Contains(out, "written") {
		t.Fatalf("write through /dev/vdb in server A: %v %s", err, out)
	}

	// The attachment survives a stop/start of the server and a restart of
	// the daemon.
	if err := servers.Stop(ctx, cc, a.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cc, a.ID, "SHUTOFF", 30*time.Second)
	if err := servers.Start(ctx, cc, a.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cc, a.ID, "ACTIVE", 30*time.Second)
	if out, err := inServer(t, d, a.ID, read); err != nil || out != want {
		t.Fatalf("read after stop/start: %v %q, want %q", err, out, want)
	}
	if err := d.restart(); err != nil {
		t.Fatal(err)
	}
	pc := d.session(t, "demo").pc
	cc.ProviderClient, vc.ProviderClient = pc, pc
	if v = waitVolume(t, vc, v.ID, "in-use"); len(v.Attachments) != 1 {
		t.Errorf("after a restart: %+v", v.Attachments)
	}
	if out, err := inServer(t, d, a.ID, read); err != nil || out != want {
		t.Fatalf("read after a daemon restart: %v %q, want %q", err, out, want)
	}

	if err := volumeattach.Delete(ctx, cc, a.ID, v.ID).ExtractErr(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	waitVolume(t, vc, v.ID, "available")
	if out, err := inServer(t, d, a.ID, "test -e /dev/vdb && echo still-there || echo gone"); err != nil || strings.TrimSpace(out) != "gone" {
		t.Errorf("/dev/vdb in server A after detach: %v %s", err, out)
	}
	if loops := loopsOf(t, d.dataDir); len(loops) != 0 {
		t.Errorf("loop devices left after detach: %v", loops)
	}

	if _, err := volumeattach.Create(ctx, cc, b.ID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract(); err != nil {
		t.Fatalf("attach to server B: %v", err)
	}
	waitVolume(t, vc, v.ID, "in-use")
	if out, err := inServer(t, d, b.ID, read); err != nil || out != want {
		t.Fatalf("read in server B: %v %q, want %q", err, out, want)
	}

	// What a reboot of the host does to loop devices: with B stopped, its
	// volume's loop device goes away and another file takes its name.
	// Starting B must give it its own volume again, not the impostor.
	if err := servers.Stop(ctx, cc, b.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cc, b.ID, "SHUTOFF", 30*time.Second)
	loops := loopsOf(t, d.dataDir)
	if len(loops) != 1 {
		t.Fatalf("loop devices of the data dir: %v", loops)
	}
	if out, err := exec.Command("losetup", "-d", loops[0]).CombinedOutput(); err != nil {
		t.Fatalf("losetup -d: %v %s", err, out)
	}
	impostor := filepath.Join(t.TempDir(), "impostor")
	if err := os.WriteFile(impostor, bytes.Repeat([]byte("x"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("losetup", loops[0], impostor).CombinedOutput(); err != nil {
		t.Fatalf("losetup %s: %v %s", loops[0], err, out)
	}
	t.Cleanup(func() { exec.Command("losetup", "-d", loops[0]).Run() })
	if err := servers.Start(ctx, cc, b.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cc, b.ID, "ACTIVE", 30*time.Second)
	if out, err := inServer(t, d, b.ID, read); err != nil || out != want {
		t.Fatalf("read in server B after its loop device was taken: %v %q, want %q", err, out, want)
	}
	exec.Command("losetup", "-d", loops[0]).Run()
	// A device that is not attached is not reachable: a node made by hand
	// for the host's root disk cannot be opened (device cgroup).
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	mk := fmt.Sprintf("mknod /dev/hostdisk b %d %d 2>&1; dd if=/dev/hostdisk bs=512 count=1 2>&1 >/dev/null | head -c 200", unix.Major(st.Dev), unix.Minor(st.Dev))
	if out, _ := inServer(t, d, b.ID, mk); !strings.Contains(strings.ToLower(out), "not permitted") {
		t.Errorf("a hand-made node of the host's disk was usable: %q", out)
	}

	// Deleting the server gives the volume back and frees its loop device.
	if err := servers.Delete(ctx, cc, b.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := waitGone(ctx, cc, b.ID); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, v.ID, "available")
	if loops := loopsOf(t, d.dataDir); len(loops) != 0 {
		t.Errorf("loop devices left after the server was deleted: %v", loops)
	}
	if err := volumes.Delete(ctx, vc, v.ID, nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, vc, v.ID)
	if files, _ := filepath.Glob(filepath.Join(d.dataDir, "volumes", "*.img")); len(files) != 0 {
		t.Errorf("volume files left: %v", files)
	}
}
