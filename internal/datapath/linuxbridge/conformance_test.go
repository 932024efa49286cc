package linuxbridge

import (
	"testing"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/datapath/datapathtest"
)

type host struct{}

func (host) Open(t *testing.T, owner string) datapath.Datapath {
	d, err := New(owner, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := leftovers(owner); left != "" {
			t.Errorf("left behind for owner %s: %s", owner, left)
		}
	})
	return d
}

func (host) Netns(t *testing.T) string { return newNetns(t) }

func TestConformance(t *testing.T) {
	needRoot(t)
	datapathtest.Run(t, func(t *testing.T) datapathtest.Host { return host{} })
}
