package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/config"
	"github.com/monostack/monostack/internal/network"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs Up until the returned stop is called, which returns Up's error.
func start(t *testing.T, cfg config.Config) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Up(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(cfg.BaseURL() + "/healthcheck")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Up returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() error { cancel(); return <-done }
}

func TestUpServesAndRestarts(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.BcryptCost = 4
	cfg.AdminPassword = "s3cret"
	cfg.Datapath = "none" // the datapath has its own tests; see TestDatapathAndPurge
	stop := start(t, cfg)

	res, err := http.Get(cfg.BaseURL() + "/identity/v3")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("X-Openstack-Request-Id"), "req-") {
		t.Fatalf("GET /identity/v3: %d, request id %q", res.StatusCode, res.Header.Get("X-Openstack-Request-Id"))
	}
	res, _ = http.Get(cfg.BaseURL() + "/nowhere")
	res.Body.Close()
	if res.StatusCode != 404 || res.Header.Get("X-Openstack-Request-Id") == "" {
		t.Fatalf("GET /nowhere: %d", res.StatusCode)
	}
	for _, f := range []string{"openrc.admin", "openrc.demo", "clouds.yaml", "passwords"} {
		fi, err := os.Stat(filepath.Join(cfg.DataDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, fi)
		}
	}
	rc, err := OpenrcFromDataDir(cfg, "admin")
	if err != nil || !strings.Contains(rc, "export OS_PASSWORD='s3cret'") || !strings.Contains(rc, "OS_AUTH_URL='"+cfg.BaseURL()+"/identity'") {
		t.Fatalf("openrc: %v\n%s", err, rc)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(cfg.DataDir, "passwords"))

	// A restart keeps everything and changes nothing, even with another
	// --admin-password.
	cfg.AdminPassword = "other"
	stop = start(t, cfg)
	after, _ := os.ReadFile(filepath.Join(cfg.DataDir, "passwords"))
	if string(before) != string(after) {
		t.Fatalf("passwords changed on restart")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.BcryptCost = 12 // a slow password check is the in-flight request
	cfg.Datapath = "none"
	stop := start(t, cfg)
	pw, _ := readPasswords(filepath.Join(cfg.DataDir, "passwords"))
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"` + pw["admin"] + `"}}}}}`
	got := make(chan int, 1)
	go func() {
		res, err := http.Post(cfg.BaseURL()+"/identity/v3/auth/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			got <- 0
			return
		}
		res.Body.Close()
		got <- res.StatusCode
	}()
	time.Sleep(50 * time.Millisecond) // the request is in bcrypt now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if code := <-got; code != 201 {
		t.Fatalf("in-flight request got %d, want 201", code)
	}
}

// TestDatapathAndPurge runs the real datapath: the bootstrap networks
// appear on the host as bridges and the router as a namespace, stay across
// a stop, and purge removes them all.
func TestDatapathAndPurge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the datapath needs root")
	}
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.BcryptCost = 4
	cfg.PublicCIDR, cfg.PrivateCIDR = "198.18.200.0/24", "198.18.201.0/24"
	t.Cleanup(func() { Purge(context.Background(), cfg, slog.New(slog.DiscardHandler)) })
	stop := start(t, cfg)
	owned := func() (links, netns int) {
		out, _ := exec.Command("ip", "-o", "link", "show").Output()
		id, _ := os.ReadFile(filepath.Join(cfg.DataDir, agentIDFile))
		links = strings.Count(string(out), "monostack:"+strings.TrimSpace(string(id)))
		ns, _ := exec.Command("ip", "netns", "list").Output()
		netns = strings.Count(string(ns), strings.TrimSpace(string(id)))
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, n := owned()
		if l >= 2 && n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			out, _ := exec.Command("ip", "-o", "link", "show").Output()
			t.Fatalf("bootstrap networks not on the host (links %d, netns %d):\n%s", l, n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if l, _ := owned(); l == 0 {
		t.Fatal("stopping removed the datapath; it should outlive the daemon")
	}
	if err := Purge(context.Background(), cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if l, n := owned(); l != 0 || n != 0 {
		t.Fatalf("after purge: %d links, %d namespaces left", l, n)
	}
}

// TestUpFailingStartIsAnError: a start that fails half-way (here the
// image service refuses its hashing algorithm, after the database and
// identity are up) returns the error, having closed what it opened, and
// does not panic.
func TestUpFailingStartIsAnError(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.BcryptCost = 4
	cfg.Datapath = "none"
	cfg.ImageHashAlgorithm = "crc32"
	err := Up(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "crc32") {
		t.Fatalf("Up = %v, want the hashing algorithm refused", err)
	}
}

// TestConfigKnowsNetworkDefaults: config refuses ranges overlapping the
// network service's default ones, which it spells out itself (config
// imports nothing of ours): this pins the two together.
func TestConfigKnowsNetworkDefaults(t *testing.T) {
	for _, args := range [][]string{{"--private-cidr", network.DefaultPublicCIDR}, {"--public-cidr", network.DefaultPrivateCIDR}} {
		if _, _, err := config.Parse("up", args, func(string) string { return "" }, nil); err == nil || !strings.Contains(err.Error(), "overlap") {
			t.Errorf("%v: %v, want the overlap with the network service's default refused", args, err)
		}
	}
}
