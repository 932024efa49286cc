package runtimetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/defaultimage"
	"github.com/monostack/monostack/internal/runtime"
)

// NewID returns a random id of 32 hex digits, so that tests running side
// by side never collide.
func NewID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// NewOwner returns a short random owner id.
func NewOwner() string { return "t" + NewID()[:9] }

// HaveBusybox reports whether the host can build the default image.
func HaveBusybox() bool {
	_, err := os.Stat(defaultimage.Busybox)
	return err == nil
}

// DefaultImage is the default image's root filesystem tarball, built from
// the host's static busybox; without one, a stand-in with the same layout
// whose programs are not real (enough for runtimes that run nothing).
func DefaultImage(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if HaveBusybox() {
		if err := defaultimage.Write(&buf, defaultimage.Busybox); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	return TarOf(t, []Entry{
		{Name: "bin/"}, {Name: "sbin/"}, {Name: "etc/"}, {Name: "tmp/"}, {Name: "mnt/config/"},
		{Name: "bin/busybox", Body: "#!stand-in\n", Mode: 0o755},
		{Name: "bin/sh", Link: "busybox"},
		{Name: "bin/sleep", Link: "busybox"},
		{Name: "sbin/init", Body: "#!/bin/sh\nexec sleep 3600\n", Mode: 0o755},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\n"},
		{Name: "etc/os-release", Body: "ID=busybox\n"},
	})
}

// Entry is one file of a tarball made by TarOf: a directory when Name
// ends in '/', a symlink when Link is set, a regular file otherwise.
type Entry struct {
	Name string
	Body string
	Link string
	Mode int64
}

// TarOf makes a tarball of entries.
func TarOf(t testing.TB, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, ModTime: mtime}
		switch {
		case e.Name[len(e.Name)-1] == '/':
			h.Typeflag = tar.TypeDir
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case e.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.Link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The command and environment of the container images made here: the
// docker and OCI images print Marker and $GREETING and then sleep.
const (
	Marker   = "container-image-ran"
	Greeting = "hello-from-env"
)

// Script is the command of the docker and OCI test images: it shows its
// directory, environment and layers, then waits for its stop signal.
const Script = "echo " + Marker + " in $(pwd); echo $GREETING; cat /srv/hello.txt; ls /home; " +
	"trap 'echo stopped-by-SIGINT; exit 0' INT; while :; do sleep 3600 & wait; done"

// ImageConfigJSON is the config of the docker and OCI test images.
func ImageConfigJSON() []byte {
	b, _ := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": []string{"/bin/sh", "-c"},
			"Cmd":        []string{Script},
			"Env":        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=" + Greeting},
			"WorkingDir": "/srv",
			"StopSignal": "SIGINT",
		},
	})
	return b
}

// WantImageConfig is what EnsureImage returns for the docker and OCI test
// images.
var WantImageConfig = runtime.ImageConfig{
	Entrypoint: []string{"/bin/sh", "-c"},
	Cmd:        []string{Script},
	Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=" + Greeting},
	WorkingDir: "/srv",
	StopSignal: "SIGINT",
}

// topLayer is the second layer of the test images: it removes
// /etc/os-release (a whiteout), empties /home (an opaque directory) but
// for what it adds there, and adds /srv/hello.txt.
func topLayer(t testing.TB) []byte {
	return TarOf(t, []Entry{
		{Name: "etc/.wh.os-release"},
		{Name: "home/"},
		{Name: "home/.wh..wh..opq"},
		{Name: "home/kept/"},
		{Name: "srv/"},
		{Name: "srv/hello.txt", Body: "hello from the top layer\n"},
	})
}

// bottomLayer is rootfs with a /home/gone directory that the top layer's
// opaque /home hides.
func bottomLayer(t testing.TB, rootfs []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(rootfs))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"home/", "home/gone/"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(1700000000, 0)})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// DockerArchive makes a `docker save` tarball of two layers over rootfs
// (see topLayer), the second gzip-compressed, and its format.
func DockerArchive(t testing.TB, rootfs []byte) ([]byte, runtime.ImageFormat) {
	t.Helper()
	manifest, _ := json.Marshal([]map[string]any{{
		"Config":   "config.json",
		"RepoTags": []string{"monostack/test:latest"},
		"Layers":   []string{"l1/layer.tar", "l2/layer.tar"},
	}})
	b := TarOf(t, []Entry{
		{Name: "l2/"},
		{Name: "l2/layer.tar", Body: string(gzipped(t, topLayer(t)))},
		{Name: "l1/"},
		{Name: "l1/layer.tar", Body: string(bottomLayer(t, rootfs))},
		{Name: "config.json", Body: string(ImageConfigJSON())},
		{Name: "manifest.json", Body: string(manifest)},
	})
	return b, runtime.ImageFormat{Kind: runtime.KindDockerArchive, Config: "config.json", Layers: []string{"l1/layer.tar", "l2/layer.tar"}}
}

func blob(b []byte) (string, string) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	return "sha256:" + h, "blobs/sha256/" + h
}

// OCILayout makes an OCI image-layout tarball of the same image as
// DockerArchive (gzip layers), gzip-compressed as a whole, and its format.
// With corrupt, the top layer's bytes do not match its digest.
func OCILayout(t testing.TB, rootfs []byte, corrupt bool) ([]byte, runtime.ImageFormat) {
	t.Helper()
	l1, l2 := gzipped(t, bottomLayer(t, rootfs)), gzipped(t, topLayer(t))
	cfg := ImageConfigJSON()
	d1, p1 := blob(l1)
	d2, p2 := blob(l2)
	dc, pc := blob(cfg)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc, "size": len(cfg)},
		"layers": []map[string]any{
			{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d1, "size": len(l1)},
			{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d2, "size": len(l2)},
		},
	})
	dm, pm := blob(manifest)
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []map[string]any{{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dm, "size": len(manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": "latest"}}},
	})
	if corrupt {
		l2 = gzipped(t, TarOf(t, []Entry{{Name: "evil", Body: "not what the digest says"}}))
	}
	b := TarOf(t, []Entry{
		{Name: "oci-layout", Body: `{"imageLayoutVersion":"1.0.0"}`},
		{Name: "index.json", Body: string(index)},
		{Name: "blobs/"}, {Name: "blobs/sha256/"},
		{Name: pm, Body: string(manifest)},
		{Name: pc, Body: string(cfg)},
		{Name: p2, Body: string(l2)},
		{Name: p1, Body: string(l1)},
	})
	return gzipped(t, b), runtime.ImageFormat{Kind: runtime.KindOCILayout, Compression: "gzip", Config: pc, Layers: []string{p1, p2}}
}

// Opener returns an open function over b that counts its calls in n.
func Opener(b []byte, n *int) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		if n != nil {
			*n++
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

// TarNames lists the names in tarball b.
func TarNames(t testing.TB, b []byte) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("tarball: %v", err)
		}
		names[h.Name] = true
	}
}
