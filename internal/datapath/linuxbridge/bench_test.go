package linuxbridge

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/datapath/datapathtest"
)

// benchState is one network with n secured ports (a few rules each),
// spread over namespaces of 100 ports each (eth0…eth99).
func benchState(b testing.TB, n int) datapath.HostState {
	return benchStateIn(n, func() string { return newNetns(b) })
}

func benchStateIn(n int, newNetns func() string) datapath.HostState {
	net1 := datapath.Network{ID: newID(), MTU: 1500}
	s := datapath.HostState{Networks: []datapath.Network{net1}}
	var ns string
	for i := range n {
		if i%100 == 0 {
			ns = newNetns()
		}
		addr := netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)})
		if addr.As4()[3] == 0 || addr.As4()[3] == 255 {
			addr = addr.Next().Next()
		}
		s.Ports = append(s.Ports, datapath.Port{
			ID: newID(), NetworkID: net1.ID, MAC: newMAC(), MTU: 1500,
			Addresses: []netip.Prefix{netip.PrefixFrom(addr, 10)},
			Netns:     ns, IfName: fmt.Sprintf("eth%d", i%100), PortSecurity: true,
			Rules: append(egressAll(),
				ingress("icmp", 0, 0),
				ingress("tcp", 22, 22, "100.64.0.0/10"),
				ingress("tcp", 80, 80, "100.64.0.0/16", "100.65.0.0/16", "100.66.0.10/32")),
		})
	}
	return s
}

// BenchmarkApplyPorts: from nothing to n ports applied (bridge, veths in
// namespaces, addresses, security groups, the wait until the links pass
// traffic); reports ports/s.
func BenchmarkApplyPorts(b *testing.B) {
	needRoot(b)
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("ports=%d", n), func(b *testing.B) {
			d := newDatapath(b, datapathtest.NewOwner())
			s := benchState(b, n)
			ctx := context.Background()
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				if err := d.Apply(ctx, s); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				if err := d.Apply(ctx, datapath.HostState{}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "ports/s")
		})
	}
}

// BenchmarkDeletePorts: from n applied ports to their deletion (the
// network stays): the Apply that removes their veths; reports ports/s.
func BenchmarkDeletePorts(b *testing.B) {
	needRoot(b)
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("ports=%d", n), func(b *testing.B) {
			d := newDatapath(b, datapathtest.NewOwner())
			s := benchState(b, n)
			empty := datapath.HostState{Networks: s.Networks}
			ctx := context.Background()
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				if err := d.Apply(ctx, s); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := d.Apply(ctx, empty); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			b.StopTimer()
			if err := d.Apply(ctx, datapath.HostState{}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "ports/s")
		})
	}
}

// BenchmarkRuleChange: one security-group rule added to (or taken from)
// every one of n applied ports, in one Apply — the whole Apply, which also
// checks every link — and the firewall part alone.
func BenchmarkRuleChange(b *testing.B) {
	needRoot(b)
	for _, n := range []int{1000} {
		d := newDatapath(b, datapathtest.NewOwner())
		s := benchState(b, n)
		ctx := context.Background()
		if err := d.Apply(ctx, s); err != nil {
			b.Fatal(err)
		}
		toggle := func(i int) {
			for j := range s.Ports {
				p := &s.Ports[j]
				if i%2 == 0 {
					p.Rules = append(p.Rules, ingress("udp", 5000+i%1000, 5000+i%1000))
				} else {
					p.Rules = p.Rules[:len(p.Rules)-1]
				}
			}
		}
		b.Run(fmt.Sprintf("ports=%d/apply", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				toggle(i)
				i++
				if err := d.Apply(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("ports=%d/firewall", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				toggle(i)
				i++
				d.mu.Lock()
				err := d.applyFirewall(s, datapath.Check(s))
				d.mu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("ports=%d/unchanged", n), func(b *testing.B) {
			for b.Loop() {
				if err := d.Apply(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyRounds: what the agent does during a burst of port
// creations through the API: one port per namespace (as servers have),
// every port in one group whose rule "from the group" lists all members,
// and each Apply bringing 100 more ports, up to 1,000. Reports the time of
// the last round (100 new on 900) and of an Apply with nothing new at
// 1,000 ports (not a full check).
func BenchmarkApplyRounds(b *testing.B) {
	needRoot(b)
	const n, step = 1000, 100
	s := benchStateIn(n, func() string { return "" })
	var members []netip.Prefix
	for i := range s.Ports {
		s.Ports[i].Netns = newNetns(b)
		s.Ports[i].IfName = "eth0"
		members = append(members, netip.PrefixFrom(s.Ports[i].Addresses[0].Addr(), 32))
	}
	for i := range s.Ports {
		s.Ports[i].Rules = append(egressAll(), ingress("icmp", 0, 0), datapath.Rule{Direction: "ingress", EtherType: "IPv4", Remotes: members})
	}
	ctx := context.Background()
	var last, idle time.Duration
	for b.Loop() {
		b.StopTimer()
		d := newDatapath(b, datapathtest.NewOwner())
		b.StartTimer()
		for m := step; m <= n; m += step {
			start := time.Now()
			if err := d.Apply(ctx, datapath.HostState{Networks: s.Networks, Ports: s.Ports[:m]}); err != nil {
				b.Fatal(err)
			}
			if m == n {
				last += time.Since(start)
			}
		}
		start := time.Now()
		if err := d.Apply(ctx, s); err != nil {
			b.Fatal(err)
		}
		idle += time.Since(start)
		b.StopTimer()
		if err := d.Apply(ctx, datapath.HostState{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(last.Milliseconds())/float64(b.N), "ms/last-round")
	b.ReportMetric(float64(idle.Milliseconds())/float64(b.N), "ms/idle-round")
}
