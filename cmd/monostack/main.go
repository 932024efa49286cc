// Command monostack is an OpenStack cloud in one binary.
//
//	monostack up [--data-dir DIR] [--listen ADDR]   run the cloud
//	monostack openrc [--data-dir DIR] [--user U]    print a user's OS_* exports
//	monostack rotate-keys [--data-dir DIR]          rotate the token keys
//	monostack purge [--data-dir DIR]                remove what the agent made on the host
//	monostack version
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/monostack/monostack/internal/app"
	"github.com/monostack/monostack/internal/config"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `monostack: an OpenStack cloud in one binary

  monostack up [flags]            run the cloud (Ctrl-C to stop)
  monostack openrc [--user demo]  print the OS_* exports of a bootstrap user
  monostack rotate-keys           rotate the Fernet token keys
  monostack purge                 after stopping: remove the bridges, namespaces and
                                  tables this data dir's agent made on the host
  monostack version               print the version

Flags (also MONOSTACK_<FLAG> in the environment, or keys of --config FILE):
  --data-dir DIR (/var/lib/monostack)  --listen ADDR (127.0.0.1:8800)
  --admin-password P  --public-url URL  --region R  --log-level L
Run 'monostack up -h' for all flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "monostack:", err)
		os.Exit(1)
	}
}

func run(cmd string, args []string) error {
	switch cmd {
	case "shim":
		// A container's supervisor, started by the runtime; it must set
		// nothing up before taking over.
		os.Exit(shim.Main(args))
	case "up":
		cfg, _, err := config.Parse("up", args, os.Getenv, nil)
		if err != nil {
			return err
		}
		log := newLogger(cfg.LogLevel)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return app.Up(ctx, cfg, log)
	case "openrc":
		var user string
		cfg, _, err := config.Parse("openrc", args, os.Getenv, func(fs *flag.FlagSet) {
			fs.StringVar(&user, "user", "admin", "bootstrap user: admin or demo")
		})
		if err != nil {
			return err
		}
		rc, err := app.OpenrcFromDataDir(cfg, user)
		if err != nil {
			return err
		}
		fmt.Print(rc)
		return nil
	case "rotate-keys":
		cfg, _, err := config.Parse("rotate-keys", args, os.Getenv, nil)
		if err != nil {
			return err
		}
		repo, err := fernet.OpenRepo(filepath.Join(cfg.DataDir, "fernet-keys"), cfg.MaxActiveKeys)
		if err != nil {
			return err
		}
		if err := repo.Rotate(); err != nil {
			return err
		}
		fmt.Println("rotated; a running monostack takes the new keys up within 30 seconds")
		return nil
	case "purge":
		cfg, _, err := config.Parse("purge", args, os.Getenv, nil)
		if err != nil {
			return err
		}
		return app.Purge(context.Background(), cfg, newLogger(cfg.LogLevel))
	case "version", "--version", "-v":
		fmt.Println("monostack", version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
