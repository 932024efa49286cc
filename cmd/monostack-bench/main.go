// Command monostack-bench measures a monostack: how fast it starts, how much
// memory it holds when idle, and how many token validations and issues it
// answers, with their latencies.
//
//	monostack-bench --bin ./monostack [--duration 5s] [--concurrency 8] [--starts 5]
//	monostack-bench --url http://127.0.0.1:8800 --password SECRET
//
// With --bin it runs `BIN up` on a temporary data dir and a free loopback
// port: it times cold starts (exec to the first 200 on /healthcheck) on an
// empty data dir and restarts on an existing one, reads the process's idle
// RSS, then drives one instance with the token benchmarks, and at the end
// stops every monostack it started and removes the temporary dir. With --url
// it only runs the token benchmarks against a monostack already running on
// this host. Traffic goes to loopback addresses only.
//
// Each load benchmark runs --concurrency clients, each with its own
// keep-alive connection, for --warmup and then for --duration. It reports
// the rate of successful requests, their latency percentiles, how many cores
// the server (when started here) and this program kept busy on average, and
// how many were busy with anything else on the host: on a small machine the
// load generator competes with the server for the same cores, and a busy
// neighbour makes the figures meaningless. The process exits 0 when every
// benchmark ran without a failed request.
//
// Three benchmarks run only when named in --only, as root, with --bin and
// the host side: server-create (servers.go), volume (volume.go: volume
// create, attach and detach latencies, and dd through a server's /dev/vdb
// against dd on the host) and container (container.go: the containers
// API's run → Running and exec latencies, a burst of runs, and the
// monostack's memory with hundreds of containers running).
package main

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
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// Bounds on what the flags may ask for, so that a run always ends.
const (
	maxDuration    = 2 * time.Minute
	maxConcurrency = 256
	maxStarts      = 50
	// maxSamples bounds the latencies kept per client; requests past it are
	// counted but not timed.
	maxSamples = 1 << 21
	readyLimit = 30 * time.Second
	stopLimit  = 15 * time.Second
)

