package runtime

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

var (
	// Lengths are checked apart: bounded repetitions ({0,127}) compile
	// to that many copies, allocated at the start of every process.
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

// ValidID reports whether id can name a container or an image.
func ValidID(id string) bool { return len(id) <= 128 && idPattern.MatchString(id) }

// validHostname: labels of letters, digits and inner hyphens, each at most
// 63 long, 253 in all.
func validHostname(h string) bool {
	if len(h) > 253 || !hostnamePattern.MatchString(h) {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if len(l) > 63 {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Validate checks a spec without looking at the host: ids, paths, limits
// and the form of the environment and the user.
func (s Spec) Validate() error {
	if !ValidID(s.ID) {
		return invalid("container id %q: letters, digits, '_', '.', '-', at most 128, starting with a letter or digit", s.ID)
	}
	switch {
	case s.RootDevice != "" && s.Image != "":
		return invalid("image %q and root device %q: a container's root is one or the other", s.Image, s.RootDevice)
	case s.RootDevice != "":
		if !absClean(s.RootDevice) {
			return invalid("root device %q: an absolute, clean path", s.RootDevice)
		}
	case !ValidID(s.Image):
		return invalid("image id %q", s.Image)
	}
	if s.NetnsOf != "" && (!ValidID(s.NetnsOf) || s.NetnsOf == s.ID) {
		return invalid("netns_of %q: the id of another container", s.NetnsOf)
	}
	if s.Hostname != "" && !validHostname(s.Hostname) {
		return invalid("hostname %q", s.Hostname)
	}
	r := s.Resources
	if r.MemoryBytes < 0 || (r.MemoryBytes > 0 && r.MemoryBytes < MinMemoryBytes) {
		return invalid("memory limit %d: 0 (unlimited) or at least %d bytes", r.MemoryBytes, MinMemoryBytes)
	}
	if r.VCPUs < 0 || r.VCPUs > 1024 || (r.VCPUs > 0 && r.VCPUs < 0.01) {
		return invalid("vcpus %v: 0 (unlimited) or 0.01 to 1024", r.VCPUs)
	}
	if r.Pids < 0 {
		return invalid("pids limit %d", r.Pids)
	}
	if s.MaxLogBytes < 0 || s.MaxLogBytes > MaxMaxLogBytes {
		return invalid("max log bytes %d: 0 (default) to %d", s.MaxLogBytes, MaxMaxLogBytes)
	}
	if err := checkProcess(s.Process.Args, s.Process.Env, s.Process.Cwd, s.Process.User); err != nil {
		return err
	}
	dests := map[string]bool{}
	for _, m := range s.Mounts {
		if !absClean(m.Source) {
			return invalid("mount source %q: an absolute, clean path", m.Source)
		}
		d := m.Destination
		if !absClean(d) || d == "/" || under(d, "/proc") || under(d, "/sys") {
			return invalid("mount destination %q: an absolute, clean path, not /, /proc or /sys", d)
		}
		if dests[d] {
			return invalid("mount destination %q given twice", d)
		}
		dests[d] = true
	}
	for _, d := range s.Devices {
		if !absClean(d.HostPath) {
			return invalid("device host path %q: an absolute, clean path", d.HostPath)
		}
		if !absClean(d.Path) || !strings.HasPrefix(d.Path, "/dev/") || under(d.Path, "/dev/pts") || under(d.Path, "/dev/shm") || under(d.Path, "/dev/mqueue") {
			return invalid("device path %q: a clean path under /dev", d.Path)
		}
		if dests[d.Path] {
			return invalid("device path %q given twice", d.Path)
		}
		dests[d.Path] = true
	}
	return nil
}

// Validate checks an exec spec.
func (e ExecSpec) Validate() error {
	if len(e.Args) == 0 || e.Args[0] == "" {
		return invalid("exec: no command")
	}
	return checkProcess(e.Args, e.Env, e.Cwd, e.User)
}

func checkProcess(args, env []string, cwd, user string) error {
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return invalid("argument with a NUL byte")
		}
	}
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			return invalid("environment entry %q: KEY=value", kv)
		}
	}
	if cwd != "" && !path.IsAbs(cwd) {
		return invalid("working directory %q: an absolute path", cwd)
	}
	if user != "" {
		u, g, _ := strings.Cut(user, ":")
		if u == "" || strings.ContainsAny(user, "/\x00\n") || strings.Count(user, ":") > 1 || (strings.Contains(user, ":") && g == "") {
			return invalid("user %q: user, uid, user:group or uid:gid", user)
		}
	}
	return nil
}

