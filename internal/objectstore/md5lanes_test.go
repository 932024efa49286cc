package objectstore

import (
	"crypto/md5"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestMD5LanesRetireServers: hashers spread over several servers, some
// outliving their server's retirement, all give crypto/md5's sums, and
// once all are closed no server goroutine is left (one md5-simd server
// for good kept every closed hasher, and slowed down with them).
func TestMD5LanesRetireServers(t *testing.T) {
	before := runtime.NumGoroutine()
	var l md5Lanes
	data := make([]byte, 200<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	// One hasher held open across two retirements.
	held := l.NewHash()
	held.Write(data[:1000])
	var wg sync.WaitGroup
	errs := make(chan error, 3*lanesPerServer)
	for i := range 3 * lanesPerServer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := l.NewHash()
			defer h.Close()
			b := data[:len(data)-i]
			h.Write(b[:len(b)/2])
			h.Write(b[len(b)/2:])
			if got, want := fmt.Sprintf("%x", h.Sum(nil)), fmt.Sprintf("%x", md5.Sum(b)); got != want {
				errs <- fmt.Errorf("hasher %d: sum %s, want %s", i, got, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	held.Write(data[1000:])
	if got, want := fmt.Sprintf("%x", held.Sum(nil)), fmt.Sprintf("%x", md5.Sum(data)); got != want {
		t.Errorf("held hasher: sum %s, want %s", got, want)
	}
	held.Close()
	held.Close() // twice is harmless
	l.Close()
	h := l.NewHash()
	h.Write(data)
	if got, want := fmt.Sprintf("%x", h.Sum(nil)), fmt.Sprintf("%x", md5.Sum(data)); got != want {
		t.Errorf("after Close: sum %s, want %s", got, want)
	}
	h.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after every hasher and the lanes closed, %d before: a server was not closed", n, before)
	}
}
