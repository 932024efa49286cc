package shim

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// consoleLog is a log file that keeps the last max bytes: when it reaches
// max it is renamed to NAME.1 (replacing the one before) and started
// anew, so NAME.1 followed by NAME always hold at least the last max
// bytes written, and never more than 2*max.
//
// Beside it, NAME.idx (rotated with it to NAME.1.idx) says when each part
// of the log was written and by which stream: a record of idxRecord bytes
// (offset in NAME, Unix nanoseconds, stream) whenever the stream changes
// or a millisecond has passed since the last record. That is what `logs
// --timestamps`, `--since` and stdout/stderr alone read (ReadConsoleParts);
// at most one record a millisecond bounds the index at 17 KB a second.
type consoleLog struct {
	mu     sync.Mutex // the copies of stdout and stderr write at once
	name   string
	max    int64
	f, idx *os.File
	size   int64
	// last record's time and stream; lastAt zero: none in this file yet
	lastAt     int64
	lastStream byte
}

// Streams of a console log part.
const (
	Stdout byte = 1
	Stderr byte = 2
)

const idxRecord = 17

func openConsole(name string, max int64) (*consoleLog, error) {
	if max <= 0 {
		max = 1 << 20
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	idx, err := os.OpenFile(name+".idx", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		idx.Close()
		return nil, err
	}
	return &consoleLog{name: name, max: max, f: f, idx: idx, size: st.Size()}, nil
}

// Write writes p as the container's standard output.
func (l *consoleLog) Write(p []byte) (int, error) { return l.WriteStream(Stdout, p) }

// stream is an io.Writer of one stream of l.
type stream struct {
	l  *consoleLog
	id byte
}

func (s stream) Write(p []byte) (int, error) { return s.l.WriteStream(s.id, p) }

// WriteStream writes p as written by stream id, now.
func (l *consoleLog) WriteStream(id byte, p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if l.size >= l.max {
			if err := l.rotate(); err != nil {
				return written, err
			}
		}
		chunk := p
		if room := l.max - l.size; int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		if now := time.Now().UnixNano(); l.lastAt == 0 || id != l.lastStream || now-l.lastAt >= int64(time.Millisecond) {
			var rec [idxRecord]byte
			binary.LittleEndian.PutUint64(rec[0:], uint64(l.size))
			binary.LittleEndian.PutUint64(rec[8:], uint64(now))
			rec[16] = id
			// The index only adds precision: a failed record loses the
			// time of these bytes, never the bytes.
			l.idx.Write(rec[:])
			l.lastAt, l.lastStream = now, id
		}
		n, err := l.f.Write(chunk)
		written += n
		l.size += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (l *consoleLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	l.idx.Close()
	if err := os.Rename(l.name, l.name+".1"); err != nil {
		return err
	}
	os.Rename(l.name+".idx", l.name+".1.idx")
	f, err := os.OpenFile(l.name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	idx, err := os.OpenFile(l.name+".idx", os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.idx, l.size, l.lastAt = f, idx, 0, 0
	return nil
}

func (l *consoleLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.idx.Close()
	return err
}

// ReadConsole returns the last tail bytes of the console log name (with
// its rotated part NAME.1 before it); all of it when tail <= 0. A log that
// was never written is empty.
func ReadConsole(name string, tail int64) ([]byte, error) {
	var parts [][]byte
	var total int64
	for _, n := range []string{name, name + ".1"} { // newest first
		if tail > 0 && total >= tail {
			break
		}
		b, err := readTail(n, tail-total, tail > 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, b)
		total += int64(len(b))
	}
	out := make([]byte, 0, total)
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i]...)
	}
	if tail > 0 && int64(len(out)) > tail {
		out = out[int64(len(out))-tail:]
	}
	return out, nil
}

func readTail(name string, n int64, limited bool) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if limited {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if st.Size() > n {
			if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
				return nil, err
			}
		}
	}
	return io.ReadAll(f)
}

// Part is a run of a console log written by one stream at about one time
// (At is zero for bytes written before the log had an index).
type Part struct {
	At     time.Time `json:"at"`
	Stream byte      `json:"stream"`
	Data   []byte    `json:"data"`
}

// ReadConsoleParts returns the whole console log name (NAME.1, then NAME)
// as the parts its index describes, oldest first.
func ReadConsoleParts(name string) ([]Part, error) {
	var out []Part
	for _, n := range []string{name + ".1", name} {
		data, err := os.ReadFile(n)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		idx, err := os.ReadFile(n + ".idx")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		out = append(out, parts(data, idx)...)
	}
	return out, nil
}

// parts cuts data at the offsets its index records.
func parts(data, idx []byte) []Part {
	var out []Part
	type rec struct {
		off    int64
		at     time.Time
		stream byte
	}
	var recs []rec
	for len(idx) >= idxRecord {
		off := int64(binary.LittleEndian.Uint64(idx[0:]))
		at := time.Unix(0, int64(binary.LittleEndian.Uint64(idx[8:]))).UTC()
		if off > int64(len(data)) || (len(recs) > 0 && off < recs[len(recs)-1].off) {
			break // written past what the log holds (a crash): the rest is unknown
		}
		recs = append(recs, rec{off, at, idx[16]})
		idx = idx[idxRecord:]
	}
	if len(recs) == 0 || recs[0].off > 0 {
		end := int64(len(data))
		if len(recs) > 0 {
			end = recs[0].off
		}
		out = append(out, Part{Stream: Stdout, Data: data[:end]})
	}
	for i, r := range recs {
		end := int64(len(data))
		if i+1 < len(recs) {
			end = recs[i+1].off
		}
		if end > r.off {
			out = append(out, Part{At: r.at, Stream: r.stream, Data: data[r.off:end]})
		}
	}
	return out
}
