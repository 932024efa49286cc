package pattern

import (
	"bytes"
	"io"
	"testing"
)

// TestReader: exactly n bytes, whatever the read sizes, and two MiB in a
// row differ.
func TestReader(t *testing.T) {
	for _, n := range []int64{0, 1, blockSize - 1, 3<<20 + 5} {
		got, err := io.ReadAll(io.LimitReader(New(n), n+100))
		if err != nil || int64(len(got)) != n {
			t.Errorf("New(%d): %d bytes, %v", n, len(got), err)
		}
	}
	b, _ := io.ReadAll(New(2 << 20))
	if bytes.Equal(b[:1<<20], b[1<<20:]) {
		t.Error("two MiB in a row are alike")
	}
}
