package agent

import (
	"context"
	"testing"
	"time"

	blockfake "github.com/monostack/monostack/internal/blockdev/fake"
	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/fake"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

// TestRootVolume: a server of a root volume gets the volume's device as
// its root, ensured again as it is; after a host restart (its loop devices
// gone) a start attaches the volume again first; its delete and the
// release of its volumes leave the device detached.
func TestRootVolume(t *testing.T) {
	b, err := bus.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	host := fake.NewHost()
	rt := fake.New(host, "t1")
	blocks := blockfake.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := blocks.Create(ctx, "volume-1", 1<<30); err != nil {
		t.Fatal(err)
	}
	// The fake block store's first device, as the fake runtime's host
	// knows it: the volume's filesystem holds the default image.
	if err := host.SetBlockDevice("/dev/fakeloop0", "volume-1", runtimetest.DefaultImage(t)); err != nil {
		t.Fatal(err)
	}
	a := NewCompute("host1", b, rt, tarImages{}, t.TempDir())
	a.SetBlocks(blocks)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := &ComputeClient{Bus: b}
	req := ServerRequest{
		Spec:       runtime.Spec{ID: "srv1", Image: "ignored", Process: runtime.Process{Init: true}},
		RootVolume: &VolumeDevice{Block: "volume-1", Device: "/dev/vda"},
		Running:    true,
	}
	for i := 0; i < 2; i++ {
		st, err := c.Ensure(ctx, "host1", req)
		if err != nil || st.Status != runtime.Running || st.Image != "" {
			t.Fatalf("ensure #%d: %+v %v", i, st, err)
		}
	}
	if in, err := blocks.Info(ctx, "volume-1"); err != nil || in.Device != "/dev/fakeloop0" {
		t.Fatalf("the root volume is not attached: %+v %v", in, err)
	}
	if devs, _ := rt.Devices("srv1"); len(devs) != 0 {
		t.Fatalf("the root volume was given as a device too: %v", devs)
	}

	// A host restart: the server stopped, its loop device gone, another
	// volume attached first takes its number.
	if _, err := c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "stop", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := blocks.Detach(ctx, "volume-1"); err != nil {
		t.Fatal(err)
	}
	host.RemoveBlockDevice("/dev/fakeloop0")
	if err := blocks.Create(ctx, "volume-2", 1<<30); err != nil {
		t.Fatal(err)
	}
	if dev, err := blocks.Attach(ctx, "volume-2", false); err != nil || dev != "/dev/fakeloop0" {
		t.Fatalf("attach volume-2: %s %v", dev, err)
	}
	host.SetBlockDevice("/dev/fakeloop0", "volume-2", nil)
	host.SetBlockDevice("/dev/fakeloop1", "volume-1", runtimetest.DefaultImage(t))
	if st, err := c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "start"}); err != nil || st.Status != runtime.Running {
		t.Fatalf("start after a host restart: %+v %v", st, err)
	}
	if in, _ := blocks.Info(ctx, "volume-1"); in.Device != "/dev/fakeloop1" {
		t.Fatalf("the start did not attach the root volume again: %+v", in)
	}
	if _, err := c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetVolumes(ctx, "host1", VolumesRequest{ID: "srv1", Detach: []string{"volume-1"}}); err != nil {
		t.Fatal(err)
	}
	if in, _ := blocks.Info(ctx, "volume-1"); in.Device != "" {
		t.Fatalf("the root volume is still attached at %s", in.Device)
	}
	if _, err := c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "start"}); err == nil {
		t.Fatal("a deleted server started")
	}
	if in, _ := blocks.Info(ctx, "volume-1"); in.Device != "" {
		t.Fatal("a start of a deleted server attached its root volume")
	}
	// No block store: refused.
	bare := NewCompute("host2", b, fake.New(host, "t2"), tarImages{}, t.TempDir())
	if err := bare.Start(); err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	req.Spec.ID = "srv2"
	if _, err := c.Ensure(ctx, "host2", req); err == nil {
		t.Fatal("a host without a block store took a root volume")
	}
}
