package compute

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestVersions(t *testing.T) {
	tc := newTestCloud(t)
	root := tc.must(t, 200, tc.do(t, "GET", "/compute", "", nil)).JSON(t)
	vs := root["versions"].([]any)
	v21 := vs[1].(map[string]any)
	if v21["id"] != "v2.1" || v21["version"] != "2.96" || v21["min_version"] != "2.1" {
		t.Fatalf("versions %v", root)
	}
	tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/", "", nil))
	res := tc.do(t, "GET", "/compute/v2.1/flavors", tc.demo, nil, "OpenStack-API-Version", "compute 2.79")
	if res.Header.Get("OpenStack-API-Version") != "compute 2.79" || res.Header.Get("X-OpenStack-Nova-API-Version") != "2.79" {
		t.Fatalf("headers %v", res.Header)
	}
	tc.must(t, 406, tc.do(t, "GET", "/compute/v2.1/flavors", tc.demo, nil, "OpenStack-API-Version", "compute 2.200"))
	tc.must(t, 401, tc.do(t, "GET", "/compute/v2.1/flavors", "", nil))
}

func TestFlavors(t *testing.T) {
	tc := newTestCloud(t)
	list := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/flavors/detail", tc.demo, nil)).JSON(t)["flavors"].([]any)
	if len(list) != 12 {
		t.Fatalf("%d flavors", len(list))
	}
	byName := map[string]map[string]any{}
	for _, f := range list {
		m := f.(map[string]any)
		byName[m["name"].(string)] = m
	}
	for name, want := range map[string][3]float64{"m1.tiny": {512, 1, 1}, "m1.nano": {128, 1, 1}, "ds4G": {4096, 20, 4}, "m1.xlarge": {16384, 160, 8}} {
		f := byName[name]
		if f == nil || f["ram"] != want[0] || f["disk"] != want[1] || f["vcpus"] != want[2] {
			t.Errorf("%s: %v", name, f)
		}
	}
	if byName["m1.tiny"]["swap"] != "" {
		t.Errorf("swap at 2.1: %v", byName["m1.tiny"]["swap"])
	}
	f := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/flavors/42", tc.demo, nil, "OpenStack-API-Version", "compute 2.75")).JSON(t)["flavor"].(map[string]any)
	if f["swap"] != 0.0 || f["extra_specs"].(map[string]any)["hw_rng:allowed"] != "True" {
		t.Errorf("flavor at 2.75: %v", f)
	}
	body := map[string]any{"flavor": map[string]any{"name": "custom", "ram": 300, "vcpus": 1, "disk": 2, "id": "custom-1", "os-flavor-access:is_public": false}}
	tc.must(t, 403, tc.do(t, "POST", "/compute/v2.1/flavors", tc.demo, body))
	tc.must(t, 200, tc.do(t, "POST", "/compute/v2.1/flavors", tc.admin, body))
	tc.must(t, 409, tc.do(t, "POST", "/compute/v2.1/flavors", tc.admin, body))
	tc.must(t, 404, tc.do(t, "GET", "/compute/v2.1/flavors/custom-1", tc.demo, nil))
	tc.must(t, 200, tc.do(t, "POST", "/compute/v2.1/flavors/custom-1/action", tc.admin, map[string]any{"addTenantAccess": map[string]any{"tenant": tc.demoProject}}))
	tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/flavors/custom-1", tc.demo, nil))
	tc.must(t, 200, tc.do(t, "POST", "/compute/v2.1/flavors/custom-1/os-extra_specs", tc.admin, map[string]any{"extra_specs": map[string]any{"a": "b"}}))
	es := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/flavors/custom-1/os-extra_specs/a", tc.demo, nil)).JSON(t)
	if es["a"] != "b" {
		t.Errorf("extra spec %v", es)
	}
	tc.must(t, 400, tc.do(t, "POST", "/compute/v2.1/flavors", tc.admin, map[string]any{"flavor": map[string]any{"name": "x", "ram": "lots", "vcpus": 1, "disk": 1}}))
	tc.must(t, 202, tc.do(t, "DELETE", "/compute/v2.1/flavors/custom-1", tc.admin, nil))
	tc.must(t, 404, tc.do(t, "GET", "/compute/v2.1/flavors/custom-1", tc.admin, nil))
	// Seeding again changes nothing.
	if err := tc.svc.EnsureFlavors(context.Background()); err != nil {
		t.Fatal(err)
	}
}

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example"

