package volume

import (
	"sync"
	"testing"
)

func TestQuotas(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	qpath := "/os-quota-sets/" + tc.demoProject
	setQuota := func(kv map[string]any) map[string]any {
		t.Helper()
		return tc.must(t, 200, "PUT", qpath, tc.admin, map[string]any{"quota_set": kv}).JSON(t)["quota_set"].(map[string]any)
	}
	overLimit := func(res response) {
		t.Helper()
		fault(t, res, 413, "overLimit")
		if res.Header.Get("Retry-After") != "0" {
			t.Errorf("413 without Retry-After: %v", res.Header)
		}
	}
	// nothingMore checks that what was refused left no row and no block.
	nothingMore := func(volumes, snapshots int) {
		t.Helper()
		if n := tc.rows(t, "volume_volumes"); n != volumes {
			t.Errorf("%d volumes, want %d", n, volumes)
		}
		if n := tc.rows(t, "volume_snapshots"); n != snapshots {
			t.Errorf("%d snapshots, want %d", n, snapshots)
		}
		waitFor(t, "blocks to settle", func() bool { return len(tc.blockIDs(t)) == volumes+snapshots })
	}

	// Only the cloud admin sets quotas; a member reads its own project's.
	fault(t, tc.do(t, "PUT", qpath, tc.demo, map[string]any{"quota_set": map[string]any{"volumes": 100}}), 403, "forbidden")
	fault(t, tc.do(t, "GET", "/os-quota-sets/"+tc.adminProject, tc.demo, nil), 403, "forbidden")
	qs := tc.must(t, 200, "GET", qpath, tc.demo, nil).JSON(t)["quota_set"].(map[string]any)
	if qs["id"] != tc.demoProject || qs["volumes"] != 10.0 || qs["gigabytes"] != 1000.0 || qs["snapshots"] != 10.0 ||
		qs["per_volume_gigabytes"] != -1.0 || qs["volumes___DEFAULT__"] != -1.0 {
		t.Errorf("default quota set %v", qs)
	}

	// volumes = 1: the second create is over the limit and leaves nothing.
	if qs := setQuota(map[string]any{"volumes": 1}); qs["volumes"] != 1.0 || qs["gigabytes"] != 1000.0 {
		t.Errorf("PUT answered %v", qs)
	}
	first := tc.newVolume(t, tc.demo, 1)
	overLimit(tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1}}))
	overLimit(tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"source_volid": first}}))
	nothingMore(1, 0)
	// Other projects have their own.
	tc.newVolume(t, tc.admin, 1)
	nothingMore(2, 0)

	// gigabytes = 5, with 1 used.
	setQuota(map[string]any{"volumes": 10, "gigabytes": 5})
	overLimit(tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 5}}))
	nothingMore(2, 0)
	four := tc.newVolume(t, tc.demo, 4)
	// Snapshots count against gigabytes too, and so does extending.
	overLimit(tc.do(t, "POST", "/snapshots", tc.demo, map[string]any{"snapshot": map[string]any{"volume_id": four}}))
	overLimit(tc.do(t, "POST", "/volumes/"+four+"/action", tc.demo, map[string]any{"os-extend": map[string]any{"new_size": 5}}))
	if v := tc.waitVolume(t, tc.demo, four, "available"); v["size"] != 4.0 {
		t.Errorf("refused extend: size %v", v["size"])
	}
	nothingMore(3, 0)

	// Usage and limits.
	qs = tc.must(t, 200, "GET", qpath+"?usage=true", tc.demo, nil).JSON(t)["quota_set"].(map[string]any)
	for name, want := range map[string][2]float64{"volumes": {10, 2}, "gigabytes": {5, 5}, "snapshots": {10, 0},
		"volumes___DEFAULT__": {-1, 2}, "gigabytes___DEFAULT__": {-1, 5}} {
		q, ok := qs[name].(map[string]any)
		if !ok || q["limit"] != want[0] || q["in_use"] != want[1] || q["reserved"] != 0.0 {
			t.Errorf("usage %s = %v, want limit %v in_use %v", name, qs[name], want[0], want[1])
		}
	}
	abs := tc.must(t, 200, "GET", "/limits", tc.demo, nil).JSON(t)["limits"].(map[string]any)["absolute"].(map[string]any)
	for k, want := range map[string]float64{"maxTotalVolumes": 10, "maxTotalVolumeGigabytes": 5, "maxTotalSnapshots": 10,
		"totalVolumesUsed": 2, "totalGigabytesUsed": 5, "totalSnapshotsUsed": 0} {
		if abs[k] != want {
			t.Errorf("limits %s = %v, want %v", k, abs[k], want)
		}
	}
	abs = tc.must(t, 200, "GET", "/limits", tc.admin, nil).JSON(t)["limits"].(map[string]any)["absolute"].(map[string]any)
	if abs["totalVolumesUsed"] != 1.0 || abs["maxTotalVolumes"] != 10.0 {
		t.Errorf("admin's limits %v", abs)
	}
	abs = tc.must(t, 200, "GET", "/limits?project_id="+tc.demoProject, tc.admin, nil).JSON(t)["limits"].(map[string]any)["absolute"].(map[string]any)
	if abs["totalVolumesUsed"] != 2.0 || abs["maxTotalVolumeGigabytes"] != 5.0 {
		t.Errorf("admin's view of demo's limits %v", abs)
	}

	// per_volume_gigabytes bounds one volume, created or extended.
	setQuota(map[string]any{"gigabytes": 100, "per_volume_gigabytes": 2})
	overLimit(tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 3}}))
	nothingMore(3, 0)
	two := tc.newVolume(t, tc.demo, 2)
	overLimit(tc.do(t, "POST", "/volumes/"+two+"/action", tc.demo, map[string]any{"os-extend": map[string]any{"new_size": 3}}))
	if v := tc.waitVolume(t, tc.demo, two, "available"); v["size"] != 2.0 {
		t.Errorf("refused extend: size %v", v["size"])
	}

	// Bad quota sets change nothing.
	for _, body := range []any{
		map[string]any{"quota_set": map[string]any{"volumes": -2}},
		map[string]any{"quota_set": map[string]any{"volumes": "many"}},
		map[string]any{"quota_set": map[string]any{"volumes": 1.5}},
		map[string]any{"quota_set": map[string]any{"volumes": 3, "bananas": 1}},
		map[string]any{"quota_set": "all"},
		map[string]any{"volumes": 3},
		`{"quota_set": {`,
	} {
		fault(t, tc.do(t, "PUT", qpath, tc.admin, body), 400, "badRequest")
	}
	qs = tc.must(t, 200, "GET", qpath, tc.demo, nil).JSON(t)["quota_set"].(map[string]any)
	if qs["volumes"] != 10.0 || qs["gigabytes"] != 100.0 || qs["per_volume_gigabytes"] != 2.0 {
		t.Errorf("after refused updates %v", qs)
	}

	// DELETE goes back to the defaults.
	tc.must(t, 200, "DELETE", qpath, tc.admin, nil)
	qs = tc.must(t, 200, "GET", qpath, tc.demo, nil).JSON(t)["quota_set"].(map[string]any)
	if qs["volumes"] != 10.0 || qs["gigabytes"] != 1000.0 || qs["per_volume_gigabytes"] != -1.0 {
		t.Errorf("after DELETE %v", qs)
	}
	tc.newVolume(t, tc.demo, 3)
}

