package image

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Image statuses, as Glance names them.
const (
	StatusQueued      = "queued"
	StatusSaving      = "saving"
	StatusActive      = "active"
	StatusUploading   = "uploading" // data staged for import
	StatusImporting   = "importing"
	StatusDeactivated = "deactivated"
)

// Visibilities.
const (
	Public    = "public"
	Community = "community"
	Shared    = "shared"
	Private   = "private"
)

// Image is a Glance image record. Fields Glance shows as null when unset
// are pointers (Name, Size, VirtualSize) or, where an empty string cannot be
// set through the API, empty strings (Owner, DiskFormat, ...).
type Image struct {
	ID              string
	Name            *string
	Status          string
	Visibility      string
	Owner           string // project id; "" when made by a system-scoped admin
	DiskFormat      string
	ContainerFormat string
	Size            *int64
	VirtualSize     *int64
	Checksum        string // MD5 of the data, hex
	OSHashAlgo      string // the hashing algorithm (sha512 by default) once there is data
	OSHashValue     string
	MinDisk         int64 // GiB
	MinRAM          int64 // MiB
	Protected       bool
	Hidden          bool // os_hidden
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Tags            []string
	Properties      map[string]string // the custom (string) properties
	// Format is what the stored bytes were found to be, for active images.
	Format Format

	stagedChecksum, stagedHash, stagedHashAlgo string
}

// HasData reports whether the image has bytes that can be read.
func (im Image) HasData() bool {
	return im.Status == StatusActive || im.Status == StatusDeactivated
}

const imageCols = `id, name, status, visibility, coalesce(owner, ''), coalesce(disk_format, ''),
	coalesce(container_format, ''), size, virtual_size, coalesce(checksum, ''), coalesce(os_hash_algo, ''),
	coalesce(os_hash_value, ''), min_disk, min_ram, protected, os_hidden, created_at, updated_at, format,
	coalesce(staged_checksum, ''), coalesce(staged_hash, ''), coalesce(staged_hash_algo, 'sha512')`

