package runc

import (
	"testing"

	"github.com/monostack/monostack/internal/runtime/runtimetest"
)

func TestConformance(t *testing.T) {
	needHost(t)
	runtimetest.Run(t, func(t *testing.T) runtimetest.Host { return newTestHost(t) })
}
