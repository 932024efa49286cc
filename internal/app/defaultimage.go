package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/monostack/monostack/internal/defaultimage"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/image"
)

// ensureDefaultImage gives an empty Image service the default busybox image,
// public and owned by the admin project, as DevStack uploads cirros. A host
// without busybox-static gets a warning and no image.
func ensureDefaultImage(ctx context.Context, ident *identity.Service, img *image.Service, log *slog.Logger) error {
	n, err := img.Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	admin, err := ident.ProjectByName(ctx, "default", "admin")
	if err != nil {
		return err
	}
	name := defaultimage.Name
	im, err := img.Create(ctx, image.NewImage{
		Name: &name, Visibility: image.Public, Owner: admin.ID, DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{"os_distro": "busybox", "description": "monostack's default image: busybox with a cloud-init-like init"},
	})
	if err != nil {
		return fmt.Errorf("default image: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(defaultimage.Write(pw, defaultimage.Busybox)) }()
	if _, err := img.Upload(ctx, im.ID, pr, -1); err != nil {
		pr.CloseWithError(err)
		if derr := img.Delete(ctx, im.ID); derr != nil {
			log.Warn("removing the unfinished default image", "err", derr)
		}
		if errors.Is(err, defaultimage.ErrNoBusybox) {
			log.Warn("no default image: " + err.Error())
			return nil
		}
		return fmt.Errorf("default image: %w", err)
	}
	log.Info("uploaded the default image", "name", name, "id", im.ID)
	return nil
}
