package objectstore

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"sync"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blobfile"
	"github.com/monostack/monostack/internal/store"
)

// Object is an object's row: its name, the file holding its bytes, and what
// Swift reports of it.
type Object struct {
	ContainerID int64
	Name        string
	File        string // relative to DataDir/objects, or "db/...": a blob in swift_blobs
	Size        int64  // bytes served (an SLO manifest: the sum of its segments)
	Stored      int64  // bytes of the file (or blob)
	ETag        string // MD5 of the file (or blob)
	ContentType string
	Modified    int64 // microseconds
	DeleteAt    int64 // Unix seconds; 0: never
	Meta        meta
}

// Keys of an object's metadata with special meaning.
const (
	hdrManifest = "X-Object-Manifest"     // DLO: container/prefix
	hdrStatic   = "X-Static-Large-Object" // SLO manifest: "True"
	sysSLOETag  = sysmetaPrefix + "Slo-Etag"
	hdrDeleteAt = "X-Delete-At"
)

func (o *Object) isSLO() bool { return o.Meta[hdrStatic] != "" }
func (o *Object) isDLO() bool { return o.Meta[hdrManifest] != "" && !o.isSLO() }

// expired reports whether the object is past its X-Delete-At at now (Unix
// seconds): it is then gone for every request, before the expirer removes it.
func (o *Object) expired(now int64) bool { return o.DeleteAt != 0 && o.DeleteAt <= now }

func nowUnix() int64 { return time.Now().Unix() }

const objectCols = `container_id, name, file, size, stored, etag, content_type, modified, delete_at, meta`

func scanObject(row rowScanner) (Object, error) {
	var o Object
	var m string
	err := row.Scan(&o.ContainerID, &o.Name, &o.File, &o.Size, &o.Stored, &o.ETag, &o.ContentType, &o.Modified, &o.DeleteAt, &m)
	if err != nil {
		return o, store.Translate(err)
	}
	o.Meta = decodeMeta(m)
	return o, nil
}

// getObject returns a live object; a missing or expired one is a 404.
func (s *Service) getObject(ctx context.Context, tx *sql.Tx, containerID int64, name string) (Object, error) {
	o, err := scanObject(in(ctx, tx, s.st.object).QueryRowContext(ctx, containerID, name))
	if errors.Is(err, store.ErrNotFound) || err == nil && o.expired(nowUnix()) {
		return o, errNotFound()
	}
	return o, err
}

// putObjectRow inserts or replaces the object's row and updates its
// container's counters. The bytes of the row it replaces go with it: a
// blob in the database is deleted here, in tx; a file is returned, for the
// caller to remove after the commit ("" if none). With ifNoneMatch, an
// existing live object is a 412.
func (s *Service) putObjectRow(ctx context.Context, tx *sql.Tx, o *Object, ifNoneMatch bool) (oldFile string, err error) {
	var oldStored, oldDeleteAt int64
	err = in(ctx, tx, s.st.objectFile).QueryRowContext(ctx, o.ContainerID, o.Name).Scan(&oldFile, &oldStored, &oldDeleteAt)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if exists && ifNoneMatch && (oldDeleteAt == 0 || oldDeleteAt > nowUnix()) {
		return "", errPrecondition("")
	}
	var countDelta, bytesDelta int64 = 1, o.Stored
	if exists {
		countDelta, bytesDelta = 0, o.Stored-oldStored
		_, err = in(ctx, tx, s.st.updateObject).ExecContext(ctx, o.File, o.Size, o.Stored, o.ETag, o.ContentType, o.Modified, o.DeleteAt, o.Meta.encode(), o.ContainerID, o.Name)
	} else {
		_, err = in(ctx, tx, s.st.insertObject).ExecContext(ctx, o.ContainerID, o.Name, o.File, o.Size, o.Stored, o.ETag, o.ContentType, o.Modified, o.DeleteAt, o.Meta.encode())
	}
	if errors.Is(store.Translate(err), store.ErrReferenced) {
		return "", errNotFound() // the container went away
	}
	if err != nil {
		return "", err
	}
	res, err := in(ctx, tx, s.st.countObjects).ExecContext(ctx, countDelta, bytesDelta, o.ContainerID)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return "", errNotFound()
	}
	if !exists {
		return "", nil
	}
	if isDBFile(oldFile) {
		return "", s.deleteBlob(ctx, tx, oldFile)
	}
	return oldFile, nil
}

