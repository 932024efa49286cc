package image

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenStackCLI runs the stock `openstack` and `glance` clients against
// the image service. The clients take about a second per command, so it
// runs only with MONOSTACK_CLI_TESTS=1.
func TestOpenStackCLI(t *testing.T) {
	if os.Getenv("MONOSTACK_CLI_TESTS") == "" {
		t.Skip("set MONOSTACK_CLI_TESTS=1 to run the openstack CLI against the image service")
	}
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("no openstack CLI")
	}
	tc := newTestCloud(t, Config{})
	dir := t.TempDir()
	env := func(user, password, project string) []string {
		return append(os.Environ(), "OS_AUTH_URL="+tc.srv.URL+"/identity/v3", "OS_IDENTITY_API_VERSION=3",
			"OS_USERNAME="+user, "OS_PASSWORD="+password, "OS_PROJECT_NAME="+project, "OS_USER_DOMAIN_ID=default",
			"OS_PROJECT_DOMAIN_ID=default", "OS_REGION_NAME=RegionOne", "OS_INTERFACE=public", "OS_CLOUD=",
			"HOME="+dir)
	}
	demo, admin, alt := env("demo", demoPassword, "demo"), env("admin", adminPassword, "admin"), env("alt", "alt-secret", "alt")
	run := func(e []string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = e
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return out.String() + errb.String(), err
		}
		return out.String(), nil
	}
	ok := func(e []string, args ...string) string {
		t.Helper()
		out, err := run(e, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	showJSON := func(e []string, args ...string) map[string]any {
		t.Helper()
		var m map[string]any
		out := ok(e, append(args, "-f", "json")...)
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return m
	}

	file := filepath.Join(dir, "disk.img")
	data := randomBytes(2<<20+3, 9)
	os.WriteFile(file, data, 0o600)

	im := showJSON(demo, "openstack", "image", "create", "--disk-format", "raw", "--container-format", "bare",
		"--file", file, "--property", "os_distro=cirros", "--tag", "cli", "cli-img")
	id := im["id"].(string)
	// The create command shows the record as created; the upload follows.
	if im := showJSON(demo, "openstack", "image", "show", id); im["status"] != "active" || im["size"] != float64(len(data)) {
		t.Fatalf("image after create: %v", im)
	}
	if out := ok(demo, "openstack", "image", "list", "-f", "value", "-c", "ID", "-c", "Name", "-c", "Status"); !strings.Contains(out, id+" cli-img active") {
		t.Errorf("image list: %s", out)
	}
	ok(demo, "openstack", "image", "set", "--property", "hw_disk_bus=scsi", "--min-ram", "64", "--tag", "more", "cli-img")
	ok(demo, "openstack", "image", "unset", "--property", "os_distro", "--tag", "cli", "cli-img")
	im = showJSON(demo, "openstack", "image", "show", "cli-img")
	props, _ := json.Marshal(im["properties"])
	if im["min_ram"] != float64(64) || !strings.Contains(string(props), "scsi") || strings.Contains(string(props), "cirros") {
		t.Errorf("image show after set/unset: %v", im)
	}
	out := filepath.Join(dir, "back.img")
	ok(demo, "openstack", "image", "save", "--file", out, "cli-img")
	if back, _ := os.ReadFile(out); !bytes.Equal(back, data) {
		t.Error("image save returned other bytes")
	}

	// Sharing with alt.
	ok(demo, "openstack", "image", "set", "--shared", "cli-img")
	ok(demo, "openstack", "image", "add", "project", "cli-img", tc.altPr)
	if out := ok(demo, "openstack", "image", "member", "list", "cli-img", "-f", "value"); !strings.Contains(out, "pending") {
		t.Errorf("member list: %s", out)
	}
	ok(alt, "openstack", "image", "set", "--accept", id)
	if out := ok(alt, "openstack", "image", "list", "-f", "value", "-c", "ID"); !strings.Contains(out, id) {
		t.Errorf("alt's list after accepting: %s", out)
	}
	ok(demo, "openstack", "image", "remove", "project", "cli-img", tc.altPr)

	// Admin actions.
	ok(admin, "openstack", "image", "set", "--deactivate", id)
	if im := showJSON(demo, "openstack", "image", "show", id); im["status"] != "deactivated" {
		t.Errorf("status after deactivate: %v", im["status"])
	}
	// (openstacksdk reports the 403 as an invalid download, as it does with Glance.)
	if msg, err := run(demo, "openstack", "image", "save", "--file", out, id); err == nil {
		t.Errorf("saving a deactivated image: %v %s", err, msg)
	}
	ok(admin, "openstack", "image", "set", "--activate", id)

	// The import flow.
	im = showJSON(demo, "openstack", "image", "create", "--import", "--disk-format", "raw", "--container-format", "bare",
		"--file", file, "imported")
	if im := showJSON(demo, "openstack", "image", "show", "imported"); im["status"] != "active" || im["checksum"] == nil {
		t.Errorf("imported image: %v", im)
	}

	// glanceclient validates what it reads against the schemas.
	if out := ok(demo, "glance", "image-list"); !strings.Contains(out, id) {
		t.Errorf("glance image-list: %s", out)
	}
	if out := ok(demo, "glance", "image-show", id); !strings.Contains(out, "hw_disk_bus") {
		t.Errorf("glance image-show: %s", out)
	}
	gout := ok(demo, "glance", "image-create", "--name", "from-glance", "--disk-format", "raw", "--container-format", "bare",
		"--file", file, "--property", "owner_note=x")
	if !strings.Contains(gout, "active") {
		t.Errorf("glance image-create: %s", gout)
	}
	ok(demo, "glance", "image-download", "--file", out, id)
	if back, _ := os.ReadFile(out); !bytes.Equal(back, data) {
		t.Error("glance image-download returned other bytes")
	}
	ok(demo, "glance", "member-list", "--image-id", id)

	// Errors read well.
	ok(demo, "openstack", "image", "set", "--protected", "cli-img")
	if msg, err := run(demo, "openstack", "image", "delete", "cli-img"); err == nil || !strings.Contains(msg, "protected") {
		t.Errorf("deleting a protected image: %v %s", err, msg)
	}
	if msg, err := run(demo, "glance", "image-delete", id); err == nil || !strings.Contains(msg, "not permitted") {
		t.Errorf("glance deleting a protected image: %v %s", err, msg)
	}
	ok(demo, "openstack", "image", "set", "--unprotected", "cli-img")
	ok(demo, "openstack", "image", "delete", "cli-img", "imported")
	if msg, err := run(demo, "openstack", "image", "show", "cli-img"); err == nil {
		t.Errorf("show after delete: %s", msg)
	}
}
