package defaultimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageRunsUserData(t *testing.T) {
	if _, err := os.Stat(Busybox); err != nil {
		t.Skip("busybox-static is not installed")
	}
	var buf bytes.Buffer
	if err := Write(&buf, Busybox); err != nil {
		t.Fatal(err)
	}
	// Unpack and check the init does its job with a config drive, run with
	// the image's own busybox sh (chroot needs root; the script's paths are
	// relative to a root we give it through sed instead).
	root := t.TempDir()
	tr := tar.NewReader(&buf)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = true
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := io.ReadAll(tr)
			os.WriteFile(p, b, os.FileMode(h.Mode))
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.Symlink(h.Linkname, p)
		}
	}
	for _, want := range []string{"bin/busybox", "bin/sh", "sbin/init", "etc/passwd", "tmp/"} {
		if !seen[want] {
			t.Errorf("image lacks %s", want)
		}
	}
	if target, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh -> %q %v", target, err)
	}
	if os.Geteuid() != 0 {
		t.Skip("running the init needs chroot (root)")
	}
	md := filepath.Join(root, "mnt/config/openstack/latest")
	os.MkdirAll(md, 0o755)
	os.WriteFile(filepath.Join(md, "meta_data.json"), []byte(`{"hostname": "test-vm", "public_keys": {"k": "ssh-ed25519 AAAAC3 me@here\n"}}`), 0o644)
	os.WriteFile(filepath.Join(md, "user_data"), []byte("#!/bin/sh\necho user-data-ran-as-$(id -u)\nexit 0\n"), 0o644)
	// Run the init until it has run the user data, then stop it.
	cmd := exec.Command("chroot", root, "/bin/sh", "-c", "sed 's/^while :; do$/exit 0/; /mount -t proc/d' /sbin/init > /tmp/init-once && sh /tmp/init-once")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "user-data-ran-as-0") {
		t.Fatalf("user data did not run:\n%s", out)
	}
	keys, _ := os.ReadFile(filepath.Join(root, "root/.ssh/authorized_keys"))
	if strings.TrimSpace(string(keys)) != "ssh-ed25519 AAAAC3 me@here" {
		t.Fatalf("authorized_keys = %q", keys)
	}
}
