package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/monostack/monostack/internal/runtime/shim"
)

// A server booted from a volume has the volume's loop device as its root
// (runtime.Spec.RootDevice). A host restart takes loop devices away, and
// the runtime finds a root device again by its backing file only once the
// volume is attached again: so the agent keeps, for each such server, the
// volume it boots from (<data dir>/rootvolumes/<server>), and attaches it
// before every start.

func (a *ComputeAgent) rootVolumeFile(id string) string {
	return filepath.Join(filepath.Dir(a.driveDir), "rootvolumes", id)
}

// attachRoot attaches server id's root volume, recording it first, and
// returns its device.
func (a *ComputeAgent) attachRoot(ctx context.Context, id string, v VolumeDevice) (string, error) {
	if a.blocks == nil {
		return "", errors.New("this host has no block store")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(a.rootVolumeFile(id)), 0o700); err != nil {
		return "", err
	}
	if err := shim.WriteFileAtomic(a.rootVolumeFile(id), b, 0o600); err != nil {
		return "", err
	}
	dev, err := a.blocks.Attach(ctx, v.Block, v.ReadOnly)
	if err != nil {
		return "", fmt.Errorf("root volume %s: %w", v.Block, err)
	}
	return dev, nil
}

// reattachRoot attaches the root volume of server id, if it has one, so
// that it can start (idempotent: an attached volume keeps its device).
func (a *ComputeAgent) reattachRoot(ctx context.Context, id string) error {
	b, err := os.ReadFile(a.rootVolumeFile(id))
	if errors.Is(err, os.ErrNotExist) || (err == nil && a.blocks == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	var v VolumeDevice
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("root volume of %s: %w", id, err)
	}
	if _, err := a.blocks.Attach(ctx, v.Block, v.ReadOnly); err != nil {
		return fmt.Errorf("root volume %s: %w", v.Block, err)
	}
	return nil
}

// forgetRoot drops the record of a deleted server's root volume (its
// device is detached when compute releases its volumes).
func (a *ComputeAgent) forgetRoot(id string) error {
	if err := os.Remove(a.rootVolumeFile(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
