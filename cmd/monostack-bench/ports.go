package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// The "ports" benchmark (root only, like server-create, volume and
// container): Neutron ports through the real API of a monostack started
// here, plugged by its real datapath (bridges, veths, nftables), as admin.
//
//  0. The admin project's port quota is raised (−1), and a network
//     "bench-ports" with one IPv4 subnet (benchPortsCIDR) is made. Its
//     addresses never reach the host's routing: a network that is not
//     external and has no router is a bridge with no address on the host.
//  1. Many ports: for each count of --ports, that many network
//     namespaces are made (ip netns add, untimed), then --port-clients
//     clients POST /v2.0/ports back to back, one per namespace, each
//     bound to this host with binding:host_id and binding:profile
//     {"netns": "/var/run/netns/<name>"} as Nova does for a server. One
//     poller lists the network's ACTIVE ports every portPoll, or less
//     often when a list takes more than a fifth of that (with 1,000 ports
//     a list costs the server ~40 ms). Two rates:
//     the API's (ports over the time from the first POST to the last
//     answer) and to ACTIVE (ports over the time from the first POST to
//     the first list that shows every one ACTIVE, i.e. plugged by the
//     agent: veth in its namespace with its MAC, addresses and routes,
//     its security group in nftables). Each port's time, POST to the
//     list showing it ACTIVE, gives the percentiles. Then all are
//     deleted by as many clients, timed until every tap has left the
//     host; then the namespaces go.
//  2. First packet: one "server" namespace with a port plugged and
//     ACTIVE runs a UDP echo responder (a socket of this process, opened
//     in that namespace). firstPacketRuns times, one at a time: a new
//     namespace with a UDP socket opened in it (untimed), then the clock
//     starts, the port is POSTed, and the socket sends a datagram to the
//     server's address every packetEvery (every send that fails, while
//     the namespace has no address or route yet, is retried as often)
//     until an echo comes back. That time is "create → first packet
//     through". The port's GET is polled every activePoll beside it, for
//     its time to ACTIVE. Then the port is deleted, its tap awaited, and
//     the namespace removed.
//
// Everything made is removed when the benchmark ends, on an error or a
// signal too: ports through the API, namespaces with ip netns delete
// (after their ports' veths are gone), the network; what the API missed
// (the monostack gone) is left to `monostack purge`, which run() calls.
const (
	benchPortsCIDR  = "198.18.64.0/21"
	portPoll        = 50 * time.Millisecond
	activePoll      = 5 * time.Millisecond
	firstPacketRuns = 20
	packetEvery     = time.Millisecond
	echoPort        = 7007
	// portsLimit bounds the wait for many ports to be ACTIVE, or gone.
	portsLimit = 5 * time.Minute
	// packetLimit bounds the wait for one port's first packet.
	packetLimit = 30 * time.Second
	netnsDir    = "/var/run/netns/"
)

// portBench is the benchmark's client, and what it made that is still
// there.
type portBench struct {
	*osClient
	host  string
	netID string
	seq   int
	mu    sync.Mutex
	ports map[string]bool // made through the API, not yet deleted
	nss   map[string]bool // namespaces made, not yet deleted
}

// portOut is what the benchmark reads of a port.
type portOut struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	FixedIPs []struct {
		IP string `json:"ip_address"`
	} `json:"fixed_ips"`
}

// mkNetns makes n namespaces from 4 workers and returns their names.
func (b *portBench) mkNetns(n int) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		b.seq++
		names[i] = fmt.Sprintf("msb-%d-%d", os.Getpid(), b.seq)
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range next {
				if out, err := exec.Command("ip", "netns", "add", names[i]).CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("ip netns add %s: %v: %s", names[i], err, strings.TrimSpace(string(out)))
					continue
				}
				b.mu.Lock()
				b.nss[names[i]] = true
				b.mu.Unlock()
			}
		})
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	return names, errors.Join(errs...)
}

