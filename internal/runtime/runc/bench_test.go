package runc

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

// BenchmarkCreateStart measures a machine container of the default image
// from nothing to Running (Create, then Start), and on to its init's first
// words on the console ("is up"). Delete is not timed. Besides ns/op it
// reports the medians: create-ms, start-ms, running-ms (create+start) and
// boot-ms (to "is up").
//
//	go test ./internal/runtime/runc -run '^$' -bench CreateStart -benchtime 30x
func BenchmarkCreateStart(b *testing.B) {
	h := newTestHost(b)
	owner := runtimetest.NewOwner()
	r := h.open(b, owner)
	b.Cleanup(func() { pruneAll(b, h, r, owner) })
	ctx := context.Background()
	img := defaultImage(b, r)
	var creates, starts, runnings, boots []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		spec := runtimetest.MachineSpec(img)
		t0 := time.Now()
		if _, err := r.Create(ctx, spec); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := r.Start(ctx, spec.ID); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if st, err := r.State(ctx, spec.ID); err != nil || st.Status != runtime.Running {
			b.Fatalf("%+v %v", st, err)
		}
		for {
			out, err := r.ConsoleLog(ctx, spec.ID, 0)
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(string(out), "is up") {
				break
			}
			time.Sleep(time.Millisecond)
		}
		t3 := time.Now()
		creates, starts = append(creates, t1.Sub(t0)), append(starts, t2.Sub(t1))
		runnings, boots = append(runnings, t2.Sub(t0)), append(boots, t3.Sub(t0))
		b.StopTimer()
		if err := r.Delete(ctx, spec.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"create-ms", creates}, {"start-ms", starts}, {"running-ms", runnings}, {"boot-ms", boots}} {
		b.ReportMetric(float64(median(m.ds).Microseconds())/1000, m.name)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
