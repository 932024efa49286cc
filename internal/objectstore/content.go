package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/monostack/monostack/internal/api"
)

// piece is a run of bytes of an entity: bytes [off, off+n) of a file or
// of a blob in the database (a file named "db/..."), or data in memory (an
// SLO data segment, or a blob already read).
type piece struct {
	file   string
	off, n int64
	data   []byte
}

// entity is what a GET serves: the bytes (as pieces) and what describes them.
type entity struct {
	pieces      []piece
	size        int64
	etag        string // as matched by If-Match and friends
	etagHeader  string // as sent (quoted for large objects)
	modified    int64
	contentType string
	// singleRange: multiple ranges are ignored (a DLO, as Swift does).
	singleRange bool
	// first is the first piece's file, already open (plain objects).
	first *os.File
}

func (e *entity) close() {
	if e.first != nil {
		e.first.Close()
		e.first = nil
	}
}

// serve writes the entity: conditional answers (304, 412), HEAD, ranges
// (206, multipart/byteranges, 416) or the whole. Headers describing the
// object are already in w.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, e *entity) error {
	defer e.close()
	e.contentType = withoutSwiftBytes(e.contentType) // rows written before it was dropped on PUT
	h := w.Header()
	h.Set("Content-Type", e.contentType)
	h.Set("Etag", e.etagHeader)
	h.Set("Last-Modified", httpDate(e.modified))
	h.Set("Accept-Ranges", "bytes")
	if st := conditional(r, e.etag, e.modified); st != 0 {
		h.Set("Content-Length", "0")
		w.WriteHeader(st)
		return nil
	}
	if r.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(e.size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if specs, ok := parseRange(r.Header.Get("Range")); ok && !(e.singleRange && len(specs) > 1) {
		ranges := rangesFor(specs, e.size)
		switch {
		case len(ranges) == 0:
			h.Del("Etag")
			h.Del("Last-Modified")
			return errRangeNotSatisfiable(e.size)
		case e.size == 0:
			// bytes=-N of an empty object: the whole (empty) object, as
			// Swift (and Apache and nginx) answer.
		case len(ranges) == 1:
			rg := ranges[0]
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.end-1, e.size))
			h.Set("Content-Length", strconv.FormatInt(rg.end-rg.start, 10))
			w.WriteHeader(http.StatusPartialContent)
			return s.writeRange(r.Context(), w, e, rg.start, rg.end)
		default:
			boundary := newBoundary()
			heads, tail, length := multipartParts(ranges, e.contentType, boundary, e.size)
			h.Set("Content-Type", "multipart/byteranges;boundary="+boundary)
			h.Set("Content-Length", strconv.FormatInt(length, 10))
			w.WriteHeader(http.StatusPartialContent)
			for i, rg := range ranges {
				if _, err := io.WriteString(w, heads[i]); err != nil {
					return nil
				}
				if err := s.writeRange(r.Context(), w, e, rg.start, rg.end); err != nil {
					return err
				}
			}
			io.WriteString(w, tail)
			return nil
		}
	}
	h.Set("Content-Length", strconv.FormatInt(e.size, 10))
	w.WriteHeader(http.StatusOK)
	return s.writeRange(r.Context(), w, e, 0, e.size)
}