func absClean(p string) bool { return path.IsAbs(p) && path.Clean(p) == p }

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// HostnameOf is the hostname a container of spec gets.
func HostnameOf(s Spec) string {
	if s.Hostname != "" {
		return s.Hostname
	}
	h := s.ID
	if len(h) > 12 {
		h = h[:12]
	}
	h = strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, h), "-")
	if h == "" {
		return "container"
	}
	return h
}

// LogBytesOf is how much console output a container of spec keeps.
func LogBytesOf(s Spec) int64 {
	if s.MaxLogBytes > 0 {
		return s.MaxLogBytes
	}
	return DefaultMaxLogBytes
}

// DefaultPath is the PATH of a process whose image sets none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Resolved is the process a container runs, its command, environment and
// user worked out from its spec and its image.
type Resolved struct {
	Args     []string
	Env      []string
	Cwd      string
	UID, GID uint32
	// Groups are supplementary groups (from the image's /etc/group).
	Groups []uint32
}

// UserLookup finds a user ("name", "uid", "name:group", "uid:gid") in an
// image: the uid, the gid (the user's primary group unless given) and the
// user's supplementary groups.
type UserLookup func(user string) (uid, gid uint32, groups []uint32, err error)

// Resolve works out the init process of a container of spec from its image
// config. lookup resolves user names; when nil, only numeric users are
// accepted.
func Resolve(s Spec, img ImageConfig, kind string, lookup UserLookup) (Resolved, error) {
	p := s.Process
	var r Resolved
	switch {
	case len(p.Args) > 0:
		r.Args = p.Args
	case p.Init:
		r.Args = []string{"/sbin/init"}
	case len(p.Cmd) > 0:
		r.Args = append(append([]string{}, img.Entrypoint...), p.Cmd...)
	case len(img.Entrypoint)+len(img.Cmd) > 0:
		r.Args = append(append([]string{}, img.Entrypoint...), img.Cmd...)
	case kind == KindRootfsTar || kind == "":
		r.Args = []string{"/sbin/init"}
	default:
		return r, invalid("the image has no entrypoint or command and the spec gives none")
	}
	env := append([]string{}, img.Env...)
	if p.Init {
		env = append(env, "container=monostack")
	}
	env = append(env, "HOSTNAME="+HostnameOf(s))
	env = MergeEnv(env, p.Env)
	if !hasKey(env, "PATH") {
		env = append([]string{DefaultPath}, env...)
	}
	r.Env = env
	r.Cwd = firstOf(p.Cwd, img.WorkingDir, "/")
	if !path.IsAbs(r.Cwd) {
		return r, invalid("working directory %q: an absolute path", r.Cwd)
	}
	user := firstOf(p.User, img.User, "0:0")
	uid, gid, groups, err := LookupUser(user, lookup)
	if err != nil {
		return r, err
	}
	r.UID, r.GID, r.Groups = uid, gid, groups
	return r, nil
}

// LookupUser resolves user with lookup, or numerically when lookup is nil.
func LookupUser(user string, lookup UserLookup) (uid, gid uint32, groups []uint32, err error) {
	if lookup != nil {
		return lookup(user)
	}
	u, g, hasG := strings.Cut(user, ":")
	uid64, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, nil, invalid("user %q: no user database to look names up in", user)
	}
	gid64 := uint64(0) // as Docker: a uid not in the user database is in group 0
	if hasG {
		if gid64, err = strconv.ParseUint(g, 10, 32); err != nil {
			return 0, 0, nil, invalid("group %q: no group database to look names up in", g)
		}
	}
	return uint32(uid64), uint32(gid64), nil, nil
}

// MergeEnv returns base with the entries of over added, an entry of over
// replacing the one of base with the same key.
func MergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i] = kv
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
