package linuxbridge

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostNetns names the test process's own (host) namespace for run.
const hostNetns = "host"

// ping sends one ICMP echo request from the namespace at ns to dst and
// waits up to timeout for the reply (raw socket, no ping binary needed).
func ping(t testing.TB, ns string, dst netip.Addr, timeout time.Duration) error {
	t.Helper()
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	return run(t, ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'm', 'o', 'n', 'o'}
		cs := checksum(msg)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
		sa := &unix.SockaddrInet4{Addr: dst.As4()}
		if err := unix.Sendto(fd, msg, 0, sa); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		deadline := time.Now().Add(timeout)
		buf := make([]byte, 1500)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("no echo reply from %s within %v", dst, timeout)
			}
			tv := unix.NsecToTimeval(left.Nanoseconds())
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			f, ok := from.(*unix.SockaddrInet4)
			if !ok || netip.AddrFrom4(f.Addr) != dst || n < 20 {
				continue
			}
			ihl := int(buf[0]&0x0f) * 4
			if n < ihl+8 {
				continue
			}
			icmp := buf[ihl:n]
			if icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:6]) == id {
				return nil
			}
		}
	})
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// eventually retries fn until it succeeds or wait passes, and returns how
// long it took.
func eventually(t testing.TB, wait time.Duration, what string, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < wait {
		if err = fn(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %v: %v", what, wait, err)
	return 0
}

// canPing is ping as a bool, with a short timeout for the negative cases.
func canPing(t testing.TB, ns string, dst netip.Addr) bool {
	t.Helper()
	return ping(t, ns, dst, 500*time.Millisecond) == nil
}

// listenTCP listens on addr inside ns and accepts in the background,
// writing "hi" to each connection; it reports accepted peers on the channel.
func listenTCP(t testing.TB, ns string, addr netip.AddrPort) <-chan netip.AddrPort {
	t.Helper()
	var ln net.Listener
	if err := run(t, ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case peers <- c.RemoteAddr().(*net.TCPAddr).AddrPort():
			default:
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					c.Write(buf[:n])
				}
			}()
		}
	}()
	return peers
}

// dialTCP connects from ns to addr.
func dialTCP(t testing.TB, ns string, addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := run(t, ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr.String(), timeout)
		return err
	})
	return c, err
}

// echo writes and reads back a line on c.
func echo(c net.Conn) error {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	_, err := c.Read(buf)
	return err
}

// listenUDP listens on addr inside ns and reports the source of every
// datagram.
func listenUDP(t testing.TB, ns string, addr netip.AddrPort) <-chan netip.AddrPort {
	t.Helper()
	var pc net.PacketConn
	if err := run(t, ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", addr.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	from := make(chan netip.AddrPort, 64)
	go func() {
		buf := make([]byte, 1500)
		for {
			_, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case from <- a.(*net.UDPAddr).AddrPort():
			default:
			}
		}
	}()
	return from
}

// sendUDP sends one datagram from ns (from src when valid) to dst.
func sendUDP(t testing.TB, ns string, src netip.Addr, dst netip.AddrPort) error {
	t.Helper()
	return run(t, ns, func() error {
		var laddr *net.UDPAddr
		if src.IsValid() {
			laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		c, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
}

// received waits up to wait for a datagram on from and returns its source.
func received(from <-chan netip.AddrPort, wait time.Duration) (netip.Addr, bool) {
	select {
	case a := <-from:
		return a.Addr(), true
	case <-time.After(wait):
		return netip.Addr{}, false
	}
}

// drain empties a channel of whatever arrived so far.
func drain[T any](c <-chan T) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
