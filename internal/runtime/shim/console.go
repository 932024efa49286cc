package shim

import (
	"errors"
	"io"
	"os"
)

// consoleLog is a log file that keeps the last max bytes: when it reaches
// max it is renamed to NAME.1 (replacing the one before) and started
// anew, so NAME.1 followed by NAME always hold at least the last max
// bytes written, and never more than 2*max.
type consoleLog struct {
	name string
	max  int64
	f    *os.File
	size int64
}

func openConsole(name string, max int64) (*consoleLog, error) {
	if max <= 0 {
		max = 1 << 20
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &consoleLog{name: name, max: max, f: f, size: st.Size()}, nil
}

func (l *consoleLog) Write(p []byte) (int, error) {
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
	if err := os.Rename(l.name, l.name+".1"); err != nil {
		return err
	}
	f, err := os.OpenFile(l.name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	return nil
}

func (l *consoleLog) Close() error {
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
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
