package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestGophercloud drives the image service with gophercloud's imageservice
// v2, found through the catalog like any client does.
func TestGophercloud(t *testing.T) {
	tc := newTestCloud(t, Config{})
	ctx := context.Background()
	client := func(user, password, project string) *gophercloud.ServiceClient {
		t.Helper()
		pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
			IdentityEndpoint: tc.srv.URL + "/identity/v3", Username: user, Password: password, DomainID: "default",
			Scope: &gophercloud.AuthScope{ProjectName: project, DomainID: "default"},
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := openstack.NewImageV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	demo := client("demo", demoPassword, "demo")
	alt := client("alt", "alt-secret", "alt")

	shared := images.ImageVisibilityShared
	im, err := images.Create(ctx, demo, images.CreateOpts{Name: "gopher", DiskFormat: "raw", ContainerFormat: "bare",
		Visibility: &shared, Tags: []string{"go"}, Properties: map[string]string{"os_distro": "gopher"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if im.Status != images.ImageStatusQueued || im.Properties["os_distro"] != "gopher" || im.CreatedAt.IsZero() ||
		!slices.Equal(im.OpenStackImageImportMethods, []string{"glance-direct"}) || !slices.Equal(im.OpenStackImageStoreIDs, []string{"file"}) {
		t.Fatalf("created %+v", im)
	}
	data := randomBytes(1<<20+7, 3)
	if err := imagedata.Upload(ctx, demo, im.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	im, err = images.Get(ctx, demo, im.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if im.Status != images.ImageStatusActive || im.SizeBytes != int64(len(data)) || im.Checksum != hex.EncodeToString(sum[:]) {
		t.Fatalf("after upload %+v", im)
	}
	rc, err := imagedata.Download(ctx, demo, im.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}

	im, err = images.Update(ctx, demo, im.ID, images.UpdateOpts{
		images.ReplaceImageName{NewName: "renamed"},
		images.ReplaceImageMinRam{NewMinRam: 128},
		images.UpdateImageProperty{Op: images.AddOp, Name: "hw_firmware_type", Value: "uefi"},
		images.UpdateImageProperty{Op: images.RemoveOp, Name: "os_distro"},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if im.Name != "renamed" || im.MinRAMMegabytes != 128 || im.Properties["hw_firmware_type"] != "uefi" || im.Properties["os_distro"] != nil {
		t.Fatalf("after update %+v", im)
	}
	if _, err := images.Update(ctx, demo, im.ID, images.UpdateOpts{images.ReplaceImageChecksum{Checksum: "x"}}).Extract(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Errorf("replacing the checksum: %v", err)
	}

	// Sharing.
	if _, err := images.Get(ctx, alt, im.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("alt sees an unshared image: %v", err)
	}
	m, err := members.Create(ctx, demo, im.ID, tc.altPr).Extract()
	if err != nil || m.Status != "pending" {
		t.Fatalf("member %+v %v", m, err)
	}
	if _, err := members.Update(ctx, alt, im.ID, tc.altPr, members.UpdateOpts{Status: "accepted"}).Extract(); err != nil {
		t.Fatal(err)
	}
	pages, err := members.List(demo, im.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := members.ExtractMembers(pages)
	if len(ms) != 1 || ms[0].Status != "accepted" {
		t.Errorf("members %+v", ms)
	}

	// Paging through the list with a small limit.
	for i := 0; i < 4; i++ {
		images.Create(ctx, demo, images.CreateOpts{Name: "page", Tags: []string{"paged"}})
	}
	var seen []string
	err = images.List(demo, images.ListOpts{Limit: 2, Tags: []string{"paged"}, Sort: "name:asc"}).EachPage(ctx,
		func(ctx context.Context, p pagination.Page) (bool, error) {
			list, err := images.ExtractImages(p)
			for _, im := range list {
				seen = append(seen, im.ID)
			}
			return true, err
		})
	if err != nil || len(seen) != 4 {
		t.Errorf("paged list: %v %v", seen, err)
	}
	all, err := images.List(alt, images.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := images.ExtractImages(all); len(list) != 1 || list[0].ID != im.ID {
		t.Errorf("alt's list: %+v", list)
	}

	// The import flow.
	info, err := imageimport.Get(ctx, demo).Extract()
	if err != nil || !slices.Equal(info.ImportMethods.Value, []string{"glance-direct"}) {
		t.Fatalf("import info %+v %v", info, err)
	}
	staged, err := images.Create(ctx, demo, images.CreateOpts{Name: "staged", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Stage(ctx, demo, staged.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := imageimport.Create(ctx, demo, staged.ID, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if staged, err = images.Get(ctx, demo, staged.ID).Extract(); err != nil || staged.Status != images.ImageStatusActive ||
		staged.Checksum != hex.EncodeToString(sum[:]) {
		t.Fatalf("imported %+v %v", staged, err)
	}

	if err := images.Delete(ctx, demo, staged.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := images.Delete(ctx, demo, staged.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("second delete: %v", err)
	}
}
