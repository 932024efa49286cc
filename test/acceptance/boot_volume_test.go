package acceptance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
)

// mountsUnder lists the mount points under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	out, err := exec.Command("findmnt", "--list", "--noheadings", "--output", "TARGET").Output()
	if err != nil {
		t.Fatalf("findmnt: %v", err)
	}
	var ms []string
	for _, m := range strings.Fields(string(out)) {
		if strings.HasPrefix(m, dir+"/") {
			ms = append(ms, m)
		}
	}
	return ms
}

// TestBootFromVolume boots servers from volumes with gophercloud, as
// `openstack server create --volume` and `--boot-from-volume` do. A volume
// made from the busybox image is bootable; the server's root is the
// volume's ext4 filesystem, so what it writes survives a stop/start, a
// daemon restart and the server itself: a second server booted from the
// volume reads it. The root volume shows attached on /dev/vda and cannot
// be detached; deleting the server frees it, or deletes it when
// delete_on_termination says so, and leaves no loop device or mount.
func TestBootFromVolume(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	d := startTestDaemon(t)
	s := d.session(t, "demo")
	cc, vc := computeClient(t, s), volumeClient(t, s)
	cc.Microversion = "2.79"
	imageID, flavorID, netID := lookupIDs(t, s)
	nets := []servers.Network{{UUID: netID}}

	v := newVolume(t, vc, volumes.CreateOpts{Size: 1, Name: "root", ImageID: imageID})
	if v.Bootable != "true" || v.VolumeImageMetadata["image_id"] != imageID {
		t.Fatalf("volume from the image: bootable %q, image metadata %v", v.Bootable, v.VolumeImageMetadata)
	}
	root := func(deleteOnTermination bool) []servers.BlockDevice {
		return []servers.BlockDevice{{SourceType: servers.SourceVolume, UUID: v.ID, BootIndex: 0,
			DestinationType: servers.DestinationVolume, DeleteOnTermination: deleteOnTermination}}
	}
	srv := bootServer(t, cc, servers.CreateOpts{Name: "bfv", FlavorRef: flavorID, Networks: nets, BlockDevice: root(false)})
	srv = waitStatus(t, cc, srv.ID, "ACTIVE", 60*time.Second)
	if len(srv.Image) != 0 {
		t.Errorf("image of a volume-backed server: %v, want \"\"", srv.Image)
	}
	if len(srv.AttachedVolumes) != 1 || srv.AttachedVolumes[0].ID != v.ID {
		t.Errorf("volumes_attached: %+v", srv.AttachedVolumes)
	}
	v = waitVolume(t, vc, v.ID, "in-use")
	if len(v.Attachments) != 1 || v.Attachments[0].ServerID != srv.ID || v.Attachments[0].Device != "/dev/vda" {
		t.Errorf("the root volume's attachments: %+v", v.Attachments)
	}
	if out, err := inServer(t, d, srv.ID, "grep ' / / ' /proc/self/mountinfo"); err != nil || !strings.Contains(out, " ext4 /dev/loop") {
		t.Fatalf("the server's root is not the volume: %v %s", err, out)
	}
	marker := make([]byte, 16)
	rand.Read(marker)
	want := hex.EncodeToString(marker)
	if out, err := inServer(t, d, srv.ID, "echo "+want+" > /root/marker && sync && echo written"); err != nil || !strings.Contains(out, "written") {
		t.Fatalf("write in the server: %v %s", err, out)
	}
	read := func(id, what string) {
		t.Helper()
		if out, err := inServer(t, d, id, "cat /root/marker"); err != nil || strings.TrimSpace(out) != want {
			t.Fatalf("%s: %v %q, want %q", what, err, out, want)
		}
	}

	err := volumeattach.Delete(ctx, cc, srv.ID, v.ID).ExtractErr()
	wantCode(t, err, http.StatusForbidden, "detach the root volume")

	if err := servers.Stop(ctx, cc, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cc, srv.ID, "SHUTOFF", 30*time.Second)
	if err := servers.Start(ctx, cc, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cc, srv.ID, "ACTIVE", 30*time.Second)
	read(srv.ID, "after a stop and a start")
	if err := d.restart(); err != nil {
		t.Fatal(err)
	}
	pc := d.session(t, "demo").pc
	cc.ProviderClient, vc.ProviderClient = pc, pc
	waitStatus(t, cc, srv.ID, "ACTIVE", 30*time.Second)
	read(srv.ID, "after a daemon restart")

	// The server goes, the volume stays, with what was written.
	if err := servers.Delete(ctx, cc, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitGone(wctx, cc, srv.ID); err != nil {
		t.Fatal(err)
	}
	v = waitVolume(t, vc, v.ID, "available")
	if loops, ms := loopsOf(t, d.dataDir), mountsUnder(t, d.dataDir); len(loops) != 0 || len(ms) != 0 {
		t.Fatalf("after the delete: loop devices %v, mounts %v", loops, ms)
	}
	again := bootServer(t, cc, servers.CreateOpts{Name: "bfv-again", FlavorRef: flavorID, Networks: nets, BlockDevice: root(true)})
	waitStatus(t, cc, again.ID, "ACTIVE", 60*time.Second)
	read(again.ID, "in a second server booted from the volume")
	if err := servers.Delete(ctx, cc, again.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := waitGone(wctx, cc, again.ID); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, vc, v.ID) // delete_on_termination

	// --boot-from-volume: the volume is made from the image by the build.
	made := bootServer(t, cc, servers.CreateOpts{Name: "bfv-image", FlavorRef: flavorID, Networks: nets,
		BlockDevice: []servers.BlockDevice{{SourceType: servers.SourceImage, UUID: imageID, BootIndex: 0,
			DestinationType: servers.DestinationVolume, VolumeSize: 1, DeleteOnTermination: true}}})
	sv := waitStatus(t, cc, made.ID, "ACTIVE", 60*time.Second)
	if len(sv.AttachedVolumes) != 1 {
		t.Fatalf("volumes_attached of a server booted from an image volume: %+v", sv.AttachedVolumes)
	}
	rootID := sv.AttachedVolumes[0].ID
	if rv := waitVolume(t, vc, rootID, "in-use"); rv.Bootable != "true" || rv.Size != 1 || rv.VolumeImageMetadata["image_id"] != imageID {
		t.Errorf("the volume made: %+v", rv)
	}
	if out, err := inServer(t, d, made.ID, "hostname; ls /sbin/init"); err != nil || !strings.Contains(out, "/sbin/init") {
		t.Fatalf("in the server booted from an image volume: %v %s", err, out)
	}
	if err := servers.Delete(ctx, cc, made.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := waitGone(wctx, cc, made.ID); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, vc, rootID)
	if loops, ms := loopsOf(t, d.dataDir), mountsUnder(t, d.dataDir); len(loops) != 0 || len(ms) != 0 {
		t.Fatalf("at the end: loop devices %v, mounts %v", loops, ms)
	}
}
