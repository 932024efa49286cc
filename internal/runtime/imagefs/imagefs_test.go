package imagefs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

func unpack(t *testing.T, f runtime.ImageFormat, b []byte) (string, runtime.ImageConfig) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := Unpack(context.Background(), dir, f, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "layers")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spooled layers left: %v", err)
	}
	return filepath.Join(dir, "rootfs"), cfg
}

func TestUnpackLayers(t *testing.T) {
	rootfs := runtimetest.DefaultImage(t)
	docker, df := runtimetest.DockerArchive(t, rootfs)
	oci, of := runtimetest.OCILayout(t, rootfs, false)
	for name, c := range map[string]struct {
		b []byte
		f runtime.ImageFormat
	}{"docker": {docker, df}, "oci": {oci, of}} {
		t.Run(name, func(t *testing.T) {
			root, cfg := unpack(t, c.f, c.b)
			if cfg.WorkingDir != "/srv" || !slices.Equal(cfg.Entrypoint, []string{"/bin/sh", "-c"}) {
				t.Errorf("config %+v", cfg)
			}
			for _, gone := range []string{"etc/os-release", "home/gone"} {
				if _, err := os.Lstat(filepath.Join(root, gone)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s survived its whiteout: %v", gone, err)
				}
			}
			for _, kept := range []string{"home/kept", "etc/passwd", "sbin/init"} {
				if _, err := os.Lstat(filepath.Join(root, kept)); err != nil {
					t.Errorf("%s: %v", kept, err)
				}
			}
			if b, err := os.ReadFile(filepath.Join(root, "srv/hello.txt")); err != nil || string(b) != "hello from the top layer\n" {
				t.Errorf("srv/hello.txt = %q %v", b, err)
			}
			if l, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || l != "busybox" {
				t.Errorf("bin/sh -> %q %v", l, err)
			}
			if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || st.Mode()&fs.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
				t.Errorf("tmp mode %v %v", st.Mode(), err)
			}
		})
	}
}

func TestUnpackRejects(t *testing.T) {
	rootfs := runtimetest.DefaultImage(t)
	bad, f := runtimetest.OCILayout(t, rootfs, true)
	if _, err := Unpack(context.Background(), t.TempDir(), f, bytes.NewReader(bad)); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("a blob with the wrong digest: %v", err)
	}
	docker, df := runtimetest.DockerArchive(t, rootfs)
	df.Layers = append(df.Layers, "missing/layer.tar")
	if _, err := Unpack(context.Background(), t.TempDir(), df, bytes.NewReader(docker)); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("a missing layer: %v", err)
	}
	if _, err := Unpack(context.Background(), t.TempDir(), runtime.ImageFormat{Kind: "qcow2"}, bytes.NewReader(rootfs)); !errors.Is(err, runtime.ErrUnsupportedImage) {
		t.Errorf("qcow2: %v", err)
	}
	cfg := strings.Replace(string(runtimetest.ImageConfigJSON()), `"architecture":"`, `"architecture":"s390x`, 1)
	if _, err := parseConfig([]byte(cfg)); !errors.Is(err, runtime.ErrUnsupportedImage) {
		t.Errorf("another architecture: %v", err)
	}
}

