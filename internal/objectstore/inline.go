package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/monostack/monostack/internal/api"
)

// inlineMax is the largest object whose bytes are kept in the database
// (table swift_blobs) instead of a file, when its length is known before
// it is read (a Content-Length).
//
// A file costs a PUT an fsync of the file and one of its directory before
// its row may commit, whatever its size; that bound small PUTs. A blob is
// written in the transaction that commits its row, so it costs no fsync of
// its own: it shares the group commit's one WAL fsync with the concurrent
// writes. The gain fades as objects grow while the costs grow with them:
// the bytes are written twice (to the WAL, then to the database at the
// checkpoint), a GET copies them out of SQLite instead of sendfile, and
// the PUT holds the whole body in memory until its commit. 64 KiB (16
// pages) keeps those costs small and bounds the memory a PUT pins.
const inlineMax = 64 << 10

// dbPrefix starts the file name of an object whose bytes are in
// swift_blobs. File names on disk start with three hex digits and a slash
// (see validFileName), so the two can never be taken for each other.
const dbPrefix = "db/"

// isDBFile reports whether an object's file is a blob in the database.
func isDBFile(rel string) bool { return strings.HasPrefix(rel, dbPrefix) }

// newDBFileName returns a fresh blob name for a version of
// account/container/name.
func newDBFileName(account, container, name string) string {
	return dbPrefix + newFileName(account, container, name)
}

// inlineBufs hold the bodies of small PUTs from their read to their commit.
var inlineBufs = sync.Pool{New: func() any {
	b := make([]byte, inlineMax)
	return &b
}}

// storeInline is storeObject for a body of known length up to inlineMax:
// the bytes are read whole, hashed, and committed in swift_blobs in the
// transaction that commits the row (and deletes the blob of the row it
// replaces). Nothing touches the file system but the file the row
// replaced, if it was one, removed after the commit.
func (s *Service) storeInline(c *Container, name string, d objectData) (Object, error) {
	if d.length > s.cfg.MaxFileSize {
		return Object{}, errTooLarge("")
	}
	bp := inlineBufs.Get().(*[]byte)
	defer inlineBufs.Put(bp)
	buf := (*bp)[:d.length]
	if err := readExactly(d.body, buf); err != nil {
		return Object{}, err
	}
	sum := md5.Sum(buf)
	etag := hex.EncodeToString(sum[:])
	if d.wantETag != "" && d.wantETag != etag {
		return Object{}, errUnprocessable()
	}
	rel := newDBFileName(c.Account, c.Name, name)
	o := Object{ContainerID: c.ID, Name: name, File: rel, Size: d.length, Stored: d.length, ETag: etag,
		ContentType: d.contentType, Modified: nowMicro(), DeleteAt: d.deleteAt, Meta: d.meta}
	if d.size >= 0 {
		o.Size = d.size
	}
	// No writeSoon: nothing slow remains between here and the commit, and
	// announcing the write while the body is read would let a slow client
	// hold back every commit. Concurrent PUTs still share commits: they
	// queue while the committer's last commit runs.
	var old string
	err := s.write(func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if old, err = s.putObjectRow(ctx, tx, &o, d.ifNoneMatch); err != nil {
			return err
		}
		// buf is copied when bound: it goes back to the pool after.
		_, err = in(ctx, tx, s.st.insertBlob).ExecContext(ctx, rel, buf)
		return err
	})
	if err != nil {
		return Object{}, storageError(err)
	}
	s.removeFile(old)
	return o, nil
}

// readExactly fills buf from body, which must end there: a body shorter
// or longer than it said is the client's failure (499), as in copyIn; an
// API error from the body (a copy's source) is passed on.
func readExactly(body io.Reader, buf []byte) error {
	_, err := io.ReadFull(body, buf)
	if err == nil {
		var one [1]byte
		var k int
		k, err = io.ReadFull(body, one[:])
		switch {
		case k > 0:
			err = io.ErrUnexpectedEOF
		case err == io.EOF:
			return nil
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	return errClientDisconnect(err)
}

// readBlob returns the bytes of an object kept in the database. A blob
// that is gone (its object replaced or deleted since its row was read) is
// os.ErrNotExist, as a file would be.
func (s *Service) readBlob(ctx context.Context, rel string) ([]byte, error) {
	var b []byte
	err := s.st.blob.QueryRowContext(ctx, rel).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", rel, os.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{} // an empty blob: non-nil, so that a piece holds it
	}
	return b, nil
}

// openBytes opens an object's bytes, in a file or in the database.
func (s *Service) openBytes(ctx context.Context, rel string) (io.ReadCloser, error) {
	if isDBFile(rel) {
		b, err := s.readBlob(ctx, rel)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return s.blobs.open(rel)
}

// pieceBytes returns the bytes of a piece that is in memory: inline data,
// or a run of a blob in the database (read now). ok is false for a piece
// of a file.
func (s *Service) pieceBytes(ctx context.Context, p piece) (b []byte, ok bool, err error) {
	if p.data != nil {
		return p.data, true, nil
	}
	if !isDBFile(p.file) {
		return nil, false, nil
	}
	b, err = s.readBlob(ctx, p.file)
	if err != nil {
		return nil, true, err
	}
	if p.off < 0 || p.n < 0 || int64(len(b)) < p.off+p.n {
		return nil, true, fmt.Errorf("%s: %w", p.file, io.ErrUnexpectedEOF)
	}
	return b[p.off : p.off+p.n], true, nil
}

// takeBytes takes an object's own bytes as a piece: a blob's read into
// it, a file's opened (and returned, for the caller to close).
func (s *Service) takeBytes(ctx context.Context, o *Object) (piece, *os.File, error) {
	pc := piece{file: o.File, n: o.Stored}
	if isDBFile(o.File) {
		b, err := s.readBlob(ctx, o.File)
		if err != nil {
			return pc, nil, err
		}
		if int64(len(b)) != o.Stored {
			return pc, nil, fmt.Errorf("%s: %d bytes, not %d", o.File, len(b), o.Stored)
		}
		pc.data = b
		return pc, nil, nil
	}
	f, err := s.blobs.open(o.File)
	return pc, f, err
}

// deleteBlob deletes, in tx, the blob of a row being deleted or replaced;
// for a file on disk it does nothing (the caller removes the file after
// the commit).
func (s *Service) deleteBlob(ctx context.Context, tx *sql.Tx, rel string) error {
	if !isDBFile(rel) {
		return nil
	}
	_, err := in(ctx, tx, s.st.deleteBlob).ExecContext(ctx, rel)
	// Pages are free only once tx commits: commitBatch invalidates the
	// gauge then, so that a PUT checked meanwhile cannot cache the old
	// count for dbFreeEvery.
	s.blobsFreed.Store(true)
	return err
}
