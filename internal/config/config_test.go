package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:9000\nregion: FromFile\nlog-level: debug\n"), 0o600)
	env := map[string]string{"MONOSTACK_REGION": "FromEnv", "MONOSTACK_CONFIG": file}
	c, _, err := Parse("up", []string{"--data-dir", "/tmp/x", "--log-level", "warn"}, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/tmp/x" || c.Listen != "127.0.0.1:9000" || c.Region != "FromEnv" || c.LogLevel != "warn" {
		t.Fatalf("got %+v", c)
	}
	if c.CPUAllocationRatio != 16 || c.RAMAllocationRatio != 1.5 || c.DiskAllocationRatio != 1 {
		t.Fatalf("default allocation ratios %v %v %v, want Nova's 16, 1.5, 1", c.CPUAllocationRatio, c.RAMAllocationRatio, c.DiskAllocationRatio)
	}
	if c.KeepDeleted != 30*24*time.Hour {
		t.Fatalf("default keep-deleted %s, want 720h", c.KeepDeleted)
	}
	if c.BaseURL() != "http://127.0.0.1:9000" {
		t.Fatalf("base url %s", c.BaseURL())
	}
}

func TestInvalid(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "nope"}, {"--bcrypt-cost", "3"}, {"--log-level", "loud"}, {"--max-active-keys", "2"},
		{"--cpu-allocation-ratio", "0"}, {"--cpu-allocation-ratio", "-1"}, {"--cpu-allocation-ratio", "NaN"},
		{"--ram-allocation-ratio", "0"}, {"--disk-allocation-ratio", "-2"}, {"--keep-deleted", "-1h"},
		{"--public-cidr", "198.18.60.0/24", "--private-cidr", "198.18.60.0/22"}, {"--private-cidr", "203.0.113.0/25"},
	} {
		if _, _, err := Parse("up", args, func(string) string { return "" }, nil); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, _, err := Parse("up", nil, func(k string) string {
		if k == "MONOSTACK_BCRYPT_COST" {
			return "many"
		}
		return ""
	}, nil); err == nil {
		t.Error("bad env value: no error")
	}
}