func TestTypeQuotasAndDefaults(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{DefaultQuotas: map[string]int64{"volumes": 2}})
	qs := tc.must(t, 200, "GET", "/os-quota-sets/"+tc.demoProject+"/defaults", tc.demo, nil).JSON(t)["quota_set"].(map[string]any)
	if qs["volumes"] != 2.0 || qs["snapshots"] != 10.0 {
		t.Errorf("defaults %v", qs)
	}
	tc.must(t, 200, "POST", "/types", tc.admin, map[string]any{"volume_type": map[string]any{"name": "gold"}})
	// A type's own quota, named after it.
	qs = tc.must(t, 200, "PUT", "/os-quota-sets/"+tc.demoProject, tc.admin, map[string]any{"quota_set": map[string]any{"volumes_gold": 0}}).JSON(t)["quota_set"].(map[string]any)
	if qs["volumes_gold"] != 0.0 || qs["volumes"] != 2.0 {
		t.Errorf("PUT answered %v", qs)
	}
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "gold"}}), 413, "overLimit")
	tc.newVolume(t, tc.demo, 1)
	tc.newVolume(t, tc.demo, 1)
	// The configured default: 2 volumes.
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1}}), 413, "overLimit")
	if n := tc.rows(t, "volume_volumes"); n != 2 {
		t.Errorf("%d volumes, want 2", n)
	}
	// Deleting frees the quota.
	id := tc.list(t, "/volumes", tc.demo, "volumes")[0]["id"].(string)
	tc.must(t, 202, "DELETE", "/volumes/"+id, tc.demo, nil)
	tc.waitVolume(t, tc.demo, id, "deleted")
	tc.newVolume(t, tc.demo, 1)
}

// Concurrent creates never go over a quota: the check and the record are
// one transaction.
func TestConcurrentCreatesKeepQuota(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	tc.must(t, 200, "PUT", "/os-quota-sets/"+tc.demoProject, tc.admin, map[string]any{"quota_set": map[string]any{"volumes": 3}})
	const n = 12
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1}}).StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[202] != 3 || count[413] != n-3 {
		t.Errorf("answers %v, want 3 × 202 and %d × 413", count, n-3)
	}
	for _, v := range tc.list(t, "/volumes", tc.demo, "volumes") {
		tc.waitVolume(t, tc.demo, v["id"].(string), "available")
	}
	if n := tc.rows(t, "volume_volumes"); n != 3 {
		t.Errorf("%d volumes, want 3", n)
	}
	if b := tc.blockIDs(t); len(b) != 3 {
		t.Errorf("blocks %v, want 3", b)
	}
}