func scanImage(row interface{ Scan(...any) error }) (Image, error) {
	var im Image
	var name sql.NullString
	var size, vsize sql.NullInt64
	var created, updated, format string
	err := row.Scan(&im.ID, &name, &im.Status, &im.Visibility, &im.Owner, &im.DiskFormat, &im.ContainerFormat,
		&size, &vsize, &im.Checksum, &im.OSHashAlgo, &im.OSHashValue, &im.MinDisk, &im.MinRAM, &im.Protected,
		&im.Hidden, &created, &updated, &format, &im.stagedChecksum, &im.stagedHash, &im.stagedHashAlgo)
	if err != nil {
		return im, store.Translate(err)
	}
	if name.Valid {
		im.Name = &name.String
	}
	if size.Valid {
		im.Size = &size.Int64
	}
	if vsize.Valid {
		im.VirtualSize = &vsize.Int64
	}
	im.CreatedAt, im.UpdatedAt = parseTime(created), parseTime(updated)
	json.Unmarshal([]byte(format), &im.Format)
	im.Tags = []string{}
	im.Properties = map[string]string{}
	return im, nil
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// errImageNotFound is a 404 that is also store.ErrNotFound, for callers
// inside monostack.
func errImageNotFound(id string) error {
	return &api.Error{Status: http.StatusNotFound, Message: "No image found with ID " + id, Err: store.ErrNotFound}
}

// Get returns the image with id, whoever owns it. It is for trusted callers
// inside monostack; API callers go through lookup, which applies visibility.
func (s *Service) Get(ctx context.Context, id string) (Image, error) {
	return s.get(ctx, s.db, id)
}

func (s *Service) get(ctx context.Context, q queryer, id string) (Image, error) {
	im, err := scanImage(q.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return im, errImageNotFound(id)
	}
	if err != nil {
		return im, err
	}
	ims := []Image{im}
	if err := s.fill(ctx, q, ims); err != nil {
		return im, err
	}
	return ims[0], nil
}

// fill loads the properties and tags of ims.
func (s *Service) fill(ctx context.Context, q queryer, ims []Image) error {
	if len(ims) == 0 {
		return nil
	}
	idx := make(map[string]int, len(ims))
	ids := make([]any, len(ims))
	for i, im := range ims {
		idx[im.ID] = i
		ids[i] = im.ID
	}
	in := `(` + placeholders(len(ids)) + `)`
	rows, err := q.QueryContext(ctx, `SELECT image_id, name, value FROM image_properties WHERE image_id IN `+in, ids...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			rows.Close()
			return err
		}
		ims[idx[id]].Properties[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT image_id, tag FROM image_tags WHERE image_id IN `+in+` ORDER BY tag`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, t string
		if err := rows.Scan(&id, &t); err != nil {
			return err
		}
		ims[idx[id]].Tags = append(ims[idx[id]].Tags, t)
	}
	return rows.Err()
}

// caller is who makes an API request, as Glance's policy sees it.
type caller struct {
	project string
	// admin is Glance's is_admin: sees and may change every image.
	admin bool
	// readAll: sees every image (admins, the service role, system readers).
	readAll bool
}

func callerOf(c *api.Credentials) caller {
	return caller{
		project: c.ProjectID,
		admin:   c.CloudAdmin(),
		readAll: c.CloudAdmin() || c.HasRole("service") || (c.System && c.HasRole("reader")),
	}
}

func (c caller) owns(im Image) bool { return c.project != "" && im.Owner == c.project }

// canModify: the owner (a member of the owning project) or an admin.
func (c caller) canModify(im Image) bool { return c.admin || c.owns(im) }

// visible reports whether c may see im: its owner, anyone for public and
// community images, members (of any status) for shared ones.
func (s *Service) visible(ctx context.Context, c caller, im Image) (bool, error) {
	switch {
	case c.readAll || c.owns(im) || im.Visibility == Public || im.Visibility == Community:
		return true, nil
	case im.Visibility != Shared || c.project == "":
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM image_members WHERE image_id=? AND member=?`, im.ID, c.project).Scan(&n)
	return n > 0, err
}

// lookup returns the image if c may see it, and a 404 otherwise (a project
// never learns that another's private image exists).
func (s *Service) lookup(ctx context.Context, c caller, id string) (Image, error) {
	im, err := s.get(ctx, s.db, id)
	if err != nil {
		return im, err
	}
	ok, err := s.visible(ctx, c, im)
	if err != nil {
		return im, err
	}
	if !ok {
		return im, errImageNotFound(id)
	}
	return im, nil
}

// Lookup returns the image if the caller may see it, and a 404 *api.Error
// otherwise: what compute checks before booting an image for a user.
func (s *Service) Lookup(ctx context.Context, c *api.Credentials, id string) (Image, error) {
	return s.lookup(ctx, callerOf(c), id)
}

// Count returns how many images there are, whoever owns them (monostack
// makes its default image when there are none).
func (s *Service) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM images`).Scan(&n)
	return n, err
}

// lookupToModify is lookup plus the owner-or-admin check.
func (s *Service) lookupToModify(ctx context.Context, c caller, id, action string) (Image, error) {
	im, err := s.lookup(ctx, c, id)
	if err != nil {
		return im, err
	}
	if !c.canModify(im) {
		return im, api.Forbidden("You are not authorized to %s image %s.", action, id)
	}
	return im, nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullName(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func formatJSON(f Format) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// NewImage is what a new image starts with; the zero value is a queued,
// shared, unnamed image owned by nobody.
type NewImage struct {
	ID              string // a UUID; generated when empty
	Name            *string
	Visibility      string // "" means shared
	Owner           string
	DiskFormat      string
	ContainerFormat string
	MinDisk, MinRAM int64
	Protected       bool
	Hidden          bool
	Tags            []string
	Properties      map[string]string
}

// Create stores a new queued image. It enforces the owner's image-count
// quota but neither policy nor value checks (formats, visibility): those
// are the API handler's, and trusted callers pass valid values.
func (s *Service) Create(ctx context.Context, n NewImage) (Image, error) {
	if n.ID == "" {
		n.ID = uuid.NewString()
	}
	if n.Visibility == "" {
		n.Visibility = Shared
	}
	if len(n.Properties) > maxProperties {
		return Image{}, api.Errorf(413, "Maximum number of image properties (%d) exceeded.", maxProperties)
	}
	tags := dedupe(n.Tags)
	if len(tags) > maxTags {
		return Image{}, api.Errorf(413, "Maximum number of image tags (%d) exceeded.", maxTags)
	}
	t := timeText(now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if q := s.cfg.ImageCountQuota; q > 0 && n.Owner != "" {
			var count int64
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM images WHERE owner=?`, n.Owner).Scan(&count); err != nil {
				return err
			}
			if count+1 > q {
				return api.Errorf(413, "Image count quota exceeded: project %s may own at most %d images.", n.Owner, q)
			}
		}
		var gone int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM deleted_images WHERE id=?`, n.ID).Scan(&gone); err != nil {
			return err
		}
		if gone > 0 {
			return api.Conflict("Image with identifier %s already exists!", n.ID)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO images (id, name, status, visibility, owner, disk_format, container_format,
			min_disk, min_ram, protected, os_hidden, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			n.ID, nullName(n.Name), StatusQueued, n.Visibility, nullStr(n.Owner), nullStr(n.DiskFormat),
			nullStr(n.ContainerFormat), n.MinDisk, n.MinRAM, n.Protected, n.Hidden, t, t)
		if errors.Is(store.Translate(err), store.ErrConflict) {
			return api.Conflict("Image with identifier %s already exists!", n.ID)
		}
		if err != nil {
			return err
		}
		return writeExtras(ctx, tx, n.ID, n.Properties, tags)
	})
	if err != nil {
		return Image{}, err
	}
	return s.Get(ctx, n.ID)
}

func writeExtras(ctx context.Context, tx *sql.Tx, id string, props map[string]string, tags []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM image_properties WHERE image_id=?`, id); err != nil {
		return err
	}
	for k, v := range props {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_properties (image_id, name, value) VALUES (?,?,?)`, id, k, v); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM image_tags WHERE image_id=?`, id); err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_tags (image_id, tag) VALUES (?,?)`, id, t); err != nil {
			return err
		}
	}
	return nil
}

func dedupe(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// save writes the mutable fields, properties and tags of im, provided its
// status is still the one it was read with (a concurrent upload or delete
// makes it a 409).
func (s *Service) save(ctx context.Context, im Image) (Image, error) {
	if len(im.Properties) > maxProperties {
		return im, api.Errorf(413, "Maximum number of image properties (%d) exceeded.", maxProperties)
	}
	if len(im.Tags) > maxTags {
		return im, api.Errorf(413, "Maximum number of image tags (%d) exceeded.", maxTags)
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE images SET name=?, visibility=?, owner=?, disk_format=?, container_format=?,
			min_disk=?, min_ram=?, protected=?, os_hidden=?, updated_at=? WHERE id=? AND status=?`,
			nullName(im.Name), im.Visibility, nullStr(im.Owner), nullStr(im.DiskFormat), nullStr(im.ContainerFormat),
			im.MinDisk, im.MinRAM, im.Protected, im.Hidden, timeText(now()), im.ID, im.Status)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.Conflict("Image %s changed while it was being updated; retry the request.", im.ID)
		}
		return writeExtras(ctx, tx, im.ID, im.Properties, im.Tags)
	})
	if err != nil {
		return im, err
	}
	return s.Get(ctx, im.ID)
}

