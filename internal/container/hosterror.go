package container

import (
	"errors"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

// hostError turns a host's refusal into the API's answer: a container
// that is not in a state for the action (it exited or was paused a moment
// ago) is Zun's 409, not a server error.
func hostError(err error, ct Container, action string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runtime.ErrState):
		return invalidState(ct.UUID, action, ct.Status)
	case errors.Is(err, runtime.ErrNotFound):
		return api.Conflict("Container %s is not on its host.", ct.UUID).WithType("container-not-found")
	case errors.Is(err, runtime.ErrInvalid):
		return api.BadRequest("%s", err.Error()).WithType("invalid-value")
	case errors.Is(err, runtime.ErrInUse):
		return api.Conflict("%s", err.Error())
	}
	return err
}
