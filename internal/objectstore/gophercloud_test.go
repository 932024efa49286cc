package objectstore

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/accounts"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestGophercloud drives the object store with gophercloud v2, one of the
// clients it must serve unchanged.
func TestGophercloud(t *testing.T) {
	tc := newTestCloud(t)
	ctx := t.Context()
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{}}
	pc.SetToken(tc.demo)
	sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: tc.srv.URL + acct(tc.demoProject) + "/"}

	if _, err := accounts.Update(ctx, sc, accounts.UpdateOpts{Metadata: map[string]string{"Temp-Url-Key": "gckey"}}).Extract(); err != nil {
		t.Fatalf("account update: %v", err)
	}
	if _, err := containers.Create(ctx, sc, "gc", containers.CreateOpts{Metadata: map[string]string{"Color": "blue"}}).Extract(); err != nil {
		t.Fatalf("container create: %v", err)
	}
	for _, name := range []string{"a.txt", "dir/b.txt", "dir/sub/c.txt", "spaced name.txt"} {
		_, err := objects.Create(ctx, sc, "gc", name, objects.CreateOpts{Content: strings.NewReader("content of " + name),
			Metadata: map[string]string{"Origin": "gophercloud"}}).Extract()
		if err != nil {
			t.Fatalf("object create %s: %v", name, err)
		}
	}
	res := objects.Download(ctx, sc, "gc", "dir/sub/c.txt", nil)
	body, err := res.ExtractContent()
	if err != nil || string(body) != "content of dir/sub/c.txt" {
		t.Fatalf("download: %q %v", body, err)
	}
	var listed []string
	err = objects.List(sc, "gc", objects.ListOpts{Prefix: "dir/", Delimiter: "/"}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		names, err := objects.ExtractNames(p)
		listed = append(listed, names...)
		return true, err
	})
	if err != nil || strings.Join(listed, ",") != "dir/b.txt,dir/sub/" {
		t.Errorf("list: %v %v", listed, err)
	}
	all, err := objects.List(sc, "gc", objects.ListOpts{Limit: 2}).AllPages(ctx)
	if err != nil {
		t.Fatalf("all pages: %v", err)
	}
	infos, err := objects.ExtractInfo(all)
	if err != nil || len(infos) != 4 || infos[0].Hash != md5hex("content of a.txt") || infos[0].LastModified.IsZero() {
		t.Errorf("infos %+v %v", infos, err)
	}
	cpages, err := containers.List(sc, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := containers.ExtractInfo(cpages)
	if len(cs) != 1 || cs[0].Name != "gc" || cs[0].Count != 4 {
		t.Errorf("containers %+v", cs)
	}
	got, err := containers.Get(ctx, sc, "gc", nil).Extract()
	if err != nil || got.ObjectCount != 4 {
		t.Errorf("container get %+v %v", got, err)
	}
	meta, err := containers.Get(ctx, sc, "gc", nil).ExtractMetadata()
	if err != nil || meta["Color"] != "blue" {
		t.Errorf("container metadata %v %v", meta, err)
	}
	ah, err := accounts.Get(ctx, sc, nil).Extract()
	if err != nil || ah.ObjectCount != 4 || ah.ContainerCount != 1 || ah.TempURLKey != "gckey" {
		t.Errorf("account %+v %v", ah, err)
	}
	if _, err := objects.Copy(ctx, sc, "gc", "a.txt", objects.CopyOpts{Destination: "/gc/copy.txt"}).Extract(); err != nil {
		t.Errorf("copy: %v", err)
	}
	ometa, err := objects.Get(ctx, sc, "gc", "copy.txt", nil).ExtractMetadata()
	if err != nil || ometa["Origin"] != "gophercloud" {
		t.Errorf("copied metadata %v %v", ometa, err)
	}
	// TempURL as gophercloud signs it.
	for _, digest := range []string{"sha1", "sha256", "sha512"} {
		u, err := objects.CreateTempURL(ctx, sc, "gc", "spaced name.txt", objects.CreateTempURLOpts{Method: "GET", TTL: 60, Digest: digest})
		if err != nil {
			t.Fatalf("temp url: %v", err)
		}
		r, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || string(b) != "content of spaced name.txt" {
			t.Errorf("temp url %s: %d %s", digest, r.StatusCode, b)
		}
	}
	bd, err := objects.BulkDelete(ctx, sc, "gc", []string{"a.txt", "dir/b.txt", "nope"}).Extract()
	if err != nil || bd.NumberDeleted != 2 || bd.NumberNotFound != 1 {
		t.Errorf("bulk delete %+v %v", bd, err)
	}
	names := []string{}
	all, _ = objects.List(sc, "gc", nil).AllPages(ctx)
	names, _ = objects.ExtractNames(all)
	sort.Strings(names)
	if strings.Join(names, ",") != "copy.txt,dir/sub/c.txt,spaced name.txt" {
		t.Errorf("after bulk delete: %v", names)
	}
	for _, n := range names {
		if _, err := objects.Delete(ctx, sc, "gc", n, nil).Extract(); err != nil {
			t.Errorf("delete %s: %v", n, err)
		}
	}
	if _, err := containers.Delete(ctx, sc, "gc").Extract(); err != nil {
		t.Errorf("container delete: %v", err)
	}
}
