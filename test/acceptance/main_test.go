// Package acceptance holds end-to-end tests: they build monostack, run
// `monostack up` on a temporary data directory and a free loopback port,
// and talk to it with gophercloud as any OpenStack client would.
//
// Run them with
//
//	go test ./test/acceptance/ -count=1 -v
//
// They are skipped under -short.
package acceptance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

var (
	// binPath is the monostack binary built once for the whole package.
	binPath string
	// cloud is the daemon most tests share; durability tests start their own.
	cloud *daemon
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("acceptance: skipped in -short mode (they build and run monostack)")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "monostack-acceptance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	cleanUpOnSignal(tmp)

	start := time.Now()
	binPath = filepath.Join(tmp, "monostack")
	if err := build(binPath); err != nil {
		fmt.Fprintln(os.Stderr, "acceptance: build:", err)
		return 1
	}
	fmt.Printf("acceptance: built monostack in %s\n", time.Since(start).Round(time.Millisecond))

	cloud, err = startDaemon(filepath.Join(tmp, "shared"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance:", err)
		return 1
	}
	fmt.Printf("acceptance: monostack up at %s in %s\n", cloud.baseURL(), time.Since(start).Round(time.Millisecond))
	code := m.Run()
	if err := cloud.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "acceptance: stopping monostack:", err)
		code = 1
	}
	if err := cloud.purge(); err != nil {
		fmt.Fprintln(os.Stderr, "acceptance:", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "acceptance: last lines of the shared monostack's log:\n%s\n", cloud.logTail(40))
	}
	return code
}

// live holds the daemons started and not yet known to be gone.
var live sync.Map // *daemon -> struct{}

// cleanUpOnSignal makes an interrupted run (Ctrl-C, or SIGTERM from a CI
// runner) stop its daemons and remove its directories before it exits.
func cleanUpOnSignal(dirs ...string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "acceptance: %v: stopping monostack and removing temporary files\n", sig)
		live.Range(func(k, _ any) bool {
			d := k.(*daemon)
			d.kill()
			d.purge()
			dirs = append(dirs, d.root)
			return true
		})
		for _, dir := range dirs {
			os.RemoveAll(dir)
		}
		os.Exit(1)
	}()
}

// build compiles ./cmd/monostack of the module this package is in.
func build(out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	root, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/monostack")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// daemon is one `monostack up` process on its own data directory and port.
// It can be stopped (SIGTERM), killed (SIGKILL) and started again on the
// same directory and port.
type daemon struct {
	root    string   // holds data/ and the log
	dataDir string   // --data-dir
	addr    string   // --listen
	args    []string // extra flags

	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error

	// The bootstrap passwords read from data/passwords at first start.
	passwords map[string]string
}

var daemonCount atomic.Int32

// purge removes what the daemon's agent made on the host (bridges,
// namespaces, nftables tables); the daemon must be stopped.
func (d *daemon) purge() error {
	out, err := exec.Command(binPath, "purge", "--data-dir", d.dataDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("monostack purge: %v: %s", err, out)
	}
	return nil
}

// startDaemon runs monostack with its data in root/data on a free port.
func startDaemon(root string, args ...string) (*daemon, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Each daemon's networks get ranges of their own (RFC 2544's benchmark
	// space), so that daemons side by side do not put the same addresses on
	// the host's bridges.
	n := daemonCount.Add(1) % 64
	args = append([]string{
		"--public-cidr", fmt.Sprintf("198.18.%d.0/24", 2*n),
		"--private-cidr", fmt.Sprintf("198.18.%d.0/24", 2*n+1),
	}, args...)
	d := &daemon{root: root, dataDir: filepath.Join(root, "data"), addr: fmt.Sprintf("127.0.0.1:%d", port), args: args}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	if err := d.start(); err != nil {
		return nil, err
	}
	d.passwords, err = readPasswords(filepath.Join(d.dataDir, "passwords"))
	if err != nil {
		d.stop()
		return nil, err
	}
	if d.passwords["admin"] == "" || d.passwords["demo"] == "" {
		d.stop()
		return nil, fmt.Errorf("%s/passwords has no admin or demo password: %v", d.dataDir, d.passwords)
	}
	return d, nil
}

// startTestDaemon is startDaemon for one test, in a directory of its own
// (removed, like the daemon stopped, when the test ends).
func startTestDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	root, err := os.MkdirTemp("", "monostack-acceptance-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	d, err := startDaemon(root, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stopping monostack: %v", err)
		}
		if err := d.purge(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("last lines of monostack's log:\n%s", d.logTail(40))
		}
	})
	return d
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (d *daemon) baseURL() string { return "http://" + d.addr }
func (d *daemon) authURL() string { return d.baseURL() + "/identity" }
func (d *daemon) logFile() string { return filepath.Join(d.root, "monostack.log") }

