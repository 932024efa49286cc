package app

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/monostack/monostack/internal/config"
)

func readPasswords(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pw := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			pw[k] = v
		}
	}
	return pw, sc.Err()
}

// writeFileSync writes a file atomically and durably with the given mode.
func writeFileSync(file string, data []byte, mode os.FileMode) error {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// Openrc returns the shell exports for one of the bootstrap users.
func Openrc(cfg config.Config, user string, pw map[string]string) (string, error) {
	p, ok := pw[user]
	if !ok {
		return "", fmt.Errorf("no bootstrap user %q (admin or demo)", user)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# monostack credentials for %s; source this file to use the openstack CLI.\n", user)
	for _, kv := range [][2]string{
		{"OS_AUTH_URL", cfg.BaseURL() + "/identity"},
		{"OS_AUTH_TYPE", "password"},
		{"OS_IDENTITY_API_VERSION", "3"},
		{"OS_USERNAME", user},
		{"OS_PASSWORD", p},
		{"OS_PROJECT_NAME", user},
		{"OS_USER_DOMAIN_ID", "default"},
		{"OS_PROJECT_DOMAIN_ID", "default"},
		{"OS_REGION_NAME", cfg.Region},
		{"OS_INTERFACE", "public"},
	} {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return b.String(), nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// OpenrcFromDataDir reads the stored passwords and returns Openrc's exports.
func OpenrcFromDataDir(cfg config.Config, user string) (string, error) {
	pw, err := readPasswords(filepath.Join(cfg.DataDir, passwordFile))
	if err != nil {
		return "", fmt.Errorf("no monostack data in %s (run monostack up first): %w", cfg.DataDir, err)
	}
	return Openrc(cfg, user, pw)
}

func writeClientFiles(cfg config.Config, pw map[string]string) error {
	for _, u := range []string{"admin", "demo"} {
		rc, err := Openrc(cfg, u, pw)
		if err != nil {
			return err
		}
		if err := writeFileSync(filepath.Join(cfg.DataDir, "openrc."+u), []byte(rc), 0o600); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	b.WriteString("# monostack clouds; use with OS_CLOUD=<name> or --os-cloud <name>.\nclouds:\n")
	for _, c := range []struct{ name, user, scope string }{
		{"monostack", "admin", "project"}, {"monostack-demo", "demo", "project"}, {"monostack-system", "admin", "system"},
	} {
		fmt.Fprintf(&b, "  %s:\n    auth:\n      auth_url: %s/identity\n      username: %s\n      password: %q\n      user_domain_id: default\n",
			c.name, cfg.BaseURL(), c.user, pw[c.user])
		if c.scope == "system" {
			b.WriteString("      system_scope: all\n")
		} else {
			fmt.Fprintf(&b, "      project_name: %s\n      project_domain_id: default\n", c.user)
		}
		fmt.Fprintf(&b, "    region_name: %s\n    interface: public\n    identity_api_version: 3\n", cfg.Region)
	}
	return writeFileSync(filepath.Join(cfg.DataDir, "clouds.yaml"), b.Bytes(), 0o600)
}