func TestKeypairs(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(t, 201, tc.do(t, "POST", "/compute/v2.1/os-keypairs", tc.demo, map[string]any{"keypair": map[string]any{"name": "mykey", "public_key": edKey}},
		"OpenStack-API-Version", "compute 2.2")).JSON(t)["keypair"].(map[string]any)
	fp := res["fingerprint"].(string)
	if len(fp) != 47 || strings.Count(fp, ":") != 15 || res["type"] != "ssh" {
		t.Fatalf("keypair %v", res)
	}
	tc.must(t, 409, tc.do(t, "POST", "/compute/v2.1/os-keypairs", tc.demo, map[string]any{"keypair": map[string]any{"name": "mykey", "public_key": edKey}}))
	bad := tc.must(t, 400, tc.do(t, "POST", "/compute/v2.1/os-keypairs", tc.demo, map[string]any{"keypair": map[string]any{"name": "k2", "public_key": "not a key"}})).JSON(t)
	if bad["badRequest"] == nil {
		t.Fatalf("fault %v", bad)
	}
	tc.must(t, 400, tc.do(t, "POST", "/compute/v2.1/os-keypairs", tc.demo, map[string]any{"keypair": map[string]any{"name": "bad/name", "public_key": edKey}}))
	gen := tc.must(t, 200, tc.do(t, "POST", "/compute/v2.1/os-keypairs", tc.demo, map[string]any{"keypair": map[string]any{"name": "gen"}})).JSON(t)["keypair"].(map[string]any)
	if !strings.Contains(gen["private_key"].(string), "PRIVATE KEY") || !strings.HasPrefix(gen["public_key"].(string), "ssh-rsa ") {
		t.Fatalf("generated %v", gen)
	}
	tc.must(t, 400, tc.do(t, "POST", "/compute/v2.1/os-keypairs", tc.demo, map[string]any{"keypair": map[string]any{"name": "gen2"}}, "OpenStack-API-Version", "compute 2.92"))
	list := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-keypairs", tc.demo, nil)).JSON(t)["keypairs"].([]any)
	if len(list) != 2 {
		t.Fatalf("list %v", list)
	}
	// Key pairs are per user: admin does not see demo's.
	tc.must(t, 404, tc.do(t, "GET", "/compute/v2.1/os-keypairs/mykey", tc.admin, nil))
	tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-keypairs/mykey", tc.demo, nil))
	tc.must(t, 202, tc.do(t, "DELETE", "/compute/v2.1/os-keypairs/gen", tc.demo, nil))
	tc.must(t, 204, tc.do(t, "DELETE", "/compute/v2.1/os-keypairs/mykey", tc.demo, nil, "OpenStack-API-Version", "compute 2.2"))
}

