package shim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConsoleRotation(t *testing.T) {
	name := filepath.Join(t.TempDir(), ConsoleFile)
	l, err := openConsole(name, 100)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for i := 0; i < 50; i++ {
		line := []byte(strings.Repeat("x", i%7) + "line\n")
		all.Write(line)
		if n, err := l.Write(line); err != nil || n != len(line) {
			t.Fatalf("Write = %d %v", n, err)
		}
	}
	l.Close()
	got, err := ReadConsole(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 100 || len(got) > 200 || !bytes.HasSuffix(all.Bytes(), got) {
		t.Fatalf("kept %d bytes, not the end of what was written", len(got))
	}
	for _, f := range []string{name, name + ".1"} {
		if st, err := os.Stat(f); err != nil || st.Size() > 100 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	for _, tail := range []int64{1, 30, 100, 150, 10000} {
		got, err := ReadConsole(name, tail)
		if err != nil {
			t.Fatal(err)
		}
		want := all.Bytes()
		if int64(len(want)) > tail {
			want = want[int64(len(want))-tail:]
		}
		if int64(len(got)) <= 100 && !bytes.Equal(got, want) || !bytes.HasSuffix(all.Bytes(), got) {
			t.Errorf("tail %d = %q, want %q", tail, got, want)
		}
	}
	// A log reopened (the next boot) appends.
	l, _ = openConsole(name, 100)
	l.Write([]byte("next boot\n"))
	l.Close()
	if got, _ := ReadConsole(name, 10); string(got) != "next boot\n" {
		t.Errorf("after reopening: %q", got)
	}
	if got, err := ReadConsole(filepath.Join(t.TempDir(), "none"), 0); err != nil || len(got) != 0 {
		t.Errorf("a log never written: %q %v", got, err)
	}
}

func TestExitAndPid(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadExit(dir); !os.IsNotExist(err) {
		t.Fatalf("ReadExit of nothing: %v", err)
	}
	want := Exit{ExitCode: 137, OOMKilled: true, FinishedAt: time.Now().UTC().Truncate(time.Second)}
	if err := WriteExit(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadExit(dir); err != nil || got != want {
		t.Fatalf("ReadExit = %+v %v", got, err)
	}
	if _, ok := Alive(dir); ok {
		t.Fatal("a shim is alive without a pid file")
	}
	if err := writePid(dir); err != nil {
		t.Fatal(err)
	}
	if pid, ok := Alive(dir); !ok || pid != os.Getpid() {
		t.Fatalf("Alive = %d %v", pid, ok)
	}
	// Same pid, another start time: a recycled pid is not the shim.
	os.WriteFile(filepath.Join(dir, PidFile), []byte(strings.Fields(readFile(t, filepath.Join(dir, PidFile)))[0]+" 1\n"), 0o644)
	if _, ok := Alive(dir); ok {
		t.Fatal("a recycled pid was taken for the shim")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func readFile(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLastRuncError(t *testing.T) {
	name := filepath.Join(t.TempDir(), RuncLogFile)
	os.WriteFile(name, []byte(`{"level":"warning","msg":"meh"}
{"level":"error","msg":"first"}
not json
{"level":"error","msg":"runc create failed: no such file"}
`), 0o644)
	if got := LastRuncError(name); got != "runc create failed: no such file" {
		t.Fatalf("LastRuncError = %q", got)
	}
	if got := LastRuncError(name + ".none"); got != "" {
		t.Fatalf("LastRuncError of nothing = %q", got)
	}
}

func TestMainNeedsDir(t *testing.T) {
	if code := Main(nil); code != 2 {
		t.Fatalf("Main() = %d", code)
	}
}