// touch bumps updated_at.
func touch(ctx context.Context, tx *sql.Tx, id string) error {
	_, err := tx.ExecContext(ctx, `UPDATE images SET updated_at=? WHERE id=?`, timeText(now()), id)
	return err
}

// Delete removes an image, its members, tags and bytes. Protected images
// are refused (403); otherwise any status may be deleted, as in Glance: an
// upload in flight then fails and removes what it wrote.
func (s *Service) Delete(ctx context.Context, id string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		im, err := s.get(ctx, tx, id)
		if err != nil {
			return err
		}
		if im.Protected {
			return api.Forbidden("Image %s is protected and cannot be deleted.", id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM images WHERE id=?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deleted_images (id, deleted_at) VALUES (?,?)`, id, timeText(now()))
		return err
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range []string{s.imagesDir, s.stagingDir} {
		if err := os.Remove(filepath.Join(dir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		} else if err == nil {
			errs = append(errs, syncDir(dir))
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The record is gone; stray bytes are swept at the next start.
		s.log.Error("removing image data", "image", id, "err", err)
	}
	return nil
}

// setStatus moves an image between two statuses (deactivate, reactivate).
func (s *Service) setStatus(ctx context.Context, id, from, to string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE images SET status=?, updated_at=? WHERE id=? AND status=?`,
		to, timeText(now()), id, from)
	if err != nil {
		return store.Translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Conflict("Image %s changed status while it was being updated; retry the request.", id)
	}
	return nil
}

// usage is what a project has: images owned and bytes stored (active and
// staged data).
type usage struct {
	count, bytes, staged, uploading int64
}

func (s *Service) usage(ctx context.Context, q queryer, owner, except string) (usage, error) {
	var u usage
	err := q.QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(CASE WHEN status IN ('active','deactivated','uploading','importing') AND id<>? THEN size END), 0),
		coalesce(sum(CASE WHEN status IN ('uploading','importing') THEN size END), 0),
		coalesce(sum(CASE WHEN status IN ('saving','uploading','importing') THEN 1 END), 0)
		FROM images WHERE owner=?`, except, owner).Scan(&u.count, &u.bytes, &u.staged, &u.uploading)
	return u, err
}

// room is how many bytes the image's owner may still store, with the
// image's own current bytes not counted.
func (s *Service) room(ctx context.Context, q queryer, im Image) (int64, error) {
	limit := s.cfg.MaxImageSize
	if s.cfg.StorageQuota <= 0 || im.Owner == "" {
		return limit, nil
	}
	u, err := s.usage(ctx, q, im.Owner, im.ID)
	if err != nil {
		return 0, err
	}
	return max(0, min(limit, s.cfg.StorageQuota-u.bytes)), nil
}

func quotaExceeded(im Image, room int64) error {
	return api.Errorf(413, "The image data of %s does not fit: at most %d more bytes may be stored for project %s "+
		"(image size cap or storage quota).", im.ID, room, im.Owner)
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil && strings.Count(s, "-") == 4
}