func TestServerLifecycle(t *testing.T) {
	tc := newTestCloud(t)
	tc.must(t, 201, tc.do(t, "POST", "/compute/v2.1/os-keypairs", tc.demo, map[string]any{"keypair": map[string]any{"name": "mykey", "public_key": edKey}}, "OpenStack-API-Version", "compute 2.2"))
	ud := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))
	id := tc.createServer(t, tc.demo, "test vm", "1", map[string]any{"key_name": "mykey", "user_data": ud, "metadata": map[string]any{"a": "b"}})
	sv := tc.waitStatus(t, tc.demo, id, "ACTIVE")
	addrs := sv["addresses"].(map[string]any)["private"].([]any)
	a := addrs[0].(map[string]any)
	if a["OS-EXT-IPS:type"] != "fixed" || a["OS-EXT-IPS-MAC:mac_addr"] == "" || a["version"] != 4.0 {
		t.Fatalf("addresses %v", sv["addresses"])
	}
	if sv["OS-EXT-STS:vm_state"] != "active" || sv["OS-EXT-STS:power_state"] != 1.0 || sv["key_name"] != "mykey" || sv["hostId"] == "" {
		t.Fatalf("server %v", sv)
	}
	if _, ok := sv["OS-EXT-SRV-ATTR:host"]; ok {
		t.Fatal("a member sees OS-EXT-SRV-ATTR:host")
	}
	sv21 := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/"+id, tc.demo, nil)).JSON(t)["server"].(map[string]any)
	if f := sv21["flavor"].(map[string]any); f["id"] != "1" {
		t.Fatalf("flavor at 2.1: %v", f)
	}
	sv47 := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/"+id, tc.admin, nil, "OpenStack-API-Version", "compute 2.47")).JSON(t)["server"].(map[string]any)
	if f := sv47["flavor"].(map[string]any); f["original_name"] != "m1.tiny" || f["ram"] != 512.0 {
		t.Fatalf("flavor at 2.47: %v", f)
	}
	if sv47["OS-EXT-SRV-ATTR:host"] != "host1" {
		t.Fatalf("admin view %v", sv47)
	}
	spec, ok := tc.hosts.Spec(id)
	if !ok || spec.Hostname != "test-vm" || string(spec.UserData) != "#!/bin/sh\necho hi\n" || spec.PublicKey != edKey || len(spec.Ports) != 1 ||
		!strings.Contains(string(spec.ConfigDrive["openstack/latest/meta_data.json"]), `"public_keys":{"mykey"`) {
		t.Fatalf("spec %+v", spec)
	}
	out := tc.must(t, 200, tc.do(t, "POST", "/compute/v2.1/servers/"+id+"/action", tc.demo, map[string]any{"os-getConsoleOutput": map[string]any{"length": 1}})).JSON(t)
	if !strings.Contains(out["output"].(string), "user data") {
		t.Fatalf("console %v", out)
	}
	steps := []struct {
		action any
		status string
	}{
		{map[string]any{"os-stop": nil}, "SHUTOFF"},
		{map[string]any{"os-start": nil}, "ACTIVE"},
		{map[string]any{"reboot": map[string]any{"type": "SOFT"}}, "ACTIVE"},
		{map[string]any{"reboot": map[string]any{"type": "HARD"}}, "ACTIVE"},
		{map[string]any{"pause": nil}, "PAUSED"},
		{map[string]any{"unpause": nil}, "ACTIVE"},
		{map[string]any{"suspend": nil}, "SUSPENDED"},
		{map[string]any{"resume": nil}, "ACTIVE"},
	}
	for _, s := range steps {
		tc.must(t, 202, tc.do(t, "POST", "/compute/v2.1/servers/"+id+"/action", tc.demo, s.action))
		tc.waitStatus(t, tc.demo, id, s.status)
	}
	c := tc.must(t, 409, tc.do(t, "POST", "/compute/v2.1/servers/"+id+"/action", tc.demo, map[string]any{"os-start": nil})).JSON(t)
	if !strings.Contains(c["conflictingRequest"].(map[string]any)["message"].(string), "vm_state active") {
		t.Fatalf("conflict %v", c)
	}
	tc.must(t, 400, tc.do(t, "POST", "/compute/v2.1/servers/"+id+"/action", tc.demo, map[string]any{"fly": nil}))
	// Lock: the owner can no longer act; the admin can.
	tc.must(t, 202, tc.do(t, "POST", "/compute/v2.1/servers/"+id+"/action", tc.admin, map[string]any{"lock": nil}))
	tc.must(t, 409, tc.do(t, "POST", "/compute/v2.1/servers/"+id+"/action", tc.demo, map[string]any{"os-stop": nil}))
	tc.must(t, 409, tc.do(t, "DELETE", "/compute/v2.1/servers/"+id, tc.demo, nil))
	tc.must(t, 202, tc.do(t, "POST", "/compute/v2.1/servers/"+id+"/action", tc.admin, map[string]any{"unlock": nil}))
	// Metadata and tags.
	tc.must(t, 200, tc.do(t, "PUT", "/compute/v2.1/servers/"+id+"/metadata/c", tc.demo, map[string]any{"meta": map[string]any{"c": "d"}}))
	md := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/"+id+"/metadata", tc.demo, nil)).JSON(t)["metadata"].(map[string]any)
	if md["a"] != "b" || md["c"] != "d" {
		t.Fatalf("metadata %v", md)
	}
	tc.must(t, 201, tc.do(t, "PUT", "/compute/v2.1/servers/"+id+"/tags/blue", tc.demo, nil, "OpenStack-API-Version", "compute 2.26"))
	tags := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/"+id+"/tags", tc.demo, nil, "OpenStack-API-Version", "compute 2.26")).JSON(t)["tags"].([]any)
	if len(tags) != 1 || tags[0] != "blue" {
		t.Fatalf("tags %v", tags)
	}
	// Update.
	up := tc.must(t, 200, tc.do(t, "PUT", "/compute/v2.1/servers/"+id, tc.demo, map[string]any{"server": map[string]any{"name": "renamed"}})).JSON(t)
	if up["server"].(map[string]any)["name"] != "renamed" {
		t.Fatalf("update %v", up)
	}
	// Instance actions.
	acts := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/"+id+"/os-instance-actions", tc.demo, nil)).JSON(t)["instanceActions"].([]any)
	if len(acts) < 9 || acts[len(acts)-1].(map[string]any)["action"] != "create" {
		t.Fatalf("actions %v", acts)
	}
	// Delete: the server, its port and its allocations go.
	tc.must(t, 204, tc.do(t, "DELETE", "/compute/v2.1/servers/"+id, tc.demo, nil))
	tc.waitStatus(t, tc.demo, id, "DELETED")
	if n := tc.nets.count(); n != 0 {
		t.Fatalf("%d ports left", n)
	}
	ca, _ := tc.place.Consumer(context.Background(), id)
	if len(ca.ByProvider) != 0 {
		t.Fatalf("allocations left: %v", ca.ByProvider)
	}
}