// start runs the process and waits until /healthcheck answers 200.
func (d *daemon) start() error {
	if d.running() {
		return errors.New("monostack is already running")
	}
	log, err := os.OpenFile(d.logFile(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	args := append([]string{"up", "--data-dir", d.dataDir, "--listen", d.addr}, d.args...)
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Only what this file says, so a MONOSTACK_* of the caller cannot change it.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + d.root}
	// If the test binary dies, the daemon goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start monostack: %w", err)
	}
	d.cmd, d.exited, d.waitErr = cmd, make(chan struct{}), nil
	live.Store(d, struct{}{})
	go func(exited chan struct{}) {
		d.waitErr = cmd.Wait()
		close(exited)
	}(d.exited)

	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("monostack exited before it was ready (%v); log:\n%s", d.waitErr, d.logTail(30))
		default:
		}
		resp, err := hc.Get(d.baseURL() + "/healthcheck")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			d.kill()
			return fmt.Errorf("monostack not ready after 60s; log:\n%s", d.logTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for a clean exit (status 0). A daemon that
// does not exit within 30 s is killed and reported.
func (d *daemon) stop() error {
	if !d.running() {
		return nil
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-d.exited:
		if d.waitErr != nil {
			return fmt.Errorf("monostack exited with %v after SIGTERM", d.waitErr)
		}
		return nil
	case <-time.After(30 * time.Second):
		d.kill()
		return errors.New("monostack did not exit within 30s of SIGTERM; killed")
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() {
	if !d.running() {
		return
	}
	d.cmd.Process.Kill()
	<-d.exited
}

// restart stops the daemon cleanly and starts it again on the same
// directory and port.
func (d *daemon) restart() error {
	if err := d.stop(); err != nil {
		return err
	}
	return d.start()
}

func (d *daemon) logTail(n int) string {
	b, err := os.ReadFile(d.logFile())
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

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

// authOpts are the password credentials of a user of the Default domain,
// scoped to a project of the Default domain.
func (d *daemon) authOpts(user, password, project string) gophercloud.AuthOptions {
	return gophercloud.AuthOptions{
		IdentityEndpoint: d.authURL(),
		Username:         user,
		Password:         password,
		DomainID:         "default",
		Scope:            &gophercloud.AuthScope{ProjectName: project, DomainID: "default"},
	}
}

// login authenticates and returns the provider and an identity client.
func (d *daemon) login(ctx context.Context, opts gophercloud.AuthOptions) (*gophercloud.ProviderClient, *gophercloud.ServiceClient, error) {
	if opts.IdentityEndpoint == "" {
		opts.IdentityEndpoint = d.authURL()
	}
	pc, err := openstack.AuthenticatedClient(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	ic, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		return nil, nil, err
	}
	return pc, ic, nil
}

// session logs user (admin or demo, in the project of that name) in to
// the daemon, failing the test when it cannot.
func (d *daemon) session(t *testing.T, user string) session {
	t.Helper()
	pc, ic, err := d.login(context.Background(), d.authOpts(user, d.passwords[user], user))
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	return session{pc: pc, ic: ic}
}

// session is a logged-in user: the provider client (with its token and
// auth result) and an identity client.
type session struct {
	pc *gophercloud.ProviderClient
	ic *gophercloud.ServiceClient
}

func (s session) token() string { return s.pc.Token() }

var sessions sync.Map // "admin" / "demo" -> func() (session, error)

// shared returns the session of a bootstrap user (admin on project admin,
// demo on project demo) on the shared cloud, authenticating once: password
// authentication is a bcrypt check, too slow to repeat in every test.
func shared(t *testing.T, user string) session {
	t.Helper()
	f, _ := sessions.LoadOrStore(user, sync.OnceValues(func() (session, error) {
		pc, ic, err := cloud.login(context.Background(), cloud.authOpts(user, cloud.passwords[user], user))
		return session{pc, ic}, err
	}))
	s, err := f.(func() (session, error))()
	if err != nil {
		t.Fatalf("authenticate as %s: %v", user, err)
	}
	return s
}

func adminSession(t *testing.T) session { return shared(t, "admin") }
func demoSession(t *testing.T) session  { return shared(t, "demo") }

// call makes a request with body (nil, or a value sent as JSON) and
// returns the status and decoded JSON body (nil when empty).
func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	return callRaw(t, method, url, token, raw)
}

// callRaw is call with the body's bytes as they are.
func callRaw(t *testing.T, method, url, token string, body []byte) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d with a body that is not JSON: %v\n%s", method, url, resp.StatusCode, err, raw)
		}
	}
	if resp.Header.Get("X-Openstack-Request-Id") == "" {
		t.Errorf("%s %s: no x-openstack-request-id header", method, url)
	}
	return resp.StatusCode, out
}

// wantCode fails unless err is an unexpected-response error with status code.
func wantCode(t *testing.T, err error, code int, what string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %d", what, code)
		return
	}
	if !gophercloud.ResponseCodeIs(err, code) {
		t.Errorf("%s: %v, want status %d", what, err, code)
	}
}

// uniq makes a name unlikely to clash with other runs' or tests' names.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}