// delNetns removes namespaces (from 4 workers).
func (b *portBench) delNetns(names []string) error {
	errs := make([]error, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range next {
				if out, err := exec.Command("ip", "netns", "delete", names[i]).CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("ip netns delete %s: %v: %s", names[i], err, strings.TrimSpace(string(out)))
					continue
				}
				b.mu.Lock()
				delete(b.nss, names[i])
				b.mu.Unlock()
			}
		})
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// create POSTs a port on the bench network bound to this host in
// namespace ns.
func (b *portBench) create(ns string) (portOut, error) {
	var out struct {
		Port portOut `json:"port"`
	}
	_, err := b.do(http.MethodPost, "/network/v2.0/ports", map[string]any{"port": map[string]any{
		"network_id": b.netID, "name": "bench-" + ns,
		"binding:host_id": b.host, "binding:profile": map[string]any{"netns": netnsDir + ns},
	}}, &out, http.StatusCreated)
	if err != nil {
		return out.Port, fmt.Errorf("create port in %s: %w", ns, err)
	}
	b.mu.Lock()
	b.ports[out.Port.ID] = true
	b.mu.Unlock()
	return out.Port, nil
}

// del deletes a port; one already gone is not an error.
func (b *portBench) del(id string) error {
	_, err := b.do(http.MethodDelete, "/network/v2.0/ports/"+id, nil, nil, http.StatusNoContent)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("delete port %s: %w", id, err)
	}
	b.mu.Lock()
	delete(b.ports, id)
	b.mu.Unlock()
	return nil
}

// active lists the ids of the bench network's ACTIVE ports.
func (b *portBench) active() (map[string]bool, error) {
	var l struct {
		Ports []portOut `json:"ports"`
	}
	if _, err := b.do(http.MethodGet, "/network/v2.0/ports?network_id="+b.netID+"&status=ACTIVE&fields=id", nil, &l, http.StatusOK); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(l.Ports))
	for _, p := range l.Ports {
		out[p.ID] = true
	}
	return out, nil
}

// tapName is the host end of a port's veth (datapath.TapName).
func tapName(id string) string { return "tap" + id[:min(len(id), 11)] }

// taps lists the host's links named tap….
func taps() (map[string]bool, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "tap") {
			out[i.Name] = true
		}
	}
	return out, nil
}

// waitTapsGone waits until none of the ports' taps is on the host, and
// returns when that was seen.
func (b *portBench) waitTapsGone(ids []string, every time.Duration) (time.Time, error) {
	deadline := time.Now().Add(portsLimit)
	for {
		have, err := taps()
		if err != nil {
			return time.Time{}, err
		}
		left := 0
		for _, id := range ids {
			if have[tapName(id)] {
				left++
			}
		}
		if left == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d taps still on the host %s after their ports were deleted", left, len(ids), portsLimit)
		}
		select {
		case <-b.ctx.Done():
			return time.Time{}, b.ctx.Err()
		case <-time.After(every):
		}
	}
}

// parsePortCounts reads --ports: counts in [1, 2000], comma-separated
// (the subnet holds 2,045 ports); nil when it is not that.
func parsePortCounts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 2000 {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// portsBenchmarks runs the ports benchmark against the monostack at base
// (process pid): a many-ports round for each of counts, with clients
// clients, then the first-packet runs.
func portsBenchmarks(ctx context.Context, base string, creds credentials, pid int, countList string, clients int) (rows []row, retErr error) {
	counts := parsePortCounts(countList)
	oc, err := newOSClient(ctx, base, creds)
	if err != nil {
		return nil, err
	}
	oc.http = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: clients + 4}}
	defer oc.http.CloseIdleConnections()
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	b := &portBench{osClient: oc, host: host, ports: map[string]bool{}, nss: map[string]bool{}}
	if _, err := b.do(http.MethodPut, "/network/v2.0/quotas/"+b.project, map[string]any{"quota": map[string]any{"port": -1}}, nil, http.StatusOK); err != nil {
		return nil, fmt.Errorf("port quota: %w", err)
	}
	var nw struct {
		Network struct{ ID string } `json:"network"`
	}
	if _, err := b.do(http.MethodPost, "/network/v2.0/networks", map[string]any{"network": map[string]any{"name": "bench-ports"}}, &nw, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	b.netID = nw.Network.ID
	defer func() {
		if err := b.cleanup(); err != nil && retErr == nil {
			retErr = err
		}
	}()
	if _, err := b.do(http.MethodPost, "/network/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"network_id": b.netID, "name": "bench-ports", "ip_version": 4, "cidr": benchPortsCIDR,
	}}, nil, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("subnet: %w", err)
	}
	for _, n := range counts {
		r, err := b.many(pid, n, clients)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	r, err := b.firstPackets(pid)
	rows = append(rows, r...)
	return rows, err
}

