package acceptance

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/container/v1/capsules"
)

// TestCapsuleGophercloud drives capsules with gophercloud v2's capsules
// package (its only Zun package): create from a YAML template, get, list
// and delete, decoding what it decodes.
func TestCapsuleGophercloud(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s := demoSession(t)
	c, err := openstack.NewContainerV1(s.pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("container endpoint: %v", err)
	}
	name := uniq("gcpod")
	yaml := fmt.Sprintf(`kind: capsule
metadata:
  name: %s
  labels:
    app: gc
spec:
  restartPolicy: Always
  containers:
  - name: one
    image: busybox
    command: ["sleep", "600"]
    resources:
      requests:
        cpu: 0.1
        memory: 64
`, name)
	res := capsules.Create(ctx, c, capsules.CreateOpts{TemplateOpts: &capsules.Template{Bin: []byte(yaml)}})
	created, err := res.ExtractBase()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		err := capsules.Delete(context.Background(), c, created.UUID).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: delete capsule: %v", err)
		}
	})
	if created.MetaName != name || created.Memory != "64" {
		t.Errorf("created: %+v", created)
	}
	var got *capsules.Capsule
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got, err = capsules.Get(ctx, c, created.UUID).ExtractBase(); err != nil {
			t.Fatalf("get: %v", err)
		}
		if got.Status == "Running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("capsule %s is %s", created.UUID, got.Status)
		}
	}
	if len(got.Containers) != 1 || got.Containers[0].Image != "busybox" || got.Containers[0].Status != "Running" || got.CreatedAt.IsZero() {
		t.Errorf("capsule: %+v", got)
	}
	pages, err := capsules.List(c, nil).AllPages(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	all, err := capsules.ExtractCapsulesBase(pages)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	found := false
	for _, cp := range all {
		found = found || cp.UUID == created.UUID
	}
	if !found {
		t.Errorf("capsule %s not in the list %+v", created.UUID, all)
	}
	if err := capsules.Delete(ctx, c, created.UUID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := capsules.Get(ctx, c, created.UUID).ExtractBase()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("capsule %s still there: %v", created.UUID, err)
		}
	}
}
