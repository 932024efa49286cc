package image

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blobfile"
	"github.com/monostack/monostack/internal/store"
)

// ErrNoData is returned by Open for an image that has no bytes yet.
var ErrNoData = errors.New("image has no data")

// ErrDeactivated is returned by Open for a deactivated image.
var ErrDeactivated = errors.New("image is deactivated")

// Open returns the bytes of an active image, for trusted callers inside
// monostack (compute unpacking a root filesystem). The reader is an
// *os.File, so it also seeks and reads at offsets; the caller closes it.
// The Image carries Format, what the bytes were found to be; the file's
// Name is its path, for callers that unpack or mount it in place. Open
// applies no visibility: compute checks the caller with Lookup first.
func (s *Service) Open(ctx context.Context, id string) (io.ReadCloser, Image, error) {
	im, err := s.Get(ctx, id)
	if err != nil {
		return nil, im, err
	}
	switch im.Status {
	case StatusActive:
	case StatusDeactivated:
		return nil, im, fmt.Errorf("image %s: %w", id, ErrDeactivated)
	default:
		return nil, im, fmt.Errorf("image %s is %s: %w", id, im.Status, ErrNoData)
	}
	f, err := os.Open(filepath.Join(s.imagesDir, id))
	if err != nil {
		return nil, im, fmt.Errorf("image %s: %w", id, err)
	}
	return f, im, nil
}

// receipt is data received into a temporary file.
type receipt struct {
	path string
	size int64
	// md5 is Glance's checksum; hash is os_hash_value, computed with
	// hashAlgo (the service's hashing algorithm).
	md5, hashAlgo, hash string
}

// errTooLarge: more data came than the image may have.
var errTooLarge = errors.New("image data too large")

// Receiving: blocks of blockSize bytes are read from the client and handed,
// in parallel, to the file and to both hashes; at most pipelineDepth blocks
// are in flight, so an upload holds a fixed few MiB whatever its size.
const (
	blockSize     = 1 << 20
	pipelineDepth = 4
)

type block struct {
	buf  []byte
	n    int
	refs atomic.Int32
}

var blockPool = sync.Pool{New: func() any { return &block{buf: blobfile.NewBuffer(blockSize)} }}

