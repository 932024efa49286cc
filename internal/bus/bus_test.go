package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

type ping struct{ N int }
type pong struct{ N int }

func TestCallServePublish(t *testing.T) {
	b, err := Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stop, err := Serve(b, "svc.double", func(ctx context.Context, p ping) (pong, error) {
		if p.N < 0 {
			return pong{}, errors.New("negative")
		}
		return pong{p.N * 2}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := Call[ping, pong](ctx, b, "svc.double", ping{21})
	if err != nil || got.N != 42 {
		t.Fatalf("call: %v %v", got, err)
	}
	var re *RemoteError
	if _, err := Call[ping, pong](ctx, b, "svc.double", ping{-1}); !errors.As(err, &re) || re.Msg != "negative" {
		t.Fatalf("remote error: %v", err)
	}
	stop()
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := Call[ping, pong](short, b, "svc.double", ping{1}); err == nil {
		t.Fatal("call with no server succeeded")
	}
	got2 := make(chan ping, 1)
	unsub, _ := Subscribe(b, "events", func(p ping) { got2 <- p })
	defer unsub()
	Publish(b, "events", ping{7})
	select {
	case p := <-got2:
		if p.N != 7 {
			t.Fatal(p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
}

var errTestKind = errors.New("test kind")

// TestErrorKindsCrossTheBus: a handler's error wrapping a registered
// sentinel is errors.Is that sentinel at the caller.
func TestErrorKindsCrossTheBus(t *testing.T) {
	RegisterKind("test-kind", errTestKind)
	b, err := Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stop, err := Serve(b, "kinds", func(ctx context.Context, req string) (string, error) {
		if req == "plain" {
			return "", errors.New("plain failure")
		}
		return "", fmt.Errorf("wrapped: %w", errTestKind)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	_, err = Call[string, string](context.Background(), b, "kinds", "kind")
	if !errors.Is(err, errTestKind) || err.Error() != "wrapped: test kind" {
		t.Fatalf("kind lost: %v", err)
	}
	_, err = Call[string, string](context.Background(), b, "kinds", "plain")
	if err == nil || errors.Is(err, errTestKind) {
		t.Fatalf("plain error: %v", err)
	}
}

// TestServeBy: requests for different keys run at once (a slow one does not
// hold up the others); requests for one key never overlap.
func TestServeBy(t *testing.T) {
	b, err := Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	type req struct {
		Key  string
		Slow bool
	}
	var mu sync.Mutex
	inside := map[string]int{}
	overlap := false
	stop, err := ServeBy(b, "svc.keyed", func(r req) string { return r.Key }, func(ctx context.Context, r req) (string, error) {
		mu.Lock()
		inside[r.Key]++
		overlap = overlap || inside[r.Key] > 1
		mu.Unlock()
		if r.Slow {
			time.Sleep(time.Second)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		inside[r.Key]--
		mu.Unlock()
		return r.Key, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go Call[req, string](ctx, b, "svc.keyed", req{Key: "slow", Slow: true})
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprint("k", i%4)
			if got, err := Call[req, string](ctx, b, "svc.keyed", req{Key: k}); err != nil || got != k {
				t.Errorf("call %s: %q %v", k, got, err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("other keys waited %v behind a slow request", d)
	}
	if overlap {
		t.Fatal("two requests for one key ran at once")
	}
}
