package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/monostack/monostack/internal/api"
)

// ifNetworks is fakeNetworks that remembers the binding profiles, reports
// a port's status (ACTIVE when bound) and fails calls on demand.
type ifNetworks struct {
	*fakeNetworks
	mu         sync.Mutex
	profiles   map[string]map[string]any // port → the profile of its binding
	failBind   map[string]error          // port → BindPort's error
	failCreate error
}

func (n *ifNetworks) BindPort(ctx context.Context, id, host, device, owner string, profile map[string]any) (Port, error) {
	n.mu.Lock()
	err := n.failBind[id]
	if err == nil {
		if host == "" {
			delete(n.profiles, id)
		} else {
			n.profiles[id] = profile
		}
	}
	n.mu.Unlock()
	if err != nil {
		return Port{}, err
	}
	return n.fakeNetworks.BindPort(ctx, id, host, device, owner, profile)
}

func (n *ifNetworks) CreatePort(ctx context.Context, r PortRequest) (Port, error) {
	n.mu.Lock()
	err := n.failCreate
	n.mu.Unlock()
	if err != nil {
		return Port{}, err
	}
	return n.fakeNetworks.CreatePort(ctx, r)
}

// ifname is the interface a port was bound as, and its namespace.
func (n *ifNetworks) ifname(id string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.profiles[id]
	if p == nil {
		return ""
	}
	return fmt.Sprint(p["ifname"], "@", p["netns"])
}

func (n *ifNetworks) setFailBind(id string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failBind[id] = err
}

// profiledHosts are FakeHosts that ask for a namespace in the profile.
type profiledHosts struct{ *FakeHosts }

func (profiledHosts) PortProfile(host, serverID, portID string) map[string]any {
	return map[string]any{"netns": "/var/run/netns/ms-test-" + serverID}
}

type ifCloud struct {
	*testCloud
	inets *ifNetworks
	net2  string
}

func newIfCloud(t *testing.T) *ifCloud {
	t.Helper()
	ic := &ifCloud{testCloud: newTestCloud(t)}
	ic.inets = &ifNetworks{fakeNetworks: ic.nets, profiles: map[string]map[string]any{}, failBind: map[string]error{}}
	ic.net2 = newUUID()
	ic.nets.mu.Lock()
	ic.nets.nets[ic.net2] = fakeNet{name: "net2", project: ic.demoProject}
	ic.nets.mu.Unlock()
	ic.svc.Close()
	ic.start(t)
	return ic
}

