package acceptance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// TestNetworkDurabilityKill9: six clients create ports on one /24 as fast
// as they can, half of them bound to this host into namespaces (as admin,
// for demo's project); the daemon is killed with SIGKILL in the middle.
// After a restart on the same data directory every port whose creation
// was acknowledged exists, no address of the subnet is held twice, the
// bound ports come back ACTIVE with exactly one tap each on the host, and
// deleting every port through the API leaves no tap of the agent behind.
func TestNetworkDurabilityKill9(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: monostack runs no datapath; run the acceptance tests as root")
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	d := startTestDaemon(t)
	ctx := context.Background()
	agentID, err := os.ReadFile(filepath.Join(d.dataDir, "agent-id"))
	if err != nil {
		t.Fatalf("agent id: %v", err)
	}
	aliasPrefix := "monostack:" + strings.TrimSpace(string(agentID)) + ":port:"

	clients := func() (admin, demo *gophercloud.ServiceClient) {
		t.Helper()
		for _, u := range []string{"admin", "demo"} {
			pc, _, err := d.login(ctx, d.authOpts(u, d.passwords[u], u))
			if err != nil {
				t.Fatalf("authenticate as %s: %v", u, err)
			}
			c, err := openstack.NewNetworkV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
			if err != nil {
				t.Fatalf("network endpoint: %v", err)
			}
			if u == "admin" {
				admin = c
			} else {
				demo = c
			}
		}
		return admin, demo
	}
	adminC, demoC := clients()

	n, err := networks.Create(ctx, demoC, networks.CreateOpts{Name: uniq("acc-durable")}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	deleteLater(t, "network "+n.Name, func(ctx context.Context) error { return networks.Delete(ctx, demoC, n.ID).ExtractErr() })
	sn, err := subnets.Create(ctx, demoC, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.77.0.0/24",
		IPVersion: gophercloud.IPv4, Name: uniq("acc-durable")}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	deleteLater(t, "subnet "+sn.CIDR, func(ctx context.Context) error { return subnets.Delete(ctx, demoC, sn.ID).ExtractErr() })

	var nss []string
	for range 4 {
		nss = append(nss, newNetns(t))
	}

	// The burst. At most maxPorts attempts, so that the /24 does not run
	// out; the kill comes once killAfter creations were acknowledged (or
	// after a second), while the workers are still at it.
	const workers, maxPorts, killAfter = 6, 240, 100
	var (
		mu       sync.Mutex
		acked    = map[string]bool{} // port id -> bound
		failures = map[string]int{}
		killed   bool
		attempts atomic.Int32
		wg       sync.WaitGroup
	)
	burst, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bound := w%2 == 0
			for i := 0; burst.Err() == nil && attempts.Add(1) <= maxPorts; i++ {
				name := fmt.Sprintf("burst-%d-%d", w, i)
				var opts ports.CreateOptsBuilder = ports.CreateOpts{NetworkID: n.ID, Name: name}
				c := demoC
				if bound {
					c = adminC
					opts = portsbinding.CreateOptsExt{
						CreateOptsBuilder: ports.CreateOpts{NetworkID: n.ID, Name: name, ProjectID: n.ProjectID},
						HostID:            host,
						Profile:           map[string]any{"netns": "/var/run/netns/" + nss[(w/2+i)%len(nss)]},
					}
				}
				p, err := ports.Create(burst, c, opts).Extract()
				mu.Lock()
				switch {
				case err == nil:
					acked[p.ID] = bound
				case killed:
					failures["after the kill"]++
				default:
					failures[err.Error()]++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= killAfter || time.Since(start) > time.Second {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	before := len(acked)
	killed = true
	mu.Unlock()
	inBurst := attempts.Load() < maxPorts && burst.Err() == nil
	d.kill()
	killedAt := time.Since(start)
	wg.Wait()
	t.Logf("SIGKILL after %s with %d port creations acknowledged; %d acknowledged in all (%d attempts); failures: %v",
		killedAt.Round(time.Millisecond), before, len(acked), attempts.Load(), failures)
	if !inBurst {
		t.Fatalf("the burst was over before the kill (%d attempts)", attempts.Load())
	}
	if before < 10 {
		t.Fatalf("only %d ports created in the second before the kill; the burst did not get going", before)
	}
	for what, c := range failures {
		if what != "after the kill" {
			t.Errorf("%d creations failed before the kill: %s", c, what)
		}
	}

	restart := time.Now()
	if err := d.start(); err != nil {
		t.Fatalf("restart after SIGKILL: %v", err)
	}
	t.Logf("restarted in %s", time.Since(restart).Round(time.Millisecond))
	adminC, demoC = clients()

	list := func() []boundPort {
		t.Helper()
		pages, err := ports.List(adminC, ports.ListOpts{NetworkID: n.ID}).AllPages(ctx)
		if err != nil {
			t.Fatalf("list ports: %v", err)
		}
		var out []boundPort
		if err := ports.ExtractPortsInto(pages, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := list()
	byID := map[string]boundPort{}
	for _, p := range all {
		byID[p.ID] = p
	}
	lost := 0
	for id, bound := range acked {
		p, ok := byID[id]
		if !ok {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged port %s is missing after restart", id)
			}
			continue
		}
		if bound && p.HostID != host {
			t.Errorf("acknowledged bound port %s has binding:host_id %q after restart, want %q", id, p.HostID, host)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged ports lost", lost, len(acked))
	}
	t.Logf("%d ports on the network after restart (%d acknowledged)", len(all), len(acked))

	// No address held twice.
	holders := map[string][]string{}
	for _, p := range all {
		for _, ip := range p.FixedIPs {
			if ip.SubnetID == sn.ID {
				holders[ip.IPAddress] = append(holders[ip.IPAddress], p.ID)
			}
		}
	}
	for ip, ids := range holders {
		if len(ids) > 1 {
			t.Errorf("address %s is allocated to %d ports: %v", ip, len(ids), ids)
		}
	}

	// The bound ports become ACTIVE again, each with exactly one tap.
	wantBound := map[string]bool{}
	for _, p := range all {
		if p.HostID == host {
			wantBound[p.ID] = true
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var notActive []string
		for _, p := range list() {
			if wantBound[p.ID] && p.Status != "ACTIVE" {
				notActive = append(notActive, p.ID+"="+p.Status)
			}
		}
		if len(notActive) == 0 {
			t.Logf("%d bound ports ACTIVE %s after the restart", len(wantBound), time.Since(restart).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(notActive)
			t.Errorf("%d of %d bound ports not ACTIVE 60s after the restart: %v", len(notActive), len(wantBound), notActive)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	taps := portTaps(t, aliasPrefix)
	for id := range wantBound {
		if taps[id] != 1 {
			t.Errorf("bound port %s has %d taps on the host, want 1", id, taps[id])
		}
	}
	for id, c := range taps {
		if !wantBound[id] {
			t.Errorf("%d taps on the host for port %s, which is not a bound port of the cloud", c, id)
		}
	}

	// Delete every port through the API: no tap of this agent remains.
	for _, p := range all {
		if strings.HasPrefix(p.DeviceOwner, "network:") {
			continue
		}
		if err := ports.Delete(ctx, adminC, p.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("delete port %s: %v", p.ID, err)
		}
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		taps := portTaps(t, aliasPrefix)
		if len(taps) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d port taps of the agent still on the host 30s after every port was deleted: %v", len(taps), taps)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if left := list(); len(left) > 0 {
		for _, p := range left {
			if !strings.HasPrefix(p.DeviceOwner, "network:") {
				t.Errorf("port %s (%s) still listed after it was deleted", p.ID, p.DeviceOwner)
			}
		}
	}
}

// portTaps counts the host's links whose alias starts with prefix
// ("monostack:<agent>:port:"), by port id.
func portTaps(t *testing.T, prefix string) map[string]int {
	t.Helper()
	files, err := filepath.Glob("/sys/class/net/*/ifalias")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the link went away
		}
		if id, ok := strings.CutPrefix(strings.TrimSpace(string(b)), prefix); ok {
			out[id]++
		}
	}
	return out
}
