package acceptance

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// swiftCLI runs python-swiftclient's `swift` with env in dir and returns
// its output; a failure fails the test.
func swiftCLI(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("swift", args...)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swift %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSwiftCLI: the stock `swift` client (python3-swiftclient) on its
// large-object paths, which the openstack CLI does not take: an upload in
// 1 MiB segments as a static large object and as a dynamic one, each
// downloaded whole (swiftclient checks the bytes against the ETags), a
// copy, metadata, and `swift delete` removing a manifest with its
// segments.
func TestSwiftCLI(t *testing.T) {
	if _, err := exec.LookPath("swift"); err != nil {
		t.Skip("no swift CLI (python3-swiftclient)")
	}
	env := openrcEnv(t, cloud, "demo")
	dir := t.TempDir()
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	slo, dlo := uniq("cli-slo"), uniq("cli-dlo")
	t.Cleanup(func() {
		for _, c := range []string{slo, dlo, slo + "_segments", dlo + "_segments"} {
			cmd := exec.Command("swift", "delete", c)
			cmd.Env = env
			cmd.Run()
		}
	})

	swiftCLI(t, env, dir, "upload", "--use-slo", "--segment-size", "1048576", slo, "big.bin")
	if st := swiftCLI(t, env, dir, "stat", slo, "big.bin"); !strings.Contains(st, "X-Static-Large-Object: True") ||
		!strings.Contains(st, "Content Length: "+strconv.Itoa(len(data))) {
		t.Errorf("stat of the SLO:\n%s", st)
	}
	if segs := strings.Fields(swiftCLI(t, env, dir, "list", slo+"_segments")); len(segs) != 4 {
		t.Errorf("SLO segments %v, want 4", segs)
	}
	swiftCLI(t, env, dir, "upload", "--segment-size", "1048576", dlo, "big.bin")
	if st := swiftCLI(t, env, dir, "stat", dlo, "big.bin"); !strings.Contains(st, "Manifest: "+dlo+"_segments/") {
		t.Errorf("stat of the DLO:\n%s", st)
	}
	for _, c := range []string{slo, dlo} {
		out := filepath.Join(dir, c+".out")
		swiftCLI(t, env, dir, "download", c, "big.bin", "-o", out)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
			t.Errorf("download of %s: %d bytes, %v", c, len(got), err)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "small.txt"), []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	swiftCLI(t, env, dir, "upload", slo, "small.txt")
	swiftCLI(t, env, dir, "post", "-m", "color:blue", slo, "small.txt")
	swiftCLI(t, env, dir, "copy", "-d", "/"+dlo+"/copied.txt", slo, "small.txt")
	if st := swiftCLI(t, env, dir, "stat", dlo, "copied.txt"); !strings.Contains(st, "Meta Color: blue") {
		t.Errorf("stat of the copy:\n%s", st)
	}

	// Deleting the SLO takes its segments with it.
	swiftCLI(t, env, dir, "delete", slo, "big.bin")
	if segs := strings.Fields(swiftCLI(t, env, dir, "list", slo+"_segments")); len(segs) != 0 {
		t.Errorf("segments left after deleting the SLO: %v", segs)
	}
	if list := strings.Fields(swiftCLI(t, env, dir, "list", slo)); len(list) != 1 || list[0] != "small.txt" {
		t.Errorf("container %s: %v", slo, list)
	}
}
