package imagefs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/monostack/monostack/internal/runtime"
)

// Users returns a lookup of users and groups in the root filesystem at
// rootfs, reading its /etc/passwd and /etc/group (resolved inside it) at
// each call. As Docker does: a numeric user that is not in /etc/passwd is
// in group 0; a name must be there; supplementary groups are the groups
// of /etc/group that list the user.
func Users(rootfs string) runtime.UserLookup {
	return func(user string) (uint32, uint32, []uint32, error) {
		passwd := readEtc(rootfs, "etc/passwd")
		groups := readEtc(rootfs, "etc/group")
		u, g, hasG := strings.Cut(user, ":")
		var uid, gid uint32
		name := ""
		if n, err := strconv.ParseUint(u, 10, 32); err == nil {
			uid = uint32(n)
			for _, e := range passwd {
				if e.id == uid {
					gid, name = e.gid, e.name
					break
				}
			}
		} else {
			found := false
			for _, e := range passwd {
				if e.name == u {
					uid, gid, name, found = e.id, e.gid, e.name, true
					break
				}
			}
			if !found {
				return 0, 0, nil, bad("user %q is not in the image's /etc/passwd", u)
			}
		}
		if hasG {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				gid = uint32(n)
			} else {
				found := false
				for _, e := range groups {
					if e.name == g {
						gid, found = e.id, true
						break
					}
				}
				if !found {
					return 0, 0, nil, bad("group %q is not in the image's /etc/group", g)
				}
			}
		}
		var extra []uint32
		if name != "" && !hasG {
			for _, e := range groups {
				if e.id != gid && e.hasMember(name) {
					extra = append(extra, e.id)
				}
			}
		}
		return uid, gid, extra, nil
	}
}

type etcEntry struct {
	name    string
	id, gid uint32
	members []string
}

func (e etcEntry) hasMember(name string) bool {
	for _, m := range e.members {
		if m == name {
			return true
		}
	}
	return false
}

// readEtc parses a passwd or group file of the root filesystem: name,
// id, then (passwd) the primary gid or (group) the members. A file that
// is not there or cannot be read is empty.
func readEtc(rootfs, rel string) []etcEntry {
	b, err := readIn(rootfs, rel, 4<<20)
	if err != nil {
		return nil
	}
	group := strings.HasSuffix(rel, "group")
	var out []etcEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := etcEntry{name: f[0], id: uint32(id)}
		if group {
			if f[3] != "" {
				e.members = strings.Split(f[3], ",")
			}
		} else if gid, err := strconv.ParseUint(f[3], 10, 32); err == nil {
			e.gid = uint32(gid)
		}
		out = append(out, e)
	}
	return out
}

// readIn reads the regular file rel of the tree at root, resolved inside
// it, up to max bytes.
func readIn(root, rel string, max int64) ([]byte, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootFd)
	fd, err := openIn(rootFd, rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: not a regular file", rel)
	}
	f := newFile(fd, rel)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// Executable checks that the command name, as execve would find it (in
// the PATH of env when it has no '/', relative to cwd when relative), is
// an executable file in the tree at root, resolved inside it.
func Executable(root, name string, env []string, cwd string) error {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootFd)
	isExec := func(p string) bool {
		fd, err := openIn(rootFd, cleanName(p), unix.O_PATH)
		if err != nil {
			return false
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0
	}
	if strings.Contains(name, "/") {
		p := name
		if !strings.HasPrefix(p, "/") {
			p = cwd + "/" + p
		}
		if isExec(p) {
			return nil
		}
	} else if name != "" {
		pathEnv := ""
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathEnv = v
			}
		}
		for _, d := range strings.Split(pathEnv, ":") {
			if d != "" && isExec(d+"/"+name) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: the image has no executable %q", runtime.ErrInvalid, name)
}
