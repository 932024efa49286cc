package network

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkCreatePort creates ports through the API (token check, policy,
// IPAM in the write transaction, a durable SQLite commit) with the
// recording Syncer, one client after another and with parallel clients.
//
//	go test ./internal/network -run '^$' -bench CreatePort -benchtime 2000x
func BenchmarkCreatePort(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			tc := newTestCloud(b)
			tc.must(200, tc.do("PUT", "/network/v2.0/quotas/"+tc.demoProject, tc.admin, map[string]any{"quota": map[string]any{"port": -1}}))
			nid, _ := tc.netWithSubnet(tc.demo, "bench", "10.128.0.0/16")
			body := map[string]any{"port": map[string]any{"network_id": nid, "device_owner": "compute:nova"}}
			create := func() {
				if res := tc.do("POST", "/network/v2.0/ports", tc.demo, body); res.StatusCode != http.StatusCreated {
					b.Fatalf("create: %d %s", res.StatusCode, res.Body)
				}
			}
			b.ResetTimer()
			start := time.Now()
			if parallel {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						create()
					}
				})
			} else {
				for b.Loop() {
					create()
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ports/s")
		})
	}
}

// BenchmarkListPorts lists 1,000 ports of a network as the port benchmark's
// poller does (?network_id=&status=ACTIVE&fields=id; none is ACTIVE with
// the recording Syncer) and as a plain listing of the network.
//
//	go test ./internal/network -run '^$' -bench ListPorts
func BenchmarkListPorts(b *testing.B) {
	tc := newTestCloud(b)
	tc.must(200, tc.do("PUT", "/network/v2.0/quotas/"+tc.demoProject, tc.admin, map[string]any{"quota": map[string]any{"port": -1}}))
	nid, _ := tc.netWithSubnet(tc.demo, "bench", "10.128.0.0/16")
	body := map[string]any{"port": map[string]any{"network_id": nid, "device_owner": "compute:nova"}}
	for range 1000 {
		tc.must(http.StatusCreated, tc.do("POST", "/network/v2.0/ports", tc.demo, body))
	}
	for _, q := range []string{"status=ACTIVE&fields=id", "fields=id"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				tc.must(200, tc.do("GET", "/network/v2.0/ports?network_id="+nid+"&"+q, tc.demo, nil))
			}
		})
	}
}
