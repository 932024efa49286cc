package network

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"sync"
	"testing"
)

// concurrentPorts creates n ports on a network at once and returns the
// addresses given and the fault types of the failures.
func concurrentPorts(t *testing.T, tc *testCloud, nid string, n int) ([]string, map[string]int) {
	t.Helper()
	var mu sync.Mutex
	var addrs []string
	faults := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := tc.do("POST", "/network/v2.0/ports", tc.demo, map[string]any{"port": map[string]any{"network_id": nid}})
			mu.Lock()
			defer mu.Unlock()
			if res.StatusCode == http.StatusCreated {
				var body struct {
					Port struct {
						FixedIPs []struct {
							IP string `json:"ip_address"`
						} `json:"fixed_ips"`
					} `json:"port"`
				}
				json.Unmarshal(res.Body, &body)
				for _, f := range body.Port.FixedIPs {
					addrs = append(addrs, f.IP)
				}
				return
			}
			var f struct {
				NeutronError struct{ Type string } `json:"NeutronError"`
			}
			json.Unmarshal(res.Body, &f)
			faults[f.NeutronError.Type+":"+http.StatusText(res.StatusCode)]++
		}()
	}
	wg.Wait()
	return addrs, faults
}

func TestConcurrentPortsNeverShareAnAddress(t *testing.T) {
	tc := newTestCloud(t)
	nid, _ := tc.netWithSubnet(tc.demo, "c26", "10.100.0.0/26")
	addrs, faults := concurrentPorts(t, tc, nid, 50)
	if len(faults) > 0 || len(addrs) != 50 {
		t.Fatalf("%d addresses, failures %v", len(addrs), faults)
	}
	seen := map[string]bool{}
	cidr := netip.MustParsePrefix("10.100.0.0/26")
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("%s given twice", a)
		}
		seen[a] = true
		ip := netip.MustParseAddr(a)
		if !cidr.Contains(ip) || a == "10.100.0.0" || a == "10.100.0.1" || a == "10.100.0.63" {
			t.Errorf("address %s outside the pool", a)
		}
	}
}

func TestConcurrentPortsFailCleanlyWhenFull(t *testing.T) {
	tc := newTestCloud(t)
	nid, sid := tc.netWithSubnet(tc.demo, "c27", "10.101.0.0/27") // pool .2-.30: 29 addresses
	addrs, faults := concurrentPorts(t, tc, nid, 50)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("%s given twice", a)
		}
		seen[a] = true
	}
	if len(addrs) != 29 || faults["IpAddressGenerationFailure:Conflict"] != 21 || len(faults) != 1 {
		t.Fatalf("%d addresses, failures %v", len(addrs), faults)
	}
	// Nothing half-made: as many ports as addresses, and the next one fails too.
	if ports := tc.list(tc.demo, "ports", "?network_id="+nid); len(ports) != 29 {
		t.Errorf("%d ports for 29 addresses", len(ports))
	}
	msg := tc.expectFault(409, "IpAddressGenerationFailure", "POST", "/network/v2.0/ports", tc.demo,
		map[string]any{"port": map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid}}}})
	if msg != "No more IP addresses available on network "+nid+"." {
		t.Errorf("message %q", msg)
	}
}
