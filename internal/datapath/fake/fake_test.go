package fake_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/datapath/datapathtest"
	"github.com/monostack/monostack/internal/datapath/fake"
)

type host struct {
	h *fake.Host
	n int
}

func (h *host) Open(t *testing.T, owner string) datapath.Datapath { return h.h.Datapath(owner) }

func (h *host) Netns(t *testing.T) string {
	h.n++
	return fmt.Sprintf("/run/netns/fake%d", h.n)
}

func TestConformance(t *testing.T) {
	datapathtest.Run(t, func(t *testing.T) datapathtest.Host { return &host{h: fake.NewHost()} })
}

func TestRecordsLastState(t *testing.T) {
	dp := fake.New("o1")
	s := datapath.HostState{Networks: []datapath.Network{{ID: "n1", MTU: 1500}}}
	if err := dp.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	s.Networks[0].MTU = 9000 // the fake keeps its own copy
	if got := dp.Last(); len(got.Networks) != 1 || got.Networks[0].MTU != 1500 {
		t.Fatalf("Last = %+v", got)
	}
	if dp.Applies() != 1 {
		t.Fatalf("Applies = %d", dp.Applies())
	}
	boom := errors.New("boom")
	dp.SetErr(boom)
	if err := dp.Apply(context.Background(), datapath.HostState{}); !errors.Is(err, boom) {
		t.Fatalf("Apply = %v, want boom", err)
	}
}
