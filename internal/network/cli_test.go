package network

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestOpenStackCLI runs the stock `openstack` client against the network
// service. The client takes about a second per command, so it runs only
// with MONOSTACK_CLI_TESTS=1.
func TestOpenStackCLI(t *testing.T) {
	if os.Getenv("MONOSTACK_CLI_TESTS") == "" {
		t.Skip("set MONOSTACK_CLI_TESTS=1 to run the openstack CLI against the network service")
	}
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("no openstack CLI")
	}
	tc := newTestCloud(t)
	dir := t.TempDir()
	env := func(user, password, project string) []string {
		return append(os.Environ(), "OS_AUTH_URL="+tc.srv.URL+"/identity/v3", "OS_IDENTITY_API_VERSION=3",
			"OS_USERNAME="+user, "OS_PASSWORD="+password, "OS_PROJECT_NAME="+project, "OS_USER_DOMAIN_ID=default",
			"OS_PROJECT_DOMAIN_ID=default", "OS_REGION_NAME=RegionOne", "OS_INTERFACE=public", "OS_CLOUD=", "HOME="+dir)
	}
	demo, admin := env("demo", demoPassword, "demo"), env("admin", adminPassword, "admin")
	run := func(e []string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command("openstack", args...)
		cmd.Env = e
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return out.String() + errb.String(), err
		}
		return out.String(), nil
	}
	ok := func(e []string, args ...string) string {
		t.Helper()
		out, err := run(e, args...)
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	fails := func(want string, e []string, args ...string) {
		t.Helper()
		out, err := run(e, args...)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("openstack %s: %v, want an error with %q:\n%s", strings.Join(args, " "), err, want, out)
		}
	}
	show := func(e []string, args ...string) map[string]any {
		t.Helper()
		var m map[string]any
		out := ok(e, append(args, "-f", "json")...)
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return m
	}

	// The walkthrough's steps, as admin.
	if out := ok(admin, "network", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "private") || !strings.Contains(out, "public") {
		t.Errorf("network list: %s", out)
	}
	if id := strings.TrimSpace(ok(admin, "network", "show", "private", "-f", "value", "-c", "id")); len(id) != 36 {
		t.Errorf("network show private: %q", id)
	}
	if out := ok(admin, "availability", "zone", "list", "--network", "-f", "value"); !strings.Contains(out, "nova available") {
		t.Errorf("availability zones: %s", out)
	}

	// A project's own topology.
	n := show(demo, "network", "create", "--tag", "cli", "clinet")
	if n["mtu"] != float64(1450) || n["status"] != "ACTIVE" {
		t.Errorf("network create: %v", n)
	}
	sn := show(demo, "subnet", "create", "--network", "clinet", "--subnet-range", "10.9.0.0/24", "--dns-nameserver", "192.0.2.53",
		"--allocation-pool", "start=10.9.0.10,end=10.9.0.20", "--host-route", "destination=10.10.0.0/16,gateway=10.9.0.254", "clisub")
	if sn["gateway_ip"] != "10.9.0.1" || sn["cidr"] != "10.9.0.0/24" {
		t.Errorf("subnet create: %v", sn)
	}
	fails("overlaps with another subnet", demo, "subnet", "create", "--network", "clinet", "--subnet-range", "10.9.0.0/25", "clisub2")
	p := show(demo, "port", "create", "--network", "clinet", "--fixed-ip", "subnet=clisub,ip-address=10.9.0.15", "clip")
	if !strings.Contains(fmtJSON(p["fixed_ips"]), "10.9.0.15") || p["status"] != "DOWN" {
		t.Errorf("port create: %v", p)
	}
	fails("already allocated", demo, "port", "create", "--network", "clinet", "--fixed-ip", "subnet=clisub,ip-address=10.9.0.15", "clip2")
	if out := ok(demo, "port", "list", "--network", "clinet", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "clip" {
		t.Errorf("port list --network: %q", out)
	}
	if out := ok(demo, "port", "list", "--fixed-ip", "ip-address=10.9.0.15", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "clip" {
		t.Errorf("port list --fixed-ip: %q", out)
	}
	ok(demo, "router", "create", "clirouter")
	ok(demo, "router", "add", "subnet", "clirouter", "clisub")
	fails("Router already has a port on subnet", demo, "router", "add", "subnet", "clirouter", "clisub")
	ok(demo, "router", "set", "--external-gateway", "public", "clirouter")
	r := show(demo, "router", "show", "clirouter")
	if !strings.Contains(fmtJSON(r["external_gateway_info"]), "enable_snat") || !strings.Contains(fmtJSON(r["interfaces_info"]), "10.9.0.1") {
		t.Errorf("router show: %v", r)
	}
	fip := show(demo, "floating", "ip", "create", "public")
	fid := fip["id"].(string)
	ok(demo, "floating", "ip", "set", "--port", "clip", fid)
	if f := show(demo, "floating", "ip", "show", fid); f["fixed_ip_address"] != "10.9.0.15" || f["router_id"] != r["id"] {
		t.Errorf("floating ip after set: %v", f)
	}
	fails("floating IPs", demo, "router", "remove", "subnet", "clirouter", "clisub")
	ok(demo, "floating", "ip", "unset", "--port", fid)
	ok(demo, "floating", "ip", "delete", fid)

	ok(demo, "security", "group", "create", "cliweb")
	ok(demo, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80:81", "--remote-ip", "0.0.0.0/0", "cliweb")
	fails("Security group rule already exists", demo, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80:81",
		"--remote-ip", "0.0.0.0/0", "cliweb")
	ok(demo, "security", "group", "rule", "create", "--protocol", "icmp", "--remote-group", "default", "cliweb")
	if out := ok(demo, "security", "group", "rule", "list", "cliweb", "-f", "value", "-c", "IP Protocol"); strings.Count(out, "\n") != 4 {
		t.Errorf("rule list: %s", out)
	}
	ok(demo, "port", "set", "--security-group", "cliweb", "clip")
	ok(demo, "port", "set", "--no-security-group", "--disable-port-security", "clip")
	if p := show(demo, "port", "show", "clip"); p["port_security_enabled"] != false {
		t.Errorf("port set: %v", p)
	}
	ok(demo, "network", "set", "--name", "clinet2", "--tag", "more", "clinet")
	ok(demo, "network", "unset", "--tag", "cli", "clinet2")
	if n := show(demo, "network", "show", "clinet2"); fmtJSON(n["tags"]) != `["more"]` {
		t.Errorf("tags after set/unset: %v", n["tags"])
	}
	fails("There are one or more ports still in use", demo, "network", "delete", "clinet2")
	fails("has ports still attached", demo, "router", "delete", "clirouter")

	// Admin: bindings, provider networks, listing everything.
	ok(admin, "port", "set", "--host", "node9", "--binding-profile", "netns=/var/run/netns/cli", p["id"].(string))
	if b := show(admin, "port", "show", p["id"].(string)); b["binding_host_id"] != "node9" || b["binding_vif_type"] != "bridge" {
		t.Errorf("binding: %v", b)
	}
	if out := ok(admin, "port", "list", "--host", "node9", "-f", "value", "-c", "ID"); strings.TrimSpace(out) != p["id"] {
		t.Errorf("port list --host: %q", out)
	}
	v := show(admin, "network", "create", "--provider-network-type", "vlan", "--provider-physical-network", "phys",
		"--provider-segment", "100", "--share", "clivlan")
	if v["provider:network_type"] != "vlan" || v["provider:segmentation_id"] != float64(100) || v["shared"] != true {
		t.Errorf("provider network: %v", v)
	}
	if out := ok(admin, "network", "list", "--external", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "public" {
		t.Errorf("network list --external: %q", out)
	}
	if out := ok(admin, "router", "list", "--long", "-f", "value", "-c", "Name"); !strings.Contains(out, "router1") {
		t.Errorf("router list --long: %s", out)
	}
	if out := ok(admin, "extension", "list", "--network", "-f", "value", "-c", "Alias"); !strings.Contains(out, "router") {
		t.Errorf("extension list: %s", out)
	}

	if out := ok(admin, "network", "agent", "list", "-f", "value", "-c", "Agent Type", "-c", "Host"); !strings.Contains(out, "L3 agent "+testHost) {
		t.Errorf("network agent list: %s", out)
	}

	// Cleanup goes as upstream's does.
	ok(demo, "port", "delete", "clip")
	ok(demo, "router", "remove", "subnet", "clirouter", "clisub")
	ok(demo, "router", "unset", "--external-gateway", "clirouter")
	ok(demo, "router", "delete", "clirouter")
	ok(demo, "subnet", "delete", "clisub")
	ok(demo, "network", "delete", "clinet2")
	ok(demo, "security", "group", "delete", "cliweb")
}
