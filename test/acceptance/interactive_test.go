package acceptance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// terminal is the stock openstack CLI run on a pty of the test's, typed
// into as a user would.
type terminal struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd

	mu   sync.Mutex
	buf  bytes.Buffer
	at   int // what expect has consumed
	done chan struct{}
}

// openTerminal runs `openstack args...` with env on a new pty of rows x
// cols, as its controlling terminal.
func openTerminal(t *testing.T, env []string, rows, cols uint16, args ...string) *terminal {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0)
	}
	if err == nil {
		err = unix.IoctlSetWinsize(m, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, master: os.NewFile(uintptr(m), "/dev/ptmx"), done: make(chan struct{})}
	term.cmd = exec.Command("openstack", args...)
	term.cmd.Env = env
	term.cmd.Stdin, term.cmd.Stdout, term.cmd.Stderr = slave, slave, slave
	term.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := term.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := term.master.Read(b)
			term.mu.Lock()
			term.buf.Write(b[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		term.cmd.Wait()
		close(term.done)
	}()
	t.Cleanup(func() {
		term.cmd.Process.Kill()
		<-term.done
		term.master.Close()
	})
	return term
}

func (term *terminal) String() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	// runc clears the container's pty's ONLCR, the newline translation
	// our side of the terminal does, but a shell that saved its terminal's
	// settings a moment before may set it again: "\r\r\n" then, which a
	// terminal shows as "\r\n".
	return strings.ReplaceAll(term.buf.String(), "\r\r\n", "\r\n")
}