func TestServerCreateErrors(t *testing.T) {
	tc := newTestCloud(t)
	base := func(mod map[string]any) map[string]any {
		sv := map[string]any{"name": "x", "imageRef": tc.cirros, "flavorRef": "1", "networks": []any{map[string]any{"uuid": tc.privateNet}}}
		for k, v := range mod {
			if v == nil {
				delete(sv, k)
			} else {
				sv[k] = v
			}
		}
		return map[string]any{"server": sv}
	}
	cases := []struct {
		name   string
		body   any
		status int
		msg    string
		mv     string
	}{
		{"unknown image", base(map[string]any{"imageRef": "33333333-3333-4333-8333-333333333333"}), 400, "Can not find requested image", ""},
		{"unknown flavor", base(map[string]any{"flavorRef": "nope"}), 400, "Flavor nope could not be found.", ""},
		{"unknown network", base(map[string]any{"networks": []any{map[string]any{"uuid": newUUID()}}}), 400, "could not be found", ""},
		{"other project's network", base(map[string]any{"networks": []any{map[string]any{"uuid": tc.adminNet}}}), 400, "could not be found", ""},
		{"unknown port", base(map[string]any{"networks": []any{map[string]any{"port": newUUID()}}}), 400, "could not be found", ""},
		{"disk too small", base(map[string]any{"imageRef": tc.bigImage, "flavorRef": "42"}), 400, "Flavor's disk is too small", ""},
		{"memory too small", base(map[string]any{"imageRef": tc.bigImage, "flavorRef": "d1"}), 400, "Flavor's memory is too small", ""},
		{"bad key", base(map[string]any{"key_name": "nokey"}), 400, "Invalid key_name provided.", ""},
		{"user data not base64", base(map[string]any{"user_data": "!!!"}), 400, "base 64", ""},
		{"user data too long", base(map[string]any{"user_data": strings.Repeat("QUFB", 20000)}), 400, "too long", ""},
		{"no name", base(map[string]any{"name": nil}), 400, "", ""},
		{"networks required", base(map[string]any{"networks": nil}), 400, "networks", "2.37"},
		{"bad networks word", base(map[string]any{"networks": "some"}), 400, "", "2.37"},
		{"bad az", base(map[string]any{"availability_zone": "elsewhere"}), 400, "availability zone", ""},
		{"not json", "{", 400, "", ""},
	}
	for _, c := range cases {
		var hdr []string
		if c.mv != "" {
			hdr = []string{"OpenStack-API-Version", "compute " + c.mv}
		}
		res := tc.do(t, "POST", "/compute/v2.1/servers", tc.demo, c.body, hdr...)
		if res.StatusCode != c.status || !strings.Contains(string(res.Body), c.msg) {
			t.Errorf("%s: %d %s", c.name, res.StatusCode, res.Body)
		}
	}
	list := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers", tc.demo, nil)).JSON(t)["servers"].([]any)
	if len(list) != 0 || tc.nets.count() != 0 {
		t.Fatalf("half-made: %v, %d ports", list, tc.nets.count())
	}
	// networks "none" at 2.37 boots without ports.
	res := tc.must(t, 202, tc.do(t, "POST", "/compute/v2.1/servers", tc.demo, base(map[string]any{"networks": "none"}), "OpenStack-API-Version", "compute 2.37"))
	tc.waitStatus(t, tc.demo, res.JSON(t)["server"].(map[string]any)["id"].(string), "ACTIVE")
}

