package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/runtime"
	"github.com/monostack/monostack/internal/runtime/imagefs"
	"github.com/monostack/monostack/internal/runtime/shim"
)

// imageRecord is images/<id>/image.json: what was unpacked.
type imageRecord struct {
	Kind       string              `json:"kind"`
	Config     runtime.ImageConfig `json:"config"`
	UnpackedAt time.Time           `json:"unpacked_at"`
}

// EnsureImage unpacks image id into images/<id>/rootfs unless it is there.
// It unpacks into a temporary directory renamed into place at the end, so
// that an image is either whole or absent, even after a crash.
func (r *Runtime) EnsureImage(ctx context.Context, id string, format runtime.ImageFormat, open func() (io.ReadCloser, error)) (runtime.ImageConfig, error) {
	if !runtime.ValidID(id) {
		return runtime.ImageConfig{}, fmt.Errorf("%w: image id %q", runtime.ErrInvalid, id)
	}
	switch format.Kind {
	case runtime.KindRootfsTar, runtime.KindDockerArchive, runtime.KindOCILayout:
	default:
		return runtime.ImageConfig{}, fmt.Errorf("%w: image %s is %q", runtime.ErrUnsupportedImage, id, format.Kind)
	}
	defer r.lock("image/" + id)()
	if rec, err := r.readImage(id); err == nil {
		return rec.Config, nil
	} else if !errors.Is(err, runtime.ErrImageNotFound) {
		return runtime.ImageConfig{}, err
	}
	tmp, err := os.MkdirTemp(r.imagesDir(), ".tmp-"+id+"-")
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	rc, err := open()
	if err != nil {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: %w", id, err)
	}
	cfg, err := imagefs.Unpack(ctx, tmp, format, rc)
	rc.Close()
	if err != nil {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: %w", id, err)
	}
	b, err := json.Marshal(imageRecord{Kind: format.Kind, Config: cfg, UnpackedAt: time.Now().UTC()})
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	if err := shim.WriteFileAtomic(filepath.Join(tmp, "image.json"), b, 0o644); err != nil {
		return runtime.ImageConfig{}, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return runtime.ImageConfig{}, err
	}
	if err := os.Rename(tmp, r.imageDir(id)); err != nil {
		return runtime.ImageConfig{}, err
	}
	ok = true
	r.log.Info("image unpacked", "image", id, "kind", format.Kind)
	return cfg, nil
}

func (r *Runtime) readImage(id string) (imageRecord, error) {
	var rec imageRecord
	b, err := os.ReadFile(filepath.Join(r.imageDir(id), "image.json"))
	if errors.Is(err, os.ErrNotExist) {
		return rec, fmt.Errorf("%w: %s", runtime.ErrImageNotFound, id)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("image %s: %w", id, err)
	}
	return rec, nil
}

// RemoveImage removes an unpacked image no container uses.
func (r *Runtime) RemoveImage(ctx context.Context, id string) error {
	if !runtime.ValidID(id) {
		return fmt.Errorf("%w: image id %q", runtime.ErrInvalid, id)
	}
	defer r.lock("image/" + id)()
	if !fileExists(r.imageDir(id)) {
		return nil
	}
	ids, err := r.containerIDs()
	if err != nil {
		return err
	}
	for _, cid := range ids {
		rec, err := r.readRecord(cid)
		if err == nil && rec.Spec.Image == id {
			return fmt.Errorf("%w: image %s is used by container %s", runtime.ErrInUse, id, cid)
		}
	}
	trash, err := os.MkdirTemp(r.imagesDir(), ".trash-"+id+"-")
	if err != nil {
		return err
	}
	if err := os.Rename(r.imageDir(id), filepath.Join(trash, "image")); err != nil {
		os.Remove(trash)
		return err
	}
	return os.RemoveAll(trash)
}

// Images lists the unpacked images.
func (r *Runtime) Images(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(r.imagesDir())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && fileExists(filepath.Join(r.imagesDir(), e.Name(), "image.json")) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}
