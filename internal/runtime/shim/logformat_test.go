package shim

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConsoleParts: the index says which stream wrote each part and when,
// across a rotation; FormatLogs picks streams, times and the last lines.
func TestConsoleParts(t *testing.T) {
	name := filepath.Join(t.TempDir(), ConsoleFile)
	l, err := openConsole(name, 64)
	if err != nil {
		t.Fatal(err)
	}
	out, errs := stream{l, Stdout}, stream{l, Stderr}
	out.Write([]byte("out one\n"))
	errs.Write([]byte("err one\n"))
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	out.Write([]byte("out two, a longer line that makes the log rotate\n"))
	out.Write([]byte("out three\n"))
	errs.Write([]byte("err two\n"))
	l.Close()

	parts, err := ReadConsoleParts(name)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, p := range parts {
		if p.At.IsZero() || (p.Stream != Stdout && p.Stream != Stderr) {
			t.Errorf("part %+v", p)
		}
		all.Write(p.Data)
	}
	raw, _ := ReadConsole(name, 0)
	if !bytes.Equal(all.Bytes(), raw) {
		t.Fatalf("the parts %q are not the log %q", all.Bytes(), raw)
	}
	both := LogOptions{Stdout: true, Stderr: true, Tail: -1}
	if got := FormatLogs(parts, both); got != string(raw) {
		t.Errorf("everything: %q, want %q", got, raw)
	}
	onlyErr := both
	onlyErr.Stdout = false
	if got := FormatLogs(parts, onlyErr); !strings.HasSuffix(got, "err two\n") || strings.Contains(got, "out") {
		t.Errorf("stderr alone: %q", got)
	}
	since := both
	since.Since = mid
	if got := FormatLogs(parts, since); got != "out two, a longer line that makes the log rotate\nout three\nerr two\n" {
		t.Errorf("since the middle: %q", got)
	}
	tail := both
	tail.Tail, tail.Timestamps = 2, true
	got := FormatLogs(parts, tail)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[1], " err two") {
		t.Fatalf("last 2 with timestamps: %q", got)
	}
	ts, _, _ := strings.Cut(lines[1], " ")
	if at, err := time.Parse(time.RFC3339Nano, ts); err != nil || at.Before(mid) || time.Since(at) > time.Minute {
		t.Errorf("timestamp %q: %v", ts, err)
	}
}

// TestPartsWithoutIndex: a log written before it had an index is one part
// of unknown time; an index that runs past the log (a crash) is cut.
func TestPartsWithoutIndex(t *testing.T) {
	if p := parts([]byte("old\n"), nil); len(p) != 1 || !p[0].At.IsZero() || string(p[0].Data) != "old\n" {
		t.Errorf("no index: %+v", p)
	}
	var idx []byte
	for _, off := range []uint64{0, 2, 100} {
		rec := make([]byte, idxRecord)
		rec[0], rec[8], rec[16] = byte(off), 1, Stdout
		idx = append(idx, rec...)
	}
	p := parts([]byte("abcd"), idx)
	if len(p) != 2 || string(p[0].Data) != "ab" || string(p[1].Data) != "cd" {
		t.Errorf("index past the end: %+v", p)
	}
}

// BenchmarkConsoleWrite: a chatty container's lines into the log and its
// index (a record at most every millisecond, and at each change of stream).
func BenchmarkConsoleWrite(b *testing.B) {
	l, err := openConsole(filepath.Join(b.TempDir(), ConsoleFile), 4<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	line := []byte("2026-11-26 02:45:00 GET /index.html 200 612 bytes\n")
	out, errs := stream{l, Stdout}, stream{l, Stderr}
	b.SetBytes(int64(len(line)))
	for i := 0; b.Loop(); i++ {
		w := out
		if i%10 == 0 {
			w = errs
		}
		if _, err := w.Write(line); err != nil {
			b.Fatal(err)
		}
	}
}
