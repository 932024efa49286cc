// Package worker runs a service's background work: one goroutine per
// piece of work, serialized per resource (a volume's, a container's id),
// all stopped together when the service closes. Work that a close
// interrupts is left for the next start to resume, which is why every
// service records its work in flight before spawning it.
package worker

import (
	"context"
	"sync"

	"github.com/monostack/monostack/internal/lockmap"
)

// Pool is the background work of one service.
type Pool struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	locks  lockmap.Map
}

// New makes a pool whose work runs until Close.
func New() *Pool {
	p := &Pool{}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Spawn runs fn in the background, one at a time per key; fn's context
// ends at Close. Work spawned after Close does not run.
func (p *Pool) Spawn(key string, fn func(ctx context.Context)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.locks.Lock(key)()
		if p.ctx.Err() != nil {
			return
		}
		fn(p.ctx)
	}()
}

// Go runs fn in the background until Close (a watcher, say).
func (p *Pool) Go(fn func(ctx context.Context)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn(p.ctx)
	}()
}

// Lock locks key as Spawn's work does, for a request that must not run
// beside it; it returns the unlock.
func (p *Pool) Lock(key string) func() { return p.locks.Lock(key) }

// Context is the pool's context, done at Close.
func (p *Pool) Context() context.Context { return p.ctx }

// Close stops the work and waits for it.
func (p *Pool) Close() {
	p.cancel()
	p.wg.Wait()
}
