package blobfile

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestWriter writes whole aligned buffers then an unaligned tail, on an
// O_DIRECT file (when the test's file system gives one) and on a plain
// one, and reads back exactly the bytes written.
func TestWriter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 3<<20+123)
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	for _, direct := range []bool{true, false} {
		dir := t.TempDir()
		f, isDirect, err := CreateTemp(dir, "up-", direct)
		if err != nil {
			t.Fatal(err)
		}
		if !direct && isDirect {
			t.Errorf("CreateTemp(direct=false) gave an O_DIRECT file")
		}
		if !strings.HasPrefix(f.Name(), dir+"/up-") {
			t.Errorf("name %s", f.Name())
		}
		w := NewWriter(f, isDirect)
		buf := NewBuffer(1 << 20)
		for off := 0; off < len(want); off += len(buf) {
			n := copy(buf, want[off:])
			if k, err := w.Write(buf[:n]); err != nil || k != n {
				t.Fatalf("direct %v: write at %d: %d, %v", isDirect, off, k, err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("direct %v: read back %d bytes, not the %d written", isDirect, len(got), len(want))
		}
	}
}

// TestCreateTempExclusive: two temporary files never share a name, and a
// missing directory is an error, not a fallback.
func TestCreateTempExclusive(t *testing.T) {
	dir := t.TempDir()
	a, _, err := CreateTemp(dir, "x-", true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _, err := CreateTemp(dir, "x-", true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Name() == b.Name() {
		t.Errorf("same name twice: %s", a.Name())
	}
	if _, _, err := CreateTemp(dir+"/missing", "x-", true); err == nil {
		t.Errorf("CreateTemp in a missing directory: no error")
	}
}

// TestNewBuffer: buffers start aligned whatever their size.
func TestNewBuffer(t *testing.T) {
	for _, n := range []int{1, Align, 1 << 20} {
		b := NewBuffer(n)
		if len(b) != n || cap(b) != n {
			t.Errorf("NewBuffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		if addr := unsafePointer(b); addr%Align != 0 {
			t.Errorf("NewBuffer(%d) at %#x: not aligned", n, addr)
		}
	}
}

func unsafePointer(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
