package runtime

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Spec{ID: "0b9a2c1e-5f4d-4c3b-9a8e-7d6c5b4a3f2e", Image: "img", Hostname: "web-1.example",
		Resources: Resources{MemoryBytes: 64 << 20, VCPUs: 1.5, Pids: 10},
		Mounts:    []Mount{{Source: "/var/lib/cd", Destination: "/mnt/config", ReadOnly: true}},
		Devices:   []Device{{HostPath: "/dev/loop3", Path: "/dev/vdb"}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	bad := map[string]func(*Spec){
		"id":          func(s *Spec) { s.ID = "-x" },
		"long id":     func(s *Spec) { s.ID = string(make([]byte, 200)) },
		"129 id":      func(s *Spec) { s.ID = strings.Repeat("a", 129) },
		"long label":  func(s *Spec) { s.Hostname = strings.Repeat("a", 64) + ".example" },
		"long host":   func(s *Spec) { s.Hostname = strings.Repeat(strings.Repeat("a", 60)+".", 5) + "abc" },
		"image":       func(s *Spec) { s.Image = "a/b" },
		"hostname":    func(s *Spec) { s.Hostname = "-bad" },
		"memory":      func(s *Spec) { s.Resources.MemoryBytes = 100 },
		"vcpus":       func(s *Spec) { s.Resources.VCPUs = 5000 },
		"log":         func(s *Spec) { s.MaxLogBytes = -1 },
		"mount /":     func(s *Spec) { s.Mounts = []Mount{{Source: "/x", Destination: "/"}} },
		"mount /sys":  func(s *Spec) { s.Mounts = []Mount{{Source: "/x", Destination: "/sys/x"}} },
		"mount dirty": func(s *Spec) { s.Mounts = []Mount{{Source: "/x", Destination: "/a/../b"}} },
		"mount twice": func(s *Spec) { s.Mounts = append(s.Mounts, s.Mounts[0]) },
		"device pts":  func(s *Spec) { s.Devices = []Device{{HostPath: "/dev/x", Path: "/dev/pts/0"}} },
		"device dest": func(s *Spec) { s.Devices = []Device{{HostPath: "/dev/x", Path: "/mnt/config"}}; s.Mounts = ok.Mounts },
		"env":         func(s *Spec) { s.Process.Env = []string{"=x"} },
		"nul arg":     func(s *Spec) { s.Process.Args = []string{"a\x00b"} },
		"user":        func(s *Spec) { s.Process.User = "a:" },
		"no root":     func(s *Spec) { s.Image = "" },
		"two roots":   func(s *Spec) { s.RootDevice = "/dev/loop4" },
		"root device": func(s *Spec) { s.Image, s.RootDevice = "", "dev/loop4" },
		"root dirty":  func(s *Spec) { s.Image, s.RootDevice = "", "/dev/../loop4" },
	}
	fromDevice := ok
	fromDevice.Image, fromDevice.RootDevice = "", "/dev/loop4"
	if err := fromDevice.Validate(); err != nil {
		t.Fatalf("valid spec with a root device: %v", err)
	}
	for name, mutate := range bad {
		s := ok
		s.Mounts = slices.Clone(ok.Mounts)
		mutate(&s)
		if err := s.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestResolve(t *testing.T) {
	docker := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"PATH=/app", "A=1"}, WorkingDir: "/app", User: "1000:1000"}
	cases := []struct {
		name string
		p    Process
		img  ImageConfig
		kind string
		args []string
	}{
		{"docker default", Process{}, docker, KindDockerArchive, []string{"/entry", "serve"}},
		{"docker cmd", Process{Cmd: []string{"migrate"}}, docker, KindDockerArchive, []string{"/entry", "migrate"}},
		{"docker args", Process{Args: []string{"/bin/sh"}}, docker, KindDockerArchive, []string{"/bin/sh"}},
		{"docker init", Process{Init: true}, docker, KindDockerArchive, []string{"/sbin/init"}},
		{"rootfs default", Process{}, ImageConfig{}, KindRootfsTar, []string{"/sbin/init"}},
	}
	for _, c := range cases {
		r, err := Resolve(Spec{ID: "abcdefghijklmnop", Process: c.p}, c.img, c.kind, nil)
		if err != nil || !slices.Equal(r.Args, c.args) {
			t.Errorf("%s: %v %v, want %v", c.name, r.Args, err, c.args)
		}
	}
	if _, err := Resolve(Spec{ID: "x"}, ImageConfig{}, KindOCILayout, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("an OCI image without a command: %v", err)
	}
	r, err := Resolve(Spec{ID: "abcdefghijklmnop", Process: Process{Env: []string{"A=2", "B=3"}}}, docker, KindDockerArchive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATH=/app", "A=2", "HOSTNAME=abcdefghijkl", "B=3"}; !slices.Equal(r.Env, want) {
		t.Errorf("env %v, want %v", r.Env, want)
	}
	if r.Cwd != "/app" || r.UID != 1000 || r.GID != 1000 {
		t.Errorf("cwd %s user %d:%d", r.Cwd, r.UID, r.GID)
	}
	r, _ = Resolve(Spec{ID: "x", Process: Process{Init: true}}, ImageConfig{}, KindRootfsTar, nil)
	if r.Env[0] != DefaultPath || !slices.Contains(r.Env, "container=monostack") || r.Cwd != "/" || r.UID != 0 {
		t.Errorf("machine process %+v", r)
	}
	if _, err := Resolve(Spec{ID: "x", Process: Process{User: "alice"}}, ImageConfig{}, KindRootfsTar, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a user name without a database: %v", err)
	}
}

func TestHostnameOf(t *testing.T) {
	for id, want := range map[string]string{"0b9a2c1e-5f4d-4c3b": "0b9a2c1e-5f4", "a_b.c": "a-b-c", "__": "container"} {
		if got := HostnameOf(Spec{ID: id}); got != want {
			t.Errorf("HostnameOf(%s) = %s, want %s", id, got, want)
		}
	}
}
