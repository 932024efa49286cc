package shim

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
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ReadyFd is the descriptor on which a shim reports that the container is
// created (ExtraFiles[0] of the runtime's exec).
const ReadyFd = 3

// Main runs a shim: args are what follows the subcommand (`--dir DIR`).
// It returns the process exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("shim", flag.ContinueOnError)
	dir := fs.String("dir", "", "the container's state directory (holds "+ConfigFile+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "shim: --dir is required")
		return 2
	}
	// Descriptor 3 is the runtime's pipe when it started us; run by hand,
	// it may be anything (the Go runtime's own), so only a pipe is used.
	var ready *os.File
	var st unix.Stat_t
	if unix.Fstat(ReadyFd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
		ready = os.NewFile(ReadyFd, "ready")
	}
	s := &shim{dir: *dir, ready: ready}
	if err := s.run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s shim: %v\n", time.Now().UTC().Format(time.RFC3339), err)
		s.report(Ready{Error: err.Error()})
		return 1
	}
	return 0
}

type shim struct {
	dir   string
	ready *os.File
	cfg   Config
}

// report writes r to the ready descriptor once; a runtime that went away
// meanwhile does not matter.
func (s *shim) report(r Ready) {
	if s.ready == nil {
		return
	}
	b, _ := json.Marshal(r)
	s.ready.Write(append(b, '\n'))
	s.ready.Close()
	s.ready = nil
}

func (s *shim) run() error {
	b, err := os.ReadFile(filepath.Join(s.dir, ConfigFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &s.cfg); err != nil {
		return fmt.Errorf("%s: %w", ConfigFile, err)
	}
	if err := os.Chdir(s.dir); err != nil {
		return err
	}
	// Not the first the OOM killer takes: it keeps the container's log
	// and exit status. The container itself gets its own score (runc sets
	// it from the spec).
	os.WriteFile("/proc/self/oom_score_adj", []byte("-998"), 0)
	// Handle (never ignore: an ignored signal stays ignored across exec,
	// into the container) the signals a supervisor may get; TERM and INT
	// are passed on to the init once it exists. This also undoes any
	// ignored disposition inherited from the daemon.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGQUIT)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("subreaper: %w", err)
	}
	if err := writePid(s.dir); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	console, err := openConsole(filepath.Join(s.dir, ConsoleFile), s.cfg.MaxLogBytes)
	if err != nil {
		return err
	}
	defer console.Close()
	// One pipe for the init's stdout and one for its stderr, copied into
	// the one log whose index says which wrote what (logs --stderr).
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	closeReaders := func() { outR.Close(); errR.Close() }
	var term *ttyServer
	var termDone chan struct{}
	var inR *os.File // the init's stdin, when kept open
	var stdout, stderr io.Writer = stream{console, Stdout}, stream{console, Stderr}
	switch {
	case s.cfg.Terminal:
		term = &ttyServer{log: console, clients: map[*attached]struct{}{}}
	case s.cfg.Stdin:
		var inW *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			closeReaders()
			outW.Close()
			errW.Close()
			return err
		}
		term = &ttyServer{stdin: inW, clients: map[*attached]struct{}{}}
		// Attached clients see the output as it is logged.
		stdout, stderr = teeClients{stdout, term}, teeClients{stderr, term}
	}
	var copies sync.WaitGroup
	copies.Go(func() { io.Copy(stdout, outR) })
	copies.Go(func() { io.Copy(stderr, errR) })
	copied := make(chan struct{})
	go func() { copies.Wait(); close(copied) }()
	initPid, err := s.create(inR, outW, errW, term)
	outW.Close() // the container holds the write ends now
	errW.Close()
	if inR != nil {
		inR.Close() // and the read end of its stdin
	}
	if err == nil && term != nil {
		termDone = make(chan struct{})
		if err = term.serve(termDone); err != nil {
			s.deleteRunc("--force")
		}
	}
	if err != nil {
		if term != nil {
			term.closeInput()
		}
		closeReaders()
		return err
	}
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				unix.Kill(initPid, sig.(syscall.Signal)) // our child until reaped: the pid is its
			}
		}
	}()
	s.report(Ready{Pid: initPid})

	code := reap(initPid)
	finished := time.Now().UTC()
	// Everything in the container's pid namespace died with its init, so
	// the pipe ends soon; a process that escaped it does not hold us.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		closeReaders()
	}
	if term != nil {
		select {
		case <-termDone:
		case <-time.After(2 * time.Second):
		}
		term.close()
	}
	signal.Stop(sigs)
	exit := Exit{ExitCode: code, FinishedAt: finished, OOMKilled: oomKilled(s.cfg.CgroupsPath)}
	if err := WriteExit(s.dir, exit); err != nil {
		return fmt.Errorf("recording the exit: %w", err)
	}
	// The stopped runc container is of no further use; removing it also
	// removes its cgroup.
	s.deleteRunc("")
	return nil
}

