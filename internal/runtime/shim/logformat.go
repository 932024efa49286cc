package shim

import (
	"strings"
	"time"
)

// LogOptions choose the lines of a console log, as `docker logs` does.
type LogOptions struct {
	Stdout, Stderr bool
	Timestamps     bool      // each line prefixed with when it was written (RFC 3339, ns)
	Since          time.Time // lines written before are left out (zero: none)
	Tail           int       // the last Tail lines only (< 0: all)
}

// FormatLogs cuts parts into lines and keeps those opts choose. A line is
// of the stream and time of its first byte.
func FormatLogs(parts []Part, opts LogOptions) string {
	type line struct {
		at     time.Time
		stream byte
		text   string
	}
	var lines []line
	var cur strings.Builder
	var curAt time.Time
	var curStream byte
	open := false
	for _, p := range parts {
		data := string(p.Data)
		for len(data) > 0 {
			if !open {
				curAt, curStream, open = p.At, p.Stream, true
			}
			i := strings.IndexByte(data, '\n')
			if i < 0 {
				cur.WriteString(data)
				break
			}
			cur.WriteString(data[:i+1])
			lines = append(lines, line{curAt, curStream, cur.String()})
			cur.Reset()
			open = false
			data = data[i+1:]
		}
	}
	if open {
		lines = append(lines, line{curAt, curStream, cur.String()})
	}
	kept := lines[:0]
	for _, l := range lines {
		if (l.stream == Stderr && !opts.Stderr) || (l.stream != Stderr && !opts.Stdout) {
			continue
		}
		if !opts.Since.IsZero() && l.at.Before(opts.Since) {
			continue
		}
		kept = append(kept, l)
	}
	if opts.Tail >= 0 && len(kept) > opts.Tail {
		kept = kept[len(kept)-opts.Tail:]
	}
	var b strings.Builder
	for _, l := range kept {
		if opts.Timestamps {
			b.WriteString(l.at.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"))
			b.WriteByte(' ')
		}
		b.WriteString(l.text)
	}
	return b.String()
}
