package runc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// threads is the number of OS threads of this process.
func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads in /proc/self/status")
	return 0
}

// TestReapLater: children waited for by reapLater hold no thread each
// while they run (cmd.Wait would: one blocked in waitid per child), and
// each is reaped, not left a zombie, once it exits.
func TestReapLater(t *testing.T) {
	const n = 60
	before := threads(t)
	var pids []int
	for range n {
		cmd := exec.Command("sleep", "1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid) // before: reapLater releases the Process
		reapLater(cmd.Process)
	}
	time.Sleep(200 * time.Millisecond)
	if during := threads(t); during-before > n/4 {
		t.Errorf("%d threads while %d children run (%d before): a thread per child", during, n, before)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for {
			st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				break // gone: reaped
			}
			if time.Now().After(deadline) {
				t.Fatalf("child %d not reaped: %s", pid, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
