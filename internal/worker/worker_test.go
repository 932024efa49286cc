package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestSpawnSerializesPerKey(t *testing.T) {
	p := New()
	var inside, max, n atomic.Int32
	for i := 0; i < 20; i++ {
		p.Spawn("k", func(ctx context.Context) {
			if v := inside.Add(1); v > max.Load() {
				max.Store(v)
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			n.Add(1)
		})
	}
	p.wg.Wait()
	p.Close()
	if n.Load() != 20 || max.Load() != 1 {
		t.Fatalf("ran %d, at most %d at once", n.Load(), max.Load())
	}
}

func TestCloseCancelsAndStops(t *testing.T) {
	p := New()
	started := make(chan struct{})
	p.Go(func(ctx context.Context) { close(started); <-ctx.Done() })
	<-started
	p.Close() // would hang if the context were not cancelled
	ran := false
	p.Spawn("k", func(ctx context.Context) { ran = true })
	p.wg.Wait()
	if ran {
		t.Fatal("work spawned after Close ran")
	}
}
