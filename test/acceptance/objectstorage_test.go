package acceptance

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
)

// objectClient is an Object Storage v1 client of a session, found in the
// catalog.
func objectClient(t *testing.T, s session) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewObjectStorageV1(s.pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("object-store endpoint: %v", err)
	}
	return c
}

func TestObjectStorage(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoSession(t), adminSession(t)
	c := objectClient(t, demo)

	// The account is AUTH_<project id>.
	account := "AUTH_" + tokenProject(t, demo).ID
	if !strings.HasSuffix(strings.TrimSuffix(c.Endpoint, "/"), "/"+account) {
		t.Errorf("demo's object-store endpoint %q, want one ending in /%s", c.Endpoint, account)
	}

	name := uniq("acc-container")
	if _, err := containers.Create(ctx, c, name, containers.CreateOpts{Metadata: map[string]string{"Purpose": "acceptance"}}).Extract(); err != nil {
		t.Fatalf("create container: %v", err)
	}
	deleteLater(t, "container "+name, func(ctx context.Context) error {
		pages, err := objects.List(c, name, nil).AllPages(ctx)
		if err == nil {
			names, _ := objects.ExtractNames(pages)
			for _, o := range names {
				objects.Delete(ctx, c, name, o, nil)
			}
		}
		return containersDelete(ctx, c, name)
	})
	md, err := containers.Get(ctx, c, name, nil).ExtractMetadata()
	if err != nil || md["Purpose"] != "acceptance" {
		t.Errorf("container metadata %v %v, want Purpose=acceptance", md, err)
	}

	pages, err := containers.List(c, containers.ListOpts{Prefix: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := containers.ExtractNames(pages); !slices.Equal(names, []string{name}) {
		t.Errorf("containers with prefix %s: %v", name, names)
	}

	data := bytes.Repeat([]byte("monostack acceptance object\n"), 1000)
	sum := md5.Sum(data)
	etag := hex.EncodeToString(sum[:])
	const obj = "dir/hello.txt"
	h, err := objects.Create(ctx, c, name, obj, objects.CreateOpts{Content: bytes.NewReader(data), ContentType: "text/plain",
		Metadata: map[string]string{"Color": "blue"}}).Extract()
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if h.ETag != etag {
		t.Errorf("upload ETag %q, want MD5 %s", h.ETag, etag)
	}
	// A wrong ETag on upload is refused (422).
	_, err = objects.Create(ctx, c, name, "bad-etag", objects.CreateOpts{Content: bytes.NewReader(data), ETag: strings.Repeat("0", 32)}).Extract()
	wantCode(t, err, http.StatusUnprocessableEntity, "upload with a wrong ETag")

	t.Run("list", func(t *testing.T) {
		pages, err := objects.List(c, name, objects.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		infos, err := objects.ExtractInfo(pages)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 || infos[0].Name != obj || infos[0].Bytes != int64(len(data)) || infos[0].Hash != etag || infos[0].ContentType != "text/plain" {
			t.Errorf("listing %+v, want %s (%d bytes, %s, text/plain)", infos, obj, len(data), etag)
		}
		pages, err = objects.List(c, name, objects.ListOpts{Prefix: "dir/", Delimiter: "/"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if names, _ := objects.ExtractNames(pages); !slices.Equal(names, []string{obj}) {
			t.Errorf("prefix dir/: %v", names)
		}
		pages, err = objects.List(c, name, objects.ListOpts{Prefix: "nothing"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if names, _ := objects.ExtractNames(pages); len(names) != 0 {
			t.Errorf("prefix nothing: %v", names)
		}
		ch, err := containers.Get(ctx, c, name, nil).Extract()
		if err != nil || ch.ObjectCount != 1 || ch.BytesUsed != int64(len(data)) {
			t.Errorf("container head %+v %v, want 1 object, %d bytes", ch, err, len(data))
		}
	})

	t.Run("download", func(t *testing.T) {
		dl := objects.Download(ctx, c, name, obj, nil)
		got, err := dl.ExtractContent()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("downloaded %d bytes, want the %d uploaded", len(got), len(data))
		}
		hd, err := objects.Download(ctx, c, name, obj, nil).Extract()
		if err != nil || hd.ETag != etag || hd.ContentLength != int64(len(data)) || hd.ContentType != "text/plain" {
			t.Errorf("download headers %+v %v", hd, err)
		}
		pr := objects.Download(ctx, c, name, obj, objects.DownloadOpts{Range: "bytes=0-8"})
		part, err := pr.ExtractContent()
		if err != nil || string(part) != "monostack" {
			t.Errorf("range 0-8: %q %v", part, err)
		}
	})

	t.Run("metadata", func(t *testing.T) {
		md, err := objects.Get(ctx, c, name, obj, nil).ExtractMetadata()
		if err != nil || md["Color"] != "blue" {
			t.Fatalf("object metadata %v %v, want Color=blue", md, err)
		}
		// POST replaces the object's metadata.
		if _, err := objects.Update(ctx, c, name, obj, objects.UpdateOpts{Metadata: map[string]string{"Shape": "round"}}).Extract(); err != nil {
			t.Fatalf("update metadata: %v", err)
		}
		md, err = objects.Get(ctx, c, name, obj, nil).ExtractMetadata()
		if err != nil || md["Shape"] != "round" || md["Color"] != "" {
			t.Errorf("object metadata after POST %v %v, want Shape=round only", md, err)
		}
		if _, err := containers.Update(ctx, c, name, containers.UpdateOpts{Metadata: map[string]string{"Owner": "demo"},
			RemoveMetadata: []string{"Purpose"}}).Extract(); err != nil {
			t.Fatalf("update container metadata: %v", err)
		}
		cmd, err := containers.Get(ctx, c, name, nil).ExtractMetadata()
		if err != nil || cmd["Owner"] != "demo" || cmd["Purpose"] != "" {
			t.Errorf("container metadata after POST %v %v, want Owner=demo, no Purpose", cmd, err)
		}
		// The content is unchanged.
		dr := objects.Download(ctx, c, name, obj, nil)
		got, err := dr.ExtractContent()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("content after metadata update: %d bytes, %v", len(got), err)
		}
	})

	t.Run("other accounts", func(t *testing.T) {
		// Admin's own account does not hold demo's container.
		ac := objectClient(t, admin)
		_, err := containers.Get(ctx, ac, name, nil).Extract()
		wantCode(t, err, http.StatusNotFound, "admin's account: demo's container")
		// Demo may not read admin's account.
		adminAccount := "AUTH_" + tokenProject(t, admin).ID
		code, _ := callRaw(t, "GET", strings.Replace(c.Endpoint, account, adminAccount, 1), demo.token(), nil)
		if code != http.StatusForbidden {
			t.Errorf("demo listing admin's account: %d, want 403", code)
		}
	})

	t.Run("delete", func(t *testing.T) {
		wantCode(t, containersDelete(ctx, c, name), http.StatusConflict, "delete a non-empty container")
		if _, err := objects.Delete(ctx, c, name, obj, nil).Extract(); err != nil {
			t.Fatalf("delete object: %v", err)
		}
		_, err := objects.Get(ctx, c, name, obj, nil).Extract()
		wantCode(t, err, http.StatusNotFound, "head a deleted object")
		_, err = objects.Delete(ctx, c, name, obj, nil).Extract()
		wantCode(t, err, http.StatusNotFound, "delete a deleted object")
		if err := containersDelete(ctx, c, name); err != nil {
			t.Fatalf("delete empty container: %v", err)
		}
		_, err = containers.Get(ctx, c, name, nil).Extract()
		wantCode(t, err, http.StatusNotFound, "head a deleted container")
	})
}

func containersDelete(ctx context.Context, c *gophercloud.ServiceClient, name string) error {
	_, err := containers.Delete(ctx, c, name).Extract()
	return err
}
