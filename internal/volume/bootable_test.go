package volume

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/blockdev/fake"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/imagefs"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/testcloud"
)

// bootImages is an Image service of images held in memory.
type bootImages map[string]bootImage

type bootImage struct {
	data   []byte
	format runtime.ImageFormat
}

func (b bootImages) Lookup(ctx context.Context, c *api.Credentials, id string) (Image, error) {
	im, ok := b[id]
	if !ok {
		return Image{}, api.NotFound("Image %s could not be found.", id)
	}
	return Image{ID: id, Name: "img-" + id, Status: "active", Size: int64(len(im.data)), DiskFormat: "raw",
		ContainerFormat: "bare", Format: im.format}, nil
}

func (b bootImages) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b[id].data)), nil
}

// bootCloud is the volume service over an in-memory block store, with
// images, served with a real identity service.
type bootCloud struct {
	*testcloud.Cloud
	blocks *fake.Store
	tmp    string
}

func newBootCloud(t *testing.T, images bootImages) *bootCloud {
	c := testcloud.New(t, testcloud.Options{})
	bc := &bootCloud{Cloud: c, blocks: fake.New(), tmp: t.TempDir()}
	// A crash left a half-made filesystem: New removes it.
	if err := os.MkdirAll(filepath.Join(bc.tmp, tempPrefix+"crashed"), 0o700); err != nil {
		t.Fatal(err)
	}
	svc, err := New(context.Background(), c.DB, Config{TempDir: bc.tmp}, bc.blocks, images, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Mount("/volume", svc.Router(c.Identity, c.AuthURL(), nil))
	return bc
}

// volumeFrom creates a volume of 1 GiB from an image as demo and waits
// until its work is done; it returns the volume as shown.
func (bc *bootCloud) volumeFrom(t *testing.T, imageID string) map[string]any {
	t.Helper()
	url := bc.URL() + "/volume/v3/" + bc.DemoProject + "/volumes"
	res := testcloud.Must(t, 202, testcloud.Do(t, "POST", url, bc.Demo, map[string]any{"volume": map[string]any{"size": 1, "imageRef": imageID}}))
	id := res.JSON(t)["volume"].(map[string]any)["id"].(string)
	end := time.Now().Add(20 * time.Second)
	for {
		v := testcloud.Must(t, 200, testcloud.Do(t, "GET", url+"/"+id, bc.Demo, nil)).JSON(t)["volume"].(map[string]any)
		if v["status"] != "creating" {
			return v
		}
		if time.Now().After(end) {
			t.Fatalf("volume %s still creating", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// extract copies a volume's bytes into a sparse file, for debugfs.
func (bc *bootCloud) extract(t *testing.T, block string) string {
	t.Helper()
	src, err := bc.blocks.Open(context.Background(), block, false)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.Create(filepath.Join(t.TempDir(), "volume.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := src.ReadAt(buf, off)
		if n > 0 && !allZero(buf[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
		}
		off += int64(n)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Truncate(off); err != nil {
		t.Fatal(err)
	}
	return out.Name()
}

// debugfs runs a debugfs request on an ext4 image file.
func debugfs(t *testing.T, file, request string) (string, error) {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", request, file).Output()
	return string(out), err
}

// TestVolumeFromRootfsImage: a volume from a root filesystem image, a
// docker image or an OCI image is an ext4 filesystem holding the unpacked
// image (layers applied), bootable, with the image's metadata; a raw
// image is copied byte for byte; an image that cannot be unpacked makes a
// volume in error with no bytes left; nothing is left in the temporary
// directory.
func TestVolumeFromRootfsImage(t *testing.T) {
	if _, err := imagefs.Mkfs(); err != nil {
		t.Skip(err)
	}
	rootfs := runtimetest.DefaultImage(t)
	docker, dockerFormat := runtimetest.DockerArchive(t, rootfs)
	oci, ociFormat := runtimetest.OCILayout(t, rootfs, false)
	corrupt, corruptFormat := runtimetest.OCILayout(t, rootfs, true)
	raw := bytes.Repeat([]byte("raw disk bytes "), 1000)
	images := bootImages{
		"rootfs":  {rootfs, runtime.ImageFormat{Kind: runtime.KindRootfsTar}},
		"docker":  {docker, dockerFormat},
		"oci":     {oci, ociFormat},
		"corrupt": {corrupt, corruptFormat},
		"raw":     {raw, runtime.ImageFormat{Kind: "raw"}},
	}
	bc := newBootCloud(t, images)
	if _, err := os.Stat(filepath.Join(bc.tmp, tempPrefix+"crashed")); !os.IsNotExist(err) {
		t.Fatalf("New left what a crash left in the temporary directory: %v", err)
	}
	_, noDebugfs := exec.LookPath("debugfs")

	for _, tc := range []struct {
		image   string
		present []string
		absent  []string
	}{
		{"rootfs", []string{"/sbin/init", "/bin/busybox", "/etc/passwd"}, nil},
		{"docker", []string{"/sbin/init", "/srv/hello.txt", "/home/kept"}, []string{"/etc/os-release", "/home/gone"}},
		{"oci", []string{"/sbin/init", "/srv/hello.txt", "/home/kept"}, []string{"/etc/os-release", "/home/gone"}},
	} {
		t.Run(tc.image, func(t *testing.T) {
			v := bc.volumeFrom(t, tc.image)
			if v["status"] != "available" || v["bootable"] != "true" {
				t.Fatalf("volume from %s: status %v bootable %v", tc.image, v["status"], v["bootable"])
			}
			meta, _ := v["volume_image_metadata"].(map[string]any)
			if meta["image_id"] != tc.image {
				t.Fatalf("volume_image_metadata %v", v["volume_image_metadata"])
			}
			block := volumeBlock(v["id"].(string))
			sb := make([]byte, 1024)
			f, err := bc.blocks.Open(context.Background(), block, false)
			if err != nil {
				t.Fatal(err)
			}
			f.ReadAt(sb, 1024)
			f.Close()
			if sb[0x38] != 0x53 || sb[0x39] != 0xef || string(bytes.TrimRight(sb[0x78:0x88], "\x00")) != rootfsLabel {
				t.Fatalf("the volume holds no ext4 filesystem labelled %q", rootfsLabel)
			}
			if noDebugfs != nil {
				return
			}
			file := bc.extract(t, block)
			for _, p := range tc.present {
				if out, err := debugfs(t, file, "stat "+p); err != nil || !bytes.Contains([]byte(out), []byte("Inode:")) {
					t.Errorf("the filesystem lacks %s: %v %s", p, err, out)
				}
			}
			for _, p := range tc.absent {
				if out, _ := debugfs(t, file, "stat "+p); bytes.Contains([]byte(out), []byte("Inode:")) {
					t.Errorf("the filesystem has %s", p)
				}
			}
			if tc.image != "rootfs" {
				if out, _ := debugfs(t, file, "cat /srv/hello.txt"); out != "hello from the top layer\n" {
					t.Errorf("/srv/hello.txt holds %q", out)
				}
			}
		})
	}

	t.Run("raw", func(t *testing.T) {
		v := bc.volumeFrom(t, "raw")
		if v["status"] != "available" || v["bootable"] != "true" {
			t.Fatalf("volume from a raw image: status %v bootable %v", v["status"], v["bootable"])
		}
		f, err := bc.blocks.Open(context.Background(), volumeBlock(v["id"].(string)), false)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got := make([]byte, len(raw)+16)
		f.ReadAt(got, 0)
		if !bytes.Equal(got[:len(raw)], raw) || !allZero(got[len(raw):]) {
			t.Fatal("the raw image was not copied as is")
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		v := bc.volumeFrom(t, "corrupt")
		if v["status"] != "error" {
			t.Fatalf("volume from a corrupt image: status %v", v["status"])
		}
		if _, err := bc.blocks.Info(context.Background(), volumeBlock(v["id"].(string))); err == nil {
			t.Fatal("a volume in error kept its bytes")
		}
	})

	if entries, _ := os.ReadDir(bc.tmp); len(entries) != 0 {
		t.Fatalf("left in the temporary directory: %v", entries)
	}
}

// TestCopyData: only the data of a sparse file is copied, at its offsets.
func TestCopyData(t *testing.T) {
	src, err := os.Create(filepath.Join(t.TempDir(), "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const size = 64 << 20
	src.Truncate(size)
	src.WriteAt([]byte("head"), 0)
	src.WriteAt([]byte("middle"), 20<<20)
	src.WriteAt(make([]byte, 1<<20), 30<<20) // written zeros: data, not copied
	src.WriteAt([]byte("tail"), size-4)
	dst := fake.New()
	ctx := context.Background()
	if err := dst.Create(ctx, "v", size); err != nil {
		t.Fatal(err)
	}
	f, err := dst.Open(ctx, "v", true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := copyData(ctx, f, src, size); err != nil {
		t.Fatal(err)
	}
	for off, want := range map[int64]string{0: "head", 20 << 20: "middle", size - 4: "tail"} {
		got := make([]byte, len(want))
		f.ReadAt(got, off)
		if string(got) != want {
			t.Errorf("at %d: %q, want %q", off, got, want)
		}
	}
	if in, _ := dst.Info(ctx, "v"); in.Allocated > 1<<20 {
		t.Errorf("%d bytes allocated: holes and zeros were written", in.Allocated)
	}
}
