package shim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A container whose init has a terminal (Config.Terminal) is made with
// `runc create --console-socket`: runc hands the shim the pty's master,
// the shim keeps it for the container's life, copies what the container
// writes into console.log as for any container, and serves the terminal
// on DIR/attach.sock to whoever attaches (the runtime's AttachTerminal).
// A container with an open stdin (Config.Stdin) is served the same way:
// what clients type goes into the write end of its stdin pipe, which the
// shim keeps, and they get what it writes to its stdout and stderr (as it
// is logged); resizes do nothing.
//
// The attach protocol is frames both ways, each a kind byte, a big-endian
// uint32 length and that many bytes:
//
//	FrameData    client → shim: typed into the terminal
//	             shim → client: what the container wrote since the client attached
//	FrameResize  client → shim: 4 bytes, rows and columns (uint16 each)
//
// The shim closes the connection when the container's terminal ends (its
// init exited) or when the client does not keep up with the output (its
// backlog is dropped rather than the container slowed or the log lost).
// The socket is root's alone (0600 in the container's directory).

// Frame kinds of the attach protocol.
const (
	FrameData   byte = 'd'
	FrameResize byte = 'r'
)

// Files of a container with a terminal.
const (
	AttachSocket  = "attach.sock"
	consoleSocket = "console.sock"
)

// inputTimeout is how long typing may wait for the container to read it.
const inputTimeout = 30 * time.Second

// MaxFrame is the largest frame payload either side sends or accepts.
const MaxFrame = 1 << 20

// WriteFrame writes one frame of kind to w.
func WriteFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame of %d bytes is too long", len(payload))
	}
	b := make([]byte, 5+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:5], uint32(len(payload)))
	copy(b[5:], payload)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame from r.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:5])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is too long", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return h[0], p, nil
}

// ResizePayload is the payload of a FrameResize.
func ResizePayload(rows, cols uint16) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b[0:2], rows)
	binary.BigEndian.PutUint16(b[2:4], cols)
	return b
}