func TestNoValidHost(t *testing.T) {
	tc := newTestCloud(t)
	// m1.xlarge needs 160 GB of disk; host1 has 100.
	id := tc.createServer(t, tc.demo, "big", "5", nil)
	sv := tc.waitStatus(t, tc.demo, id, "ERROR")
	f := sv["fault"].(map[string]any)
	if f["code"] != 500.0 || !strings.Contains(f["message"].(string), "No valid host was found") {
		t.Fatalf("fault %v", f)
	}
	if tc.nets.count() != 0 {
		t.Fatal("ports left after a failed build")
	}
	// A build the host fails ends in ERROR with the host's reason, its
	// port and claim released.
	tc.hosts.Fail = func(host string, spec ServerSpec) error { return fmt.Errorf("runc exploded") }
	id = tc.createServer(t, tc.demo, "doomed", "1", nil)
	sv = tc.waitStatus(t, tc.demo, id, "ERROR")
	if !strings.Contains(sv["fault"].(map[string]any)["message"].(string), "runc exploded") || tc.nets.count() != 0 {
		t.Fatalf("fault %v ports %d", sv["fault"], tc.nets.count())
	}
	ca, _ := tc.place.Consumer(context.Background(), id)
	if len(ca.ByProvider) != 0 {
		t.Fatal("claim left after a failed build")
	}
	tc.must(t, 204, tc.do(t, "DELETE", "/compute/v2.1/servers/"+id, tc.demo, nil))
	tc.waitStatus(t, tc.demo, id, "DELETED")
}

func TestQuotas(t *testing.T) {
	tc := newTestCloud(t)
	qs := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-quota-sets/"+tc.demoProject, tc.demo, nil)).JSON(t)["quota_set"].(map[string]any)
	if qs["instances"] != 10.0 || qs["cores"] != 20.0 || qs["ram"] != 51200.0 || qs["fixed_ips"] != -1.0 {
		t.Fatalf("quotas %v", qs)
	}
	qs = tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-quota-sets/"+tc.demoProject, tc.demo, nil, "OpenStack-API-Version", "compute 2.57")).JSON(t)["quota_set"].(map[string]any)
	if _, ok := qs["fixed_ips"]; ok {
		t.Fatal("network quotas at 2.57")
	}
	tc.must(t, 403, tc.do(t, "PUT", "/compute/v2.1/os-quota-sets/"+tc.demoProject, tc.demo, map[string]any{"quota_set": map[string]any{"instances": 2}}))
	tc.must(t, 200, tc.do(t, "PUT", "/compute/v2.1/os-quota-sets/"+tc.demoProject, tc.admin, map[string]any{"quota_set": map[string]any{"instances": 2}}))
	tc.createServer(t, tc.demo, "a", "42", nil)
	tc.createServer(t, tc.demo, "b", "42", nil)
	res := tc.must(t, 403, tc.do(t, "POST", "/compute/v2.1/servers", tc.demo, map[string]any{"server": map[string]any{
		"name": "c", "imageRef": tc.cirros, "flavorRef": "42", "networks": []any{map[string]any{"uuid": tc.privateNet}}}})).JSON(t)
	msg := res["forbidden"].(map[string]any)["message"].(string)
	if msg != "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances" {
		t.Fatalf("message %q", msg)
	}
	lim := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/limits", tc.demo, nil)).JSON(t)["limits"].(map[string]any)["absolute"].(map[string]any)
	if lim["maxTotalInstances"] != 2.0 || lim["totalInstancesUsed"] != 2.0 || lim["totalRAMUsed"] != 256.0 {
		t.Fatalf("limits %v", lim)
	}
	det := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-quota-sets/"+tc.demoProject+"/detail", tc.demo, nil)).JSON(t)["quota_set"].(map[string]any)
	if det["instances"].(map[string]any)["in_use"] != 2.0 {
		t.Fatalf("detail %v", det)
	}
	// Another project's quotas are forbidden to a member.
	tc.must(t, 403, tc.do(t, "GET", "/compute/v2.1/os-quota-sets/other", tc.demo, nil))
}

