package lockmap

import (
	"runtime"
	"sync"
	"testing"
)

func TestSerializesOneKey(t *testing.T) {
	var m Map
	var wg sync.WaitGroup
	n, inside := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := m.Lock("a")
			inside++
			if inside != 1 {
				t.Error("two holders of one key")
			}
			n++
			inside--
			unlock()
		}()
	}
	wg.Wait()
	if n != 50 {
		t.Fatalf("n = %d", n)
	}
	if len(m.locks) != 0 {
		t.Fatalf("%d entries left", len(m.locks))
	}
}

func TestKeysAreIndependent(t *testing.T) {
	var m Map
	unlockA := m.Lock("a")
	done := make(chan struct{})
	go func() { m.Lock("b")(); close(done) }()
	<-done // would hang if "b" waited for "a"
	unlockA()
}

func TestHolders(t *testing.T) {
	var m Map
	unlock := m.Lock("a")
	go func() { m.Lock("a")() }()
	for m.Holders("a") != 2 {
		runtime.Gosched()
	}
	if n := m.Holders("b"); n != 0 {
		t.Errorf("Holders of a key nobody holds = %d", n)
	}
	unlock()
	for m.Holders("a") != 0 {
		runtime.Gosched()
	}
}
