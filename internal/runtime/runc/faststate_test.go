package runc

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

// TestReadStateMatchesRunc: reading runc's files gives what `runc state`
// says, in every state a container passes through.
func TestReadStateMatchesRunc(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Process = runtime.Process{Args: []string{"sleep", "3600"}}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	id := spec.ID
	check := func(want string) {
		t.Helper()
		out, err := r.runcCmd(ctx, "state", id)
		if err != nil {
			t.Fatal(err)
		}
		var viaRunc runcState
		if err := json.Unmarshal(out, &viaRunc); err != nil {
			t.Fatal(err)
		}
		got, ok, err := r.readState(id)
		if err != nil || !ok {
			t.Fatalf("readState: %v %v", ok, err)
		}
		if got.Status != want || viaRunc.Status != want || got.Pid != viaRunc.Pid || !got.Created.Equal(viaRunc.Created) {
			t.Fatalf("want %s: read %+v, runc %+v", want, got, viaRunc)
		}
	}
	check("created")
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	check("running")
	if err := r.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	check("paused")
	if err := r.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	check("running")
	if err := r.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	// The shim deletes runc's container once the init has exited: gone,
	// or stopped until then.
	if st, ok, err := r.readState(id); err != nil || (ok && st.Status != "stopped") {
		t.Fatalf("after stop: %+v %v %v", st, ok, err)
	}
	if _, ok, err := r.readState("no-such-container"); ok || err != nil {
		t.Fatalf("missing container: %v %v", ok, err)
	}
}

// BenchmarkState: one container's state, as the watcher and SetDevices ask.
func BenchmarkState(b *testing.B) {
	needHost(b)
	h := newTestHost(b)
	owner := runtimetest.NewOwner()
	r := h.open(b, owner)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(b, r))
	spec.Process = runtime.Process{Args: []string{"sleep", "3600"}}
	if _, err := r.Create(ctx, spec); err != nil {
		b.Fatal(err)
	}
	defer func() {
		r.Delete(ctx, spec.ID)
		imgs, _ := r.Images(ctx)
		for _, id := range imgs {
			r.RemoveImage(ctx, id)
		}
	}()
	if err := r.Start(ctx, spec.ID); err != nil {
		b.Fatal(err)
	}
	b.Run("files", func(b *testing.B) {
		for b.Loop() {
			if st, _, err := r.readState(spec.ID); err != nil || st.Status != "running" {
				b.Fatal(st, err)
			}
		}
	})
	b.Run("runc-state", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.runcCmd(ctx, "state", spec.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