// cleanup deletes the ports and namespaces the benchmark made and still
// has, then the network. It works after a signal too: its requests use
// a context of their own.
func (b *portBench) cleanup() error {
	c := *b.osClient
	ctx, cancel := context.WithTimeout(context.Background(), portsLimit)
	defer cancel()
	c.ctx = ctx
	cb := &portBench{osClient: &c, ports: b.ports, nss: b.nss, netID: b.netID}
	var errs []error
	var ids []string
	for id := range b.ports {
		ids = append(ids, id)
	}
	apiUp := true
	for _, id := range ids {
		if err := cb.del(id); err != nil {
			errs = append(errs, err)
			if statusOf(err) == 0 {
				apiUp = false // the monostack is gone: purge removes the veths
				break
			}
		}
	}
	if apiUp && len(ids) > 0 {
		if _, err := cb.waitTapsGone(ids, 20*time.Millisecond); err != nil {
			errs = append(errs, err)
		}
	}
	var names []string
	for ns := range b.nss {
		names = append(names, ns)
	}
	errs = append(errs, cb.delNetns(names))
	if apiUp && b.netID != "" {
		if _, err := cb.do(http.MethodDelete, "/network/v2.0/networks/"+b.netID, nil, nil, http.StatusNoContent); err != nil {
			errs = append(errs, fmt.Errorf("delete network bench-ports: %w", err))
		}
	}
	return errors.Join(errs...)
}

