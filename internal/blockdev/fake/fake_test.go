package fake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/monostack/monostack/internal/blockdev"
	"github.com/monostack/monostack/internal/blockdev/blockdevtest"
	"github.com/monostack/monostack/internal/blockdev/fake"
)

func TestConformance(t *testing.T) {
	host := fake.NewHost()
	blockdevtest.Run(t, func(t *testing.T) blockdev.Store { return host.Store() })
}

func TestCapacity(t *testing.T) {
	ctx := context.Background()
	s := fake.New()
	s.SetCapacity(256 << 10) // four chunks
	if err := s.Create(ctx, "big", 10<<30); err != nil {
		t.Fatalf("a sparse volume larger than the capacity: %v", err)
	}
	f, err := s.Open(ctx, "big", true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 192<<10), 0); err != nil {
		t.Fatalf("writing three chunks: %v", err)
	}
	if err := s.Clone(ctx, "copy", "big", 0); !errors.Is(err, blockdev.ErrNoSpace) {
		t.Fatalf("Clone past the capacity = %v; want ErrNoSpace", err)
	}
	if _, err := s.Info(ctx, "copy"); !errors.Is(err, blockdev.ErrNotFound) {
		t.Fatalf("a failed Clone left its id: %v", err)
	}
	if _, err := f.WriteAt(make([]byte, 128<<10), 1<<30); !errors.Is(err, blockdev.ErrNoSpace) {
		t.Fatalf("writing past the capacity = %v; want ErrNoSpace", err)
	}
	if err := s.Delete(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "small", 1<<20); err != nil {
		t.Fatal(err)
	}
	g, err := s.Open(ctx, "small", true)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.WriteAt(make([]byte, 256<<10), 0); err != nil {
		t.Fatalf("Delete did not give the space back: %v", err)
	}
}

func TestSetErr(t *testing.T) {
	ctx := context.Background()
	s := fake.New()
	broken := errors.New("disk on fire")
	s.SetErr(broken)
	if err := s.Create(ctx, "v", 1<<20); !errors.Is(err, broken) {
		t.Fatalf("Create = %v; want %v", err, broken)
	}
	if _, err := s.Recover(ctx); !errors.Is(err, broken) {
		t.Fatalf("Recover = %v; want %v", err, broken)
	}
	s.SetErr(nil)
	if err := s.Create(ctx, "v", 1<<20); err != nil {
		t.Fatal(err)
	}
}
