package agent

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/defaultimage"
	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/fake"
)

type tarImages struct{ data []byte }

func (t tarImages) OpenImage(ctx context.Context, id string) (io.ReadCloser, runtime.ImageFormat, error) {
	return io.NopCloser(bytes.NewReader(t.data)), runtime.ImageFormat{Kind: "rootfs-tar"}, nil
}

func TestComputeOverBus(t *testing.T) {
	if _, err := os.Stat(defaultimage.Busybox); err != nil {
		t.Skip("busybox-static is not installed")
	}
	var img bytes.Buffer
	if err := defaultimage.Write(&img, defaultimage.Busybox); err != nil {
		t.Fatal(err)
	}
	b, err := bus.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rt := fake.New(fake.NewHost(), "t1")
	drives := t.TempDir()
	a := NewCompute("host1", b, rt, tarImages{img.Bytes()}, drives)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := &ComputeClient{Bus: b}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := ServerRequest{
		Spec:        runtime.Spec{ID: "srv1", Image: "img1", Process: runtime.Process{Init: true}},
		ConfigDrive: map[string][]byte{"openstack/latest/meta_data.json": []byte(`{"hostname":"srv1"}`)},
	}
	st, err := c.Ensure(ctx, "host1", req)
	if err != nil || st.Status != runtime.Created || st.Netns == "" {
		t.Fatalf("ensure (created): %+v %v", st, err)
	}
	if b, err := os.ReadFile(filepath.Join(drives, "srv1/openstack/latest/meta_data.json")); err != nil || string(b) != `{"hostname":"srv1"}` {
		t.Fatalf("config drive: %q %v", b, err)
	}
	req.Running = true
	for i := 0; i < 2; i++ { // idempotent
		if st, err = c.Ensure(ctx, "host1", req); err != nil || st.Status != runtime.Running {
			t.Fatalf("ensure (running) %d: %+v %v", i, st, err)
		}
	}
	if st, err = c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "pause"}); err != nil || st.Status != runtime.Paused {
		t.Fatalf("pause: %+v %v", st, err)
	}
	if st, err = c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "resume"}); err != nil || st.Status != runtime.Running {
		t.Fatalf("resume: %+v %v", st, err)
	}
	if st, err = c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "stop", Timeout: time.Second}); err != nil || st.Status != runtime.Stopped {
		t.Fatalf("stop: %+v %v", st, err)
	}
	list, err := c.List(ctx, "host1")
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if _, err := c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "explode"}); err == nil {
		t.Fatal("unknown action accepted")
	}
	if _, err := c.Action(ctx, "host1", ServerAction{ID: "srv1", Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(drives, "srv1")); !os.IsNotExist(err) {
		t.Fatalf("config drive left after delete: %v", err)
	}
	if list, _ := c.List(ctx, "host1"); len(list) != 0 {
		t.Fatalf("after delete: %v", list)
	}
}

// The config drive is written once: a second ensure must not replace the
// directory a running server has mounted.
func TestConfigDriveKeptAcrossEnsure(t *testing.T) {
	a := &ComputeAgent{driveDir: t.TempDir()}
	dir, err := a.writeDrive("s1", map[string][]byte{"openstack/latest/user_data": []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(dir)
	if _, err := a.writeDrive("s1", map[string][]byte{"openstack/latest/user_data": []byte("one")}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(dir)
	if !os.SameFile(before, after) {
		t.Fatal("the config drive directory was replaced")
	}
}