// TestConcurrentCreatesNeverOvercommit: host1 has 8192 MB at ratio 1.5
// (12288 MB); m1.large takes 8192, ds4G 4096: however many run at once,
// placement never holds more than fits.
func TestConcurrentCreatesNeverOvercommit(t *testing.T) {
	tc := newTestCloud(t)
	tc.must(t, 200, tc.do(t, "PUT", "/compute/v2.1/os-quota-sets/"+tc.demoProject, tc.admin,
		map[string]any{"quota_set": map[string]any{"instances": 100, "cores": 1000, "ram": 1000000}}))
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = tc.createServer(t, tc.demo, fmt.Sprintf("c%d", i), "d4", nil)
		}()
	}
	wg.Wait()
	active := 0
	for _, id := range ids {
		for {
			res := tc.do(t, "GET", "/compute/v2.1/servers/"+id, tc.demo, nil).JSON(t)["server"].(map[string]any)
			if res["status"] == "ACTIVE" {
				active++
				break
			}
			if res["status"] == "ERROR" {
				break
			}
		}
	}
	if active != 3 {
		t.Fatalf("%d of %d ds4G servers active on a 12288 MB host, want 3", active, n)
	}
	u, err := tc.place.Usages(context.Background(), providerOf(t, tc, "host1"))
	if err != nil || u["MEMORY_MB"] != 3*4096 {
		t.Fatalf("usage %v %v", u, err)
	}
}

