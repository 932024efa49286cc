// Package defaultimage builds the image a new cloud boots by default, as
// DevStack ships cirros: a root filesystem of the host's static busybox
// (Debian's busybox-static) with an init that reads the config drive, sets
// the hostname, installs the keypair and runs the user data.
package defaultimage

import (
	"archive/tar"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"
)

// Busybox is where Debian's busybox-static puts its binary.
const Busybox = "/bin/busybox"

// Name is the default image's name in the Image service.
const Name = "busybox"

//go:embed init.sh
var initScript []byte

// ErrNoBusybox: the host has no static busybox to build from.
var ErrNoBusybox = errors.New("no static busybox at " + Busybox + " (install busybox-static)")

// Write writes the root filesystem tarball to w.
func Write(w io.Writer, busybox string) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ErrNoBusybox
		}
		return err
	}
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	mtime := time.Unix(1700000000, 0)
	tw := tar.NewWriter(w)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "mnt", "mnt/config", "var", "var/log", "home"} {
		if err := dir(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o1777, ModTime: mtime}); err != nil {
			return err
		}
	}
	if err := dir("root", 0o700); err != nil {
		return err
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		applet = strings.TrimPrefix(applet, "/")
		if applet == "bin/busybox" || applet == "sbin/init" || strings.Contains(applet, "..") {
			continue
		}
		link, _ := relPath(path.Dir(applet), "bin/busybox")
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: applet, Linkname: link, Mode: 0o777, ModTime: mtime}); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":       "root:x:0:\nnogroup:x:65534:\n",
		"etc/hostname":    "busybox\n",
		"etc/hosts":       "127.0.0.1 localhost\n::1 localhost\n",
		"etc/resolv.conf": "",
		"etc/os-release":  "NAME=\"monostack busybox\"\nID=busybox\nPRETTY_NAME=\"monostack busybox (the default image)\"\n",
	}
	for _, name := range []string{"etc/passwd", "etc/group", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/os-release"} {
		if err := file(name, 0o644, []byte(files[name])); err != nil {
			return err
		}
	}
	if err := file("sbin/init", 0o755, initScript); err != nil {
		return err
	}
	return tw.Close()
}

// relPath is the relative link from directory from to target (both
// relative to the root).
func relPath(from, target string) (string, error) {
	if from == "." || from == "" {
		return target, nil
	}
	if from == path.Dir(target) {
		return path.Base(target), nil
	}
	up := strings.Repeat("../", strings.Count(from, "/")+1)
	return up + target, nil
}