// many is phase 1 for n ports from clients clients.
func (b *portBench) many(pid, n, clients int) ([]row, error) {
	names, err := b.mkNetns(n)
	if err != nil {
		return nil, err
	}
	type sample struct {
		id       string
		start    time.Time
		answered time.Time
		active   time.Time
	}
	samples := make([]sample, n)
	var mu sync.Mutex // guards samples' ids and active times, and posted
	posted := 0
	var firstErr error
	phase := startPhase(pid)
	t0 := time.Now()

	// The poller: lists ACTIVE ports until every port was made and is
	// ACTIVE, or the posting failed.
	byID := map[string]int{}
	pollDone := make(chan error, 1)
	stop := make(chan struct{})
	var lists []time.Duration
	var allActive time.Time
	var listTime time.Duration
	go func() {
		deadline := t0.Add(portsLimit)
		wait := portPoll
		for {
			select {
			case <-stop:
				pollDone <- nil
				return
			case <-b.ctx.Done():
				pollDone <- b.ctx.Err()
				return
			case <-time.After(wait):
			}
			ls := time.Now()
			act, err := b.active()
			seen := time.Now()
			if err != nil {
				pollDone <- fmt.Errorf("list ports: %w", err)
				return
			}
			lists = append(lists, seen.Sub(ls))
			listTime += seen.Sub(ls)
			// A list of many ports costs the server tens of ms: it is
			// sent at most a fifth of the time.
			wait = max(portPoll, 4*seen.Sub(ls))
			mu.Lock()
			done := 0
			for id, i := range byID {
				if samples[i].active.IsZero() && act[id] {
					samples[i].active = seen
				}
				if !samples[i].active.IsZero() {
					done++
				}
			}
			all := posted == n && done == n
			mu.Unlock()
			if all {
				allActive = seen
				pollDone <- nil
				return
			}
			if seen.After(deadline) {
				pollDone <- fmt.Errorf("%d of %d ports not ACTIVE after %s", n-done, n, portsLimit)
				return
			}
		}
	}()

	next := make(chan int)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range next {
				s := time.Now()
				p, err := b.create(names[i])
				a := time.Now()
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					samples[i] = sample{id: p.ID, start: s, answered: a}
					byID[p.ID] = i
					posted++
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || b.ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	apiDone := time.Now()
	if firstErr != nil {
		close(stop)
		<-pollDone
		return nil, firstErr
	}
	if err := <-pollDone; err != nil {
		return nil, err
	}
	var post, act []time.Duration
	ids := make([]string, 0, n)
	for _, s := range samples {
		post = append(post, s.answered.Sub(s.start))
		act = append(act, s.active.Sub(s.start))
		ids = append(ids, s.id)
	}
	slices.Sort(lists)
	rAPI := latencyRow(fmt.Sprintf("POST /v2.0/ports, %d ports (%d clients)", n, clients), "", post, 0, "")
	rAPI.rate = float64(n) / apiDone.Sub(t0).Seconds()
	rAPI.extra += fmt.Sprintf("; all answered after %s", fmtDur(apiDone.Sub(t0)))
	rAct := latencyRow(fmt.Sprintf("POST → ACTIVE, %d ports (%d clients)", n, clients), ">= 200/s", act, 0, "")
	rAct.rate = float64(n) / allActive.Sub(t0).Seconds()
	rAct.extra += fmt.Sprintf("; all ACTIVE after %s; %d lists of the ACTIVE ports (p50 %s, %.0f%% of the time)",
		fmtDur(allActive.Sub(t0)), len(lists), fmtDur(pct(lists, 50)), 100*listTime.Seconds()/allActive.Sub(t0).Seconds())
	rows := []row{rAPI, rAct}
	phase.fill(rows)

	// The deletes, until every tap has left the host.
	phase = startPhase(pid)
	t1 := time.Now()
	var dels []time.Duration
	var delErr error
	next = make(chan int)
	for range clients {
		wg.Go(func() {
			for i := range next {
				s := time.Now()
				err := b.del(ids[i])
				d := time.Since(s)
				mu.Lock()
				if err != nil && delErr == nil {
					delErr = err
				}
				dels = append(dels, d)
				mu.Unlock()
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	if delErr != nil {
		return rows, delErr
	}
	gone, err := b.waitTapsGone(ids, portPoll)
	if err != nil {
		return rows, err
	}
	rDel := latencyRow(fmt.Sprintf("DELETE → tap gone, %d ports (%d clients)", n, clients), "", dels, 0, "")
	rDel.rate = float64(n) / gone.Sub(t1).Seconds()
	rDel.extra = fmt.Sprintf("latencies are the DELETEs'; all taps gone after %s", fmtDur(gone.Sub(t1)))
	dr := []row{rDel}
	phase.fill(dr)
	rows = append(rows, dr...)
	return rows, b.delNetns(names)
}

// udpIn opens a UDP socket (on port, 0 for any) in the network namespace
// at path. The thread that enters the namespace goes back to the host's
// before it is given back to the runtime, or dies with its goroutine.
func udpIn(path string, port int) (*net.UDPConn, error) {
	type result struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer home.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		if serr := netns.Set(home); serr != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{nil, fmt.Errorf("back to the host's namespace: %w", serr)} // the thread dies locked
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// echo answers every datagram on c with itself, until c is closed.
func echo(c *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c.WriteToUDP(buf[:n], from)
	}
}

// firstEcho sends a datagram to dst every packetEvery (failed sends
// included) until an echo comes back, and returns when it came.
func firstEcho(ctx context.Context, c *net.UDPConn, dst *net.UDPAddr) (time.Time, int, error) {
	buf := make([]byte, 64)
	deadline := time.Now().Add(packetLimit)
	sent := 0
	for seq := uint64(1); ; seq++ {
		if time.Now().After(deadline) {
			return time.Time{}, sent, fmt.Errorf("no echo from %s within %s (%d datagrams sent)", dst, packetLimit, sent)
		}
		if err := ctx.Err(); err != nil {
			return time.Time{}, sent, err
		}
		if _, err := c.WriteToUDP(binary.BigEndian.AppendUint64(nil, seq), dst); err != nil {
			time.Sleep(packetEvery) // no address or route in the namespace yet
			continue
		}
		sent++
		c.SetReadDeadline(time.Now().Add(packetEvery))
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				break // none yet: send again
			}
			if n == 8 {
				return time.Now(), sent, nil // the echo of any datagram sent
			}
		}
	}
}

// waitPortActive polls a port's GET every activePoll until it is ACTIVE.
func (b *portBench) waitPortActive(id string) (time.Time, error) {
	deadline := time.Now().Add(packetLimit)
	for {
		var out struct {
			Port portOut `json:"port"`
		}
		if _, err := b.do(http.MethodGet, "/network/v2.0/ports/"+id+"?fields=status", nil, &out, http.StatusOK); err != nil {
			return time.Time{}, err
		}
		if out.Port.Status == "ACTIVE" {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("port %s is %s, not ACTIVE, after %s", id, out.Port.Status, packetLimit)
		}
		select {
		case <-b.ctx.Done():
			return time.Time{}, b.ctx.Err()
		case <-time.After(activePoll):
		}
	}
}

// firstPackets is phase 2.
func (b *portBench) firstPackets(pid int) ([]row, error) {
	srvNS, err := b.mkNetns(1)
	if err != nil {
		return nil, err
	}
	srv, err := b.create(srvNS[0])
	if err != nil {
		return nil, err
	}
	if len(srv.FixedIPs) == 0 {
		return nil, fmt.Errorf("port %s has no address", srv.ID)
	}
	if _, err := b.waitPortActive(srv.ID); err != nil {
		return nil, err
	}
	ec, err := udpIn(netnsDir+srvNS[0], echoPort)
	if err != nil {
		return nil, fmt.Errorf("echo socket in %s: %w", srvNS[0], err)
	}
	defer ec.Close()
	go echo(ec)
	dst := &net.UDPAddr{IP: net.ParseIP(srv.FixedIPs[0].IP), Port: echoPort}

	var first, active, post []time.Duration
	var sent []int
	phase := startPhase(pid)
	for range firstPacketRuns {
		ns, err := b.mkNetns(1)
		if err != nil {
			return nil, err
		}
		c, err := udpIn(netnsDir+ns[0], 0)
		if err != nil {
			return nil, fmt.Errorf("socket in %s: %w", ns[0], err)
		}
		// The port is posted and then polled for ACTIVE beside the
		// prober; a failed POST stops the prober.
		pctx, cancel := context.WithCancel(b.ctx)
		var p portOut
		var postAt, actAt time.Time
		done := make(chan error, 1)
		t0 := time.Now()
		go func() {
			var err error
			p, err = b.create(ns[0])
			postAt = time.Now()
			if err == nil {
				actAt, err = b.waitPortActive(p.ID)
			}
			if err != nil {
				cancel()
			}
			done <- err
		}()
		got, n, perr := firstEcho(pctx, c, dst)
		c.Close()
		err = <-done
		cancel()
		if err != nil || perr != nil {
			return nil, errors.Join(err, perr)
		}
		first = append(first, got.Sub(t0))
		active = append(active, actAt.Sub(t0))
		post = append(post, postAt.Sub(t0))
		sent = append(sent, n)
		if err := b.del(p.ID); err != nil {
			return nil, err
		}
		if _, err := b.waitTapsGone([]string{p.ID}, 10*time.Millisecond); err != nil {
			return nil, err
		}
		if err := b.delNetns(ns); err != nil {
			return nil, err
		}
	}
	slices.Sort(sent)
	rows := []row{
		latencyRow("port create → first UDP echo from a plugged port (1 at a time)", "report", first, 0, ""),
		latencyRow("port create → ACTIVE, the same ports (GET every 5ms)", "", active, 0, ""),
		latencyRow("POST /v2.0/ports, the same ports", "", post, 0, ""),
	}
	slow := 0
	for _, d := range first {
		if d > 500*time.Millisecond {
			slow++
		}
	}
	rows[0].extra += fmt.Sprintf("; datagrams sent before the echo: median %d, max %d; %d of %d over 500ms", sent[len(sent)/2], sent[len(sent)-1], slow, len(first))
	phase.fill(rows)
	return rows, nil
}