// TestUnpackStaysInside: absolute and ../ symlinks, ../ names, hard links
// and whiteouts through symlinks all land inside the root.
func TestUnpackStaysInside(t *testing.T) {
	victim := t.TempDir() // a host directory the image points at
	if err := os.WriteFile(filepath.Join(victim, "victim.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	outer := t.TempDir()
	layer := runtimetest.TarOf(t, []runtimetest.Entry{
		{Name: "etc/"},
		{Name: "etc/passwd", Body: "root:x:0:0::/root:/bin/sh\n"},
		{Name: strings.TrimPrefix(victim, "/") + "/"}, // the same path inside
		{Name: "abs", Link: victim},
		{Name: "abs/new.txt", Body: "written through an absolute link"},
		{Name: "abs/.wh.victim.txt"},
		{Name: "up", Link: "../../../../../../.."},
		{Name: "up/" + strings.TrimPrefix(victim, "/") + "/up.txt", Body: "written through ../"},
		{Name: "../../../outside.txt", Body: "a ../ name"},
	})
	// A hard link out of the root, by hand (TarOf makes no links).
	var buf bytes.Buffer
	buf.Write(layer[:len(layer)-1024]) // drop the end-of-archive blocks
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../../../../etc/passwd", ModTime: time.Now()})
	tw.Close()

	dir := filepath.Join(outer, "img")
	os.Mkdir(dir, 0o755)
	// As a layer (whiteouts on) and then as a rootfs tarball.
	if _, err := Unpack(context.Background(), dir, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	root := filepath.Join(dir, "rootfs")
	fd, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if _, err := applyLayer(context.Background(), int(fd.Fd()), bytes.NewReader(buf.Bytes()), true); err != nil {
		t.Fatalf("applyLayer: %v", err)
	}
	if entries, _ := os.ReadDir(victim); len(entries) != 1 || entries[0].Name() != "victim.txt" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("the host directory was written: %v", names)
	}
	if _, err := os.Stat(filepath.Join(outer, "outside.txt")); err == nil {
		t.Fatal("a ../ name escaped")
	}
	for _, inside := range []string{"outside.txt", strings.TrimPrefix(victim, "/") + "/new.txt", strings.TrimPrefix(victim, "/") + "/up.txt"} {
		if _, err := os.Stat(filepath.Join(root, inside)); err != nil {
			t.Errorf("%s is not inside the root: %v", inside, err)
		}
	}
	a, _ := os.Stat(filepath.Join(root, "hl"))
	b, _ := os.Stat(filepath.Join(root, "etc/passwd"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("the hard link does not point at the root's etc/passwd")
	}
}

func TestZstdAndGzip(t *testing.T) {
	rootfs := runtimetest.TarOf(t, []runtimetest.Entry{{Name: "a/"}, {Name: "a/b", Body: "zstd"}})
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	zw.Write(rootfs)
	zw.Close()
	root, _ := unpack(t, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, buf.Bytes())
	if b, err := os.ReadFile(filepath.Join(root, "a/b")); err != nil || string(b) != "zstd" {
		t.Fatalf("a/b = %q %v", b, err)
	}
	if _, err := Unpack(context.Background(), t.TempDir(), runtime.ImageFormat{Kind: runtime.KindRootfsTar}, bytes.NewReader(nil)); err == nil {
		t.Fatal("an empty archive unpacked")
	}
}

// digest describes a tree: names, types, modes, owners, link targets and
// contents.
func digest(t *testing.T, root string) []string {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteTarRoundTrip(t *testing.T) {
	docker, df := runtimetest.DockerArchive(t, runtimetest.DefaultImage(t))
	root, _ := unpack(t, df, docker)
	os.WriteFile(filepath.Join(root, "srv/a"), []byte("hard"), 0o640)
	os.Link(filepath.Join(root, "srv/a"), filepath.Join(root, "srv/b"))
	var buf bytes.Buffer
	if err := WriteTar(context.Background(), root, &buf); err != nil {
		t.Fatal(err)
	}
	names := runtimetest.TarNames(t, buf.Bytes())
	for _, n := range []string{"bin/", "bin/sh", "srv/hello.txt", "tmp/"} {
		if !names[n] {
			t.Errorf("the tarball lacks %s", n)
		}
	}
	root2, _ := unpack(t, runtime.ImageFormat{Kind: runtime.KindRootfsTar}, buf.Bytes())
	want, got := digest(t, root), digest(t, root2)
	if !slices.Equal(want, got) {
		t.Errorf("round trip differs:\nwant %d entries, got %d\nfirst want %v\nfirst got %v", len(want), len(got), want[:min(5, len(want))], got[:min(5, len(got))])
	}
	a, _ := os.Stat(filepath.Join(root2, "srv/a"))
	b, _ := os.Stat(filepath.Join(root2, "srv/b"))
	if !os.SameFile(a, b) {
		t.Error("hard link lost")
	}
}

func TestReadConfig(t *testing.T) {
	docker, df := runtimetest.DockerArchive(t, runtimetest.DefaultImage(t))
	cfg, err := ReadConfig(context.Background(), df, bytes.NewReader(docker))
	if err != nil || cfg.StopSignal != "SIGINT" || !slices.Equal(cfg.Env, runtimetest.WantImageConfig.Env) {
		t.Fatalf("ReadConfig = %+v %v", cfg, err)
	}
	if _, err := ReadConfig(context.Background(), runtime.ImageFormat{Kind: runtime.KindRootfsTar}, strings.NewReader("garbage")); err == nil {
		t.Fatal("garbage read as a tarball")
	}
}

func TestUsers(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nusers:x:100:\nwheel:x:10:alice,bob\nnogroup:x:65534:\n"), 0o644)
	look := Users(root)
	for _, c := range []struct {
		user     string
		uid, gid uint32
		groups   []uint32
	}{
		{"root", 0, 0, nil},
		{"alice", 1000, 100, []uint32{10}},
		{"1000", 1000, 100, []uint32{10}},
		{"4242", 4242, 0, nil},
		{"alice:nogroup", 1000, 65534, nil},
		{"nobody:7", 65534, 7, nil},
	} {
		uid, gid, groups, err := look(c.user)
		if err != nil || uid != c.uid || gid != c.gid || !slices.Equal(groups, c.groups) {
			t.Errorf("%s = %d:%d %v %v, want %d:%d %v", c.user, uid, gid, groups, err, c.uid, c.gid, c.groups)
		}
	}
	for _, bad := range []string{"mallory", "alice:nosuchgroup"} {
		if _, _, _, err := look(bad); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// /etc/passwd as a link out of the root is read inside it: absent.
	os.Remove(filepath.Join(root, "etc/passwd"))
	os.Symlink("/etc/passwd", filepath.Join(root, "etc/passwd"))
	if _, _, _, err := look("root"); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("a user from a link out of the root: %v", err)
	}
}

func TestExecutable(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/prog"), []byte("#!"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/data"), []byte("x"), 0o644)
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	env := []string{"PATH=/sbin:/bin"}
	for name, ok := range map[string]bool{"prog": true, "/usr/bin/prog": true, "/bin/prog": true, "data": false, "nope": false, "/usr/bin": false} {
		if err := Executable(root, name, env, "/"); (err == nil) != ok {
			t.Errorf("Executable(%s) = %v", name, err)
		}
	}
}