// writeRange writes bytes [start, end) of the entity. The status line is
// sent by then, so a failure (the client gone, or a segment removed
// meanwhile) can only cut the connection.
func (s *Service) writeRange(ctx context.Context, w io.Writer, e *entity, start, end int64) error {
	if err := s.copyPieces(ctx, w, e, start, end); err != nil {
		s.log.Debug("object body cut short", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// copyPieces copies bytes [start, end) of the entity's pieces to w.
func (s *Service) copyPieces(ctx context.Context, w io.Writer, e *entity, start, end int64) error {
	var pos int64
	for i, p := range e.pieces {
		if pos >= end {
			break
		}
		pstart, pend := pos, pos+p.n
		pos = pend
		if pend <= start {
			continue
		}
		from, to := max(start, pstart)-pstart, min(end, pend)-pstart
		if b, ok, err := s.pieceBytes(ctx, p); ok {
			if err != nil {
				return err
			}
			if _, err := w.Write(b[from:to]); err != nil {
				return err
			}
			continue
		}
		f := e.first
		if i != 0 || f == nil {
			var err error
			if f, err = s.blobs.open(p.file); err != nil {
				return err
			}
		} else {
			e.first = nil
		}
		err := copyFileRange(w, f, p.off+from, to-from)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// copyFileRange copies n bytes of f from off to w. From an *os.File (under
// an io.LimitedReader) to the response of a TCP connection, this is sendfile.
func copyFileRange(w io.Writer, f *os.File, off, n int64) error {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	k, err := io.Copy(w, io.LimitReader(f, n))
	if err == nil && k < n {
		err = fmt.Errorf("%s: %w", f.Name(), io.ErrUnexpectedEOF)
	}
	return err
}

// pieceReader reads an entity's pieces in order, as the body of a copy.
type pieceReader struct {
	s      *Service
	ctx    context.Context
	pieces []piece
	cur    io.Reader
	f      *os.File
	// first, when set, is the first piece's file, already open.
	first *os.File
}

func (s *Service) newPieceReader(ctx context.Context, pieces []piece) *pieceReader {
	return &pieceReader{s: s, ctx: ctx, pieces: pieces}
}

func (pr *pieceReader) Read(p []byte) (int, error) {
	for {
		if pr.cur != nil {
			n, err := pr.cur.Read(p)
			if err == io.EOF {
				pr.closeFile()
				pr.cur = nil
				if n > 0 {
					return n, nil
				}
				continue
			}
			if err != nil {
				return n, &api.Error{Status: http.StatusInternalServerError,
					Message: "An unexpected error prevented the server from fulfilling your request.", Err: err}
			}
			return n, nil
		}
		if len(pr.pieces) == 0 {
			return 0, io.EOF
		}
		pc := pr.pieces[0]
		pr.pieces = pr.pieces[1:]
		if b, ok, err := pr.s.pieceBytes(pr.ctx, pc); ok {
			if err != nil {
				return 0, segmentError(err)
			}
			pr.cur = &sliceReader{b: b}
			continue
		}
		f, err := pr.first, error(nil)
		if pr.first != nil {
			pr.first = nil
		} else {
			f, err = pr.s.blobs.open(pc.file)
		}
		if err == nil {
			_, err = f.Seek(pc.off, io.SeekStart)
		}
		if err != nil {
			if f != nil {
				f.Close()
			}
			return 0, segmentError(err)
		}
		pr.f = f
		pr.cur = &exactReader{r: io.LimitReader(f, pc.n), left: pc.n}
	}
}

// segmentError is the answer to a source's bytes that could not be read:
// gone (replaced or deleted since its row was read) is a 409, as Swift
// says of a missing segment; anything else (a busy or failing database, a
// disk error) is the server's; a client gone is its own (499).
func segmentError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errClientDisconnect(err) // the client went away: not the server's failure
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, io.ErrUnexpectedEOF) {
		return swiftError(http.StatusConflict, "A segment of the source object is gone.")
	}
	return &api.Error{Status: http.StatusInternalServerError,
		Message: "An unexpected error prevented the server from fulfilling your request.", Err: err}
}

func (pr *pieceReader) closeFile() {
	if pr.f != nil {
		pr.f.Close()
		pr.f = nil
	}
}

func (pr *pieceReader) Close() error {
	pr.closeFile()
	if pr.first != nil {
		pr.first.Close()
		pr.first = nil
	}
	return nil
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// exactReader fails when its source ends before left bytes.
type exactReader struct {
	r    io.Reader
	left int64
}

func (r *exactReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}
