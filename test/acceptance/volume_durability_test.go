package acceptance

import (
	"context"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
)

// TestVolumeDurabilityKill9: clients create volumes, delete others and
// attach more to a running server, and the daemon is killed with SIGKILL
// in the middle of it. After a restart on the same data directory every
// acknowledged create exists and every acknowledged delete is gone; no
// volume is left in a transitional status; the volumes in-use are exactly
// those Nova has attached, each present in the server as a block device;
// and on the host there is one file per volume and one loop device per
// attached volume, nothing more.
func TestVolumeDurabilityKill9(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	d := startTestDaemon(t)
	s := d.session(t, "demo")
	cc, vc := computeClient(t, s), volumeClient(t, s)
	imageID, flavorID, netID := lookupIDs(t, s)
	srv := bootServer(t, cc, servers.CreateOpts{Name: "durable", ImageRef: imageID, FlavorRef: flavorID,
		Networks: []servers.Network{{UUID: netID}}})
	waitStatus(t, cc, srv.ID, "ACTIVE", 60*time.Second)

	// Room for the storm: the default quota is 10 volumes.
	apc := d.session(t, "admin").pc
	code, body := call(t, "PUT", volumeClient(t, session{pc: apc}).ServiceURL("os-quota-sets", tokenProject(t, s).ID), apc.Token(),
		map[string]any{"quota_set": map[string]any{"volumes": 500, "gigabytes": 5000}})
	if code != http.StatusOK {
		t.Fatalf("raise demo's volume quota: %d %v", code, body)
	}

	// Volumes made before the storm: some to delete, some to attach.
	var toDelete, toAttach []string
	for i := 0; i < 16; i++ {
		v, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, Name: "pre"}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(t, vc, v.ID, "available")
		if i < 8 {
			toDelete = append(toDelete, v.ID)
		} else {
			toAttach = append(toAttach, v.ID)
		}
	}

	var mu sync.Mutex
	created := map[string]bool{} // acknowledged creates
	deleted := map[string]bool{} // acknowledged deletes
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(3)
	go func() { // creates, until the daemon dies
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			v, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, Name: "storm"}, nil).Extract()
			if err != nil {
				return
			}
			mu.Lock()
			created[v.ID] = true
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for _, id := range toDelete {
			if err := volumes.Delete(ctx, vc, id, nil).ExtractErr(); err != nil {
				return
			}
			mu.Lock()
			deleted[id] = true
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for _, id := range toAttach {
			if _, err := volumeattach.Create(ctx, cc, srv.ID, volumeattach.CreateOpts{VolumeID: id}).Extract(); err != nil {
				return
			}
		}
	}()
	// Somewhere in the middle of it: each run hits a different moment.
	time.Sleep(time.Duration(40+mathrand.IntN(160)) * time.Millisecond)
	d.kill()
	close(stop)
	wg.Wait()
	t.Logf("before the kill: %d creates and %d deletes acknowledged", len(created), len(deleted))
	if len(created) == 0 {
		t.Fatal("no create was acknowledged before the kill; the test proves nothing")
	}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}

	// Settle: no volume in a transitional status.
	transitional := map[string]bool{"creating": true, "deleting": true, "attaching": true, "detaching": true,
		"reserved": true, "extending": true}
	var vols []volumes.Volume
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pages, err := volumes.List(vc, volumes.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if vols, err = volumes.ExtractVolumes(pages); err != nil {
			t.Fatal(err)
		}
		busy := ""
		for _, v := range vols {
			if transitional[v.Status] {
				busy = v.ID + " " + v.Status
			}
		}
		if busy == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a volume is still %s a minute after the restart", busy)
		}
	}
	t.Cleanup(func() {
		for _, v := range vols {
			volumeattach.Delete(context.Background(), cc, srv.ID, v.ID)
		}
	})

	have := map[string]volumes.Volume{}
	for _, v := range vols {
		have[v.ID] = v
		if strings.HasPrefix(v.Status, "error") {
			t.Errorf("volume %s is %s after the restart", v.ID, v.Status)
		}
	}
	for id := range created {
		if _, ok := have[id]; !ok {
			t.Errorf("acknowledged volume %s is lost", id)
		}
	}
	for id := range deleted {
		if _, ok := have[id]; ok {
			t.Errorf("volume %s whose delete was acknowledged is still there", id)
		}
	}

	// In-use volumes are exactly Nova's attachments, each a block device
	// in the server; one loop device each on the host.
	pages, err := volumeattach.List(cc, srv.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	atts, err := volumeattach.ExtractVolumeAttachments(pages)
	if err != nil {
		t.Fatal(err)
	}
	nova := map[string]string{}
	for _, a := range atts {
		nova[a.VolumeID] = a.Device
	}
	var inUse []string
	for _, v := range vols {
		switch v.Status {
		case "in-use":
			inUse = append(inUse, v.ID)
			dev, ok := nova[v.ID]
			if !ok || len(v.Attachments) != 1 || v.Attachments[0].Device != dev {
				t.Errorf("volume %s in-use with %+v; Nova has %q", v.ID, v.Attachments, dev)
				continue
			}
			if out, err := inServer(t, d, srv.ID, "test -b "+dev+" && echo yes"); err != nil || strings.TrimSpace(out) != "yes" {
				t.Errorf("volume %s: %s is not a block device in the server: %v %s", v.ID, dev, err, out)
			}
		case "available":
			if _, ok := nova[v.ID]; ok {
				t.Errorf("volume %s is available but Nova has it attached", v.ID)
			}
		}
	}
	t.Logf("after the restart: %d volumes, %d in use", len(vols), len(inUse))
	if loops := loopsOf(t, d.dataDir); len(loops) != len(inUse) {
		t.Errorf("%d loop devices for %d volumes in use: %v", len(loops), len(inUse), loops)
	}
	files, _ := filepath.Glob(filepath.Join(d.dataDir, "volumes", "volume-*.img"))
	var onDisk, recorded []string
	for _, f := range files {
		onDisk = append(onDisk, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "volume-"), ".img"))
	}
	for _, v := range vols {
		recorded = append(recorded, v.ID)
	}
	sort.Strings(onDisk)
	sort.Strings(recorded)
	if strings.Join(onDisk, " ") != strings.Join(recorded, " ") {
		t.Errorf("volume files %v, volumes %v", onDisk, recorded)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(d.dataDir, "volumes", ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Everything can still be detached and deleted.
	for _, id := range inUse {
		if err := volumeattach.Delete(ctx, cc, srv.ID, id).ExtractErr(); err != nil {
			t.Errorf("detach %s: %v", id, err)
		}
	}
	for _, id := range inUse {
		waitVolume(t, vc, id, "available")
	}
	for _, v := range vols {
		err := volumes.Delete(ctx, vc, v.ID, nil).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("delete %s: %v", v.ID, err)
		}
	}
	for _, v := range vols {
		waitVolumeGone(t, vc, v.ID)
	}
	if loops := loopsOf(t, d.dataDir); len(loops) != 0 {
		t.Errorf("loop devices left: %v", loops)
	}
	if _, err := os.Stat(filepath.Join(d.dataDir, "volumes")); err != nil {
		t.Error(err)
	}
}
