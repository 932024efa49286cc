package fake_test

import (
	"testing"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/fake"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

type host struct{ h *fake.Host }

func (h host) Open(t *testing.T, owner string) runtime.Runtime { return fake.New(h.h, owner) }
func (h host) Leftovers(owner string) string                   { return h.h.Leftovers(owner) }
func (h host) Devices(owner, id string) ([]runtime.Device, error) {
	return fake.New(h.h, owner).Devices(id)
}

// RootDevice makes a block device of the fake host holding rootfs's files.
func (h host) RootDevice(t *testing.T, rootfs []byte) string {
	id := runtimetest.NewID()[:12]
	path, backing := "/dev/fakeloop-"+id, "/fake/volumes/"+id+".img"
	if err := h.h.SetBlockDevice(path, backing, rootfs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.h.RemoveBlockDevice(path) })
	return path
}

func TestConformance(t *testing.T) {
	shared := fake.NewHost() // one host for all tests, as a real machine is
	runtimetest.Run(t, func(t *testing.T) runtimetest.Host { return host{shared} })
}
