// Package pattern makes large bodies for benchmarks without holding them:
// n bytes cycling through a random block whose size (1 MiB + 17) is prime
// to 1 MiB, so that no two MiB of the stream are alike, generated as they
// are read.
package pattern

import (
	"crypto/rand"
	"io"
)

const blockSize = 1<<20 + 17

// Reader yields its n bytes, then io.EOF.
type Reader struct {
	block []byte
	off   int
	left  int64
}

// New returns a Reader of n bytes.
func New(n int64) *Reader {
	b := make([]byte, blockSize)
	rand.Read(b)
	return &Reader{block: b, left: n}
}

func (p *Reader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.block[p.off:])
		n += c
		p.off = (p.off + c) % len(p.block)
	}
	p.left -= int64(n)
	return n, nil
}
