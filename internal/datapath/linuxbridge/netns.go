package linuxbridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// netnsDir is where named network namespaces are bind-mounted (iproute2's
// convention, which netns.NewNamed follows).
const netnsDir = "/var/run/netns"

// currentNetns returns a handle to the network namespace of the calling
// goroutine's thread. A thread no goroutine has locked is always in the
// process's own namespace (every switch here happens on a locked thread that
// switches back or dies), so this is how to name the host namespace.
// /proc/self/ns/net is not: it is the main thread's, which a locked
// goroutine may have switched elsewhere for a moment.
func currentNetns() (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return netns.Get()
}

// inNetns runs fn on an OS thread switched into ns and switches it back to
// home. The thread is given back to the runtime only when the switch back
// succeeded; otherwise it dies with its goroutine.
func inNetns(ns, home netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		err := fn()
		if rerr := netns.Set(home); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("leave netns: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// newNamedNetns creates the named namespace /var/run/netns/name and returns
// a handle to it; the calling thread is left where it was.
func newNamedNetns(name string, home netns.NsHandle) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if rerr := netns.Set(home); rerr != nil {
			if err == nil {
				h.Close()
			}
			rc <- result{netns.None(), errors.Join(err, fmt.Errorf("leave netns: %w", rerr))}
			return
		}
		runtime.UnlockOSThread()
		rc <- result{h, err}
	}()
	r := <-rc
	if r.err != nil {
		return netns.None(), fmt.Errorf("create netns %s: %w", name, r.err)
	}
	return r.h, nil
}

// writeSysctl sets /proc/sys/<key> (dotted or slashed) to val when it is
// not already val, inside ns. It reports whether it wrote.
func writeSysctl(ns, home netns.NsHandle, key, val string) (bool, error) {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	wrote := false
	err := inNetns(ns, home, func() error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == val {
			return nil
		}
		wrote = true
		return os.WriteFile(p, []byte(val), 0o644)
	})
	if err != nil {
		return wrote, fmt.Errorf("sysctl %s=%s: %w", key, val, err)
	}
	return wrote, nil
}

// namedNetns lists the names in /var/run/netns that start with prefix.
func namedNetns(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
