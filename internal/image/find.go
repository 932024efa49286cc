package image

import (
	"context"

	"github.com/monostack/monostack/internal/api"
)

// Find returns the image a caller names by id or by name, as the
// containers API lets users name images: an id it may see, else the one
// image of that name it may see (the newest of several active ones, as
// Zun's Glance driver picks). None is a 404.
func (s *Service) Find(ctx context.Context, c *api.Credentials, ref string) (Image, error) {
	im, err := s.Lookup(ctx, c, ref)
	if err == nil || !api.IsNotFound(err) {
		return im, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM images WHERE name=? ORDER BY status='active' DESC, created_at DESC`, ref)
	if err != nil {
		return Image{}, err
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if im, err := s.Lookup(ctx, c, id); err == nil {
			return im, nil
		}
	}
	return Image{}, api.NotFound("Image %s could not be found.", ref)
}

// Visible returns the active images a caller may see, newest first (the
// images the containers API offers).
func (s *Service) Visible(ctx context.Context, c *api.Credentials) ([]Image, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM images WHERE status='active' ORDER BY created_at DESC`)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	var out []Image
	for _, id := range ids {
		if im, err := s.Lookup(ctx, c, id); err == nil {
			out = append(out, im)
		}
	}
	return out, nil
}
