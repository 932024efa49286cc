package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/monostack/monostack/internal/store"
)

// Error is an error with the HTTP status and client-safe message it maps to.
// Type is the machine-readable fault type some services carry (Neutron's
// "NeutronError.type", e.g. "IpAddressAlreadyAllocated"); it may be empty.
type Error struct {
	Status  int
	Type    string
	Message string
	Err     error // the cause, for logs; never shown to clients
	Header  http.Header
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an Error with a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, format, args...)
}
func NotFound(format string, args ...any) *Error { return Errorf(http.StatusNotFound, format, args...) }
func Conflict(format string, args ...any) *Error { return Errorf(http.StatusConflict, format, args...) }
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, format, args...)
}
func Unauthorized(format string, args ...any) *Error {
	return Errorf(http.StatusUnauthorized, format, args...)
}

// WithType sets the machine-readable fault type and returns e.
func (e *Error) WithType(t string) *Error { e.Type = t; return e }

// AsError maps any error to an *Error: API errors pass through, store error
// classes become 404/409, anything else is a 500 whose cause is only logged.
func AsError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Message: "The resource could not be found.", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Message: "Conflict occurred attempting to store the resource: it already exists.", Err: err}
	case errors.Is(err, store.ErrReferenced):
		return &Error{Status: http.StatusConflict, Message: "The resource is in use or refers to a missing resource.", Err: err}
	case errors.Is(err, errBodyTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: "Request body is too large.", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Message: "An unexpected error prevented the server from fulfilling your request.", Err: err}
}

// IsNotFound reports whether err maps to a 404: a 404 *Error or a missing
// row (store.ErrNotFound).
func IsNotFound(err error) bool { return err != nil && AsError(err).Status == http.StatusNotFound }
