package runc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

// TestSetResourcesCgroups: new limits reach a running container's
// cgroups at once and survive a stop and start.
func TestSetResourcesCgroups(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Resources = runtime.Resources{MemoryBytes: 64 << 20}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	memLimit := func() string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", r.CgroupsPath(spec.ID), "memory.limit_in_bytes"))
		if err != nil {
			t.Skipf("no cgroup v1 memory controller: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	if got := memLimit(); got != "67108864" {
		t.Fatalf("memory limit at start %s", got)
	}
	if err := r.SetResources(ctx, spec.ID, runtime.Resources{MemoryBytes: 256 << 20, VCPUs: 0.5}); err != nil {
		t.Fatal(err)
	}
	if got := memLimit(); got != "268435456" {
		t.Errorf("memory limit after SetResources %s", got)
	}
	quota, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", r.CgroupsPath(spec.ID), "cpu.cfs_quota_us"))
	if strings.TrimSpace(string(quota)) != "50000" {
		t.Errorf("cpu quota %q, want 50000", quota)
	}
	if err := r.Stop(ctx, spec.ID, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if got := memLimit(); got != "268435456" {
		t.Errorf("memory limit after a restart %s", got)
	}
	if err := r.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}
