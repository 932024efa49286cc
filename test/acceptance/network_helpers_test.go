package acceptance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// netClient is a Networking v2 client of a session, found in the catalog.
func netClient(t *testing.T, s session) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewNetworkV2(s.pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("network endpoint: %v", err)
	}
	return c
}

func demoNet(t *testing.T) *gophercloud.ServiceClient  { return netClient(t, demoSession(t)) }
func adminNet(t *testing.T) *gophercloud.ServiceClient { return netClient(t, adminSession(t)) }

// cloudPrefix is the value of a --public-cidr or --private-cidr flag the
// shared daemon was started with.
func cloudPrefix(t *testing.T, flag string) netip.Prefix {
	t.Helper()
	for i, a := range cloud.args {
		if a == flag && i+1 < len(cloud.args) {
			p, err := netip.ParsePrefix(cloud.args[i+1])
			if err != nil {
				t.Fatalf("%s %s: %v", flag, cloud.args[i+1], err)
			}
			return p
		}
	}
	t.Fatalf("the shared monostack was started without %s", flag)
	return netip.Prefix{}
}

// deleteLater deletes a resource when the test ends; one already gone
// (404) is fine.
func deleteLater(t *testing.T, what string, del func(ctx context.Context) error) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := del(ctx); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: delete %s: %v", what, err)
		}
	})
}

func mkNetwork(t *testing.T, c *gophercloud.ServiceClient, name string) *networks.Network {
	t.Helper()
	n, err := networks.Create(context.Background(), c, networks.CreateOpts{Name: uniq(name)}).Extract()
	if err != nil {
		t.Fatalf("create network %s: %v", name, err)
	}
	deleteLater(t, "network "+n.Name, func(ctx context.Context) error { return networks.Delete(ctx, c, n.ID).ExtractErr() })
	return n
}

func mkSubnet(t *testing.T, c *gophercloud.ServiceClient, networkID, cidr string) *subnets.Subnet {
	t.Helper()
	sn, err := subnets.Create(context.Background(), c, subnets.CreateOpts{NetworkID: networkID, CIDR: cidr,
		IPVersion: gophercloud.IPv4, Name: uniq("acc-subnet")}).Extract()
	if err != nil {
		t.Fatalf("create subnet %s: %v", cidr, err)
	}
	deleteLater(t, "subnet "+cidr, func(ctx context.Context) error { return subnets.Delete(ctx, c, sn.ID).ExtractErr() })
	return sn
}

// mkNetworkWithSubnet is a new network with one IPv4 subnet.
func mkNetworkWithSubnet(t *testing.T, c *gophercloud.ServiceClient, name, cidr string) (*networks.Network, *subnets.Subnet) {
	t.Helper()
	n := mkNetwork(t, c, name)
	return n, mkSubnet(t, c, n.ID, cidr)
}

func mkPort(t *testing.T, c *gophercloud.ServiceClient, opts ports.CreateOpts) *ports.Port {
	t.Helper()
	if opts.Name == "" {
		opts.Name = uniq("acc-port")
	}
	p, err := ports.Create(context.Background(), c, opts).Extract()
	if err != nil {
		t.Fatalf("create port on %s: %v", opts.NetworkID, err)
	}
	deleteLater(t, "port "+p.Name, func(ctx context.Context) error { return ports.Delete(ctx, c, p.ID).ExtractErr() })
	return p
}