type options struct {
	bin         string
	url         string
	password    string
	user        string
	project     string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	servers     int
	scale       int
	volumes     int
	containers  int
	ctrNet      string
	portCounts  string
	portClients int
	imageMiB    int
	starts      int
	idle        time.Duration
	only        string
	tmp         string
	upArgs      string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "monostack binary to start (`up` on a temp data dir and a free loopback port)")
	flag.StringVar(&o.url, "url", "", "base URL of a monostack already running on loopback (instead of --bin)")
	flag.StringVar(&o.password, "password", "", "with --url: the password of --user")
	flag.StringVar(&o.user, "user", "admin", "with --url: user of the Default domain to authenticate as")
	flag.StringVar(&o.project, "project", "admin", "with --url: project of the Default domain to scope tokens to")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long each load benchmark runs")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each load benchmark")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent clients in the load benchmarks")
	flag.IntVar(&o.servers, "servers", 20, "servers created by server-create (run once and 10 at a time; needs root and the host side)")
	flag.IntVar(&o.scale, "scale", 500, "servers running together in server-scale (after a burst of 100 created at once; the private network must hold them: --up-args \"--private-cidr 198.18.52.0/22\")")
	flag.IntVar(&o.volumes, "volumes", 50, "samples of each latency of the volume benchmark (needs root, --bin and the host side)")
	flag.IntVar(&o.containers, "containers", 50, "samples of each run → Running latency of the container benchmark (needs root, --bin and the host side)")
	flag.StringVar(&o.ctrNet, "container-net", "", "network of the container benchmark's burst and scale phases (\"\": none, e.g. private)")
	flag.StringVar(&o.portCounts, "ports", "200,1000", "ports created at once by each round of the ports benchmark, comma-separated (needs root, --bin and the datapath)")
	flag.IntVar(&o.portClients, "port-clients", 4, "concurrent clients creating ports in the ports benchmark")
	flag.IntVar(&o.imageMiB, "image-mib", 1024, "size of the image the image-upload benchmark uploads and downloads, in MiB")
	flag.IntVar(&o.starts, "starts", 5, "with --bin: cold starts (and restarts) to time")
	flag.DurationVar(&o.idle, "idle", 2*time.Second, "with --bin: how long a started monostack idles before its RSS is read")
	flag.StringVar(&o.only, "only", "", "comma-separated subset of: start,validate,validate-uncached,issue-token,issue-password; or server-create, server-scale, volume, container, ports (root only), image-upload, swift (never by default)")
	flag.StringVar(&o.tmp, "tmp", "", "parent of the temporary data dirs (default $TMPDIR)")
	flag.StringVar(&o.upArgs, "up-args", "", "with --bin: more arguments for `up`, space-separated (e.g. \"--bcrypt-cost 4\")")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: monostack-bench (--bin BIN | --url URL --password P) [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "monostack-bench:", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "monostack-bench:", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	switch {
	case (o.bin == "") == (o.url == ""):
		return errors.New("give exactly one of --bin and --url")
	case o.url != "" && o.password == "":
		return errors.New("--url needs --password")
	case o.servers < 1 || o.servers > 500:
		return errors.New("--servers must be in [1, 500]")
	case o.volumes < 1 || o.volumes > 500:
		return errors.New("--volumes must be in [1, 500]")
	case o.containers < 1 || o.containers > 500:
		return errors.New("--containers must be in [1, 500]")
	case o.url != "" && o.wants("volume"):
		return errors.New("--only volume needs --bin (it reads the data dir)")
	case o.url != "" && o.wants("container"):
		return errors.New("--only container needs --bin (it reads the data dir and the process's memory)")
	case o.url != "" && (o.wants("ports") || o.wants("image-upload")):
		return errors.New("--only ports and image-upload need --bin (they read the monostack's process)")
	case o.portClients < 1 || o.portClients > 64:
		return errors.New("--port-clients must be in [1, 64]")
	case o.wants("ports") && parsePortCounts(o.portCounts) == nil:
		return errors.New("--ports: want counts in [1, 2000], comma-separated")
	case o.imageMiB < 1 || o.imageMiB > 64<<10:
		return errors.New("--image-mib must be in [1, 65536]")
	case o.duration <= 0 || o.duration > maxDuration:
		return fmt.Errorf("--duration must be in (0, %s]", maxDuration)
	case o.warmup < 0 || o.warmup > maxDuration:
		return fmt.Errorf("--warmup must be in [0, %s]", maxDuration)
	case o.idle < 0 || o.idle > maxDuration:
		return fmt.Errorf("--idle must be in [0, %s]", maxDuration)
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return fmt.Errorf("--concurrency must be in [1, %d]", maxConcurrency)
	case o.starts < 1 || o.starts > maxStarts:
		return fmt.Errorf("--starts must be in [1, %d]", maxStarts)
	}
	for _, name := range o.selected() {
		if !slices.Contains(allBenchmarks, name) && !slices.Contains(rootBenchmarks, name) {
			return fmt.Errorf("--only: unknown benchmark %q", name)
		}
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("--url %q: want http://HOST:PORT", o.url)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("--url %q: only loopback targets are allowed", o.url)
		}
		o.url = strings.TrimRight(o.url, "/")
	}
	return nil
}

// allBenchmarks run by default; rootBenchmarks run only when named in
// --only, since they need root and the host side (runc, the datapath,
// loop devices); image-upload and swift need no root but write and read
// GiBs.
var (
	allBenchmarks  = []string{"start", "validate", "validate-uncached", "issue-token", "issue-password"}
	rootBenchmarks = []string{"server-create", "server-scale", "volume", "container", "ports", "image-upload", "swift"}
)

