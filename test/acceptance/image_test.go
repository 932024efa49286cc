package acceptance

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// imageClient is an Image v2 client of a session, found in the catalog.
func imageClient(t *testing.T, s session) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewImageV2(s.pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("image endpoint: %v", err)
	}
	return c
}

// rootfsTar is a small root filesystem tarball.
func rootfsTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range []struct {
		name string
		body string
		mode int64
	}{
		{"etc/", "", 0o755},
		{"etc/hostname", "acceptance\n", 0o644},
		{"bin/", "", 0o755},
		{"bin/hello", "#!/bin/sh\necho hello\n", 0o755},
	} {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mod, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.name[len(e.name)-1] == '/' {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mkImage(t *testing.T, c *gophercloud.ServiceClient, opts images.CreateOpts) *images.Image {
	t.Helper()
	im, err := images.Create(context.Background(), c, opts).Extract()
	if err != nil {
		t.Fatalf("create image %s: %v", opts.Name, err)
	}
	deleteLater(t, "image "+opts.Name, func(ctx context.Context) error { return images.Delete(ctx, c, im.ID).ExtractErr() })
	return im
}

func listImages(t *testing.T, c *gophercloud.ServiceClient, opts images.ListOpts) []string {
	t.Helper()
	pages, err := images.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list images %+v: %v", opts, err)
	}
	ims, err := images.ExtractImages(pages)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, im := range ims {
		ids = append(ids, im.ID)
	}
	return ids
}

func TestImageLifecycle(t *testing.T) {
	ctx := context.Background()
	demo := demoSession(t)
	c := imageClient(t, demo)
	demoProject := tokenProject(t, demo).ID

	name := uniq("acc-image")
	im := mkImage(t, c, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare",
		Tags: []string{"acceptance"}, Properties: map[string]string{"os_distro": "acceptance"}})
	if im.Status != images.ImageStatusQueued || im.Name != name || im.Owner != demoProject ||
		im.Visibility != images.ImageVisibilityShared || !slices.Equal(im.Tags, []string{"acceptance"}) || im.Properties["os_distro"] != "acceptance" {
		// Glance's default visibility for a new image is shared.
		t.Errorf("created %+v", im)
	}

	data := rootfsTar(t)
	if err := imagedata.Upload(ctx, c, im.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("upload: %v", err)
	}
	got, err := images.Get(ctx, c, im.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(data)) || got.Checksum != hex.EncodeToString(sum[:]) {
		t.Errorf("after upload: status %s size %d checksum %s, want active %d %x", got.Status, got.SizeBytes, got.Checksum, len(data), sum)
	}
	// Uploading twice is a conflict.
	wantCode(t, imagedata.Upload(ctx, c, im.ID, bytes.NewReader(data)).ExtractErr(), http.StatusConflict, "upload to an active image")

	rc, err := imagedata.Download(ctx, c, im.ID).Extract()
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("downloaded %d bytes (%v), want the %d uploaded", len(back), err, len(data))
	}

	t.Run("update", func(t *testing.T) {
		renamed := name + "-renamed"
		up, err := images.Update(ctx, c, im.ID, images.UpdateOpts{
			images.ReplaceImageName{NewName: renamed},
			images.ReplaceImageMinRam{NewMinRam: 64},
			images.ReplaceImageMinDisk{NewMinDisk: 1},
			images.UpdateImageProperty{Op: images.AddOp, Name: "hw_machine_type", Value: "container"},
			images.UpdateImageProperty{Op: images.RemoveOp, Name: "os_distro"},
		}).Extract()
		if err != nil {
			t.Fatalf("patch: %v", err)
		}
		if up.Name != renamed || up.MinRAMMegabytes != 64 || up.MinDiskGigabytes != 1 ||
			up.Properties["hw_machine_type"] != "container" || up.Properties["os_distro"] != nil {
			t.Errorf("after patch %+v", up)
		}
		// Read-only attributes cannot be changed.
		_, err = images.Update(ctx, c, im.ID, images.UpdateOpts{images.ReplaceImageChecksum{Checksum: "00"}}).Extract()
		if err == nil {
			t.Errorf("replacing the checksum succeeded")
		} else if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) && !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Errorf("replacing the checksum: %v, want 403 (or 400)", err)
		}
	})

	t.Run("tags", func(t *testing.T) {
		up, err := images.Update(ctx, c, im.ID, images.UpdateOpts{images.ReplaceImageTags{NewTags: []string{"b", "a"}}}).Extract()
		if err != nil {
			t.Fatalf("replace tags: %v", err)
		}
		if got := sorted(up.Tags); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("tags after replace %v, want [a b]", got)
		}
		tok := demo.token()
		if code, body := call(t, "PUT", c.ServiceURL("images", im.ID, "tags", "c"), tok, nil); code != http.StatusNoContent {
			t.Errorf("PUT tag c: %d %v", code, body)
		}
		if code, body := call(t, "DELETE", c.ServiceURL("images", im.ID, "tags", "a"), tok, nil); code != http.StatusNoContent {
			t.Errorf("DELETE tag a: %d %v", code, body)
		}
		if code, _ := call(t, "DELETE", c.ServiceURL("images", im.ID, "tags", "no-such-tag"), tok, nil); code != http.StatusNotFound {
			t.Errorf("DELETE a tag the image does not have: %d, want 404", code)
		}
		got, err := images.Get(ctx, c, im.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if tags := sorted(got.Tags); !slices.Equal(tags, []string{"b", "c"}) {
			t.Errorf("tags %v, want [b c]", tags)
		}
	})

	t.Run("list filters", func(t *testing.T) {
		other := mkImage(t, c, images.CreateOpts{Name: uniq("acc-image-other"), DiskFormat: "qcow2", ContainerFormat: "bare", Tags: []string{"b"}})
		has := func(ids []string, id string) bool { return slices.Contains(ids, id) }
		renamed := name + "-renamed"
		if ids := listImages(t, c, images.ListOpts{Name: renamed}); !slices.Equal(ids, []string{im.ID}) {
			t.Errorf("name=%s: %v, want [%s]", renamed, ids, im.ID)
		}
		if ids := listImages(t, c, images.ListOpts{Tags: []string{"c"}}); !has(ids, im.ID) || has(ids, other.ID) {
			t.Errorf("tag=c: %v, want %s and not %s", ids, im.ID, other.ID)
		}
		if ids := listImages(t, c, images.ListOpts{Tags: []string{"b"}}); !has(ids, im.ID) || !has(ids, other.ID) {
			t.Errorf("tag=b: %v, want both", ids)
		}
		if ids := listImages(t, c, images.ListOpts{Status: images.ImageStatusQueued, Owner: demoProject}); has(ids, im.ID) || !has(ids, other.ID) {
			t.Errorf("status=queued: %v, want %s only", ids, other.ID)
		}
		if ids := listImages(t, c, images.ListOpts{Status: images.ImageStatusActive, Owner: demoProject}); !has(ids, im.ID) || has(ids, other.ID) {
			t.Errorf("status=active: %v, want %s only", ids, im.ID)
		}
		if ids := listImages(t, c, images.ListOpts{DiskFormat: "qcow2", Owner: demoProject}); has(ids, im.ID) || !has(ids, other.ID) {
			t.Errorf("disk_format=qcow2: %v, want %s only", ids, other.ID)
		}
		if ids := listImages(t, c, images.ListOpts{Visibility: images.ImageVisibilityPublic}); has(ids, im.ID) || len(ids) == 0 {
			t.Errorf("visibility=public: %v, want the public images (busybox), not %s", ids, im.ID)
		}
		// Paging: limit 1 pages through them all.
		pages := 0
		err := images.List(c, images.ListOpts{Limit: 1, Owner: demoProject}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			ims, err := images.ExtractImages(p)
			if err != nil {
				return false, err
			}
			if len(ims) > 1 {
				t.Errorf("page of %d images with limit 1", len(ims))
			}
			pages += len(ims)
			return true, nil
		})
		if err != nil || pages < 2 {
			t.Errorf("paging with limit=1: %d images, %v", pages, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := images.Delete(ctx, c, im.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		_, err := images.Get(ctx, c, im.ID).Extract()
		wantCode(t, err, http.StatusNotFound, "get a deleted image")
		_, err = imagedata.Download(ctx, c, im.ID).Extract()
		wantCode(t, err, http.StatusNotFound, "download a deleted image")
		wantCode(t, images.Delete(ctx, c, im.ID).ExtractErr(), http.StatusNotFound, "delete a deleted image")
	})
}

func TestImageVisibility(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoSession(t), adminSession(t)
	dc, ac := imageClient(t, demo), imageClient(t, admin)

	private := images.ImageVisibilityPrivate
	priv := mkImage(t, ac, images.CreateOpts{Name: uniq("acc-admin-private"), DiskFormat: "raw", ContainerFormat: "bare", Visibility: &private})
	if priv.Visibility != images.ImageVisibilityPrivate {
		t.Errorf("admin's image visibility %s, want private", priv.Visibility)
	}
	_, err := images.Get(ctx, dc, priv.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "demo getting admin's private image")
	_, err = images.Update(ctx, dc, priv.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "x"}}).Extract()
	wantCode(t, err, http.StatusNotFound, "demo patching admin's private image")
	wantCode(t, images.Delete(ctx, dc, priv.ID).ExtractErr(), http.StatusNotFound, "demo deleting admin's private image")
	if slices.Contains(listImages(t, dc, images.ListOpts{}), priv.ID) {
		t.Errorf("demo's image list has admin's private image %s", priv.ID)
	}
	if !slices.Contains(listImages(t, ac, images.ListOpts{}), priv.ID) {
		t.Errorf("admin's image list lacks its private image %s", priv.ID)
	}

	// The public busybox image: demo sees it and cannot change it.
	pages, err := images.List(dc, images.ListOpts{Name: "busybox"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := images.ExtractImages(pages)
	if err != nil || len(bb) != 1 || bb[0].Visibility != images.ImageVisibilityPublic || bb[0].Status != images.ImageStatusActive {
		t.Fatalf("busybox as demo sees it: %+v %v", bb, err)
	}
	_, err = images.Update(ctx, dc, bb[0].ID, images.UpdateOpts{images.ReplaceImageName{NewName: "mine"}}).Extract()
	wantCode(t, err, http.StatusForbidden, "demo renaming the public busybox image")
	wantCode(t, images.Delete(ctx, dc, bb[0].ID).ExtractErr(), http.StatusForbidden, "demo deleting the public busybox image")

	// Publicizing an image is an admin's right.
	public := images.ImageVisibilityPublic
	pub, err := images.Create(ctx, dc, images.CreateOpts{Name: uniq("acc-demo-public"), Visibility: &public}).Extract()
	if err == nil {
		images.Delete(ctx, ac, pub.ID)
	}
	wantCode(t, err, http.StatusForbidden, "demo creating a public image")
}