func mkRouter(t *testing.T, c *gophercloud.ServiceClient, opts routers.CreateOpts) *routers.Router {
	t.Helper()
	if opts.Name == "" {
		opts.Name = uniq("acc-router")
	}
	r, err := routers.Create(context.Background(), c, opts).Extract()
	if err != nil {
		t.Fatalf("create router: %v", err)
	}
	deleteLater(t, "router "+r.Name, func(ctx context.Context) error {
		// A router's interfaces go first, as a client has to do it.
		pages, err := ports.List(c, ports.ListOpts{DeviceID: r.ID, DeviceOwner: "network:router_interface"}).AllPages(ctx)
		if err != nil {
			return err
		}
		ifaces, _ := ports.ExtractPorts(pages)
		for _, p := range ifaces {
			if _, err := routers.RemoveInterface(ctx, c, r.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract(); err != nil {
				return fmt.Errorf("remove interface %s: %w", p.ID, err)
			}
		}
		return routers.Delete(ctx, c, r.ID).ExtractErr()
	})
	return r
}

func addInterface(t *testing.T, c *gophercloud.ServiceClient, routerID string, opts routers.AddInterfaceOpts) *routers.InterfaceInfo {
	t.Helper()
	info, err := routers.AddInterface(context.Background(), c, routerID, opts).Extract()
	if err != nil {
		t.Fatalf("add interface %+v to router %s: %v", opts, routerID, err)
	}
	return info
}

func mkFloatingIP(t *testing.T, c *gophercloud.ServiceClient, opts floatingips.CreateOpts) *floatingips.FloatingIP {
	t.Helper()
	f, err := floatingips.Create(context.Background(), c, opts).Extract()
	if err != nil {
		t.Fatalf("create floating IP: %v", err)
	}
	deleteLater(t, "floating IP "+f.FloatingIP, func(ctx context.Context) error { return floatingips.Delete(ctx, c, f.ID).ExtractErr() })
	return f
}

func mkGroup(t *testing.T, c *gophercloud.ServiceClient, name string) *groups.SecGroup {
	t.Helper()
	g, err := groups.Create(context.Background(), c, groups.CreateOpts{Name: uniq(name), Description: "acceptance"}).Extract()
	if err != nil {
		t.Fatalf("create security group %s: %v", name, err)
	}
	deleteLater(t, "security group "+g.Name, func(ctx context.Context) error { return groups.Delete(ctx, c, g.ID).ExtractErr() })
	return g
}

func mkRule(t *testing.T, c *gophercloud.ServiceClient, opts rules.CreateOpts) *rules.SecGroupRule {
	t.Helper()
	r, err := rules.Create(context.Background(), c, opts).Extract()
	if err != nil {
		t.Fatalf("create security group rule %+v: %v", opts, err)
	}
	return r
}

// icmpIngress is the rule that lets pings in.
func icmpIngress(groupID string) rules.CreateOpts {
	return rules.CreateOpts{SecGroupID: groupID, Direction: rules.DirIngress, EtherType: rules.EtherType4, Protocol: rules.ProtocolICMP}
}

// mkPingableGroup is a security group that lets IPv4 ICMP in (and, as
// every new group, anything out).
func mkPingableGroup(t *testing.T, c *gophercloud.ServiceClient) *groups.SecGroup {
	t.Helper()
	g := mkGroup(t, c, "acc-icmp")
	mkRule(t, c, icmpIngress(g.ID))
	return g
}

func fixedIP(t *testing.T, p *ports.Port) string {
	t.Helper()
	if len(p.FixedIPs) == 0 {
		t.Fatalf("port %s has no fixed IP", p.ID)
	}
	return p.FixedIPs[0].IPAddress
}

// listIDs returns the ids of a list of anything with an ID.
func listIDs[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// extNetwork is a network with the attributes of the external-net and
// net-mtu extensions.
type extNetwork struct {
	networks.Network
	external.NetworkExternalExt
	mtu.NetworkMTUExt
}

func listNetworks(t *testing.T, c *gophercloud.ServiceClient, opts networks.ListOptsBuilder) []extNetwork {
	t.Helper()
	pages, err := networks.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	var out []extNetwork
	if err := networks.ExtractNetworksInto(pages, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func listSubnets(t *testing.T, c *gophercloud.ServiceClient, opts subnets.ListOpts) []subnets.Subnet {
	t.Helper()
	pages, err := subnets.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list subnets %+v: %v", opts, err)
	}
	out, err := subnets.ExtractSubnets(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listPorts(t *testing.T, c *gophercloud.ServiceClient, opts ports.ListOpts) []ports.Port {
	t.Helper()
	pages, err := ports.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list ports %+v: %v", opts, err)
	}
	out, err := ports.ExtractPorts(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listRouters(t *testing.T, c *gophercloud.ServiceClient, opts routers.ListOpts) []routers.Router {
	t.Helper()
	pages, err := routers.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list routers %+v: %v", opts, err)
	}
	out, err := routers.ExtractRouters(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listFIPs(t *testing.T, c *gophercloud.ServiceClient, opts floatingips.ListOpts) []floatingips.FloatingIP {
	t.Helper()
	pages, err := floatingips.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list floating IPs %+v: %v", opts, err)
	}
	out, err := floatingips.ExtractFloatingIPs(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listGroups(t *testing.T, c *gophercloud.ServiceClient, opts groups.ListOpts) []groups.SecGroup {
	t.Helper()
	pages, err := groups.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list security groups %+v: %v", opts, err)
	}
	out, err := groups.ExtractGroups(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listRules(t *testing.T, c *gophercloud.ServiceClient, opts rules.ListOpts) []rules.SecGroupRule {
	t.Helper()
	pages, err := rules.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list security group rules %+v: %v", opts, err)
	}
	out, err := rules.ExtractRules(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// publicNetwork is the bootstrap's external network.
func publicNetwork(t *testing.T) extNetwork {
	t.Helper()
	yes := true
	l := listNetworks(t, demoNet(t), external.ListOptsExt{ListOptsBuilder: networks.ListOpts{Name: "public"}, External: &yes})
	if len(l) != 1 {
		t.Fatalf("external networks named public: %+v", l)
	}
	return l[0]
}

func inPrefix(p netip.Prefix, addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && p.Contains(a)
}

// defaultGroup is a project's security group "default".
func defaultGroup(t *testing.T, c *gophercloud.ServiceClient, project string) groups.SecGroup {
	t.Helper()
	l := listGroups(t, c, groups.ListOpts{Name: "default", ProjectID: project})
	if len(l) != 1 {
		t.Fatalf("default security groups of project %s: %+v", project, l)
	}
	return l[0]
}

// boundPort is a port with its binding attributes.
type boundPort struct {
	ports.Port
	portsbinding.PortsBindingExt
	portsecurity.PortSecurityExt
}

// --- the real datapath ---

// needDatapath skips a test unless the shared monostack runs the real
// datapath (it does when it runs as root) and the host has the tools the
// test uses to look at it.
func needDatapath(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: monostack runs no datapath, so ports carry no traffic; run the acceptance tests as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2) to make network namespaces with")
	}
	if pingCmd() == nil {
		t.Skip("neither ping nor busybox is installed (scripts/deps.sh installs busybox-static)")
	}
}

var pingOnce = sync.OnceValue(func() []string {
	if p, err := exec.LookPath("ping"); err == nil {
		return []string{p}
	}
	if p, err := exec.LookPath("busybox"); err == nil {
		return []string{p, "ping"}
	}
	return nil
})

// pingCmd is the ping to use: iputils' or busybox's.
func pingCmd() []string { return pingOnce() }

var netnsCount atomic.Int32

// newNetns makes a network namespace for the test, deleted when it ends,
// and returns its name; its path is /var/run/netns/NAME.
func newNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("acc-%d-%d", os.Getpid(), netnsCount.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return name
}

// plug binds a port to this host with its namespace (what Nova does for a
// server): admin sets binding:host_id and binding:profile {"netns": …},
// with "ifname" when ifname is not "".
func plug(t *testing.T, portID, ns, ifname string) {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	profile := map[string]any{"netns": "/var/run/netns/" + ns}
	if ifname != "" {
		profile["ifname"] = ifname
	}
	_, err = ports.Update(context.Background(), adminNet(t), portID, portsbinding.UpdateOptsExt{
		UpdateOptsBuilder: ports.UpdateOpts{}, HostID: &host, Profile: profile,
	}).Extract()
	if err != nil {
		t.Fatalf("bind port %s to %s in %s: %v", portID, host, ns, err)
	}
}

// plugged is a port in a namespace.
type plugged struct {
	port *ports.Port
	ns   string
	ip   string
}

// mkPlugged makes a namespace and a port (as demo, on network with the
// groups) bound into it; see plugInto.
func mkPlugged(t *testing.T, networkID string, groupIDs ...string) plugged {
	t.Helper()
	return plugInto(t, newNetns(t), networkID, "", groupIDs...)
}

// plugInto makes a port (as demo, on network with the groups) and binds
// it into the namespace ns (made with newNetns) as ifname ("": eth0, eth1…).
// When the test ends the port is deleted and its veth must go (before the
// namespace is deleted: cleanups run last first).
func plugInto(t *testing.T, ns, networkID, ifname string, groupIDs ...string) plugged {
	t.Helper()
	var id string
	t.Cleanup(func() {
		if id != "" {
			waitLinkGone(t, "tap"+id[:11])
		}
	})
	p := mkPort(t, demoNet(t), ports.CreateOpts{NetworkID: networkID, SecurityGroups: &groupIDs})
	id = p.ID
	plug(t, p.ID, ns, ifname)
	return plugged{port: p, ns: ns, ip: fixedIP(t, p)}
}

// waitLinkGone fails unless the host's link name is gone within 10 s:
// the datapath removes what the API deleted.
func waitLinkGone(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := net.InterfaceByName(name); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s is still on the host 10s after its port was deleted", name)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitActive waits (at most 20 s) until every port is ACTIVE.
func waitActive(t *testing.T, ps ...plugged) {
	t.Helper()
	c := demoNet(t)
	deadline := time.Now().Add(20 * time.Second)
	for _, pp := range ps {
		for {
			p, err := ports.Get(context.Background(), c, pp.port.ID).Extract()
			if err != nil {
				t.Fatalf("get port %s: %v", pp.port.ID, err)
			}
			if p.Status == "ACTIVE" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("port %s (%s in %s) is %s, not ACTIVE, after 20s", p.ID, pp.ip, pp.ns, p.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ping sends one echo request from a namespace ("" for the host's own)
// and reports whether the reply came within a second.
func ping(ns, addr string, opts ...string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args := append(append(slices.Clone(pingCmd()), opts...), "-c1", "-W1", addr)
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return false, err.Error()
	}
	return err == nil, strings.TrimSpace(string(out))
}

func where(ns string) string {
	if ns == "" {
		return "the host"
	}
	return "netns " + ns
}

// wantPing fails unless a ping from ns to addr (with ping's options
// opts) is answered within timeout (trying once a second, or so).
func wantPing(t *testing.T, ns, addr string, timeout time.Duration, why string, opts ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, out := ping(ns, addr, opts...)
		if ok {
			t.Logf("%s: ping %s from %s: answered", why, addr, where(ns))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: ping %s from %s not answered within %s:\n%s", why, addr, where(ns), timeout, out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantNoPing fails if a ping from ns to addr is answered.
func wantNoPing(t *testing.T, ns, addr string, why string, opts ...string) {
	t.Helper()
	if ok, out := ping(ns, addr, opts...); ok {
		t.Errorf("%s: ping %s from %s was answered:\n%s", why, addr, where(ns), out)
	} else {
		t.Logf("%s: ping %s from %s: no answer, as it should be", why, addr, where(ns))
	}
}

// wantPingStops fails unless pings from ns to addr stop being answered
// within timeout.
func wantPingStops(t *testing.T, ns, addr string, timeout time.Duration, why string, opts ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, out := ping(ns, addr, opts...)
		if !ok {
			t.Logf("%s: ping %s from %s: no answer, as it should be", why, addr, where(ns))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: ping %s from %s still answered after %s:\n%s", why, addr, where(ns), timeout, out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logSize is the length of the shared monostack's log now.
func logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(cloud.logFile())
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logSince is what the shared monostack logged since offset.
func logSince(t *testing.T, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(cloud.logFile())
	if err != nil {
		t.Fatal(err)
	}
	if offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// hostObjects are the bridges and router namespaces a test's networks and
// routers have on the host; when the test ends, after its resources were
// deleted through the API, they must be gone (the datapath removes them,
// not only `monostack purge`).
type hostObjects struct {
	mu    sync.Mutex
	links []string // bridges
	netns []string // router namespaces
}

// watchHost returns the test's hostObjects; call it before making any
// resource, so that its check runs after their deletion.
func watchHost(t *testing.T) *hostObjects {
	t.Helper()
	h := &hostObjects{}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, l := range h.links {
			for {
				_, err := net.InterfaceByName(l)
				if err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("bridge %s is still on the host 10s after its network was deleted", l)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		for _, ns := range h.netns {
			for {
				_, err := os.Stat("/var/run/netns/" + ns)
				if err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("router namespace %s is still on the host 10s after its router was deleted", ns)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
	return h
}

func (h *hostObjects) network(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.links = append(h.links, "brq"+id[:11])
}

func (h *hostObjects) router(t *testing.T, id string) {
	t.Helper()
	owner, err := os.ReadFile(filepath.Join(cloud.dataDir, "agent-id"))
	if err != nil {
		t.Fatalf("the shared monostack's agent id: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.netns = append(h.netns, "qrouter-"+strings.TrimSpace(string(owner))+"_"+id)
}