// expect waits until the terminal shows want after what expect saw last.
func (term *terminal) expect(want string) {
	term.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := term.String()
		if i := strings.Index(out[term.at:], want); i >= 0 {
			term.at += i + len(want)
			return
		}
		select {
		case <-term.done:
			time.Sleep(200 * time.Millisecond) // the last output
			if strings.Contains(term.String()[term.at:], want) {
				continue
			}
			term.t.Fatalf("openstack %v exited (%v) before it showed %q; it showed:\n%s", term.cmd.Args[1:], term.cmd.ProcessState, want, out)
		default:
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("openstack %v never showed %q; it showed:\n%s", term.cmd.Args[1:], want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sized waits until the shell in the terminal sees the size rows x cols:
// the CLI sizes the session right after it connects, and on SIGWINCH, by
// API calls of their own, which a fast typist may overtake.
func (term *terminal) sized(rows, cols int) {
	term.t.Helper()
	want := fmt.Sprintf("\r\n%d %d\r\n", rows, cols)
	for i := 0; ; i++ {
		term.typeIn("stty size\r")
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if j := strings.Index(term.String()[term.at:], want); j >= 0 {
				term.at += j + len(want)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		if i == 20 {
			term.t.Fatalf("the terminal never had the size %d x %d; it showed:\n%s", rows, cols, term.String())
		}
	}
}

// typeIn types s (a user's Enter is "\r").
func (term *terminal) typeIn(s string) {
	term.t.Helper()
	if _, err := term.master.WriteString(s); err != nil {
		term.t.Fatal(err)
	}
}

// resize changes the pty's size: the CLI gets SIGWINCH.
func (term *terminal) resize(rows, cols uint16) {
	term.t.Helper()
	rc, _ := term.master.SyscallConn()
	var err error
	rc.Control(func(fd uintptr) {
		err = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	if err != nil {
		term.t.Fatal(err)
	}
}

// exited waits for the CLI to exit and returns its status.
func (term *terminal) exited() int {
	term.t.Helper()
	select {
	case <-term.done:
		return term.cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		term.t.Fatalf("openstack %v did not exit; it showed:\n%s", term.cmd.Args[1:], term.String())
		return -1
	}
}

func needCLI(t *testing.T) {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("no openstack CLI (python3-openstackclient, python3-zunclient)")
	}
}

// TestContainerExecInteractive: `openstack appcontainer exec --interactive
// NAME /bin/sh` from a terminal: a shell in the container, the terminal's
// size given at connect and on a resize, exit ends it.
func TestContainerExecInteractive(t *testing.T) {
	needCLI(t)
	demo := openrcEnv(t, cloud, "demo")
	z := newZun(t, demoSession(t), adminSession(t))
	name := uniq("exec-it")
	id := z.run(name, "echo exec-it started; sleep 600")
	z.wait(id, "Running", 60*time.Second)

	// What the CLI reads: the session's websocket on the API's own port.
	var r map[string]any
	z.call("POST", "/containers/"+id+"/execute?run=False&interactive=True&command=sh", nil, 200, &r)
	u, err := url.Parse(fmt.Sprint(r["proxy_url"]))
	if err != nil || u.Scheme != "ws" || u.Host != cloud.addr || u.Query().Get("exec_id") != r["exec_id"] || u.Query().Get("uuid") != id {
		t.Fatalf("execute (interactive) answered %v", r)
	}

	term := openTerminal(t, demo, 40, 132, "appcontainer", "exec", "--interactive", name, "/bin/sh")
	term.expect("press Enter to continue")
	term.typeIn("\r")
	term.sized(40, 132)
	term.typeIn("echo hi-$((6*7)); hostname\r")
	term.expect("hi-42\r\n" + id[:12] + "\r\n")
	term.resize(50, 100)
	term.sized(50, 100)
	term.typeIn("exit\r")
	if code := term.exited(); code != 0 {
		t.Errorf("the CLI exited %d", code)
	}
	// The container runs on, and no shell is left in it.
	if ct := z.show(id); ct["status"] != "Running" {
		t.Errorf("after the session: %v", ct["status"])
	}
	if out, _ := z.exec(id, "ps"); strings.Contains(out, "/bin/sh") {
		t.Errorf("a shell is left:\n%s", out)
	}
}

// TestContainerAttach: `openstack appcontainer run --interactive` attaches
// to the new container's shell; `openstack appcontainer attach` to it
// again after the first CLI went away (the container runs on); typing
// exit ends the container and the CLI. What the shell showed is in its
// logs.
func TestContainerAttach(t *testing.T) {
	needCLI(t)
	demo := openrcEnv(t, cloud, "demo")
	z := newZun(t, demoSession(t), adminSession(t))
	name := uniq("attach")

	term := openTerminal(t, demo, 30, 90, "appcontainer", "run", "--interactive", "--name", name, "--net", "network=private", "busybox", "sh")
	term.expect("press Enter to continue")
	id := fmt.Sprint(z.show(name)["uuid"])
	t.Cleanup(func() { z.forget(id) })
	term.typeIn("\r")
	term.sized(30, 90)
	term.typeIn("echo attached-$((2*3))\r")
	term.expect("attached-6\r\n")
	// The first CLI goes (its terminal closed); the container stays.
	term.cmd.Process.Kill()
	term.exited()
	if ct := z.show(id); ct["status"] != "Running" || ct["interactive"] != true {
		t.Fatalf("after the CLI went: %v %v", ct["status"], ct["interactive"])
	}

	term = openTerminal(t, demo, 25, 70, "appcontainer", "attach", name)
	term.expect("press Enter to continue")
	term.typeIn("\r")
	term.sized(25, 70)
	term.typeIn("echo again\r")
	term.expect("again\r\n")
	term.typeIn("exit 4\r")
	if code := term.exited(); code != 0 {
		t.Errorf("attach exited %d", code)
	}
	ct := z.wait(id, "Stopped", 30*time.Second)
	if ct["status_detail"] != nil && !strings.HasPrefix(fmt.Sprint(ct["status_detail"]), "Exited(4)") {
		t.Errorf("status_detail %v", ct["status_detail"])
	}
	z.waitLogs(id, "attached-6", 1)
	z.waitLogs(id, "again", 1)

	// A container that is not interactive cannot be attached to.
	plain := z.run(uniq("plain"), "sleep 600")
	z.wait(plain, "Running", 60*time.Second)
	code, raw := z.do("GET", "/containers/"+plain+"/attach", nil)
	var e struct {
		Errors []struct {
			Title string `json:"title"`
		} `json:"errors"`
	}
	json.Unmarshal(raw, &e)
	if code != 400 || len(e.Errors) != 1 || e.Errors[0].Title != "Container doesn't support to be attached, please check the interactive set properly" {
		t.Errorf("attach to a container not interactive: %d %s", code, raw)
	}
}
