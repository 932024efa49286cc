// Package runctest gives other packages' tests a real runc runtime: state
// in a temporary directory, the test binary as the shim, everything its
// containers and images leave removed at the end of the test. (runc's own
// tests cannot use it: this package imports runc.)
package runctest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/runc"
	"github.com/monostack/monostack/internal/runtime/runtimetest"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// ShimMain makes the test binary its own shim, as monostack is (`monostack
// shim`): call it first in TestMain with the command New is given; it
// returns only when the binary runs as a test.
func ShimMain(command string) {
	if len(os.Args) > 1 && os.Args[1] == command {
		os.Exit(shim.Main(os.Args[2:]))
	}
}

// New returns a runc runtime whose shim is the test binary run with
// shimCommand (see ShimMain). It skips the test without root, runc or
// busybox-static.
func New(t testing.TB, shimCommand string) *runc.Runtime {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the runc runtime needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	if !runtimetest.HaveBusybox() {
		t.Skip("busybox-static is not installed")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rt, err := runc.New(runc.Config{Owner: runtimetest.NewOwner(), StateDir: filepath.Join(dir, "state"), RunDir: filepath.Join(dir, "run"),
		ShimBinary: exe, ShimArgs: []string{shimCommand}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := runtime.Prune(ctx, rt, func(string) bool { return false }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		imgs, _ := rt.Images(ctx)
		for _, id := range imgs {
			if err := rt.RemoveImage(ctx, id); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return rt
}
