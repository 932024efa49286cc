package runc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// TestLogsStreams: what the init writes to stdout and to stderr is told
// apart, and each line has the time it was written.
func TestLogsStreams(t *testing.T) {
	_, r, _ := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.MachineSpec(defaultImage(t, r))
	spec.Process = runtime.Process{Args: []string{"sh", "-c", "echo to-out; echo to-err >&2; sleep 0.1; echo out-again"}}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.State(ctx, spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == runtime.Stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s", st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := func(o shim.LogOptions) string {
		t.Helper()
		s, err := r.Logs(ctx, spec.ID, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := logs(shim.LogOptions{Stdout: true, Tail: -1}); got != "to-out\nout-again\n" {
		t.Errorf("stdout: %q", got)
	}
	if got := logs(shim.LogOptions{Stderr: true, Tail: -1}); got != "to-err\n" {
		t.Errorf("stderr: %q", got)
	}
	got := logs(shim.LogOptions{Stdout: true, Stderr: true, Timestamps: true, Tail: 1})
	ts, line, _ := strings.Cut(got, " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || line != "out-again\n" || at.Before(before) || at.After(time.Now()) {
		t.Errorf("last line with its time: %q (%v)", got, err)
	}
	if _, err := r.Logs(ctx, "nosuch", shim.LogOptions{}); err == nil {
		t.Error("logs of a container that does not exist")
	}
}
