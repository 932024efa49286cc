// Package blockdev stores a host's volumes and snapshots as sparse files
// and gives them to containers as block devices (loop devices).
//
// A Store keeps its files in one directory it owns. Everything it makes
// on the host carries that ownership: a loop device is the Store's when its
// backing file is in the Store's directory, so two monostack instances on
// one host (tests side by side) never touch each other's devices, and
// Recover after a crash finds exactly what this Store left.
//
// Ids are opaque to the Store ("volume-<uuid>", "snapshot-<uuid>"):
// letters, digits, '_', '.', '-', at most 128, starting with a letter or
// digit.
package blockdev

import (
	"context"
	"errors"
	"io"
	"regexp"
)

// Store is a host's volumes. Every call is idempotent where it can be:
// Create of an id that exists with the same size, Attach of an attached
// volume (same device), Detach of a detached one and Delete of one that is
// gone succeed and change nothing.
type Store interface {
	// Create makes volume id of size bytes, zero-filled, in constant time
	// (sparse). An id that exists with another size is ErrExists.
	Create(ctx context.Context, id string, size int64) error
	// Clone makes volume id a copy of volume src as it is now, grown to
	// size bytes (size 0: src's size; smaller than src: ErrInvalid).
	// Copy-on-write (reflink) where the filesystem allows, otherwise a
	// sparse copy (holes stay holes). A Clone that fails leaves no id.
	Clone(ctx context.Context, id, src string, size int64) error
	// Extend grows volume id to size bytes; an attached volume's device
	// sees the new size at once. Shrinking is ErrInvalid; the same size
	// changes nothing.
	Extend(ctx context.Context, id string, size int64) error
	// Delete detaches and removes volume id.
	Delete(ctx context.Context, id string) error

	// Info reports one volume; List all of this Store's volumes.
	Info(ctx context.Context, id string) (Info, error)
	List(ctx context.Context) ([]Info, error)

	// Attach gives volume id a block device on this host and returns its
	// path ("/dev/loop3"). Attaching an attached volume returns its
	// device. readOnly makes the device read-only (only when it is first
	// attached).
	Attach(ctx context.Context, id string, readOnly bool) (string, error)
	// Detach removes the volume's block device. It does not wait for
	// users of the device to close it (the kernel frees it when they do).
	Detach(ctx context.Context, id string) error

	// Open opens the volume's bytes to read, or to write in place when
	// write is true (backups, restores, images written onto a volume).
	Open(ctx context.Context, id string, write bool) (File, error)

	// Recover is called once at start: it removes what an interrupted
	// Create, Clone or Delete left (temporary files) and reports every
	// attached volume of this Store. Devices whose backing file was
	// deleted are detached.
	Recover(ctx context.Context) ([]Info, error)
	// Purge detaches every device of this Store and removes its files
	// (monostack purge, tests).
	Purge(ctx context.Context) error
}

// File is an open volume.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Reader
	io.Writer
	io.Seeker
	io.Closer
	// Sync flushes written bytes to disk.
	Sync() error
}

// Info is one volume as it is.
type Info struct {
	ID string `json:"id"`
	// Size in bytes.
	Size int64 `json:"size"`
	// Allocated is the bytes the file really uses on disk (sparse).
	Allocated int64 `json:"allocated"`
	// Device is the block device of an attached volume, "" otherwise.
	Device   string `json:"device,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Errors, for errors.Is. Implementations wrap them with detail.
var (
	ErrNotFound = errors.New("volume not found")
	ErrExists   = errors.New("volume exists with another size")
	ErrInvalid  = errors.New("invalid")
	// ErrNoSpace: the filesystem under the Store has no room for it.
	ErrNoSpace = errors.New("no space left")
)

// The length is checked apart: {0,127} would compile to 127 copies.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ValidID reports whether id can name a volume.
func ValidID(id string) bool { return len(id) <= 128 && idPattern.MatchString(id) }
