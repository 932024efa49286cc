package runtime

import (
	"context"
	"io"
)

// Terminals is what a Runtime that can run interactive sessions offers
// besides the Runtime interface (the runc runtime is one; callers ask
// with a type assertion): a process run in a container on a terminal of
// its own, and attaching to the terminal of a container whose init has
// one (Process.Terminal).
type Terminals interface {
	// ExecTerminal starts spec (its Stdin is ignored) in a Running
	// container with a new terminal of size as its standard input,
	// output and error, as `docker exec -it` does, and returns that
	// terminal. The process runs until it exits or the terminal is
	// closed (it gets SIGHUP, as on a modem hang-up). A container that is
	// not running is ErrState, an unknown one ErrNotFound.
	ExecTerminal(ctx context.Context, id string, spec ExecSpec, size WindowSize) (Terminal, error)
	// AttachTerminal connects to the terminal of a Running container's
	// init, or to its open standard input (Process.OpenStdin): what is
	// written to the returned Terminal is typed into it, and what the
	// container writes from then on is read from it (and still logged).
	// Several may be attached at once; Close detaches and leaves the
	// container running; Resize does nothing without a terminal. A
	// container whose init has neither is ErrInvalid, one that is not
	// running ErrState.
	AttachTerminal(ctx context.Context, id string) (Terminal, error)
}

// WindowSize is a terminal's size in characters. Zero is left as it is.
type WindowSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Terminal is one side of an interactive session: Read returns what the
// container's processes write to the terminal (io.EOF once the session
// has ended), Write types into it.
type Terminal interface {
	io.ReadWriter
	// Resize sets the terminal's size; the processes on it get SIGWINCH.
	Resize(size WindowSize) error
	// Wait waits for the session to end and returns the exit status of an
	// ExecTerminal process (128+signal when a signal ended it); an
	// attached terminal ends with the container's init, or when
	// detached, with -1.
	Wait() (int, error)
	// Close ends the session: an ExecTerminal process is hung up on, an
	// attached terminal detached. It does not wait (Wait does).
	Close() error
}
