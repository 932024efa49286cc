package app

import (
	"context"
	"log/slog"
	"time"
)

// A purger forgets what a service keeps of resources deleted before a
// time (compute's deleted servers, image's deleted ids).
type purger struct {
	what string
	fn   func(ctx context.Context, before time.Time) (int64, error)
}

// purgeEvery is how often the purgers run; the first run is purgeFirst
// after start, out of the way of start-up.
const (
	purgeEvery = 6 * time.Hour
	purgeFirst = time.Minute
)

// startPurges runs c's purgers every purgeEvery for what was deleted more
// than keep ago (--keep-deleted; 0 runs nothing), until the cloud closes.
func (c *cloud) startPurges(keep time.Duration, log *slog.Logger) {
	if keep <= 0 || len(c.purgers) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(purgeFirst)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c.purge(ctx, time.Now().Add(-keep), log)
			t.Reset(purgeEvery)
		}
	}()
	c.onClose(func() error { cancel(); <-done; return nil })
}

// purge runs every purger once.
func (c *cloud) purge(ctx context.Context, before time.Time, log *slog.Logger) {
	for _, p := range c.purgers {
		n, err := p.fn(ctx, before)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("purging deleted "+p.what, "err", err)
		case n > 0:
			log.Info("purged deleted "+p.what, "count", n, "deleted_before", before.UTC().Format(time.RFC3339))
		}
	}
}
