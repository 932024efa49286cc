package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/monostack/monostack/internal/agent"
	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/config"
	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/datapath/linuxbridge"
	"github.com/monostack/monostack/internal/network"
	"github.com/monostack/monostack/internal/runtime"
)

// agentIDFile keeps this node's agent id: the owner mark on every host
// object the agent makes, stable across restarts so that the agent
// recognises its own bridges, veths, namespaces and tables.
const agentIDFile = "agent-id"

func loadAgentID(dataDir string) (string, error) {
	file := filepath.Join(dataDir, agentIDFile)
	b, err := os.ReadFile(file)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var r [3]byte
	rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	return id, writeFileSync(file, []byte(id+"\n"), 0o600)
}

// startAgent starts this host's agent with the configured datapath; with
// "none", or when not root, there is no agent and ports stay DOWN.
func startAgent(c *cloud, cfg config.Config, host string, log *slog.Logger) error {
	if cfg.Datapath == "none" {
		log.Warn("datapath none: no host agent; ports stay DOWN and carry no traffic")
		return nil
	}
	if os.Geteuid() != 0 {
		log.Warn("not root: no host agent; ports stay DOWN and carry no traffic (run as root, or --datapath none to silence this)")
		return nil
	}
	id, err := loadAgentID(cfg.DataDir)
	if err != nil {
		return err
	}
	var dp datapath.Datapath
	if dp, err = linuxbridge.New(id, log.With("component", "datapath")); err != nil {
		return fmt.Errorf("datapath: %w", err)
	}
	ag := agent.New(host, c.bus, dp, log.With("component", "agent"))
	if err := ag.Start(); err != nil {
		dp.Close()
		return err
	}
	c.onClose(ag.Close)
	return nil
}

// networkConfig turns the settings into the network service's.
func networkConfig(cfg config.Config, host string) network.Config {
	nc := network.Config{Host: host}
	if cfg.PublicCIDR != "" {
		p := netip.MustParsePrefix(cfg.PublicCIDR)
		first := p.Addr().Next()
		last := lastAddr(p)
		nc.PublicCIDR, nc.PublicGateway = p.String(), first.String()
		nc.PublicPoolStart, nc.PublicPoolEnd = first.Next().String(), last.Prev().String()
	}
	if cfg.PrivateCIDR != "" {
		nc.PrivateCIDR = cfg.PrivateCIDR
	}
	return nc
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(b)
}

// startNetwork runs the network service, its agent link and its bootstrap.
func startNetwork(ctx context.Context, c *cloud, cfg config.Config, log *slog.Logger) (*network.Service, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	b, err := bus.Embedded(log.With("component", "bus"))
	if err != nil {
		return nil, err
	}
	c.bus = b
	c.onClose(b.Close)
	if err := startAgent(c, cfg, host, log); err != nil {
		return nil, err
	}
	client := &agent.NetworkClient{Bus: b}
	svc, err := network.New(ctx, c.db, networkConfig(cfg, host), client, log.With("service", "network"))
	if err != nil {
		return nil, err
	}
	c.onClose(func() error { svc.Close(); return nil })
	client.OnObserved = func(ctx context.Context, host string, obs datapath.Observed) {
		if err := svc.ReportObserved(ctx, host, obs); err != nil {
			log.Warn("recording what the agent observed", "host", host, "err", err)
		}
	}
	admin, err := c.identity.ProjectByName(ctx, "default", "admin")
	if err != nil {
		return nil, err
	}
	demo, err := c.identity.ProjectByName(ctx, "default", "demo")
	if err != nil {
		return nil, err
	}
	if err := svc.EnsureBootstrap(ctx, network.BootstrapConfig{AdminProjectID: admin.ID, DemoProjectID: demo.ID}); err != nil {
		return nil, fmt.Errorf("network bootstrap: %w", err)
	}
	return svc, c.identity.EnsureService(ctx, "network", "neutron", "Neutron Networking Service", cfg.BaseURL()+"/network")
}

// Purge removes from this host everything the agent of cfg's data dir made
// (containers, bridges, veths, router namespaces, nftables tables), for `monostack
// purge` after the cloud has stopped. Nothing of another owner is touched.
func Purge(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, agentIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil // no agent ever ran on this data dir
	}
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("purge needs root")
	}
	var errs []error
	if rt, err := newRuntime(cfg, log); err != nil {
		errs = append(errs, err)
	} else if rt != nil {
		_, err := runtime.Prune(ctx, rt, func(string) bool { return false })
		errs = append(errs, err, rt.Close())
		// runc's state root of this owner, empty now.
		errs = append(errs, os.RemoveAll(filepath.Join("/run/monostack", strings.TrimSpace(string(b)))))
	}
	// Containers' volume filesystems, loop devices of the volumes, and
	// the volumes' files.
	errs = append(errs, agent.UnmountAllVolumes(cfg.DataDir))
	if blocks, err := openBlocks(cfg, log); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, blocks.Purge(ctx))
	}
	dp, err := linuxbridge.New(strings.TrimSpace(string(b)), log)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer dp.Close()
	return errors.Join(append(errs, dp.Apply(ctx, datapath.HostState{}))...)
}