// DialAttach connects to the terminal of the container of dir, whatever
// the length of dir (a unix socket's path may not exceed 107 bytes, so
// the socket is reached through a descriptor of the directory).
func DialAttach(dir string) (*net.UnixConn, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	path := "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/" + AttachSocket
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ttyServer is the terminal of a running container: its master, and the
// clients attached to it; or, with no terminal, its open stdin.
type ttyServer struct {
	master *os.File  // the terminal's master
	stdin  *os.File  // without a terminal: the write end of the init's stdin
	log    io.Writer // with a terminal: where its output is logged

	wmu sync.Mutex // one client's input at a time into the master

	mu      sync.Mutex
	clients map[*attached]struct{}
	ln      *net.UnixListener
	senders sync.WaitGroup
}

type attached struct {
	conn *net.UnixConn
	out  chan []byte
	once sync.Once
}

func (a *attached) close() { a.once.Do(func() { close(a.out) }) }

// listenConsole makes the socket on which runc hands over the master
// (relative to the shim's directory, its working directory) and returns
// the path runc is to dial, through descriptor fd of runc's process that
// the caller makes the directory.
func listenConsole() (*net.UnixListener, error) {
	os.Remove(consoleSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: consoleSocket, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(consoleSocket, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// receiveMaster accepts runc's connection on ln and receives the pty
// master it sends.
func receiveMaster(ln *net.UnixListener, timeout time.Duration) (*os.File, error) {
	ln.SetDeadline(time.Now().Add(timeout))
	c, err := ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("waiting for the terminal: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("receiving the terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receiving the terminal: %d messages: %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receiving the terminal: %d descriptors: %v", len(fds), err)
	}
	unix.CloseOnExec(fds[0])
	// Non-blocking, so that the runtime's poller serves it and Close
	// interrupts a Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// serve copies the terminal's output to the log and the attached
// clients until the terminal ends, and takes clients on DIR/attach.sock.
// done is closed when the output has ended.
func (c *ttyServer) serve(done chan<- struct{}) error {
	os.Remove(AttachSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: AttachSocket, Net: "unix"})
	if err != nil {
		return err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(AttachSocket, 0o600); err != nil {
		ln.Close()
		return err
	}
	c.ln = ln
	go c.accept()
	if c.master == nil {
		// The output comes through the pipes the shim copies (teeClients).
		close(done)
		return nil
	}
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := c.master.Read(buf)
			if n > 0 {
				c.write(buf[:n])
			}
			if err != nil {
				// EIO: every process holding the terminal has ended.
				return
			}
		}
	}()
	return nil
}

// write logs p and hands it to every client.
func (c *ttyServer) write(p []byte) {
	c.log.Write(p)
	c.broadcast(p)
}

// broadcast hands p to every client; a client whose backlog is full is
// dropped.
func (c *ttyServer) broadcast(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a := range c.clients {
		select {
		case a.out <- append([]byte(nil), p...):
		default:
			delete(c.clients, a)
			a.close()
		}
	}
}

func (c *ttyServer) accept() {
	for {
		conn, err := c.ln.AcceptUnix()
		if err != nil {
			return
		}
		a := &attached{conn: conn, out: make(chan []byte, 256)}
		c.mu.Lock()
		if c.clients == nil {
			c.mu.Unlock()
			conn.Close() // the terminal has ended
			continue
		}
		c.clients[a] = struct{}{}
		c.senders.Add(1)
		c.mu.Unlock()
		go c.send(a)
		go c.receive(a)
	}
}

// send writes the client's backlog to it; the connection is closed when
// the backlog is closed (the terminal ended or the client was dropped).
func (c *ttyServer) send(a *attached) {
	defer c.senders.Done()
	defer a.conn.Close()
	for p := range a.out {
		a.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if err := WriteFrame(a.conn, FrameData, p); err != nil {
			c.drop(a)
			for range a.out {
			}
			return
		}
	}
}

// receive types what the client sends and applies its resizes.
func (c *ttyServer) receive(a *attached) {
	defer c.drop(a)
	r := bufio.NewReader(a.conn)
	for {
		kind, p, err := ReadFrame(r)
		if err != nil {
			return
		}
		switch kind {
		case FrameData:
			// A container that does not read its input would hold every
			// client's typing behind this one: past a while, this client
			// is dropped instead.
			c.wmu.Lock()
			in := c.input()
			in.SetWriteDeadline(time.Now().Add(inputTimeout))
			_, err = in.Write(p)
			c.wmu.Unlock()
		case FrameResize:
			if len(p) == 4 && c.master != nil {
				err = setWinsize(c.master, binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4]))
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *ttyServer) drop(a *attached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.clients[a]; ok {
		delete(c.clients, a)
		a.close()
	}
}

// close stops taking clients and lets the attached ones go once their
// backlog is sent (waiting a little for it); then the master is closed.
func (c *ttyServer) close() {
	if c.ln != nil {
		c.ln.Close()
	}
	c.mu.Lock()
	for a := range c.clients {
		a.close()
	}
	c.clients = nil
	c.mu.Unlock()
	sent := make(chan struct{})
	go func() {
		c.senders.Wait()
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(2 * time.Second):
	}
	c.closeInput()
}

// input is where clients type: the terminal's master, or the stdin pipe.
func (c *ttyServer) input() *os.File {
	if c.master != nil {
		return c.master
	}
	return c.stdin
}

// closeInput closes the master or the stdin pipe, if there is one.
func (c *ttyServer) closeInput() {
	if f := c.input(); f != nil {
		f.Close()
	}
}

// teeClients writes what a container without a terminal writes to its log
// (w) and to the clients attached to its open stdin.
type teeClients struct {
	w io.Writer
	c *ttyServer
}

func (t teeClients) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.c.broadcast(p)
	return n, err
}

func setWinsize(f *os.File, rows, cols uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}); err != nil {
		return err
	}
	return ierr
}

// consoleSocketFor is the path runc dials for the console socket: the
// socket in the directory that is descriptor fd of runc's process (the
// shim's directory, passed down), short whatever the directory's path.
func consoleSocketFor(fd int) string {
	return filepath.Join("/proc/self/fd", strconv.Itoa(fd), consoleSocket)
}