// deleteObjectRow removes the object's row and updates the counters; it
// returns the row, whose file the caller removes after the commit (a blob
// in the database is deleted here, in tx). A missing object is a 404 (an
// expired one is removed and still a 404).
func (s *Service) deleteObjectRow(ctx context.Context, tx *sql.Tx, containerID int64, name string) (Object, error) {
	o, err := scanObject(in(ctx, tx, s.st.object).QueryRowContext(ctx, containerID, name))
	if errors.Is(err, store.ErrNotFound) {
		return o, errNotFound()
	}
	if err != nil {
		return o, err
	}
	if _, err := in(ctx, tx, s.st.deleteObject).ExecContext(ctx, containerID, name); err != nil {
		return o, err
	}
	if err := s.deleteBlob(ctx, tx, o.File); err != nil {
		return o, err
	}
	if _, err := in(ctx, tx, s.st.countObjects).ExecContext(ctx, -1, -o.Stored, containerID); err != nil {
		return o, err
	}
	return o, nil
}

// deleteObject removes an object: the row first, then the file.
func (s *Service) deleteObject(ctx context.Context, containerID int64, name string) (Object, error) {
	var o Object
	err := s.write(func(ctx context.Context, tx *sql.Tx) error {
		var err error
		o, err = s.deleteObjectRow(ctx, tx, containerID, name)
		return err
	})
	if err != nil {
		return o, err
	}
	s.removeFile(o.File)
	if o.expired(nowUnix()) {
		return o, errNotFound()
	}
	return o, nil
}