// start (re)opens the compute service, as a restart does.
func (ic *ifCloud) start(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	svc, err := New(ctx, ic.db, Config{}, ic.images, ic.inets, profiledHosts{ic.hosts}, ic.place, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc.router = svc.Router(ic.ident, ic.ident.URL(), nil)
	if err := svc.RegisterHost(ctx, HostInfo{Name: "host1", IP: "10.1.0.1", VCPUs: 4, MemoryMB: 8192, DiskGB: 100}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ic.svc = svc
	ic.Mount("/compute", svc.router)
}

func ifPath(server string) string { return "/compute/v2.1/servers/" + server + "/os-interface" }

// attach posts an interfaceAttachment.
func (ic *ifCloud) attach(t *testing.T, token, server, mv string, att map[string]any) response {
	t.Helper()
	return ic.do(t, "POST", ifPath(server), token, map[string]any{"interfaceAttachment": att}, mvHeader(mv)...)
}

func (ic *ifCloud) detach(t *testing.T, token, server, port string) response {
	t.Helper()
	return ic.do(t, "DELETE", ifPath(server)+"/"+port, token, nil)
}

// userPort makes a port of project on network, as the user would.
func (ic *ifCloud) userPort(t *testing.T, project, network string) Port {
	t.Helper()
	p, err := ic.nets.CreatePort(context.Background(), PortRequest{ProjectID: project, NetworkID: network})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// listed is the server's interfaces as port@net_id, in order.
func (ic *ifCloud) listed(t *testing.T, token, server string) []string {
	t.Helper()
	l := ic.must(t, 200, ic.do(t, "GET", ifPath(server), token, nil)).JSON(t)["interfaceAttachments"].([]any)
	out := []string{}
	for _, a := range l {
		m := a.(map[string]any)
		out = append(out, fmt.Sprint(m["port_id"], "@", m["net_id"]))
	}
	return out
}

// settle waits until the server's interface work is done.
func (ic *ifCloud) settle(t *testing.T, server string) {
	t.Helper()
	eventually(t, "the interface work of "+server, func() bool {
		var n int
		if err := ic.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_instance_actions
			WHERE server_id=? AND action IN ('attach_interface', 'detach_interface') AND finish_time IS NULL`, server).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// rowStatus is the status of a server's row of a port, "" when none.
func (ic *ifCloud) rowStatus(t *testing.T, server, port string) string {
	t.Helper()
	var st string
	err := ic.db.QueryRowContext(context.Background(), `SELECT status FROM compute_server_ports WHERE server_id=? AND port_id=?`,
		server, port).Scan(&st)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	return st
}

func (ic *ifCloud) actionResults(t *testing.T, server, action string) []string {
	t.Helper()
	return (&volCloud{testCloud: ic.testCloud}).actionResults(t, server, action)
}

func (ic *ifCloud) activeServer(t *testing.T, name string) string {
	t.Helper()
	id := ic.createServer(t, ic.demo, name, "42", nil)
	ic.waitStatus(t, ic.demo, id, "ACTIVE")
	return id
}

func (ic *ifCloud) bootPort(t *testing.T, server string) string {
	t.Helper()
	l := ic.listed(t, ic.demo, server)
	if len(l) != 1 {
		t.Fatalf("server %s has interfaces %v", server, l)
	}
	return strings.Split(l[0], "@")[0]
}

func TestInterfaceAttachDetach(t *testing.T) {
	ic := newIfCloud(t)
	sv := ic.activeServer(t, "vm")
	boot := ic.bootPort(t, sv)
	ns := "@/var/run/netns/ms-test-" + sv
	if got := ic.inets.ifname(boot); got != "eth0"+ns {
		t.Fatalf("boot port bound as %q", got)
	}

	// net_id: a port made for the server, with the address asked for.
	res := ic.must(t, 200, ic.attach(t, ic.demo, sv, "2.70", map[string]any{"net_id": ic.net2,
		"fixed_ips": []any{map[string]any{"ip_address": "10.9.9.9"}}}))
	a := res.JSON(t)["interfaceAttachment"].(map[string]any)
	owned := a["port_id"].(string)
	if a["net_id"] != ic.net2 || a["port_state"] != "ACTIVE" || a["tag"] != nil || a["mac_addr"] == "" ||
		fmt.Sprint(a["fixed_ips"]) != "[map[ip_address:10.9.9.9 subnet_id:sub]]" {
		t.Fatalf("net_id attach: %v", a)
	}
	if got := ic.inets.ifname(owned); got != "eth1"+ns {
		t.Fatalf("attached port bound as %q", got)
	}
	p, _ := ic.nets.GetPort(context.Background(), owned)
	if p.DeviceID != sv || p.HostID != "host1" || p.DeviceOwner != "compute:nova" || p.ProjectID != ic.demoProject {
		t.Fatalf("attached port %+v", p)
	}

	// port_id with a tag (2.49); the tag shows from 2.70.
	user := ic.userPort(t, ic.demoProject, ic.net2)
	ic.must(t, 400, ic.attach(t, ic.demo, sv, "2.48", map[string]any{"port_id": user.ID, "tag": "data"}))
	a = ic.must(t, 200, ic.attach(t, ic.demo, sv, "2.49", map[string]any{"port_id": user.ID, "tag": "data"})).JSON(t)["interfaceAttachment"].(map[string]any)
	if _, ok := a["tag"]; ok || a["port_id"] != user.ID {
		t.Fatalf("port_id attach at 2.49: %v", a)
	}
	if got := ic.inets.ifname(user.ID); got != "eth2"+ns {
		t.Fatalf("user port bound as %q", got)
	}
	want := []string{boot + "@" + ic.privateNet, owned + "@" + ic.net2, user.ID + "@" + ic.net2}
	if got := ic.listed(t, ic.demo, sv); !sameStrings(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	show := ic.must(t, 200, ic.do(t, "GET", ifPath(sv)+"/"+user.ID, ic.demo, nil, mvHeader("2.70")...)).JSON(t)["interfaceAttachment"].(map[string]any)
	if show["tag"] != "data" || show["port_id"] != user.ID || show["net_id"] != ic.net2 {
		t.Fatalf("show: %v", show)
	}
	// The server's addresses have the new ports.
	addrs := ic.waitStatus(t, ic.demo, sv, "ACTIVE")["addresses"].(map[string]any)
	if len(addrs["net2"].([]any)) != 2 || len(addrs["private"].([]any)) != 1 {
		t.Fatalf("addresses %v", addrs)
	}
	if got := ic.actionResults(t, sv, "attach_interface"); !sameStrings(got, []string{"Success", "Success"}) {
		t.Fatalf("attach_interface actions %v", got)
	}

	// Detach: the user's port is unbound and kept, the server's deleted.
	ic.must(t, 202, ic.detach(t, ic.demo, sv, user.ID))
	ic.must(t, 202, ic.detach(t, ic.demo, sv, owned))
	ic.settle(t, sv)
	if got := ic.listed(t, ic.demo, sv); !sameStrings(got, []string{boot + "@" + ic.privateNet}) {
		t.Fatalf("after detach: %v", got)
	}
	p, err := ic.nets.GetPort(context.Background(), user.ID)
	if err != nil || p.DeviceID != "" || p.HostID != "" || p.DeviceOwner != "" || ic.inets.ifname(user.ID) != "" {
		t.Fatalf("user port after detach: %+v %v", p, err)
	}
	if _, err := ic.nets.GetPort(context.Background(), owned); !api.IsNotFound(err) {
		t.Fatalf("server's port after detach: %v", err)
	}
	if got := ic.actionResults(t, sv, "detach_interface"); !sameStrings(got, []string{"Success", "Success"}) {
		t.Fatalf("detach_interface actions %v", got)
	}
	ic.must(t, 404, ic.detach(t, ic.demo, sv, user.ID))
	ic.must(t, 404, ic.do(t, "GET", ifPath(sv)+"/"+user.ID, ic.demo, nil))

	// The freed name is used again; the boot port can go too, and the
	// others keep their names.
	a = ic.must(t, 200, ic.attach(t, ic.demo, sv, "", map[string]any{"port_id": user.ID})).JSON(t)["interfaceAttachment"].(map[string]any)
	if got := ic.inets.ifname(user.ID); got != "eth1"+ns {
		t.Fatalf("user port bound again as %q", got)
	}
	ic.must(t, 202, ic.detach(t, ic.demo, sv, boot))
	ic.settle(t, sv)
	if _, err := ic.nets.GetPort(context.Background(), boot); !api.IsNotFound(err) {
		t.Fatalf("boot port after detach: %v", err)
	}
	if got := ic.inets.ifname(user.ID); got != "eth1"+ns {
		t.Fatalf("after the boot port went, the user port is %q", got)
	}
	// No network named: the project's own (either of demo's two here).
	a = ic.must(t, 200, ic.attach(t, ic.demo, sv, "", map[string]any{})).JSON(t)["interfaceAttachment"].(map[string]any)
	if (a["net_id"] != ic.privateNet && a["net_id"] != ic.net2) || ic.inets.ifname(a["port_id"].(string)) != "eth0"+ns {
		t.Fatalf("attach with no network: %v as %s", a, ic.inets.ifname(a["port_id"].(string)))
	}
}

func TestInterfaceAttachErrors(t *testing.T) {
	ic := newIfCloud(t)
	sv := ic.activeServer(t, "vm")
	other := ic.activeServer(t, "other")
	otherBoot := ic.bootPort(t, other)
	adminPort := ic.userPort(t, ic.AdminProject, ic.adminNet)
	user := ic.userPort(t, ic.demoProject, ic.net2)
	missing := newUUID()
	for _, tc := range []struct {
		name   string
		server string
		token  string
		mv     string
		body   any
		want   int
		msg    string
	}{
		{"both ids", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2, "port_id": user.ID}}, 400, "Must not input both network_id and port_id"},
		{"ip without network", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": user.ID, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}}}}, 400, "Must input network_id when request IP address"},
		{"bad uuid", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": "abc"}}, 400, "'abc' is not a 'uuid'"},
		{"wrong type", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": 7}}, 400, "is not of type 'string'"},
		{"unknown key", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"network": ic.net2}}, 400, "('network' was unexpected)"},
		{"unknown top key", sv, ic.demo, "", map[string]any{"interface": map[string]any{}}, 400, "('interface' was unexpected)"},
		{"not an object", sv, ic.demo, "", map[string]any{"interfaceAttachment": "x"}, 400, "is not of type 'object'"},
		{"two ips", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}, map[string]any{"ip_address": "10.0.0.8"}}}}, 400, "fixed_ips"},
		{"bad ip", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0"}}}}, 400, "ip_address"},
		{"ip without address", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2, "fixed_ips": []any{map[string]any{}}}}, 400, "'ip_address' is a required property"},
		{"tag before 2.49", sv, ic.demo, "2.48", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2, "tag": "a"}}, 400, "('tag' was unexpected)"},
		{"tag with slash", sv, ic.demo, "2.49", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2, "tag": "a/b"}}, 400, "does not match"},
		{"tag too long", sv, ic.demo, "2.49", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2, "tag": strings.Repeat("a", 61)}}, 400, "is too long"},
		{"malformed", sv, ic.demo, "", `{"interfaceAttachment": `, 400, "Malformed"},
		{"unknown server", missing, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.net2}}, 404, "Instance " + missing + " could not be found."},
		{"unknown port", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": missing}}, 404, "Port id " + missing + " could not be found."},
		{"unknown network", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": missing}}, 404, "Network " + missing + " could not be found."},
		{"another project's network", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": ic.adminNet}}, 404, "Network " + ic.adminNet + " could not be found."},
		{"another project's port", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": adminPort.ID}}, 404, "Port id " + adminPort.ID + " could not be found."},
		{"admin gives another project's port", sv, ic.admin, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": adminPort.ID}}, 400, "not usable for instance"},
		{"port of another server", sv, ic.demo, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": otherBoot}}, 409, "Port " + otherBoot + " is still in use."},
	} {
		res := ic.do(t, "POST", ifPath(tc.server), tc.token, tc.body, mvHeader(tc.mv)...)
		if res.StatusCode != tc.want || !strings.Contains(string(res.Body), tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, res.StatusCode, res.Body, tc.want, tc.msg)
		}
	}
	if got := ic.listed(t, ic.demo, sv); len(got) != 1 {
		t.Fatalf("after the refused attaches: %v", got)
	}
	if ic.nets.count() != 4 {
		t.Fatalf("ports after the refused attaches: %d", ic.nets.count())
	}

	// The same port twice: in use by the server.
	ic.must(t, 200, ic.attach(t, ic.demo, sv, "", map[string]any{"port_id": user.ID}))
	res := ic.attach(t, ic.demo, sv, "", map[string]any{"port_id": user.ID})
	if res.StatusCode != 409 || !strings.Contains(string(res.Body), "is still in use") {
		t.Fatalf("same port again: %d %s", res.StatusCode, res.Body)
	}

	// The network's refusals become Nova's.
	for _, tc := range []struct {
		err  *api.Error
		want int
		msg  string
	}{
		{&api.Error{Status: 409, Type: "IpAddressAlreadyAllocated", Message: "IP address 10.9.9.9 already allocated"}, 409, "Fixed IP address 10.9.9.9 is already in use on instance " + sv},
		{&api.Error{Status: 409, Type: "IpAddressGenerationFailure", Message: "No more IP addresses"}, 400, "No fixed IP addresses available for network: " + ic.net2},
		{&api.Error{Status: 409, Type: "OverQuota", Message: "Quota exceeded for resources: [port]."}, 403, "Maximum number of ports exceeded"},
		{&api.Error{Status: 400, Type: "InvalidIpForNetwork", Message: "IP address 10.9.9.9 is not a valid IP"}, 400, "Invalid input received: IP address 10.9.9.9 is not a valid IP"},
	} {
		ic.inets.mu.Lock()
		ic.inets.failCreate = tc.err
		ic.inets.mu.Unlock()
		res := ic.attach(t, ic.demo, sv, "", map[string]any{"net_id": ic.net2, "fixed_ips": []any{map[string]any{"ip_address": "10.9.9.9"}}})
		if res.StatusCode != tc.want || !strings.Contains(string(res.Body), tc.msg) {
			t.Errorf("network says %s: %d %s, want %d with %q", tc.err.Type, res.StatusCode, res.Body, tc.want, tc.msg)
		}
	}
	ic.inets.mu.Lock()
	ic.inets.failCreate = nil
	ic.inets.mu.Unlock()
	// Each attach that got past the server's checks is an action: six
	// refused ports and networks, one attach, one port in use, four
	// refusals of the network.
	if got := fmt.Sprint(ic.actionResults(t, sv, "attach_interface")); strings.Count(got, "Success") != 1 || strings.Count(got, "Error") != 11 {
		t.Errorf("attach_interface actions %v", got)
	}

	// A binding that fails undoes the attach: the port made is deleted.
	n := ic.nets.count()
	ic.inets.setFailBind(boot(t, ic, sv), errors.New("network down"))
	res = ic.attach(t, ic.demo, sv, "", map[string]any{"net_id": ic.net2})
	if res.StatusCode != 500 {
		t.Fatalf("attach with the network down: %d %s", res.StatusCode, res.Body)
	}
	ic.inets.setFailBind(boot(t, ic, sv), nil)
	if ic.nets.count() != n || len(ic.listed(t, ic.demo, sv)) != 2 {
		t.Fatalf("after a failed bind: %d ports (want %d), interfaces %v", ic.nets.count(), n, ic.listed(t, ic.demo, sv))
	}

	// Show and detach of what is not there.
	ic.must(t, 404, ic.do(t, "GET", ifPath(sv)+"/"+missing, ic.demo, nil))
	res = ic.do(t, "GET", ifPath(sv)+"/"+otherBoot, ic.demo, nil)
	if res.StatusCode != 404 || !strings.Contains(string(res.Body), "does not have a port with id") {
		t.Fatalf("show another server's port: %d %s", res.StatusCode, res.Body)
	}
	res = ic.detach(t, ic.demo, sv, otherBoot)
	if res.StatusCode != 404 || !strings.Contains(string(res.Body), "Port "+otherBoot+" is not attached") {
		t.Fatalf("detach another server's port: %d %s", res.StatusCode, res.Body)
	}
	ic.must(t, 404, ic.detach(t, ic.demo, missing, user.ID))
	ic.must(t, 404, ic.do(t, "GET", ifPath(missing), ic.demo, nil))

	// Another project's server is not there for demo.
	adminSv := ic.createServer(t, ic.admin, "admin-vm", "42", nil)
	ic.waitStatus(t, ic.admin, adminSv, "ACTIVE")
	ic.must(t, 404, ic.do(t, "GET", ifPath(adminSv), ic.demo, nil))
	ic.must(t, 404, ic.attach(t, ic.demo, adminSv, "", map[string]any{"net_id": ic.net2}))
	ic.must(t, 404, ic.detach(t, ic.demo, adminSv, user.ID))
}

// boot is the port of a server at position 0.
func boot(t *testing.T, ic *ifCloud, server string) string {
	t.Helper()
	var id string
	if err := ic.db.QueryRowContext(context.Background(), `SELECT port_id FROM compute_server_ports WHERE server_id=? AND position=0`, server).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestInterfaceServerStates(t *testing.T) {
	ic := newIfCloud(t)
	sv := ic.activeServer(t, "vm")
	action := func(token string, body map[string]any, want string) {
		t.Helper()
		ic.must(t, 202, ic.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", token, body))
		ic.waitStatus(t, ic.demo, sv, want)
	}
	attachDetach := func(want int) {
		t.Helper()
		res := ic.attach(t, ic.demo, sv, "", map[string]any{"net_id": ic.net2})
		if res.StatusCode != want {
			t.Fatalf("attach: %d %s, want %d", res.StatusCode, res.Body, want)
		}
		if want == 200 {
			id := res.JSON(t)["interfaceAttachment"].(map[string]any)["port_id"].(string)
			ic.must(t, 202, ic.detach(t, ic.demo, sv, id))
			ic.settle(t, sv)
		}
	}
	action(ic.demo, map[string]any{"os-stop": nil}, "SHUTOFF")
	attachDetach(200)
	action(ic.demo, map[string]any{"os-start": nil}, "ACTIVE")
	action(ic.demo, map[string]any{"pause": nil}, "PAUSED")
	attachDetach(200)
	action(ic.demo, map[string]any{"unpause": nil}, "ACTIVE")
	action(ic.demo, map[string]any{"suspend": nil}, "SUSPENDED")
	res := ic.attach(t, ic.demo, sv, "", map[string]any{"net_id": ic.net2})
	if res.StatusCode != 409 || !strings.Contains(string(res.Body), "Cannot 'attach_interface' instance "+sv+" while it is in vm_state suspended") {
		t.Fatalf("attach to a suspended server: %d %s", res.StatusCode, res.Body)
	}
	res = ic.detach(t, ic.demo, sv, boot(t, ic, sv))
	if res.StatusCode != 409 || !strings.Contains(string(res.Body), "Cannot 'detach_interface' instance") {
		t.Fatalf("detach from a suspended server: %d %s", res.StatusCode, res.Body)
	}
	action(ic.demo, map[string]any{"resume": nil}, "ACTIVE")
	action(ic.admin, map[string]any{"lock": nil}, "ACTIVE")
	res = ic.attach(t, ic.demo, sv, "", map[string]any{"net_id": ic.net2})
	if res.StatusCode != 409 || !strings.Contains(string(res.Body), "Instance "+sv+" is locked") {
		t.Fatalf("attach to a locked server: %d %s", res.StatusCode, res.Body)
	}
	ic.must(t, 409, ic.detach(t, ic.demo, sv, boot(t, ic, sv)))
	attachDetachAdmin := ic.attach(t, ic.admin, sv, "", map[string]any{"net_id": ic.net2})
	ic.must(t, 200, attachDetachAdmin)
	action(ic.admin, map[string]any{"unlock": nil}, "ACTIVE")
	if got := len(ic.listed(t, ic.demo, sv)); got != 2 {
		t.Fatalf("interfaces %d", got)
	}
}

// TestInterfaceServerDelete: deleting a server deletes the ports made for
// it and unbinds the user's.
func TestInterfaceServerDelete(t *testing.T) {
	ic := newIfCloud(t)
	sv := ic.activeServer(t, "vm")
	bootPort := ic.bootPort(t, sv)
	user := ic.userPort(t, ic.demoProject, ic.net2)
	ic.must(t, 200, ic.attach(t, ic.demo, sv, "", map[string]any{"port_id": user.ID}))
	owned := ic.must(t, 200, ic.attach(t, ic.demo, sv, "", map[string]any{"net_id": ic.net2})).JSON(t)["interfaceAttachment"].(map[string]any)["port_id"].(string)
	ic.must(t, 204, ic.do(t, "DELETE", "/compute/v2.1/servers/"+sv, ic.demo, nil))
	ic.waitStatus(t, ic.demo, sv, "DELETED")
	for _, id := range []string{bootPort, owned} {
		if _, err := ic.nets.GetPort(context.Background(), id); !api.IsNotFound(err) {
			t.Errorf("port %s after the server's delete: %v", id, err)
		}
	}
	p, err := ic.nets.GetPort(context.Background(), user.ID)
	if err != nil || p.DeviceID != "" || p.HostID != "" {
		t.Fatalf("user port after the server's delete: %+v %v", p, err)
	}
	var n int
	ic.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_server_ports WHERE server_id=?`, sv).Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows left", n)
	}
}

// TestInterfaceWorkResumesAfterRestart: an attach a crash interrupted is
// rolled back; a detach is finished.
func TestInterfaceWorkResumesAfterRestart(t *testing.T) {
	ic := newIfCloud(t)
	sv := ic.activeServer(t, "vm")
	user := ic.userPort(t, ic.demoProject, ic.net2)
	owned := ic.must(t, 200, ic.attach(t, ic.demo, sv, "", map[string]any{"net_id": ic.net2})).JSON(t)["interfaceAttachment"].(map[string]any)["port_id"].(string)
	ic.svc.Close()
	// What a crash leaves: the user's port recorded and bound, its
	// request unanswered; the server's port marked for detaching.
	ctx := context.Background()
	if _, err := ic.db.ExecContext(ctx, `INSERT INTO compute_server_ports(server_id, port_id, position, network_id, network_name, mac, ips, owned, tag, status)
		VALUES (?, ?, 2, ?, 'net2', ?, '[]', 0, '', 'attaching')`, sv, user.ID, ic.net2, user.MAC); err != nil {
		t.Fatal(err)
	}
	ic.inets.BindPort(ctx, user.ID, "host1", sv, "compute:nova", map[string]any{"ifname": "eth2"})
	ic.db.ExecContext(ctx, `INSERT INTO compute_instance_actions(server_id, request_id, action, user_id, project_id, start_time, host, updated_at)
		VALUES (?, 'req-crashed', 'attach_interface', 'u', ?, ?, 'host1', ?)`, sv, ic.demoProject, nowText(), nowText())
	ic.db.ExecContext(ctx, `UPDATE compute_server_ports SET status='detaching' WHERE port_id=?`, owned)
	ic.db.ExecContext(ctx, `INSERT INTO compute_instance_actions(server_id, request_id, action, user_id, project_id, start_time, host, updated_at)
		VALUES (?, 'req-crashed-2', 'detach_interface', 'u', ?, ?, 'host1', ?)`, sv, ic.demoProject, nowText(), nowText())

	ic.start(t)
	ic.settle(t, sv)
	if st := ic.rowStatus(t, sv, user.ID); st != "" {
		t.Fatalf("interrupted attach: row %q", st)
	}
	if p, err := ic.nets.GetPort(ctx, user.ID); err != nil || p.DeviceID != "" || p.HostID != "" {
		t.Fatalf("interrupted attach: user port %+v %v", p, err)
	}
	if st := ic.rowStatus(t, sv, owned); st != "" {
		t.Fatalf("interrupted detach: row %q", st)
	}
	if _, err := ic.nets.GetPort(ctx, owned); !api.IsNotFound(err) {
		t.Fatalf("interrupted detach: port %v", err)
	}
	got := append(ic.actionResults(t, sv, "attach_interface"), ic.actionResults(t, sv, "detach_interface")...)
	sort.Strings(got)
	if !sameStrings(got, []string{"Error", "Success", "Success"}) {
		t.Fatalf("actions %v", got)
	}
	if l := ic.listed(t, ic.demo, sv); len(l) != 1 {
		t.Fatalf("interfaces %v", l)
	}
}

// TestInterfaceDetachFailure: a detach the network refuses leaves the
// interface attached, and the action failed.
func TestInterfaceDetachFailure(t *testing.T) {
	ic := newIfCloud(t)
	sv := ic.activeServer(t, "vm")
	user := ic.userPort(t, ic.demoProject, ic.net2)
	ic.must(t, 200, ic.attach(t, ic.demo, sv, "", map[string]any{"port_id": user.ID}))
	ic.inets.setFailBind(user.ID, &api.Error{Status: http.StatusServiceUnavailable, Message: "down"})
	ic.must(t, 202, ic.detach(t, ic.demo, sv, user.ID))
	ic.settle(t, sv)
	if st := ic.rowStatus(t, sv, user.ID); st != "attached" {
		t.Fatalf("row %q after a failed detach", st)
	}
	if got := ic.actionResults(t, sv, "detach_interface"); !sameStrings(got, []string{"Error"}) {
		t.Fatalf("actions %v", got)
	}
	ic.inets.setFailBind(user.ID, nil)
	ic.must(t, 202, ic.detach(t, ic.demo, sv, user.ID))
	ic.settle(t, sv)
	if st := ic.rowStatus(t, sv, user.ID); st != "" {
		t.Fatalf("row %q after the detach", st)
	}
}

// TestInterfaceAttachRace: one port attached to two servers at once goes
// to one of them.
func TestInterfaceAttachRace(t *testing.T) {
	ic := newIfCloud(t)
	a, b := ic.activeServer(t, "a"), ic.activeServer(t, "b")
	for range 10 {
		p := ic.userPort(t, ic.demoProject, ic.net2)
		codes := make(chan int, 2)
		for _, sv := range []string{a, b} {
			go func() {
				res := ic.do(t, "POST", ifPath(sv), ic.demo, map[string]any{"interfaceAttachment": map[string]any{"port_id": p.ID}})
				codes <- res.StatusCode
			}()
		}
		got := []int{<-codes, <-codes}
		sort.Ints(got)
		if got[0] != 200 || got[1] != 409 {
			t.Fatalf("two attaches of one port: %v", got)
		}
		var n int
		ic.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_server_ports WHERE port_id=?`, p.ID).Scan(&n)
		if n != 1 {
			t.Fatalf("port in %d servers' rows", n)
		}
	}
	// A port in another server's rows, not (yet) bound, is in use too.
	p := ic.userPort(t, ic.demoProject, ic.net2)
	if _, err := ic.db.ExecContext(context.Background(), `INSERT INTO compute_server_ports(server_id, port_id, position, network_id,
		network_name, mac, ips, owned, tag, status) VALUES (?, ?, 9, ?, 'net2', '', '[]', 0, '', 'attaching')`, b, p.ID, ic.net2); err != nil {
		t.Fatal(err)
	}
	res := ic.attach(t, ic.demo, a, "", map[string]any{"port_id": p.ID})
	if res.StatusCode != 409 || !strings.Contains(string(res.Body), "is still in use") {
		t.Fatalf("a port another server is attaching: %d %s", res.StatusCode, res.Body)
	}
}