func providerOf(t *testing.T, tc *testCloud, host string) string {
	p, err := tc.place.ProviderByName(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	return p.UUID
}

func TestPolicyAndListing(t *testing.T) {
	tc := newTestCloud(t)
	mine := tc.createServer(t, tc.demo, "web-1", "42", nil)
	other := tc.createServer(t, tc.demo, "db-1", "42", nil)
	theirs := tc.createServer(t, tc.admin, "admin-vm", "42", nil)
	tc.waitStatus(t, tc.demo, mine, "ACTIVE")
	tc.waitStatus(t, tc.admin, theirs, "ACTIVE")
	tc.waitStatus(t, tc.demo, other, "ACTIVE")
	tc.must(t, 404, tc.do(t, "GET", "/compute/v2.1/servers/"+theirs, tc.demo, nil))
	tc.must(t, 404, tc.do(t, "DELETE", "/compute/v2.1/servers/"+theirs, tc.demo, nil))
	tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/"+mine, tc.admin, nil))
	count := func(token, query string) int {
		return len(tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/detail"+query, token, nil)).JSON(t)["servers"].([]any))
	}
	for _, c := range []struct {
		token, query string
		want         int
	}{
		{tc.demo, "", 2}, {tc.demo, "?all_tenants=1", 2}, {tc.admin, "", 1}, {tc.admin, "?all_tenants=1", 3},
		{tc.demo, "?name=web", 1}, {tc.demo, "?name=^.*-1$", 2}, {tc.demo, "?flavor=42", 2}, {tc.demo, "?flavor=1", 0},
		{tc.demo, "?image=" + tc.cirros, 2}, {tc.demo, "?limit=1", 1}, {tc.admin, "?all_tenants=1&host=host1", 3},
		{tc.demo, "?changes-since=2000-01-01T00:00:00Z", 2},
	} {
		if got := count(c.token, c.query); got != c.want {
			t.Errorf("list %s: %d, want %d", c.query, got, c.want)
		}
	}
	tc.waitStatus(t, tc.demo, mine, "ACTIVE")
	if got := count(tc.demo, "?status=ACTIVE&name=web"); got != 1 {
		t.Errorf("status filter: %d", got)
	}
	page := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers?limit=1", tc.demo, nil)).JSON(t)
	if page["servers_links"] == nil {
		t.Fatalf("no next link: %v", page)
	}
}

func TestInfrastructureViews(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.createServer(t, tc.demo, "a", "1", nil)
	tc.waitStatus(t, tc.demo, id, "ACTIVE")
	hv := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-hypervisors/detail", tc.admin, nil)).JSON(t)["hypervisors"].([]any)[0].(map[string]any)
	if hv["vcpus"] != 4.0 || hv["vcpus_used"] != 1.0 || hv["memory_mb_used"] != 512.0 || hv["free_ram_mb"] != 8192.0-512 || hv["running_vms"] != 1.0 {
		t.Fatalf("hypervisor %v", hv)
	}
	hv = tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-hypervisors/detail", tc.admin, nil, "OpenStack-API-Version", "compute 2.88")).JSON(t)["hypervisors"].([]any)[0].(map[string]any)
	if _, ok := hv["vcpus"]; ok || len(hv["id"].(string)) != 36 {
		t.Fatalf("hypervisor at 2.88: %v", hv)
	}
	tc.must(t, 403, tc.do(t, "GET", "/compute/v2.1/os-hypervisors", tc.demo, nil))
	st := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-hypervisors/statistics", tc.admin, nil)).JSON(t)["hypervisor_statistics"].(map[string]any)
	if st["count"] != 1.0 {
		t.Fatalf("stats %v", st)
	}
	svcs := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-services", tc.admin, nil)).JSON(t)["services"].([]any)
	if len(svcs) != 3 || svcs[2].(map[string]any)["binary"] != "nova-compute" || svcs[2].(map[string]any)["zone"] != "nova" {
		t.Fatalf("services %v", svcs)
	}
	az := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-availability-zone", tc.demo, nil)).JSON(t)["availabilityZoneInfo"].([]any)
	if len(az) != 1 || az[0].(map[string]any)["zoneName"] != "nova" {
		t.Fatalf("az %v", az)
	}
	azd := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-availability-zone/detail", tc.admin, nil)).JSON(t)["availabilityZoneInfo"].([]any)
	if len(azd) != 2 || azd[0].(map[string]any)["zoneName"] != "internal" {
		t.Fatalf("az detail %v", azd)
	}
}

func TestServerGroups(t *testing.T) {
	tc := newTestCloud(t)
	ctx := context.Background()
	if err := tc.svc.RegisterHost(ctx, HostInfo{Name: "host2", VCPUs: 4, MemoryMB: 8192, DiskGB: 100}); err != nil {
		t.Fatal(err)
	}
	g := tc.must(t, 200, tc.do(t, "POST", "/compute/v2.1/os-server-groups", tc.demo, map[string]any{"server_group": map[string]any{"name": "g", "policies": []string{"anti-affinity"}}})).JSON(t)["server_group"].(map[string]any)
	gid := g["id"].(string)
	if g["policies"].([]any)[0] != "anti-affinity" {
		t.Fatalf("group %v", g)
	}
	g64 := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-server-groups/"+gid, tc.demo, nil, "OpenStack-API-Version", "compute 2.64")).JSON(t)["server_group"].(map[string]any)
	if g64["policy"] != "anti-affinity" {
		t.Fatalf("group at 2.64 %v", g64)
	}
	tc.must(t, 400, tc.do(t, "POST", "/compute/v2.1/os-server-groups", tc.demo, map[string]any{"server_group": map[string]any{"name": "g", "policies": []string{"together"}}}))
	hosts := map[string]bool{}
	var ids []string
	for i := range 3 {
		sv := map[string]any{"server": map[string]any{"name": fmt.Sprint("m", i), "imageRef": tc.cirros, "flavorRef": "42",
			"networks": []any{map[string]any{"uuid": tc.privateNet}}}, "os:scheduler_hints": map[string]any{"group": gid}}
		id := tc.must(t, 202, tc.do(t, "POST", "/compute/v2.1/servers", tc.demo, sv)).JSON(t)["server"].(map[string]any)["id"].(string)
		ids = append(ids, id)
		tc.waitStatus(t, tc.demo, id, map[bool]string{true: "ACTIVE", false: "ERROR"}[i < 2])
		s, _ := tc.svc.loadServer(ctx, tc.db, id)
		if i < 2 {
			hosts[s.Host] = true
		}
	}
	if len(hosts) != 2 {
		t.Fatalf("anti-affinity members on hosts %v", hosts)
	}
	g = tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/os-server-groups/"+gid, tc.demo, nil)).JSON(t)["server_group"].(map[string]any)
	if len(g["members"].([]any)) != 3 {
		t.Fatalf("members %v", g["members"])
	}
	tc.must(t, 204, tc.do(t, "DELETE", "/compute/v2.1/os-server-groups/"+gid, tc.demo, nil))
}

func TestHostReportsAndRestartRecovery(t *testing.T) {
	tc := newTestCloud(t)
	ctx := context.Background()
	id := tc.createServer(t, tc.demo, "a", "42", nil)
	tc.waitStatus(t, tc.demo, id, "ACTIVE")
	// The container dies: the host's report makes the server SHUTOFF.
	tc.hosts.Kill(id)
	if err := tc.svc.ReportServers(ctx, "host1", tc.hosts.States("host1"), true); err != nil {
		t.Fatal(err)
	}
	sv := tc.waitStatus(t, tc.demo, id, "SHUTOFF")
	if sv["OS-EXT-STS:power_state"] != 4.0 {
		t.Fatalf("power %v", sv["OS-EXT-STS:power_state"])
	}
	// Builds interrupted by a stop of the service resume at the next start.
	tc.hosts.Delay = 10 * 1e9
	ids := []string{tc.createServer(t, tc.demo, "b", "42", nil), tc.createServer(t, tc.demo, "c", "42", nil)}
	tc.svc.Close()
	tc.hosts.Delay = 0
	tc.startCompute(t)
	for _, id := range ids {
		tc.waitStatus(t, tc.demo, id, "ACTIVE")
	}
}

// TestHostReportOlderThanRecord: a host listing taken before a build
// ended (the server still Created there) must not turn the server, ACTIVE
// by the time the report is applied, SHUTOFF: SyncHost reads the records
// before it lists the host.
func TestHostReportOlderThanRecord(t *testing.T) {
	tc := newTestCloud(t)
	ctx := context.Background()
	id := tc.createServer(t, tc.demo, "racer", "42", nil)
	tc.waitStatus(t, tc.demo, id, "ACTIVE")
	// The record says building when read; the listing (taken "before"
	// the build ended) says shut down; the build ends in between.
	if _, err := tc.db.ExecContext(ctx, `UPDATE compute_servers SET vm_state='building', task_state='spawning' WHERE id=?`, id); err != nil {
		t.Fatal(err)
	}
	err := tc.svc.SyncHost(ctx, "host1", func(ctx context.Context) ([]ServerState, error) {
		if _, err := tc.db.ExecContext(ctx, `UPDATE compute_servers SET vm_state='active', task_state=NULL WHERE id=?`, id); err != nil {
			return nil, err
		}
		return []ServerState{{ID: id, Power: PowerShutdown}}, nil
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	if sv := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/"+id, tc.demo, nil)).JSON(t)["server"].(map[string]any); sv["status"] != "ACTIVE" {
		t.Fatalf("a stale listing made the server %v", sv["status"])
	}
}

// TestDeleteServerStrayPorts: a port made for a server but never recorded
// (a build killed between the network's commit and compute's record) is
// deleted with the server; another device's port, and one of the server's
// device that compute did not make (no compute: owner), are left alone.
func TestDeleteServerStrayPorts(t *testing.T) {
	tc := newTestCloud(t)
	sv := tc.createServer(t, tc.demo, "stray", "1", nil)
	tc.waitStatus(t, tc.demo, sv, "ACTIVE")
	stray, err := tc.nets.CreatePort(context.Background(), PortRequest{ProjectID: tc.demoProject, NetworkID: tc.privateNet,
		DeviceID: sv, DeviceOwner: "compute:nova"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := tc.nets.CreatePort(context.Background(), PortRequest{ProjectID: tc.demoProject, NetworkID: tc.privateNet,
		DeviceID: "another-server", DeviceOwner: "compute:nova"})
	notOurs, _ := tc.nets.CreatePort(context.Background(), PortRequest{ProjectID: tc.demoProject, NetworkID: tc.privateNet,
		DeviceID: sv, DeviceOwner: "network:router_interface"})
	tc.must(t, 204, tc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, tc.demo, nil))
	tc.waitStatus(t, tc.demo, sv, "DELETED")
	left, _ := tc.nets.DevicePorts(context.Background(), sv)
	if len(left) != 1 || left[0].ID != notOurs.ID {
		t.Errorf("ports of the deleted server: %+v, want only %s (stray %s deleted)", left, notOurs.ID, stray.ID)
	}
	if _, err := tc.nets.GetPort(context.Background(), other.ID); err != nil {
		t.Errorf("another server's port: %v", err)
	}
}