// deleteRunc removes the runc container; with "--force", killing it
// first if it lives.
func (s *shim) deleteRunc(force string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"--root", s.cfg.Root, "delete"}
	if force != "" {
		args = append(args, force)
	}
	if out, err := exec.CommandContext(ctx, s.cfg.Runc, append(args, s.cfg.ID)...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "runc delete %s: %v: %s\n", s.cfg.ID, err, bytes.TrimSpace(out))
	}
}

// create runs `runc create` with in (or /dev/null), out and errOut as the
// container's stdin, stdout and stderr, or, with a terminal
// (Config.Terminal), with a terminal whose master it puts in term; it
// returns the init's pid.
func (s *shim) create(in, out, errOut *os.File, term *ttyServer) (int, error) {
	logPath := filepath.Join(s.dir, RuncLogFile)
	os.Remove(logPath)
	pidPath := filepath.Join(s.dir, InitPidFile)
	os.Remove(pidPath)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	args := []string{"--root", s.cfg.Root, "--log", logPath, "--log-format", "json",
		"create", "--bundle", s.cfg.Bundle, "--pid-file", pidPath}
	var ln *net.UnixListener
	var dirf *os.File
	if s.cfg.Terminal {
		if ln, err = listenConsole(); err != nil {
			return 0, err
		}
		defer ln.Close()
		if dirf, err = os.Open("."); err != nil {
			return 0, err
		}
		defer dirf.Close()
		// The directory is descriptor 3 of runc (ExtraFiles[0]).
		args = append(args, "--console-socket", consoleSocketFor(3))
	}
	cmd := exec.Command(s.cfg.Runc, append(args, s.cfg.ID)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, out, errOut
	if in != nil {
		cmd.Stdin = in
	}
	if dirf != nil {
		cmd.ExtraFiles = []*os.File{dirf}
	}
	type received struct {
		f   *os.File
		err error
	}
	master := make(chan received, 1)
	if ln != nil {
		go func() {
			f, err := receiveMaster(ln, 2*time.Minute)
			master <- received{f, err}
		}()
	}
	if err := cmd.Run(); err != nil {
		if ln != nil {
			ln.Close()
			if m := <-master; m.f != nil {
				m.f.Close()
			}
		}
		if msg := LastRuncError(logPath); msg != "" {
			return 0, errors.New(msg)
		}
		return 0, fmt.Errorf("runc create: %w", err)
	}
	if ln != nil {
		// runc has sent it by the time it exits.
		ln.SetDeadline(time.Now().Add(5 * time.Second))
		m := <-master
		if m.err != nil {
			s.deleteRunc("--force")
			return 0, m.err
		}
		term.master = m.f
	}
	b, err := os.ReadFile(pidPath)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", InitPidFile, err)
	}
	return pid, nil
}

// reap waits for the init (our child, as subreaper) and returns its exit
// code, 128+signal when a signal ended it. Other children that come our
// way are reaped too.
func reap(initPid int) int {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Not our child after all (it cannot happen with the
			// subreaper set); watch it go and say we do not know how.
			for unix.Kill(initPid, 0) == nil {
				time.Sleep(50 * time.Millisecond)
			}
			return -1
		}
		if pid != initPid {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
}

// oomKilled reports whether the OOM killer killed a process in the
// cgroup (v1 memory.oom_control, or v2 memory.events).
func oomKilled(cgroupsPath string) bool {
	if cgroupsPath == "" {
		return false
	}
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup/memory", cgroupsPath, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", cgroupsPath, "memory.events"),
	} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), " ")
			if k == "oom_kill" {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				f.Close()
				return n > 0
			}
		}
		f.Close()
	}
	return false
}

// LastRuncError is the message of the last error runc wrote to its JSON
// log at name, "" when there is none.
func LastRuncError(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	msg := ""
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msg = e.Msg
		}
	}
	return msg
}
