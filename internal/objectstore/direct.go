package objectstore

import (
	"context"
	"errors"
	"io"
	"os"
)

// The in-process object API other services use (volume backups): plain
// objects in the account of a project, stored as durably as a PUT is,
// counted in the account like any other object, visible through the
// Swift API. Policy is the caller's business: these calls act for the
// cloud itself.

func accountOf(project string) string { return "AUTH_" + project }

// PutObject stores an object in the project's container, making the
// container if it does not exist.
func (s *Service) PutObject(ctx context.Context, project, container, name string, r io.Reader) error {
	account := accountOf(project)
	if _, err := s.putContainer(ctx, account, container, func(meta) error { return nil }); err != nil {
		return err
	}
	c, err := s.lookupContainer(ctx, account, container)
	if err != nil {
		return err
	}
	if c == nil {
		return errNotFound() // deleted meanwhile
	}
	_, err = s.storeObject(ctx, c, name, objectData{body: r, length: -1, contentType: "application/octet-stream", meta: meta{}, size: -1})
	return err
}

// GetObject opens a plain object's bytes (a file, or a small object's
// bytes read from the database).
func (s *Service) GetObject(ctx context.Context, project, container, name string) (io.ReadCloser, error) {
	c, err := s.lookupContainer(ctx, accountOf(project), container)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errNotFound()
	}
	// The object can be replaced between reading its row and opening its
	// bytes: the row is then read again.
	for attempt := 0; ; attempt++ {
		o, err := s.getObject(ctx, nil, c.ID, name)
		if err != nil {
			return nil, err
		}
		r, err := s.openBytes(ctx, o.File)
		if errors.Is(err, os.ErrNotExist) && attempt < 3 {
			continue
		}
		return r, err
	}
}

// DeleteObject deletes an object; a missing one is not an error.
func (s *Service) DeleteObject(ctx context.Context, project, container, name string) error {
	c, err := s.lookupContainer(ctx, accountOf(project), container)
	if err != nil || c == nil {
		return err
	}
	_, err = s.deleteObject(ctx, c.ID, name)
	if isStatus(err, 404) {
		return nil
	}
	return err
}
