package objectstore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/monostack/monostack/internal/blobfile"
)

// blobStore keeps object bytes in files named for a hash of the object's
// account, container and name (never the name itself), each version in its
// own file so that a row always names a file nobody will write again:
//
//	DataDir/objects/<3 hex digits>/<64 hex digits>-<version>
//	DataDir/tmp/<random>           files being written
type blobStore struct {
	objects string
	tmp     string
	dirs    sync.Map // prefix directories known to exist (and be durable)
	dirMu   sync.Mutex
}

func openBlobStore(dataDir string) (*blobStore, error) {
	b := &blobStore{objects: filepath.Join(dataDir, "objects"), tmp: filepath.Join(dataDir, "tmp")}
	for _, d := range []string{dataDir, b.objects, b.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("objectstore: %w", err)
		}
	}
	if err := syncDir(dataDir); err != nil {
		return nil, err
	}
	return b, nil
}

// newFileName returns a fresh relative file name for a version of
// account/container/name.
func newFileName(account, container, name string) string {
	h := sha256.New()
	h.Write([]byte(account))
	h.Write([]byte{'/'})
	h.Write([]byte(container))
	h.Write([]byte{'/'})
	h.Write([]byte(name))
	sum := hex.EncodeToString(h.Sum(nil))
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s/%s-%x%s", sum[:3], sum, time.Now().UnixNano(), hex.EncodeToString(r[:]))
}

// validFileName reports whether rel has the shape newFileName makes; the
// start-up check removes anything else it finds. Names of blobs in the
// database ("db/" + such a name, see inline.go) never pass: they are not
// files.
func validFileName(rel string) bool {
	dir, base, ok := strings.Cut(rel, "/")
	if !ok || len(dir) != 3 || !isHex(dir) || len(base) < 66 || base[64] != '-' || !strings.HasPrefix(base, dir) {
		return false
	}
	return isHex(base[:64]) && isHex(base[65:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (b *blobStore) path(rel string) string { return filepath.Join(b.objects, filepath.FromSlash(rel)) }

// createTemp opens a new temporary file, with O_DIRECT if direct and the
// file system allows it (isDirect says).
func (b *blobStore) createTemp(direct bool) (f *os.File, isDirect bool, err error) {
	return blobfile.CreateTemp(b.tmp, "put-", direct)
}

// install makes the temporary file f durable under rel: rename it into
// place, fsync it, fsync its directory. f is closed either way, and removed
// on failure.
//
// Renaming before the fsync is safe here, unlike in the usual
// replace-a-file dance, because no reader can see the file until a row
// names it, and the row is committed only after both fsyncs: a crash in
// between leaves an orphan (removed at start-up), never a row pointing at
// bytes not on disk. It lets one journal commit carry the data and the
// new name, so the directory's fsync is usually only a cache flush; on
// ext4 that made 4 KiB PUTs about a third faster.
func (b *blobStore) install(f *os.File, rel string) error {
	err := b.ensureDir(rel)
	dst := b.path(rel)
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(dst))
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// discard closes and removes a temporary file that will not be installed.
func (b *blobStore) discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// ensureDir makes rel's prefix directory, durably, once.
func (b *blobStore) ensureDir(rel string) error {
	dir, _, _ := strings.Cut(rel, "/")
	if _, ok := b.dirs.Load(dir); ok {
		return nil
	}
	b.dirMu.Lock()
	defer b.dirMu.Unlock()
	if _, ok := b.dirs.Load(dir); ok {
		return nil
	}
	full := filepath.Join(b.objects, dir)
	if _, err := os.Stat(full); err != nil {
		if err := os.Mkdir(full, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
		if err := syncDir(b.objects); err != nil {
			return err
		}
	}
	b.dirs.Store(dir, true)
	return nil
}

// remove deletes a file whose row is gone. A file already missing is fine.
func (b *blobStore) remove(rel string) error {
	if rel == "" {
		return nil
	}
	err := os.Remove(b.path(rel))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

func (b *blobStore) open(rel string) (*os.File, error) { return os.Open(b.path(rel)) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