// receive streams r into a new file in the tmp directory, computing its MD5
// and os_hash_value on the way, and fsyncs it. The file goes through the
// page cache, where the next readers (a download, compute unpacking the
// image) find it (written O_DIRECT, a 1 GiB download ran at the disk's
// cold-read speed, 240–500 MB/s here, instead of ~1.1 GB/s); blobfile's
// writer starts writeback of every MiB as it comes, so the fsync at the
// end does not wait for the whole file. More than limit bytes is
// errTooLarge; a read error (the client went away) is returned as is. On
// any error the file is removed.
func (s *Service) receive(r io.Reader, limit int64) (rc receipt, err error) {
	f, direct, err := blobfile.CreateTemp(s.tmpDir, "upload-", false)
	if err != nil {
		return rc, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	rc.hashAlgo = s.cfg.HashAlgorithm
	md5h, shah := md5.New(), hashAlgorithms[rc.hashAlgo]()
	sinks := []io.Writer{blobfile.NewWriter(f, direct), md5h, shah}
	free := make(chan *block, pipelineDepth)
	for range pipelineDepth {
		free <- blockPool.Get().(*block)
	}
	defer func() {
		for range pipelineDepth {
			blockPool.Put(<-free)
		}
	}()
	chans := make([]chan *block, len(sinks))
	errs := make([]error, len(sinks))
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i, w := range sinks {
		ch := make(chan *block, pipelineDepth)
		chans[i] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range ch {
				if errs[i] == nil {
					if _, err := w.Write(b.buf[:b.n]); err != nil {
						errs[i] = err
						failed.Store(true)
					}
				}
				if b.refs.Add(-1) == 0 {
					free <- b
				}
			}
		}()
	}
	var readErr error
	for !failed.Load() {
		b := <-free
		n, err := fill(r, b.buf)
		rc.size += int64(n)
		if rc.size > limit {
			free <- b
			readErr = errTooLarge
			break
		}
		if n > 0 {
			b.n = n
			b.refs.Store(int32(len(chans)))
			for _, ch := range chans {
				ch <- b
			}
		} else {
			free <- b
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	if readErr != nil {
		return rc, readErr
	}
	if err := errors.Join(errs...); err != nil {
		return rc, err
	}
	if err := f.Sync(); err != nil {
		return rc, err
	}
	if err := f.Close(); err != nil {
		return rc, err
	}
	rc.path = f.Name()
	rc.md5 = hex.EncodeToString(md5h.Sum(nil))
	rc.hash = hex.EncodeToString(shah.Sum(nil))
	return rc, nil
}

// fill reads until buf is full or r fails; io.EOF means the data ended.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Upload stores data as an image's bytes (PUT /v2/images/{id}/file):
// queued → saving → active. The bytes are streamed to a temporary file,
// fsynced, checked against the container format and renamed into place
// before the image turns active; any failure (a client that goes away, a
// quota, bytes that are not what the container format says) leaves the
// image queued and no bytes behind. sizeHint is the announced size, or -1.
// It checks no policy: API callers are checked by the handler.
func (s *Service) Upload(ctx context.Context, id string, data io.Reader, sizeHint int64) (Image, error) {
	im, err := s.Get(ctx, id)
	if err != nil {
		return im, err
	}
	return s.writeData(ctx, im, data, sizeHint, false)
}

func missingFormats(im Image) error {
	var missing []string
	if im.DiskFormat == "" {
		missing = append(missing, "disk_format")
	}
	if im.ContainerFormat == "" {
		missing = append(missing, "container_format")
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return api.BadRequest("Property %s must be set prior to saving data.", missing[0])
	}
	return api.BadRequest("Properties %s must be set prior to saving data.", strings.Join(missing, ", "))
}

// writeData receives an upload (stage false) or staged data (stage true).
func (s *Service) writeData(ctx context.Context, im Image, data io.Reader, sizeHint int64, stage bool) (Image, error) {
	mid, dir := StatusSaving, s.imagesDir
	if stage {
		mid, dir = StatusUploading, s.stagingDir
	} else if err := missingFormats(im); err != nil {
		return im, err
	}
	if err := s.claim(ctx, im.ID, StatusQueued, mid); err != nil {
		return im, err
	}
	// From here on the work finishes, or is undone, even if the client
	// goes away.
	bg := context.WithoutCancel(ctx)
	fail := func(err error) (Image, error) {
		if rerr := s.resetQueued(bg, im.ID, mid); rerr != nil {
			s.log.Error("returning image to queued", "image", im.ID, "err", rerr)
		}
		return im, s.goneOr(bg, im.ID, err)
	}
	room, err := s.room(bg, s.db, im)
	if err != nil {
		return fail(err)
	}
	if sizeHint > room {
		return fail(quotaExceeded(im, room))
	}
	rc, err := s.receive(data, room)
	switch {
	case errors.Is(err, errTooLarge):
		return fail(quotaExceeded(im, room))
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return fail(&api.Error{Status: http.StatusRequestEntityTooLarge, Message: "Image storage media is full.", Err: err})
	case err != nil && !isReadError(err):
		return fail(err)
	case err != nil:
		return fail(api.BadRequest("The image data could not be read completely: %v.", err))
	}
	if sizeHint >= 0 && rc.size != sizeHint {
		os.Remove(rc.path)
		return fail(api.BadRequest("The image data is %d bytes long, not the %d bytes announced.", rc.size, sizeHint))
	}
	var format Format
	if !stage {
		if format, err = inspect(rc.path, im.ContainerFormat, im.DiskFormat); err != nil {
			os.Remove(rc.path)
			return fail(err)
		}
	}
	dst := filepath.Join(dir, im.ID)
	if err := os.Rename(rc.path, dst); err != nil {
		os.Remove(rc.path)
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		os.Remove(dst)
		return fail(err)
	}
	err = s.db.Tx(bg, func(tx *sql.Tx) error {
		room, err := s.room(bg, tx, im)
		if err != nil {
			return err
		}
		if rc.size > room {
			return quotaExceeded(im, room)
		}
		var res sql.Result
		if stage {
			res, err = tx.ExecContext(bg, `UPDATE images SET size=?, staged_checksum=?, staged_hash=?, staged_hash_algo=?,
				updated_at=? WHERE id=? AND status=?`, rc.size, rc.md5, rc.hash, rc.hashAlgo, timeText(now()), im.ID, mid)
		} else {
			res, err = tx.ExecContext(bg, `UPDATE images SET status=?, size=?, virtual_size=?, checksum=?, os_hash_algo=?,
				os_hash_value=?, format=?, updated_at=? WHERE id=? AND status=?`, StatusActive, rc.size, nullSize(format.VirtualSize),
				rc.md5, rc.hashAlgo, rc.hash, formatJSON(format), timeText(now()), im.ID, mid)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errGone(im.ID)
		}
		return nil
	})
	if err != nil {
		os.Remove(dst)
		syncDir(dir)
		return fail(err)
	}
	return s.Get(bg, im.ID)
}

func nullSize(n int64) any {
	if n <= 0 {
		return nil
	}
	return n
}

// goneOr returns err, or a 410 if the image was deleted meanwhile (which
// is then the reason the work failed).
func (s *Service) goneOr(ctx context.Context, id string, err error) error {
	if _, gerr := s.Get(ctx, id); errors.Is(gerr, store.ErrNotFound) {
		return errGone(id)
	}
	return err
}

func errGone(id string) error {
	return api.Errorf(http.StatusGone, "Image %s could not be found after upload. The image may have been deleted during the upload.", id)
}

// isReadError tells the client's failures (a cut connection, a body shorter
// than announced) from the server's (a full disk).
func isReadError(err error) bool {
	var pe *os.PathError
	var le *os.LinkError
	return !errors.As(err, &pe) && !errors.As(err, &le)
}

// claim moves an image from one status to another, or says why it cannot.
func (s *Service) claim(ctx context.Context, id, from, to string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE images SET status=?, updated_at=? WHERE id=? AND status=?`,
		to, timeText(now()), id, from)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	im, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	return api.Conflict("Image status transition from %s to %s is not allowed", im.Status, to)
}

// resetQueued returns an image in status from to queued, forgetting any
// size and hashes, and removes staged bytes.
func (s *Service) resetQueued(ctx context.Context, id, from string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE images SET status='queued', size=NULL, virtual_size=NULL, checksum=NULL,
		os_hash_algo=NULL, os_hash_value=NULL, staged_checksum=NULL, staged_hash=NULL, staged_hash_algo=NULL, format='{}',
		updated_at=? WHERE id=? AND status=?`, timeText(now()), id, from)
	if from == StatusUploading || from == StatusImporting {
		if rerr := os.Remove(filepath.Join(s.stagingDir, id)); rerr == nil {
			syncDir(s.stagingDir)
		}
	}
	return err
}

// Stage stores data for a later glance-direct import (PUT
// /v2/images/{id}/stage): queued → uploading.
func (s *Service) Stage(ctx context.Context, id string, data io.Reader, sizeHint int64) (Image, error) {
	im, err := s.Get(ctx, id)
	if err != nil {
		return im, err
	}
	return s.writeData(ctx, im, data, sizeHint, true)
}

// Import runs the glance-direct import of staged data: uploading →
// importing → active. The staged bytes are checked against the container
// format and moved into the store; if they do not match, they are removed
// and the image goes back to queued.
func (s *Service) Import(ctx context.Context, id string) (Image, error) {
	im, err := s.Get(ctx, id)
	if err != nil {
		return im, err
	}
	if im.Status != StatusUploading || im.stagedHash == "" {
		return im, api.Conflict("Image needs to be staged before 'glance-direct' method can be used")
	}
	if im.ContainerFormat == "" {
		return im, api.Conflict("'container_format' needs to be set before import")
	}
	if im.DiskFormat == "" {
		return im, api.Conflict("'disk_format' needs to be set before import")
	}
	if err := s.claim(ctx, id, StatusUploading, StatusImporting); err != nil {
		return im, err
	}
	bg := context.WithoutCancel(ctx)
	fail := func(err error) (Image, error) {
		if rerr := s.resetQueued(bg, id, StatusImporting); rerr != nil {
			s.log.Error("returning image to queued", "image", id, "err", rerr)
		}
		return im, s.goneOr(bg, id, err)
	}
	staged := filepath.Join(s.stagingDir, id)
	format, err := inspect(staged, im.ContainerFormat, im.DiskFormat)
	if err != nil {
		return fail(err)
	}
	// Glance computes os_hash_value at import, with the algorithm in force
	// then: staged data hashed under another one is hashed again.
	algo, value := im.stagedHashAlgo, im.stagedHash
	if algo != s.cfg.HashAlgorithm {
		if value, err = hashFile(staged, s.cfg.HashAlgorithm); err != nil {
			return fail(err)
		}
		algo = s.cfg.HashAlgorithm
	}
	dst := filepath.Join(s.imagesDir, id)
	if err := os.Rename(staged, dst); err != nil {
		return fail(err)
	}
	if err := errors.Join(syncDir(s.imagesDir), syncDir(s.stagingDir)); err != nil {
		os.Remove(dst)
		return fail(err)
	}
	err = s.db.Tx(bg, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(bg, `UPDATE images SET status=?, checksum=staged_checksum,
			os_hash_algo=?, os_hash_value=?, staged_checksum=NULL, staged_hash=NULL, staged_hash_algo=NULL,
			virtual_size=?, format=?, updated_at=? WHERE id=? AND status=?`, StatusActive, algo, value,
			nullSize(format.VirtualSize), formatJSON(format), timeText(now()), id, StatusImporting)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errGone(id)
		}
		// What Glance leaves on an imported image.
		for _, p := range []string{"os_glance_importing_to_stores", "os_glance_failed_import"} {
			if _, err := tx.ExecContext(bg, `INSERT INTO image_properties (image_id, name, value) VALUES (?,?,'')
				ON CONFLICT (image_id, name) DO UPDATE SET value=''`, id, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		os.Remove(dst)
		syncDir(s.imagesDir)
		return fail(err)
	}
	return s.Get(bg, id)
}
