package runc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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

// TestSharedNetnsKernel: a container made with NetnsOf is in the very
// network namespace of the other (same kernel namespace), and keeps it
// when the other is deleted.
func TestSharedNetnsKernel(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	img := defaultImage(t, r)
	first := runtimetest.MachineSpec(img)
	second := runtimetest.MachineSpec(img)
	second.NetnsOf = first.ID
	for _, s := range []runtime.Spec{first, second} {
		if _, err := r.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	ns := func(id string) string {
		st, err := r.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(st.Pid), "ns", "net"))
		if err != nil {
			t.Fatal(err)
		}
		return link
	}
	a, b := ns(first.ID), ns(second.ID)
	if a != b {
		t.Fatalf("namespaces differ: %s and %s", a, b)
	}
	if err := r.Delete(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if got := ns(second.ID); got != b {
		t.Fatalf("the joiner's namespace changed to %s", got)
	}
	if err := r.Delete(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
}
