package acceptance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
)

// computeClient is a Compute v2.1 client of a session, found in the catalog.
func computeClient(t *testing.T, s session) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewComputeV2(s.pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("compute endpoint: %v", err)
	}
	return c
}

// needRoot skips a test that boots servers: without root there is no
// container runtime.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("booting servers needs root (runc containers and the datapath); not root")
	}
}

// sshEd25519Key is a new ed25519 public key in OpenSSH authorized_keys form.
func sshEd25519Key(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var wire []byte
	for _, field := range [][]byte{[]byte("ssh-ed25519"), pub} {
		wire = binary.BigEndian.AppendUint32(wire, uint32(len(field)))
		wire = append(wire, field...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(wire) + " acceptance@monostack"
}

// lookupIDs finds the ids of the "busybox" image, the m1.tiny flavor and
// the "private" network as demo sees them.
func lookupIDs(t *testing.T, s session) (imageID, flavorID, networkID string) {
	t.Helper()
	ctx := context.Background()
	ic, err := openstack.NewImageV2(s.pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("image endpoint: %v", err)
	}
	pages, err := images.List(ic, images.ListOpts{Name: "busybox"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list images name=busybox: %v", err)
	}
	ims, err := images.ExtractImages(pages)
	if err != nil || len(ims) != 1 {
		t.Fatalf("images named busybox: %+v %v", ims, err)
	}
	imageID = ims[0].ID

	pages, err = flavors.ListDetail(computeClient(t, s), nil).AllPages(ctx)
	if err != nil {
		t.Fatalf("list flavors: %v", err)
	}
	fls, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fls {
		if f.Name == "m1.tiny" {
			flavorID = f.ID
		}
	}
	if flavorID == "" {
		t.Fatalf("no flavor m1.tiny in %+v", fls)
	}

	pages, err = networks.List(netClient(t, s), networks.ListOpts{Name: "private"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list networks name=private: %v", err)
	}
	nets, err := networks.ExtractNetworks(pages)
	if err != nil || len(nets) != 1 {
		t.Fatalf("networks named private: %+v %v", nets, err)
	}
	return imageID, flavorID, nets[0].ID
}

// bootServer creates a server and deletes it (waiting until it is gone)
// when the test ends.
func bootServer(t *testing.T, c *gophercloud.ServiceClient, opts servers.CreateOptsBuilder) *servers.Server {
	t.Helper()
	srv, err := servers.Create(context.Background(), c, opts, nil).Extract()
	if err != nil {
		t.Fatalf("create server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err := servers.Delete(ctx, c, srv.ID).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: delete server %s: %v", srv.ID, err)
			return
		}
		if err := waitGone(ctx, c, srv.ID); err != nil {
			t.Errorf("cleanup: server %s: %v", srv.ID, err)
		}
	})
	return srv
}

// waitGone polls a server until GET is 404.
func waitGone(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
	for {
		s, err := servers.Get(ctx, c, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return nil
		}
		if ctx.Err() != nil {
			if s != nil {
				return errors.New("still there (status " + s.Status + ") when the time was up")
			}
			return ctx.Err()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitStatus polls a server until its status is want with no task
// running, failing on ERROR or after d.
func waitStatus(t *testing.T, c *gophercloud.ServiceClient, id, want string, d time.Duration) *servers.Server {
	t.Helper()
	deadline := time.Now().Add(d)
	var last *servers.Server
	for {
		s, err := servers.Get(context.Background(), c, id).Extract()
		if err != nil {
			t.Fatalf("get server %s: %v", id, err)
		}
		last = s
		if s.Status == want && s.TaskState == "" {
			return s
		}
		if s.Status == "ERROR" && want != "ERROR" {
			t.Fatalf("server %s is ERROR waiting for %s: fault %+v", id, want, s.Fault)
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s not %s after %s: status %s task_state %q vm_state %q", id, want, d, last.Status, last.TaskState, last.VmState)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestComputeInfo(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoSession(t), adminSession(t)
	c := computeClient(t, demo)

	t.Run("flavors", func(t *testing.T) {
		pages, err := flavors.ListDetail(c, nil).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fls, err := flavors.ExtractFlavors(pages)
		if err != nil {
			t.Fatal(err)
		}
		var tiny *flavors.Flavor
		for i := range fls {
			if fls[i].Name == "m1.tiny" {
				tiny = &fls[i]
			}
		}
		if tiny == nil {
			t.Fatalf("no m1.tiny in %+v", fls)
		}
		if tiny.RAM != 512 || tiny.Disk != 1 || tiny.VCPUs != 1 {
			t.Errorf("m1.tiny %+v, want 512 MB, 1 GB, 1 vCPU", tiny)
		}
		got, err := flavors.Get(ctx, c, tiny.ID).Extract()
		if err != nil || got.Name != "m1.tiny" {
			t.Errorf("get flavor %s: %+v %v", tiny.ID, got, err)
		}
		_, err = flavors.Get(ctx, c, "no-such-flavor").Extract()
		wantCode(t, err, http.StatusNotFound, "get an unknown flavor")
	})

	t.Run("limits", func(t *testing.T) {
		l, err := limits.Get(ctx, c, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		a := l.Absolute
		if a.MaxTotalInstances <= 0 || a.MaxTotalCores <= 0 || a.MaxTotalRAMSize <= 0 || a.MaxTotalKeypairs <= 0 {
			t.Errorf("absolute limits %+v: want positive maxima", a)
		}
		if a.TotalInstancesUsed < 0 || a.TotalInstancesUsed > a.MaxTotalInstances {
			t.Errorf("absolute limits %+v: instances used out of range", a)
		}
	})

	t.Run("quota sets", func(t *testing.T) {
		pid := tokenProject(t, demo).ID
		q, err := quotasets.Get(ctx, c, pid).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if q.Instances <= 0 || q.Cores <= 0 || q.RAM <= 0 || q.KeyPairs <= 0 {
			t.Errorf("demo's quota set %+v: want positive quotas", q)
		}
		d, err := quotasets.GetDetail(ctx, c, pid).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if d.Instances.Limit != q.Instances || d.Instances.InUse < 0 {
			t.Errorf("detail instances %+v, want limit %d", d.Instances, q.Instances)
		}
	})

	t.Run("availability zones", func(t *testing.T) {
		pages, err := availabilityzones.List(c).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		zones, err := availabilityzones.ExtractAvailabilityZones(pages)
		if err != nil {
			t.Fatal(err)
		}
		var nova bool
		for _, z := range zones {
			if z.ZoneName == "nova" {
				nova = z.ZoneState.Available
			}
		}
		if !nova {
			t.Errorf("zones %+v: want nova, available", zones)
		}
	})

	t.Run("hypervisors", func(t *testing.T) {
		ac := computeClient(t, admin)
		pages, err := hypervisors.List(ac, nil).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := hypervisors.ExtractHypervisors(pages)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) == 0 {
			t.Fatal("no hypervisors")
		}
		for _, h := range hs {
			if h.HypervisorHostname == "" || h.State != "up" || h.Status != "enabled" {
				t.Errorf("hypervisor %+v: want a hostname, up, enabled", h)
			}
		}
		h, err := hypervisors.Get(ctx, ac, hs[0].ID).Extract()
		if err != nil || h.HypervisorHostname != hs[0].HypervisorHostname {
			t.Errorf("get hypervisor %s: %+v %v", hs[0].ID, h, err)
		}
		_, err = hypervisors.List(c, nil).AllPages(ctx)
		wantCode(t, err, http.StatusForbidden, "demo listing hypervisors")
	})
}

func TestServerLifecycle(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	demo := demoSession(t)
	c := computeClient(t, demo)
	imageID, flavorID, netID := lookupIDs(t, demo)

	kpName := uniq("acc-key")
	pub := sshEd25519Key(t)
	kp, err := keypairs.Create(ctx, c, keypairs.CreateOpts{Name: kpName, PublicKey: pub}).Extract()
	if err != nil {
		t.Fatalf("import keypair: %v", err)
	}
	deleteLater(t, "keypair "+kpName, func(ctx context.Context) error { return keypairs.Delete(ctx, c, kpName, nil).ExtractErr() })
	if kp.Name != kpName || kp.PublicKey != pub || kp.Fingerprint == "" {
		t.Errorf("imported keypair %+v", kp)
	}
	if got, err := keypairs.Get(ctx, c, kpName, nil).Extract(); err != nil || got.PublicKey != pub {
		t.Errorf("get keypair: %+v %v", got, err)
	}

	userData := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho acceptance-user-data-$(id -u)\n"))
	name := uniq("acc-server")
	srv := bootServer(t, c, keypairs.CreateOptsExt{
		CreateOptsBuilder: servers.CreateOpts{
			Name: name, ImageRef: imageID, FlavorRef: flavorID,
			Networks: []servers.Network{{UUID: netID}},
			UserData: []byte(userData),
		},
		KeyName: kpName,
	})
	start := time.Now()
	s := waitStatus(t, c, srv.ID, "ACTIVE", 60*time.Second)
	t.Logf("server %s ACTIVE in %s", srv.ID, time.Since(start).Round(time.Millisecond))
	if s.Name != name || s.KeyName != kpName || s.Image["id"] != imageID {
		t.Errorf("server %+v: want name %s, key %s, image %s", s, name, kpName, imageID)
	}
	if _, ok := s.Addresses["private"]; !ok {
		t.Errorf("server addresses %+v: no \"private\" entry", s.Addresses)
	} else {
		privateCIDR := cloudPrefix(t, "--private-cidr")
		addrs, _ := s.Addresses["private"].([]any)
		var inRange bool
		for _, a := range addrs {
			m, _ := a.(map[string]any)
			if ip, err := netip.ParseAddr(fmt.Sprint(m["addr"])); err == nil && privateCIDR.Contains(ip) {
				inRange = true
			}
		}
		if !inRange {
			t.Errorf("server addresses %+v: no address in the private range %s", s.Addresses, privateCIDR)
		}
	}

	// The init prints that it is up and runs the user data.
	consoleHas := func(want string, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		var out string
		for time.Now().Before(deadline) {
			out, err = servers.ShowConsoleOutput(ctx, c, srv.ID, servers.ShowConsoleOutputOpts{}).Extract()
			if err != nil {
				t.Fatalf("console output: %v", err)
			}
			if strings.Contains(out, want) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("console output has no %q after %s:\n%s", want, d, out)
	}
	consoleHas("acceptance-user-data-0", 30*time.Second)
	consoleHas("monostack-init: "+name+" is up", 5*time.Second)
	console := func() string {
		t.Helper()
		out, err := servers.ShowConsoleOutput(ctx, c, srv.ID, servers.ShowConsoleOutputOpts{}).Extract()
		if err != nil {
			t.Fatalf("console output: %v", err)
		}
		return out
	}
	boots := strings.Count(console(), "is up")
	if out, err := servers.ShowConsoleOutput(ctx, c, srv.ID, servers.ShowConsoleOutputOpts{Length: 1}).Extract(); err != nil ||
		strings.Count(strings.TrimRight(out, "\n"), "\n") > 0 {
		t.Errorf("console output length=1: %q %v", out, err)
	}

	for _, step := range []struct {
		what string
		do   func() error
		want string
	}{
		{"stop", func() error { return servers.Stop(ctx, c, srv.ID).ExtractErr() }, "SHUTOFF"},
		{"start", func() error { return servers.Start(ctx, c, srv.ID).ExtractErr() }, "ACTIVE"},
		{"pause", func() error { return servers.Pause(ctx, c, srv.ID).ExtractErr() }, "PAUSED"},
		{"unpause", func() error { return servers.Unpause(ctx, c, srv.ID).ExtractErr() }, "ACTIVE"},
		{"reboot", func() error {
			return servers.Reboot(ctx, c, srv.ID, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
		}, "ACTIVE"},
		{"hard reboot", func() error {
			return servers.Reboot(ctx, c, srv.ID, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr()
		}, "ACTIVE"},
	} {
		t0 := time.Now()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		s := waitStatus(t, c, srv.ID, step.want, 60*time.Second)
		t.Logf("%s: %s in %s (power state %s)", step.what, s.Status, time.Since(t0).Round(time.Millisecond), s.PowerState)
	}
	// Stop/start and the reboots ran the init again (3 more boots); the
	// console log is kept across them.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(console(), "is up") < boots+3 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if out := console(); strings.Count(out, "is up") < boots+3 {
		t.Errorf("console after stop/start and two reboots: %d boots, want %d:\n%s", strings.Count(out, "is up"), boots+3, out)
		if s, err := servers.Get(ctx, c, srv.ID).Extract(); err == nil {
			t.Logf("server now: status %s task_state %q vm_state %q power state %s", s.Status, s.TaskState, s.VmState, s.PowerState)
		}
		t.Logf("the daemon's log about it:\n%s", logAbout(srv.ID))
	}
	// Starting a server that is running is a conflict.
	wantCode(t, servers.Start(ctx, c, srv.ID).ExtractErr(), http.StatusConflict, "start an ACTIVE server")

	if err := servers.Delete(ctx, c, srv.ID).ExtractErr(); err != nil {
		t.Fatalf("delete server: %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitGone(dctx, c, srv.ID); err != nil {
		t.Fatalf("server %s after delete: %v", srv.ID, err)
	}
}

func TestServerErrors(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoSession(t), adminSession(t)
	c := computeClient(t, demo)
	imageID, flavorID, netID := lookupIDs(t, demo)
	const unknown = "3f1c2b9a-0d4e-4c1a-9b7e-5a6d8c2e1f00"
	nets := []servers.Network{{UUID: netID}}

	for _, tc := range []struct {
		what string
		opts servers.CreateOpts
	}{
		{"unknown image", servers.CreateOpts{ImageRef: unknown, FlavorRef: flavorID, Networks: nets}},
		{"unknown flavor", servers.CreateOpts{ImageRef: imageID, FlavorRef: "no-such-flavor", Networks: nets}},
		{"unknown network", servers.CreateOpts{ImageRef: imageID, FlavorRef: flavorID, Networks: []servers.Network{{UUID: unknown}}}},
		{"user data over 64 KiB", servers.CreateOpts{ImageRef: imageID, FlavorRef: flavorID, Networks: nets,
			UserData: []byte(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\n" + strings.Repeat("#", 64<<10))))}},
		{"user data not base64", servers.CreateOpts{ImageRef: imageID, FlavorRef: flavorID, Networks: nets}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			tc.opts.Name = uniq("acc-bad")
			var opts servers.CreateOptsBuilder = tc.opts
			if tc.what == "user data not base64" {
				opts = rawUserData{tc.opts, "not base64!"}
			}
			s, err := servers.Create(ctx, c, opts, nil).Extract()
			if err == nil {
				// Do not leave it behind.
				servers.Delete(ctx, c, s.ID)
				dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				defer cancel()
				waitGone(dctx, c, s.ID)
			}
			wantCode(t, err, http.StatusBadRequest, "create a server with "+tc.what)
		})
	}

	t.Run("unknown server is 404", func(t *testing.T) {
		_, err := servers.Get(ctx, c, unknown).Extract()
		wantCode(t, err, http.StatusNotFound, "get an unknown server")
		wantCode(t, servers.Delete(ctx, c, unknown).ExtractErr(), http.StatusNotFound, "delete an unknown server")
	})

	t.Run("another project's server is 404", func(t *testing.T) {
		needRoot(t)
		ac := computeClient(t, admin)
		// The admin boots on demo's network, which a cloud admin may do.
		srv := bootServer(t, ac, servers.CreateOpts{Name: uniq("acc-admin-server"), ImageRef: imageID, FlavorRef: flavorID,
			Networks: nets})
		waitStatus(t, ac, srv.ID, "ACTIVE", 60*time.Second)
		_, err := servers.Get(ctx, c, srv.ID).Extract()
		wantCode(t, err, http.StatusNotFound, "demo getting admin's server")
		wantCode(t, servers.Stop(ctx, c, srv.ID).ExtractErr(), http.StatusNotFound, "demo stopping admin's server")
		_, err = servers.ShowConsoleOutput(ctx, c, srv.ID, servers.ShowConsoleOutputOpts{}).Extract()
		wantCode(t, err, http.StatusNotFound, "demo reading admin's server's console")
		wantCode(t, servers.Delete(ctx, c, srv.ID).ExtractErr(), http.StatusNotFound, "demo deleting admin's server")
		pages, err := servers.List(c, servers.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, _ := servers.ExtractServers(pages)
		for _, s := range list {
			if s.ID == srv.ID {
				t.Errorf("demo's server list has admin's server %s", srv.ID)
			}
		}
		if got, err := servers.Get(ctx, ac, srv.ID).Extract(); err != nil || got.Status != "ACTIVE" {
			t.Errorf("admin's server after demo's attempts: %+v %v", got, err)
		}
	})
}

// rawUserData sends user_data as given, without gophercloud's encoding.
type rawUserData struct {
	servers.CreateOpts
	userData string
}

func (o rawUserData) ToServerCreateMap() (map[string]any, error) {
	m, err := o.CreateOpts.ToServerCreateMap()
	if err != nil {
		return nil, err
	}
	m["server"].(map[string]any)["user_data"] = o.userData
	return m, nil
}

// logAbout is the shared daemon's log lines that mention id.
func logAbout(id string) string {
	b, err := os.ReadFile(cloud.logFile())
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, id) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
