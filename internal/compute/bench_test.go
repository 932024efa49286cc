package compute

import (
	"sort"
	"testing"
	"time"
)

// BenchmarkServerCreateToActive: POST /servers to ACTIVE through the API
// with FakeHosts (no boot delay); reports p50 and p99.
func BenchmarkServerCreateToActive(b *testing.B) {
	tc := newTestCloud(b)
	tc.hosts.Delay = 0
	tc.must(b, 200, tc.do(b, "PUT", "/compute/v2.1/os-quota-sets/"+tc.demoProject, tc.admin,
		map[string]any{"quota_set": map[string]any{"instances": -1, "cores": -1, "ram": -1}}))
	if err := tc.svc.RegisterHost(b.Context(), HostInfo{Name: "host1", VCPUs: 1 << 20, MemoryMB: 1 << 30, DiskGB: 1 << 30}); err != nil {
		b.Fatal(err)
	}
	var d []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		id := tc.createServer(b, tc.demo, "bench", "42", nil)
		tc.waitStatus(b, tc.demo, id, "ACTIVE")
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
}