func (o *options) selected() []string {
	if o.only == "" {
		return allBenchmarks
	}
	var out []string
	for _, s := range strings.Split(o.only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (o *options) wants(name string) bool { return slices.Contains(o.selected(), name) }

// isLoopback reports whether host is a loopback address or resolves only to
// loopback addresses.
func isLoopback(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// row is one line of the results table.
type row struct {
	name    string
	n       int     // successful samples
	rate    float64 // per second; 0 when not a rate
	p50     time.Duration
	p99     time.Duration
	max     time.Duration
	extra   string // a value that is not a latency (RSS), or a note
	target  string
	errs    int
	errText string
	srvCPU  float64 // server cores busy on average, when known
	cliCPU  float64 // this program's cores busy on average
	other   float64 // cores busy with anything else on the host
	otherOK bool    // whether other is known
}

func run(ctx context.Context, o options, out io.Writer) (retErr error) {
	fmt.Fprintf(out, "monostack-bench: %s, %d CPUs, GOMAXPROCS %d, %s\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	var rows []row
	defer func() {
		printTable(out, rows)
		if retErr == nil {
			for _, r := range rows {
				if r.errs > 0 {
					retErr = fmt.Errorf("%s: %d failed requests (first: %s)", r.name, r.errs, r.errText)
					break
				}
			}
		}
	}()

	base, pid, dataDir := o.url, 0, ""
	creds := credentials{user: o.user, project: o.project, password: o.password}
	if o.bin != "" {
		tmp, err := os.MkdirTemp(o.tmp, "monostack-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		bin, err := filepath.Abs(o.bin)
		if err != nil {
			return err
		}
		ms := launcher{bin: bin, args: strings.Fields(o.upArgs)}
		if o.wants("start") {
			r, err := coldStarts(ctx, o, ms, tmp)
			rows = append(rows, r...)
			if err != nil {
				return err
			}
		}
		if !o.wantsLoad() {
			return nil
		}
		// The instance the load runs against: started on an empty dir, then
		// restarted, as a user's second `monostack up`.
		dir := filepath.Join(tmp, "load")
		first, err := ms.start(ctx, dir, filepath.Join(tmp, "load.log"))
		if err != nil {
			return err
		}
		if err := first.stop(); err != nil {
			return err
		}
		inst, err := ms.start(ctx, dir, filepath.Join(tmp, "load.log"))
		if err != nil {
			return err
		}
		defer func() {
			if err := inst.stop(); err != nil && retErr == nil {
				retErr = err
			}
			// Servers and networks outlive the daemon on the host: remove them.
			if out, err := exec.Command(bin, "purge", "--data-dir", dir).CombinedOutput(); err != nil && retErr == nil {
				retErr = fmt.Errorf("purge: %v: %s", err, out)
			}
		}()
		base, pid, dataDir = inst.url, inst.pid(), dir
		pw, err := readPasswords(filepath.Join(dir, "passwords"))
		if err != nil {
			return err
		}
		creds = credentials{user: "admin", project: "admin", password: pw["admin"]}
	}

	if o.wants("server-create") {
		for _, conc := range []int{1, 10} {
			r, err := serverCreates(ctx, base, creds, o.servers, conc)
			rows = append(rows, r)
			if err != nil {
				return err
			}
		}
	}
	if o.wants("server-scale") {
		r, err := serverScale(ctx, base, creds, dataDir, pid, o.scale)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	if o.wants("volume") {
		r, err := volumeBenchmarks(ctx, base, creds, dataDir, pid, o.volumes)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	if o.wants("container") {
		r, err := containerBenchmarks(ctx, base, creds, dataDir, pid, o.containers, o.ctrNet, o.duration, o.warmup, o.idle)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	if o.wants("ports") {
		r, err := portsBenchmarks(ctx, base, creds, pid, o.portCounts, o.portClients)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	if o.wants("image-upload") {
		r, err := imageUpload(ctx, base, creds, dataDir, pid, o.imageMiB)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	if o.wants("swift") {
		r, err := swiftBenchmarks(ctx, base, creds, pid, o.duration)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	lr, err := loadBenchmarks(ctx, o, base, pid, creds)
	rows = append(rows, lr...)
	if err != nil {
		return err
	}
	if pid != 0 {
		if rss, err := readRSS(pid); err == nil {
			rows = append(rows, row{name: "RSS after the load benchmarks", n: 1, extra: formatBytes(rss)})
		}
	}
	return nil
}

func (o *options) wantsLoad() bool {
	for _, n := range o.selected() {
		if n != "start" {
			return true
		}
	}
	return false
}

// instance is a monostack this program started.
type instance struct {
	cmd  *exec.Cmd
	url  string
	log  *os.File
	done chan error
}

func (in *instance) pid() int { return in.cmd.Process.Pid }

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// launcher is how to run `monostack up`: the binary and extra arguments.
type launcher struct {
	bin  string
	args []string
}

// start runs `bin up` on dir and waits for its first 200 on /healthcheck.
func (l launcher) start(ctx context.Context, dir, logFile string) (*instance, error) {
	in, _, err := l.startTimed(ctx, dir, logFile)
	return in, err
}

// startTimed is start, also returning the time from exec to the first 200.
func (l launcher) startTimed(ctx context.Context, dir, logFile string) (*instance, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	log, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command(l.bin, append([]string{"up", "--data-dir", dir, "--listen", addr}, l.args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	// The health client: its own keep-alive transport, short timeouts.
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	health := "http://" + addr + "/healthcheck"

	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, 0, err
	}
	in := &instance{cmd: cmd, url: "http://" + addr, log: log, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait() }()
	deadline := t0.Add(readyLimit)
	for {
		res, err := hc.Get(health)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return in, time.Since(t0), nil
			}
		}
		var fail error
		select {
		case werr := <-in.done:
			in.done <- werr
			fail = fmt.Errorf("monostack exited before it was ready (%v); log: %s", werr, tail(logFile))
		case <-ctx.Done():
			fail = ctx.Err()
		case <-time.After(time.Millisecond):
			if time.Now().After(deadline) {
				fail = fmt.Errorf("monostack not ready after %s; log: %s", readyLimit, tail(logFile))
			}
		}
		if fail != nil {
			in.stop()
			return nil, 0, fail
		}
	}
}

// stop sends SIGTERM, waits, and kills the process if it does not exit in
// time.
func (in *instance) stop() error {
	defer in.log.Close()
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		in.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return nil // ended by our signal
		}
		return err
	case <-time.After(stopLimit):
		in.cmd.Process.Kill()
		err := <-in.done
		in.done <- err
		return fmt.Errorf("monostack did not stop within %s of SIGTERM; killed", stopLimit)
	}
}

func tail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// coldStarts times o.starts first starts on empty data dirs and as many
// restarts on the dirs they made, and reads each one's RSS after o.idle.
func coldStarts(ctx context.Context, o options, ms launcher, tmp string) ([]row, error) {
	var first, again []time.Duration
	var rssFirst, rssAgain []int64
	var children time.Duration // CPU time of the monostacks run, once they exited
	t0 := time.Now()
	host0, hostOK := hostBusy()
	self0, selfOK := cpuTime(os.Getpid())
	once := func(dir, log string, times *[]time.Duration, rss *[]int64) error {
		in, d, err := ms.startTimed(ctx, dir, log)
		if err != nil {
			return err
		}
		*times = append(*times, d)
		select {
		case <-time.After(o.idle):
		case <-ctx.Done():
		}
		r, rerr := readRSS(in.pid())
		if err := in.stop(); err != nil {
			return err
		}
		if ps := in.cmd.ProcessState; ps != nil {
			children += ps.UserTime() + ps.SystemTime()
		}
		if rerr != nil {
			return rerr
		}
		*rss = append(*rss, r)
		return ctx.Err()
	}
	var err error
	for i := range o.starts {
		dir := filepath.Join(tmp, fmt.Sprintf("start-%d", i))
		log := dir + ".log"
		if err = once(dir, log, &first, &rssFirst); err != nil {
			break
		}
		if err = once(dir, log, &again, &rssAgain); err != nil {
			break
		}
		os.RemoveAll(dir)
	}
	rows := []row{
		startRow("cold start, empty data dir", first, "< 300ms"),
		startRow("restart, existing data dir", again, "< 300ms"),
		rssRow(fmt.Sprintf("idle RSS %s after first start", o.idle), rssFirst),
		rssRow(fmt.Sprintf("idle RSS %s after restart", o.idle), rssAgain),
	}
	host1, _ := hostBusy()
	self1, _ := cpuTime(os.Getpid())
	if el := time.Since(t0); hostOK && selfOK && err == nil {
		other := max(float64(host1-host0-(self1-self0)-children)/float64(el), 0)
		for i := range rows[:2] {
			rows[i].other, rows[i].otherOK = other, true
		}
	}
	return rows, err
}

func startRow(name string, d []time.Duration, target string) row {
	slices.Sort(d)
	r := row{name: name, n: len(d), target: target}
	if len(d) > 0 {
		r.p50, r.p99, r.max = pct(d, 50), pct(d, 99), d[len(d)-1]
		r.extra = "min " + fmtDur(d[0])
	}
	return r
}

func rssRow(name string, v []int64) row {
	slices.Sort(v)
	r := row{name: name, n: len(v), target: "< 40MB"}
	if len(v) > 0 {
		r.extra = fmt.Sprintf("median %s, max %s", formatBytes(v[len(v)/2]), formatBytes(v[len(v)-1]))
	}
	return r
}

// readRSS returns a process's resident set size from /proc (Linux).
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// cpuTime returns a process's user+system CPU time from /proc (Linux,
// assuming the usual 100 clock ticks a second).
func cpuTime(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * (time.Second / 100), true
}

// hostBusy returns the CPU time all of the host's CPUs spent not idle, from
// /proc/stat (Linux, 100 ticks a second).
func hostBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	for i, v := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * (time.Second / 100), true
}

func readPasswords(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pw := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			pw[k] = v
		}
	}
	return pw, nil
}

type credentials struct{ user, project, password string }

// loadBenchmarks runs the token benchmarks against base; pid, when not 0,
// is the server's process, whose CPU use is reported.
func loadBenchmarks(ctx context.Context, o options, base string, pid int, c credentials) ([]row, error) {
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback, never through a proxy
			MaxIdleConns:        2 * o.concurrency,
			MaxIdleConnsPerHost: 2 * o.concurrency,
			MaxConnsPerHost:     2 * o.concurrency,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()
	tokens := base + "/identity/v3/auth/tokens"

	passwordBody, err := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": c.user, "domain": map[string]any{"id": "default"}, "password": c.password}}},
		"scope": map[string]any{"project": map[string]any{"name": c.project, "domain": map[string]any{"id": "default"}}},
	}})
	if err != nil {
		return nil, err
	}
	issue := func() (string, string, error) {
		res, err := client.Post(tokens, "application/json", bytes.NewReader(passwordBody))
		if err != nil {
			return "", "", err
		}
		defer res.Body.Close()
		var body struct {
			Token struct {
				Project struct {
					ID string `json:"id"`
				} `json:"project"`
			} `json:"token"`
		}
		if res.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
			return "", "", fmt.Errorf("password token: %s: %s", res.Status, b)
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			return "", "", err
		}
		return res.Header.Get("X-Subject-Token"), body.Token.Project.ID, nil
	}
	auth, projectID, err := issue()
	if err != nil {
		return nil, err
	}
	subject, _, err := issue()
	if err != nil {
		return nil, err
	}
	tokenBody, err := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": auth}},
		"scope":    map[string]any{"project": map[string]any{"id": projectID}},
	}})
	if err != nil {
		return nil, err
	}

	get := func(u string) func(context.Context) (*http.Request, error) {
		return func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("X-Auth-Token", auth)
				req.Header.Set("X-Subject-Token", subject)
			}
			return req, err
		}
	}
	post := func(body []byte) func(context.Context) (*http.Request, error) {
		return func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokens, bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		}
	}
	benchmarks := []struct {
		key, name, target string
		req               func(context.Context) (*http.Request, error)
		want              int
	}{
		{"validate", "validate token (GET /v3/auth/tokens)", ">= 20000/s, p99 < 5ms", get(tokens), http.StatusOK},
		{"validate-uncached", "validate, subject not cached (?allow_expired=true)", "", get(tokens + "?allow_expired=true"), http.StatusOK},
		{"issue-token", "issue token, method token (POST, rescope)", ">= 5000/s", post(tokenBody), http.StatusCreated},
		{"issue-password", "issue token, method password (bcrypt cost 12)", "report", post(passwordBody), http.StatusCreated},
	}
	var rows []row
	for _, b := range benchmarks {
		if !o.wants(b.key) {
			continue
		}
		if o.warmup > 0 {
			load(ctx, client, o.concurrency, o.warmup, b.req, b.want)
		}
		cpu0, cpuOK := cpuTime(pid)
		self0, selfOK := cpuTime(os.Getpid())
		host0, hostOK := hostBusy()
		res := load(ctx, client, o.concurrency, o.duration, b.req, b.want)
		cpu1, _ := cpuTime(pid)
		self1, _ := cpuTime(os.Getpid())
		host1, _ := hostBusy()
		r := res.row(b.name, b.target)
		if pid != 0 && cpuOK && res.elapsed > 0 {
			r.srvCPU = float64(cpu1-cpu0) / float64(res.elapsed)
		}
		if selfOK && res.elapsed > 0 {
			r.cliCPU = float64(self1-self0) / float64(res.elapsed)
		}
		if hostOK && cpuOK && selfOK && pid != 0 && res.elapsed > 0 {
			r.other = max(float64(host1-host0)/float64(res.elapsed)-r.srvCPU-r.cliCPU, 0)
			r.otherOK = true
		}
		rows = append(rows, r)
		if err := ctx.Err(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// result is what one load benchmark measured.
type result struct {
	n, errs  int
	errText  string
	elapsed  time.Duration
	samples  []time.Duration
	overflow int // successful requests not timed (past maxSamples)
}

// load runs conc clients sending requests made by mk for d, each expecting
// status want. A client starts no request after d, but lets the one it has
// in flight finish, so that no work is left running in the server for the
// next benchmark; the rate is over the time until the last one finished.
func load(ctx context.Context, client *http.Client, conc int, d time.Duration, mk func(context.Context) (*http.Request, error), want int) result {
	results := make([]result, conc)
	var wg sync.WaitGroup
	t0 := time.Now()
	end := t0.Add(d)
	for i := range conc {
		wg.Go(func() {
			r := &results[i]
			r.samples = make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil && time.Now().Before(end) {
				req, err := mk(ctx)
				if err != nil {
					r.fail(err.Error())
					return
				}
				s := time.Now()
				res, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						r.fail(err.Error())
					}
					continue
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat := time.Since(s)
				switch {
				case err != nil:
					if ctx.Err() == nil {
						r.fail(err.Error())
					}
				case res.StatusCode != want:
					r.fail(res.Status)
				case len(r.samples) < maxSamples:
					r.samples = append(r.samples, lat)
					r.n++
				default:
					r.overflow++
					r.n++
				}
			}
		})
	}
	wg.Wait()
	total := result{elapsed: time.Since(t0)}
	for _, r := range results {
		total.n += r.n
		total.errs += r.errs
		total.overflow += r.overflow
		if total.errText == "" {
			total.errText = r.errText
		}
		total.samples = append(total.samples, r.samples...)
	}
	return total
}

func (r *result) fail(text string) {
	r.errs++
	if r.errText == "" {
		r.errText = text
	}
}

func (r result) row(name, target string) row {
	slices.Sort(r.samples)
	out := row{name: name, n: r.n, target: target, errs: r.errs, errText: r.errText}
	if r.elapsed > 0 {
		out.rate = float64(r.n) / r.elapsed.Seconds()
	}
	if len(r.samples) > 0 {
		out.p50, out.p99, out.max = pct(r.samples, 50), pct(r.samples, 99), r.samples[len(r.samples)-1]
	}
	if r.overflow > 0 {
		out.extra = fmt.Sprintf("%d requests untimed", r.overflow)
	}
	return out
}

// pct returns the p-th percentile (nearest rank) of sorted samples.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func formatBytes(n int64) string { return fmt.Sprintf("%.1fMB", float64(n)/(1<<20)) }

func printTable(out io.Writer, rows []row) {
	if len(rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tn\trate/s\tp50\tp99\tmax\tserver CPU\tbench CPU\tother CPU\terrors\tnote\ttarget")
	for _, r := range rows {
		rate, cpu, cli, other := "-", "-", "-", "-"
		if r.rate > 0 {
			rate = fmt.Sprintf("%.0f", r.rate)
		}
		if r.srvCPU > 0 {
			cpu = fmt.Sprintf("%.2f", r.srvCPU)
		}
		if r.cliCPU > 0 {
			cli = fmt.Sprintf("%.2f", r.cliCPU)
		}
		if r.otherOK {
			other = fmt.Sprintf("%.2f", r.other)
		}
		note := r.extra
		if r.errs > 0 {
			note = strings.TrimSpace(note + " first error: " + r.errText)
		}
		if note == "" {
			note = "-"
		}
		target := r.target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n",
			r.name, r.n, rate, fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.max), cpu, cli, other, r.errs, note, target)
	}
	tw.Flush()
}