// updateObject changes an object's row (not its bytes) with fn.
func (s *Service) updateObject(ctx context.Context, containerID int64, name string, fn func(o *Object) error) (Object, error) {
	var o Object
	err := s.write(func(ctx context.Context, tx *sql.Tx) error {
		var err error
		o, err = s.getObject(ctx, tx, containerID, name)
		if err != nil {
			return err
		}
		if err := fn(&o); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE swift_objects SET content_type=?, modified=?, delete_at=?, meta=? WHERE container_id=? AND name=?`,
			o.ContentType, o.Modified, o.DeleteAt, o.Meta.encode(), containerID, name)
		return err
	})
	return o, err
}

// reapExpired removes the objects past their X-Delete-At, returning how
// many it removed.
func (s *Service) reapExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		now := nowUnix()
		type victim struct {
			cid  int64
			name string
		}
		var victims []victim
		rows, err := s.db.QueryContext(ctx, `SELECT container_id, name FROM swift_objects WHERE delete_at > 0 AND delete_at <= ? LIMIT 500`, now)
		if err != nil {
			return total, err
		}
		for rows.Next() {
			var v victim
			if err := rows.Scan(&v.cid, &v.name); err != nil {
				rows.Close()
				return total, err
			}
			victims = append(victims, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(victims) == 0 {
			return total, err
		}
		var files []string
		err = s.write(func(ctx context.Context, tx *sql.Tx) error {
			files = files[:0]
			for _, v := range victims {
				o, err := scanObject(in(ctx, tx, s.st.object).QueryRowContext(ctx, v.cid, v.name))
				if errors.Is(err, store.ErrNotFound) || err == nil && !o.expired(now) {
					continue // replaced or removed meanwhile
				}
				if err != nil {
					return err
				}
				if _, err := s.deleteObjectRow(ctx, tx, v.cid, v.name); err != nil {
					return err
				}
				files = append(files, o.File)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		for _, f := range files {
			s.removeFile(f)
		}
		total += len(files)
		if len(victims) < 500 {
			return total, nil
		}
	}
}

// copyBufs are the buffers object bytes stream through: 1 MiB, aligned for
// O_DIRECT.
var copyBufs = sync.Pool{New: func() any {
	b := blobfile.NewBuffer(copyBufSize)
	return &b
}}

const (
	copyBufSize = 1 << 20
	// directMinSize is the size from which an upload bypasses the page
	// cache (O_DIRECT): copying gigabytes into fresh page cache costs more
	// CPU than the hashing, and the fsync then has nothing left to write.
	directMinSize = 1 << 20
)

// objectData is what storeObject writes: the bytes, and what to check and
// keep with them.
type objectData struct {
	body        io.Reader
	length      int64  // -1 when unknown (chunked)
	wantETag    string // the client's ETag, checked after the bytes are in
	contentType string
	meta        meta
	deleteAt    int64
	ifNoneMatch bool // If-None-Match: * — refuse to overwrite
	// size overrides the bytes served for an SLO manifest (-1: the file's).
	size int64
}

// storeObject writes an object durably and commits its row. A body of
// known length up to inlineMax goes into the database with its row (see
// storeInline). Any other goes to a temporary file, hashed as it streams;
// the file is fsynced and renamed into place and its directory fsynced
// before the row is committed. The file of the row it replaces is removed
// afterwards (a blob, in the transaction).
func (s *Service) storeObject(ctx context.Context, c *Container, name string, d objectData) (Object, error) {
	inline := d.length >= 0 && d.length <= inlineMax
	done, err := s.checkRoom(ctx, d.length, inline)
	if err != nil {
		return Object{}, err
	}
	defer done()
	if d.length < 0 {
		d.body = &roomReader{s: s, ctx: ctx, r: d.body, next: roomEvery}
	}
	if inline {
		return s.storeInline(c, name, d)
	}
	large := d.length < 0 || d.length >= directMinSize
	f, direct, err := s.blobs.createTemp(large)
	if err != nil {
		return Object{}, storageError(err)
	}
	// Large bodies are hashed by the SIMD server, which hashes many
	// uploads at once on one core; small ones by crypto/md5, with no
	// hand-off.
	var h hash.Hash = md5.New()
	if large {
		sh := s.md5s.NewHash()
		defer sh.Close()
		h = sh
	}
	n, err := s.copyIn(f, direct, h, d.body)
	if err == nil && d.length >= 0 && n != d.length {
		err = errClientDisconnect(io.ErrUnexpectedEOF)
	}
	if err != nil {
		s.blobs.discard(f)
		return Object{}, err
	}
	etag := hex.EncodeToString(h.Sum(nil))
	if d.wantETag != "" && d.wantETag != etag {
		s.blobs.discard(f)
		return Object{}, errUnprocessable()
	}
	rel := newFileName(c.Account, c.Name, name)
	commit := s.writeSoon()
	if err := s.blobs.install(f, rel); err != nil {
		commit(nil)
		return Object{}, storageError(err)
	}
	o := Object{ContainerID: c.ID, Name: name, File: rel, Size: n, Stored: n, ETag: etag,
		ContentType: d.contentType, Modified: nowMicro(), DeleteAt: d.deleteAt, Meta: d.meta}
	if d.size >= 0 {
		o.Size = d.size
	}
	var old string
	err = commit(func(ctx context.Context, tx *sql.Tx) error {
		var err error
		old, err = s.putObjectRow(ctx, tx, &o, d.ifNoneMatch)
		return err
	})
	if err != nil {
		s.removeFile(rel)
		return Object{}, err
	}
	s.removeFile(old)
	return o, nil
}

// copyIn streams body into f, hashing it, up to MaxFileSize bytes, in
// whole buffers. Failures reading are the client's (499), failures
// writing the disk's (507 when full).
//
// On an O_DIRECT file each write waits for the device, so reading (and
// hashing) the next buffer overlaps writing the last one: a writer
// goroutine takes full buffers and hands them back. Every write but the
// last is aligned; the unaligned tail is written after O_DIRECT is
// turned off.
func (s *Service) copyIn(f *os.File, direct bool, h hash.Hash, body io.Reader) (int64, error) {
	if !direct {
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		w := blobfile.NewWriter(f, false)
		return s.readChunks(body, h, func() *[]byte { return bp }, func(bp *[]byte, k int) error {
			_, err := w.Write((*bp)[:k])
			return storageError(err)
		})
	}
	const depth = 3
	free := make(chan *[]byte, depth)
	for range depth {
		free <- copyBufs.Get().(*[]byte)
	}
	type chunk struct {
		bp *[]byte
		k  int
	}
	full := make(chan chunk, depth)
	failed := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		w := blobfile.NewWriter(f, true)
		var err error
		for c := range full {
			if err == nil {
				if _, err = w.Write((*c.bp)[:c.k]); err != nil {
					err = storageError(err)
					close(failed)
				}
			}
			free <- c.bp
		}
		werr <- err
	}()
	n, rerr := s.readChunks(body, h, func() *[]byte {
		select {
		case bp := <-free:
			return bp
		case <-failed:
			return nil
		}
	}, func(bp *[]byte, k int) error {
		full <- chunk{bp, k}
		return nil
	})
	close(full)
	err := <-werr
	for range depth {
		copyBufs.Put(<-free)
	}
	if err != nil {
		return n, err
	}
	return n, rerr
}

// readChunks reads body in whole buffers (from next; nil stops the read),
// hashes each and hands it to put, which owns it from then on (even
// empty).
func (s *Service) readChunks(body io.Reader, h hash.Hash, next func() *[]byte, put func(bp *[]byte, k int) error) (int64, error) {
	var n int64
	for {
		bp := next()
		if bp == nil {
			return n, nil // the writer failed; it reports why
		}
		k, rerr := io.ReadFull(body, *bp)
		if rerr == io.ErrUnexpectedEOF {
			rerr = io.EOF
		}
		n += int64(k)
		if n > s.cfg.MaxFileSize {
			put(bp, 0)
			return n, errTooLarge("")
		}
		h.Write((*bp)[:k])
		if err := put(bp, k); err != nil {
			return n, err
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			var ae *api.Error
			if errors.As(rerr, &ae) {
				return n, rerr
			}
			return n, errClientDisconnect(rerr)
		}
	}
}
