package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/bus"
	"github.com/monostack/monostack/internal/config"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/image"
	"github.com/monostack/monostack/internal/objectstore"
	"github.com/monostack/monostack/internal/store"
)

// Paths inside the data directory.
const (
	dbFile       = "monostack.db"
	keysDir      = "fernet-keys"
	passwordFile = "passwords"
)

// Up runs monostack until ctx is cancelled: it opens the listener at once
// (answering 503 until ready), opens the store, bootstraps on first start,
// writes the openrc files, then serves. On cancellation in-flight requests
// finish and the store closes cleanly.
func Up(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var ready atomic.Pointer[http.Handler]
	srv := &http.Server{
		Handler: api.WithRequestID(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := ready.Load(); h != nil {
				(*h).ServeHTTP(w, r)
				return
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, "starting", http.StatusServiceUnavailable)
		})),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	c, err := build(ctx, cfg, log)
	if err != nil {
		srv.Close()
		return err
	}
	defer c.close()
	c.startPurges(cfg.KeepDeleted, log)
	h := c.handler
	ready.Store(&h)
	c.identity.Warm()
	go reloadKeys(ctx, c.keys, log)
	log.Info("monostack is ready", "url", cfg.BaseURL(), "data_dir", cfg.DataDir,
		"openrc", filepath.Join(cfg.DataDir, "openrc.admin"))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

// cloud is the wired services.
type cloud struct {
	db       *store.DB
	keys     *fernet.Repo
	bus      *bus.Bus
	identity *identity.Service
	handler  http.Handler
	// netnsName is the runtime's name for a container's network namespace;
	// hasRuntime: this host runs containers (root, with a datapath).
	netnsName  func(id string) string
	hasRuntime bool
	closers    []func() error
	// purgers forget deleted resources past --keep-deleted (purge.go).
	purgers []purger
}

// onClose registers fn to run at close, in reverse order of registration.
func (c *cloud) onClose(fn func() error) { c.closers = append(c.closers, fn) }

// close stops the services and closes the store, last opened first.
func (c *cloud) close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	c.closers = nil
	return errors.Join(errs...)
}

