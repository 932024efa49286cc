package acceptance

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// TestComputeKill9: 20 servers created at once, and the daemon killed
// with SIGKILL while they build. After a restart on the same data dir
// every acknowledged server exists and each ends ACTIVE (its container
// running) or ERROR with a fault, none stuck in BUILD; every port of
// compute belongs to a server that exists; and once they are all deleted
// nothing of them is left on the host (containers, namespaces, taps) nor in
// Neutron (ports, so no address stays allocated).
func TestComputeKill9(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	d := startTestDaemon(t)
	s := d.session(t, "demo")
	cc, nc := computeClient(t, s), netClient(t, s)
	imageID, flavorID, netID := lookupIDs(t, s)
	// Room for the storm: Nova's default quota is 10 instances.
	apc := d.session(t, "admin").pc
	code, body := call(t, "PUT", computeClient(t, session{pc: apc}).ServiceURL("os-quota-sets", tokenProject(t, s).ID), apc.Token(),
		map[string]any{"quota_set": map[string]any{"instances": 50, "cores": 100, "ram": 100000}})
	if code != http.StatusOK {
		t.Fatalf("raise demo's compute quota: %d %v", code, body)
	}

	// Warm the image once, so that the kill finds builds at every stage
	// rather than all of them waiting for one unpack.
	warm := bootServer(t, cc, servers.CreateOpts{Name: "warm", ImageRef: imageID, FlavorRef: flavorID,
		Networks: []servers.Network{{UUID: netID}}})
	waitStatus(t, cc, warm.ID, "ACTIVE", 60*time.Second)

	const n = 20
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, err := servers.Create(ctx, cc, servers.CreateOpts{Name: uniq("storm"), ImageRef: imageID, FlavorRef: flavorID,
				Networks: []servers.Network{{UUID: netID}}}, nil).Extract()
			if err == nil {
				mu.Lock()
				acked[srv.ID] = true
				mu.Unlock()
			}
		}()
	}
	// Kill once some creates are acknowledged and building.
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= n/2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.kill()
	killedAt := time.Since(start)
	wg.Wait()
	if err := d.start(); err != nil {
		t.Fatalf("restart: %v\n%s", err, d.logTail(40))
	}
	t.Logf("%d of %d creates acknowledged when the daemon was killed, %v after the first", len(acked), n, killedAt.Round(time.Millisecond))
	s = d.session(t, "demo")
	cc, nc = computeClient(t, s), netClient(t, s)

	// Every server settles: ACTIVE or ERROR, none left building.
	var list []servers.Server
	settleBy := time.Now().Add(90 * time.Second)
	for {
		pages, err := servers.List(cc, servers.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if list, err = servers.ExtractServers(pages); err != nil {
			t.Fatal(err)
		}
		busy := 0
		for _, sv := range list {
			if (sv.Status != "ACTIVE" && sv.Status != "ERROR") || sv.TaskState != "" {
				busy++
			}
		}
		if busy == 0 {
			break
		}
		if time.Now().After(settleBy) {
			for _, sv := range list {
				t.Errorf("server %s: status %s task_state %q", sv.ID, sv.Status, sv.TaskState)
			}
			t.Fatalf("%d servers still busy 90 s after the restart", busy)
		}
		time.Sleep(250 * time.Millisecond)
	}
	have := map[string]servers.Server{}
	active, failed := 0, 0
	for _, sv := range list {
		have[sv.ID] = sv
		switch sv.Status {
		case "ACTIVE":
			active++
			if st := runcState(t, d, sv.ID); st != "running" {
				t.Errorf("ACTIVE server %s: its container is %q", sv.ID, st)
			}
		case "ERROR":
			failed++
			if sv.Fault.Message == "" {
				t.Errorf("ERROR server %s has no fault", sv.ID)
			}
		}
	}
	t.Logf("after the restart: %d ACTIVE, %d ERROR", active, failed)
	for id := range acked {
		if _, ok := have[id]; !ok {
			t.Errorf("acknowledged server %s is gone", id)
		}
	}

	// Every port of compute belongs to a server that exists.
	computePorts := func() []ports.Port {
		t.Helper()
		pages, err := ports.List(nc, ports.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := ports.ExtractPorts(pages)
		if err != nil {
			t.Fatal(err)
		}
		var out []ports.Port
		for _, p := range all {
			if strings.HasPrefix(p.DeviceOwner, "compute:") {
				out = append(out, p)
			}
		}
		return out
	}
	var portIDs []string
	for _, p := range computePorts() {
		portIDs = append(portIDs, p.ID)
		if _, ok := have[p.DeviceID]; !ok {
			t.Errorf("port %s (%v) belongs to no server (device %q)", p.ID, p.FixedIPs, p.DeviceID)
		}
	}

	// Delete them all: nothing of them is left.
	var ids []string
	for id := range have {
		ids = append(ids, id)
		if err := servers.Delete(ctx, cc, id).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("delete %s: %v", id, err)
		}
	}
	for _, id := range ids {
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		if err := waitGone(wctx, cc, id); err != nil {
			t.Errorf("server %s: %v", id, err)
		}
		cancel()
	}
	if left := computePorts(); len(left) > 0 {
		t.Errorf("%d ports of compute left after every server was deleted: %+v", len(left), left)
	}
	gone := time.Now().Add(30 * time.Second)
	for left := hostLeftovers(t, d, ids, portIDs); len(left) > 0; left = hostLeftovers(t, d, ids, portIDs) {
		if time.Now().After(gone) {
			t.Errorf("left on the host 30 s after the servers were deleted: %v", left)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
}
