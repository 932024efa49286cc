package imagefs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
)

// maxConfig is the largest image config read.
const maxConfig = 4 << 20

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{runtime.ErrInvalid}, args...)...)
}

// Decompress returns r uncompressed: gzip and zstd are recognised by their
// magic numbers, anything else is returned as is.
func Decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(4)
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, bad("gzip data: %v", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, bad("zstd data: %v", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// Unpack unpacks the image in r, whose bytes are of format f, into
// dir/rootfs (made here; dir must exist) and returns its config. Layers of
// docker and OCI images are spooled to dir/layers and removed after.
func Unpack(ctx context.Context, dir string, f runtime.ImageFormat, r io.Reader) (runtime.ImageConfig, error) {
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return runtime.ImageConfig{}, err
	}
	rootFd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return runtime.ImageConfig{}, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(rootFd)
	src, done, err := Decompress(r)
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	defer done()
	switch f.Kind {
	case runtime.KindRootfsTar, "":
		n, err := applyLayer(ctx, rootFd, src, false)
		if err != nil {
			return runtime.ImageConfig{}, err
		}
		if n == 0 {
			return runtime.ImageConfig{}, bad("empty tar archive")
		}
		return runtime.ImageConfig{}, nil
	case runtime.KindDockerArchive, runtime.KindOCILayout:
	default:
		return runtime.ImageConfig{}, fmt.Errorf("%w: kind %q", runtime.ErrUnsupportedImage, f.Kind)
	}
	layers := filepath.Join(dir, "layers")
	if err := os.Mkdir(layers, 0o700); err != nil {
		return runtime.ImageConfig{}, err
	}
	defer os.RemoveAll(layers)
	spooled := map[string]string{} // path in the archive → spool file
	cfgBytes, err := scanArchive(ctx, f, src, func(name string, r io.Reader) error {
		p := filepath.Join(layers, strconv.Itoa(len(spooled)))
		out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, r)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		spooled[name] = p
		return err
	})
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	cfg, err := parseConfig(cfgBytes)
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	for i, l := range f.Layers {
		if err := applySpooled(ctx, rootFd, spooled[cleanName(l)]); err != nil {
			return runtime.ImageConfig{}, fmt.Errorf("layer %d (%s): %w", i, l, err)
		}
	}
	return cfg, nil
}

func applySpooled(ctx context.Context, rootFd int, p string) error {
	fh, err := os.Open(p)
	if err != nil {
		return err
	}
	defer fh.Close()
	src, done, err := Decompress(fh)
	if err != nil {
		return err
	}
	defer done()
	_, err = applyLayer(ctx, rootFd, src, true)
	return err
}

// ReadConfig reads an image's config without unpacking it, checking that
// the archive holds every layer it names (a root filesystem tarball has an
// empty config and must hold at least one entry).
func ReadConfig(ctx context.Context, f runtime.ImageFormat, r io.Reader) (runtime.ImageConfig, error) {
	src, done, err := Decompress(r)
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	defer done()
	switch f.Kind {
	case runtime.KindRootfsTar, "":
		tr := tar.NewReader(src)
		n := 0
		for {
			_, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return runtime.ImageConfig{}, bad("tar archive: %v", err)
			}
			n++
		}
		if n == 0 {
			return runtime.ImageConfig{}, bad("empty tar archive")
		}
		return runtime.ImageConfig{}, nil
	case runtime.KindDockerArchive, runtime.KindOCILayout:
	default:
		return runtime.ImageConfig{}, fmt.Errorf("%w: kind %q", runtime.ErrUnsupportedImage, f.Kind)
	}
	b, err := scanArchive(ctx, f, src, func(string, io.Reader) error { return nil })
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	return parseConfig(b)
}

// scanArchive reads the outer tarball of a docker or OCI image, returns the
// config's bytes and hands each layer named by f to layer once, its digest
// checked when its path names one.
func scanArchive(ctx context.Context, f runtime.ImageFormat, r io.Reader, layer func(name string, r io.Reader) error) ([]byte, error) {
	if f.Config == "" || len(f.Layers) == 0 {
		return nil, bad("%s image without a config or layers", f.Kind)
	}
	want := map[string]bool{}
	for _, l := range f.Layers {
		want[cleanName(l)] = true
	}
	cfgName := cleanName(f.Config)
	var cfg []byte
	seen := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("image archive: %v", err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		name := cleanName(h.Name)
		if seen[name] || (!want[name] && name != cfgName) {
			continue
		}
		seen[name] = true
		var body io.Reader = tr
		var sum hash.Hash
		wantSum := blobDigest(name)
		if wantSum != "" {
			sum = sha256.New()
			body = io.TeeReader(tr, sum)
		}
		if name == cfgName {
			b, err := io.ReadAll(io.LimitReader(body, maxConfig+1))
			if err != nil {
				return nil, err
			}
			if len(b) > maxConfig {
				return nil, bad("image config larger than %d bytes", maxConfig)
			}
			cfg = b
		}
		if want[name] {
			if err := layer(name, body); err != nil {
				return nil, err
			}
		}
		if sum != nil {
			if _, err := io.Copy(io.Discard, body); err != nil {
				return nil, err
			}
			if got := hex.EncodeToString(sum.Sum(nil)); got != wantSum {
				return nil, bad("blob %s has digest sha256:%s", name, got)
			}
		}
	}
	if cfg == nil {
		return nil, bad("the image archive has no config %s", f.Config)
	}
	for l := range want {
		if !seen[l] {
			return nil, bad("the image archive has no layer %s", l)
		}
	}
	return cfg, nil
}

// blobDigest is the hex sha256 a blob path names (blobs/sha256/<hex>).
func blobDigest(name string) string {
	hexs, ok := strings.CutPrefix(name, "blobs/sha256/")
	if !ok || len(hexs) != 64 {
		return ""
	}
	if _, err := hex.DecodeString(hexs); err != nil {
		return ""
	}
	return hexs
}

type configJSON struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
		Env        []string `json:"Env"`
		WorkingDir string   `json:"WorkingDir"`
		User       string   `json:"User"`
		StopSignal string   `json:"StopSignal"`
	} `json:"config"`
}

var archAliases = map[string]string{"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}

func parseConfig(b []byte) (runtime.ImageConfig, error) {
	var c configJSON
	if err := json.Unmarshal(b, &c); err != nil {
		return runtime.ImageConfig{}, bad("image config: %v", err)
	}
	if c.OS != "" && c.OS != "linux" {
		return runtime.ImageConfig{}, fmt.Errorf("%w: an image for %s, not linux", runtime.ErrUnsupportedImage, c.OS)
	}
	arch := c.Architecture
	if a, ok := archAliases[arch]; ok {
		arch = a
	}
	if arch != "" && arch != goruntime.GOARCH {
		return runtime.ImageConfig{}, fmt.Errorf("%w: an image for %s, this host is %s", runtime.ErrUnsupportedImage, c.Architecture, goruntime.GOARCH)
	}
	return runtime.ImageConfig{
		Entrypoint: c.Config.Entrypoint,
		Cmd:        c.Config.Cmd,
		Env:        c.Config.Env,
		WorkingDir: c.Config.WorkingDir,
		User:       c.Config.User,
		StopSignal: c.Config.StopSignal,
	}, nil
}

func cleanName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}