func build(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *cloud, err error) {
	// Not the named result: `return nil, err` would set it to nil before
	// the deferred close, which then panicked instead of undoing the
	// start.
	c := &cloud{}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.db, err = store.Open(filepath.Join(cfg.DataDir, dbFile)); err != nil {
		return nil, err
	}
	c.onClose(c.db.Close)
	if c.keys, err = fernet.OpenRepo(filepath.Join(cfg.DataDir, keysDir), cfg.MaxActiveKeys); err != nil {
		return nil, err
	}
	ident, err := identity.New(ctx, c.db, c.keys, identity.Config{
		BaseURL: cfg.BaseURL(), Region: cfg.Region, TokenTTL: cfg.TokenTTL, BcryptCost: cfg.BcryptCost,
	}, log.With("service", "identity"))
	if err != nil {
		return nil, err
	}
	c.identity = ident
	pw, err := loadPasswords(cfg)
	if err != nil {
		return nil, err
	}
	generated := map[string]bool{"admin": cfg.AdminPassword == "", "demo": true}
	if err := ident.EnsureBootstrap(ctx, identity.Bootstrap{AdminPassword: pw["admin"], DemoPassword: pw["demo"], Generated: generated}); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := writeClientFiles(cfg, pw); err != nil {
		return nil, err
	}
	img, err := image.New(ctx, c.db, image.Config{
		DataDir: filepath.Join(cfg.DataDir, "image"), MaxImageSize: cfg.ImageMaxSize,
		ImageCountQuota: int64(cfg.ImageCountQuota), StorageQuota: cfg.ImageBytesQuota,
		HashAlgorithm: cfg.ImageHashAlgorithm,
	}, log.With("service", "image"))
	if err != nil {
		return nil, err
	}
	c.purgers = append(c.purgers, purger{"image ids", img.PurgeDeleted})
	if err := ensureDefaultImage(ctx, ident, img, log); err != nil {
		return nil, err
	}
	if err := ident.EnsureService(ctx, "image", "glance", "Glance Image Service", cfg.BaseURL()+"/image"); err != nil {
		return nil, err
	}
	netSvc, err := startNetwork(ctx, c, cfg, log)
	if err != nil {
		return nil, err
	}
	obj, err := objectstore.New(ctx, c.db, objectstore.Config{DataDir: filepath.Join(cfg.DataDir, "objectstore")}, log.With("service", "object-store"))
	if err != nil {
		return nil, err
	}
	c.onClose(obj.Close)
	blocks, err := openBlocks(cfg, log)
	if err != nil {
		return nil, err
	}
	volSvc, err := startVolume(ctx, c, cfg, blocks, img, obj, log)
	if err != nil {
		return nil, err
	}
	computeSvc, pl, err := startCompute(ctx, c, cfg, netSvc.Host(), img, netSvc, blocks, volSvc, log)
	if err != nil {
		return nil, err
	}
	zun, err := startContainers(ctx, c, cfg, netSvc.Host(), img, netSvc, volSvc, c.netnsName, log)
	if err != nil {
		return nil, err
	}
	// Keystone fills the project id into the URL of each token's catalog.
	if err := ident.EnsureService(ctx, "object-store", "swift", "Swift Object Storage Service",
		cfg.BaseURL()+"/object-store/v1/AUTH_%(project_id)s"); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("OK"))
	})
	mount := func(prefix string, h http.Handler) {
		mux.Handle(prefix, h)
		mux.Handle(prefix+"/", h)
	}
	mount("/identity", ident.Router(log.With("service", "identity")))
	mount("/image", img.Router(ident, ident.URL(), log.With("service", "image")))
	mount("/network", netSvc.Router(ident, ident.URL(), log.With("service", "network")))
	mount("/compute", computeSvc.Router(ident, ident.URL(), log.With("service", "compute")))
	mount("/volume", volSvc.Router(ident, ident.URL(), log.With("service", "volume")))
	mount("/container", zun.Router(ident, ident.URL(), log.With("service", "container")))
	mount("/placement", pl.Router(ident, ident.URL(), log.With("service", "placement")))
	mount("/object-store", obj.Router(ident, ident.URL(), log.With("service", "object-store")))
	mux.Handle("/info", obj.InfoHandler()) // swift clients ask the root for it too
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{
			"code": 404, "title": "Not Found", "message": "No service is served at " + r.URL.Path + "."}})
	})
	// Swift object names may hold "//", "." and "..": keep the mux from
	// cleaning them.
	c.handler = objectstore.PreservePaths(mux)
	return c, nil
}

// loadPasswords returns the bootstrap users' passwords, kept in the data
// dir (0600): on first start from --admin-password or generated.
func loadPasswords(cfg config.Config) (map[string]string, error) {
	file := filepath.Join(cfg.DataDir, passwordFile)
	pw, err := readPasswords(file)
	if err == nil {
		return pw, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	pw = map[string]string{"admin": cfg.AdminPassword, "demo": ""}
	for k, v := range pw {
		if v == "" {
			var b [18]byte
			rand.Read(b[:])
			pw[k] = base64.RawURLEncoding.EncodeToString(b[:])
		}
	}
	body := fmt.Sprintf("admin=%s\ndemo=%s\n", pw["admin"], pw["demo"])
	return pw, writeFileSync(file, []byte(body), 0o600)
}

// reloadKeys rereads the token keys every 30 seconds, so that a rotation
// made by `monostack rotate-keys` is taken up without a restart.
func reloadKeys(ctx context.Context, keys *fernet.Repo, log *slog.Logger) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := keys.Reload(); err != nil {
				log.Error("reloading token keys", "err", err)
			}
		}
	}
}
