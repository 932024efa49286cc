package container

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

// TestHostError: the host's refusals map to Zun's answers; other
// failures stay what they are.
func TestHostError(t *testing.T) {
	ct := Container{UUID: "u1", Status: stRunning}
	for _, tc := range []struct {
		err    error
		status int
		typ    string
	}{
		{fmt.Errorf("pause: %w", runtime.ErrState), http.StatusConflict, "invalid-state-exception"},
		{fmt.Errorf("gone: %w", runtime.ErrNotFound), http.StatusConflict, "container-not-found"},
		{fmt.Errorf("bad: %w", runtime.ErrInvalid), http.StatusBadRequest, "invalid-value"},
	} {
		e := api.AsError(hostError(tc.err, ct, "exec"))
		if e.Status != tc.status || e.Type != tc.typ {
			t.Errorf("%v: %d %s, want %d %s", tc.err, e.Status, e.Type, tc.status, tc.typ)
		}
	}
	plain := errors.New("disk on fire")
	if got := hostError(plain, ct, "exec"); got != plain {
		t.Errorf("a plain error became %v", got)
	}
	if hostError(nil, ct, "exec") != nil {
		t.Error("nil became an error")
	}
}
