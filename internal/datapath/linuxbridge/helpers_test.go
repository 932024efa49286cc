package linuxbridge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/datapath/datapathtest"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("linuxbridge needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for bridges, veths, namespaces and nftables")
	}
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		t.Skip("no br_netfilter in this kernel: security groups cannot be enforced")
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newDatapath opens a datapath for owner; at cleanup it applies the empty
// state, checks that nothing of the owner is left on the host, and closes.
func newDatapath(t testing.TB, owner string) *Datapath {
	t.Helper()
	d, err := New(owner, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := d.Apply(ctx, datapath.HostState{}); err != nil {
			t.Errorf("cleanup Apply(empty): %v", err)
		}
		if left := leftovers(d.owner); left != "" {
			t.Errorf("left behind for owner %s: %s", d.owner, left)
		}
		d.Close()
	})
	return d
}

// leftovers describes whatever of owner is still on the host.
func leftovers(owner string) string {
	var left []string
	if ls, err := netlink.LinkList(); err == nil {
		for _, l := range ls {
			if strings.HasPrefix(l.Attrs().Alias, "monostack:"+owner+":") {
				left = append(left, "link "+l.Attrs().Name)
			}
		}
	}
	if names, _ := namedNetns("qrouter-" + owner + "_"); len(names) > 0 {
		left = append(left, "netns "+strings.Join(names, ","))
	}
	if c, err := nftables.New(); err == nil {
		if ts, err := c.ListTables(); err == nil {
			for _, tb := range ts {
				if tb.Name == "monostack-"+owner {
					left = append(left, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
				}
			}
		}
	}
	return strings.Join(left, "; ")
}

// newNetns makes a named namespace for the test ("mst-<random>"), deleted
// at cleanup, and returns its path.
func newNetns(t testing.TB) string {
	t.Helper()
	home, err := currentNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	name := "mst-" + datapathtest.NewID()[:10]
	h, err := newNamedNetns(name, home)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return filepath.Join(netnsDir, name)
}

// run runs fn in the namespace at path (the host's when path is hostNetns),
// on a locked thread.
func run(t testing.TB, path string, fn func() error) error {
	t.Helper()
	home, err := currentNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	if path == hostNetns {
		return inNetns(home, home, fn)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	return inNetns(ns, home, fn)
}

var _ = runtime.NumCPU
