package runc

import (
	"context"
	"path/filepath"

	"github.com/monostack/monostack/internal/runtime/shim"
)

// Logs returns a container's console as the lines opts choose (streams,
// since, tail, timestamps), from the log and the index its shim keeps.
func (r *Runtime) Logs(ctx context.Context, id string, opts shim.LogOptions) (string, error) {
	if _, err := r.readRecord(id); err != nil {
		return "", err
	}
	parts, err := shim.ReadConsoleParts(filepath.Join(r.containerDir(id), shim.ConsoleFile))
	if err != nil {
		return "", err
	}
	return shim.FormatLogs(parts, opts), nil
}
