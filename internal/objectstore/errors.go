package objectstore

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/monostack/monostack/internal/api"
)

// Swift's faults are plain text; the messages are Swift's own.

func swiftError(status int, msg string) *api.Error {
	return &api.Error{Status: status, Message: msg}
}

func errBadRequest(format string, args ...any) error {
	return swiftError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

func errNotFound() error {
	return swiftError(http.StatusNotFound, "The resource could not be found.")
}

func errForbidden() error {
	return swiftError(http.StatusForbidden, "Access was denied to this resource.")
}

func errUnauthorized() error {
	return swiftError(http.StatusUnauthorized,
		"This server could not verify that you are authorized to access the document you requested.")
}

func errConflict() error {
	return swiftError(http.StatusConflict, "There was a conflict when trying to complete your request.")
}

func errPrecondition(msg string) error {
	if msg == "" {
		msg = "A precondition for this request was not met."
	}
	return swiftError(http.StatusPreconditionFailed, msg)
}

func errTooLarge(msg string) error {
	if msg == "" {
		msg = "Your request is too large."
	}
	return swiftError(http.StatusRequestEntityTooLarge, msg)
}

func errUnprocessable() error {
	return swiftError(http.StatusUnprocessableEntity, "Unable to process the contained instructions")
}

func errMethod(method string) error {
	return swiftError(http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
}

func errNotAcceptable() error {
	return swiftError(http.StatusNotAcceptable,
		"The resource is not available in a format acceptable to your browser.")
}

func errRangeNotSatisfiable(size int64) error {
	e := swiftError(http.StatusRequestedRangeNotSatisfiable, "The Range requested is not available.")
	e.Header = http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", size)}, "Accept-Ranges": {"bytes"}}
	return e
}

// errClientDisconnect: the request body ended early or could not be read.
func errClientDisconnect(err error) error {
	return &api.Error{Status: api.StatusClientClosed, Message: "The client was disconnected during request.", Err: err}
}

func errUnavailable() error {
	return swiftError(http.StatusServiceUnavailable,
		"The server is currently unavailable. Please try again at a later time.")
}

func errInsufficientStorage(err error) error {
	return &api.Error{Status: http.StatusInsufficientStorage,
		Message: "There was not enough space to save the resource.", Err: err}
}

// storageError maps a full disk (the file system's or SQLite's) to 507;
// other errors pass through.
func storageError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errInsufficientStorage(err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return errInsufficientStorage(err)
	}
	return err
}
