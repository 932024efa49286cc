package objectstore

import (
	"sync"

	md5simd "github.com/minio/md5-simd"
)

// md5Lanes hashes large uploads side by side in the SIMD lanes of
// md5-simd servers, each server used for at most lanesPerServer hashers.
//
// Why not one server for good: md5-simd v1.1.2 (its last release) never
// forgets a hasher once closed (minio/md5-simd#27, fixed after the
// release): its server goroutine keeps each one's channel and digest in
// maps that every hashing round walks. Over thousands of PUTs a round
// slowed down so much that 4 clients' 4 MiB PUTs fell from ~600 to
// ~380 MB/s within ten seconds, and the maps grew without bound. A server
// retired after lanesPerServer hashers is closed when its last one is,
// and its goroutine and maps go with it.
type md5Lanes struct {
	mu     sync.Mutex
	cur    *md5Gen
	closed bool
}

// lanesPerServer bounds the dead hashers a server's rounds walk: 128 cost
// a round (32 KiB a lane) a few per cent at worst, and a new server's
// buffers (1.5 MiB) are allocated once per 128 large uploads.
const lanesPerServer = 128

// md5Gen is one server and the hashers it has handed out.
type md5Gen struct {
	srv     md5simd.Server
	made    int
	live    int
	retired bool
}

// NewHash returns a hasher; Close it when done.
func (l *md5Lanes) NewHash() md5simd.Hasher {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return md5simd.StdlibHasher() // no server left to close
	}
	if l.cur == nil || l.cur.made >= lanesPerServer {
		if l.cur != nil {
			l.retire(l.cur)
		}
		l.cur = &md5Gen{srv: md5simd.NewServer()}
	}
	g := l.cur
	g.made++
	g.live++
	return &laneHasher{Hasher: g.srv.NewHash(), l: l, g: g}
}

// retire marks g as handing out no more hashers, and closes its server
// if none is in use. Called with l.mu held.
func (l *md5Lanes) retire(g *md5Gen) {
	g.retired = true
	if g.live == 0 {
		g.srv.Close()
	}
}

// Close closes the servers once their hashers are closed.
func (l *md5Lanes) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil && !l.closed {
		l.retire(l.cur)
	}
	l.closed = true
}

type laneHasher struct {
	md5simd.Hasher
	l    *md5Lanes
	g    *md5Gen
	once sync.Once
}

func (h *laneHasher) Close() {
	h.once.Do(func() {
		h.Hasher.Close()
		h.l.mu.Lock()
		defer h.l.mu.Unlock()
		h.g.live--
		if h.g.retired && h.g.live == 0 {
			h.g.srv.Close()
		}
	})
}
