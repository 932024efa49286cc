package agent

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// Files injected into a container (Zun's mounts of type bind: the client
// sends a local file's bytes, the container sees them at a path). Each is
// written once under <data dir>/files/<container>/<n> and bind-mounted,
// writable, at its destination; they go when the container is deleted.

// FileMount is one injected file.
type FileMount struct {
	Destination string `json:"destination"`
	Data        []byte `json:"data"`
}

func (a *ComputeAgent) filesDir(id string) string {
	return filepath.Join(filepath.Dir(a.driveDir), "files", id)
}

// writeFiles writes the files a new container gets and returns their bind
// mounts. Files there already (a container made again after a crash) are
// written anew: nothing has used them yet.
func (a *ComputeAgent) writeFiles(id string, files []FileMount) ([]runtime.Mount, error) {
	dir := a.filesDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var out []runtime.Mount
	for i, f := range files {
		if !path.IsAbs(f.Destination) || path.Clean(f.Destination) != f.Destination || f.Destination == "/" {
			return nil, fmt.Errorf("file destination %q: not an absolute path", f.Destination)
		}
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := shim.ReplaceFile(p, f.Data, 0o644); err != nil {
			return nil, err
		}
		out = append(out, runtime.Mount{Source: p, Destination: f.Destination})
	}
	return out, nil
}

// removeFiles removes a deleted container's files.
func (a *ComputeAgent) removeFiles(id string) error {
	return os.RemoveAll(a.filesDir(id))
}
