package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Project is a Keystone project: the owner of every other service's
// resources. ParentID is empty for a project at the top of its domain.
type Project struct {
	ID          string
	Name        string
	DomainID    string
	ParentID    string
	Description string
	Enabled     bool
	Tags        []string
	Extra       map[string]any
}

const projectCols = `id, name, domain_id, coalesce(parent_id, ''), description, enabled, extra`

func scanProject(row interface{ Scan(...any) error }) (Project, error) {
	var p Project
	var extra string
	err := row.Scan(&p.ID, &p.Name, &p.DomainID, &p.ParentID, &p.Description, &p.Enabled, &extra)
	if err != nil {
		return p, store.Translate(err)
	}
	json.Unmarshal([]byte(extra), &p.Extra)
	p.Tags = []string{}
	return p, nil
}

// GetProject returns the project with id, with its tags.
func (s *Service) GetProject(ctx context.Context, id string) (Project, error) {
	p, err := scanProject(s.db.QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return p, api.NotFound("Could not find project: %s.", id)
	}
	if err != nil {
		return p, err
	}
	p.Tags, err = s.projectTags(ctx, s.db, id)
	return p, err
}

// ProjectByName returns the project called name in domainID.
func (s *Service) ProjectByName(ctx context.Context, domainID, name string) (Project, error) {
	p, err := scanProject(s.db.QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE domain_id=? AND lower(name)=lower(?)`, domainID, name))
	if errors.Is(err, store.ErrNotFound) {
		return p, api.NotFound("Could not find project: %s.", name)
	}
	if err != nil {
		return p, err
	}
	p.Tags, err = s.projectTags(ctx, s.db, p.ID)
	return p, err
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func (s *Service) projectTags(ctx context.Context, db queryer, id string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT tag FROM project_tags WHERE project_id=? ORDER BY tag`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tags := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, rows.Err()
}

type projectFilter struct {
	DomainID, Name, ParentID string
	Enabled                  *bool
	IDs                      []string // when non-nil, only these
	Tags, TagsAny            []string
	NotTags, NotTagsAny      []string
}

func (s *Service) listProjects(ctx context.Context, f projectFilter) ([]Project, error) {
	q := `SELECT ` + projectCols + ` FROM projects WHERE 1=1`
	var args []any
	if f.DomainID != "" {
		q += ` AND domain_id=?`
		args = append(args, f.DomainID)
	}
	if f.Name != "" {
		q += ` AND name=?`
		args = append(args, f.Name)
	}
	if f.ParentID != "" {
		q += ` AND (parent_id=? OR (parent_id IS NULL AND domain_id=?))`
		args = append(args, f.ParentID, f.ParentID)
	}
	if f.Enabled != nil {
		q += ` AND enabled=?`
		args = append(args, *f.Enabled)
	}
	if f.IDs != nil {
		if len(f.IDs) == 0 {
			return []Project{}, nil
		}
		q += ` AND id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(f.IDs)), ",") + `)`
		for _, id := range f.IDs {
			args = append(args, id)
		}
	}
	for _, t := range f.Tags {
		q += ` AND EXISTS (SELECT 1 FROM project_tags WHERE project_id=projects.id AND tag=?)`
		args = append(args, t)
	}
	if len(f.TagsAny) > 0 {
		q += ` AND EXISTS (SELECT 1 FROM project_tags WHERE project_id=projects.id AND tag IN (` +
			strings.TrimSuffix(strings.Repeat("?,", len(f.TagsAny)), ",") + `))`
		for _, t := range f.TagsAny {
			args = append(args, t)
		}
	}
	if len(f.NotTags) > 0 {
		q += ` AND (SELECT count(*) FROM project_tags WHERE project_id=projects.id AND tag IN (` +
			strings.TrimSuffix(strings.Repeat("?,", len(f.NotTags)), ",") + `)) < ?`
		for _, t := range f.NotTags {
			args = append(args, t)
		}
		args = append(args, len(f.NotTags))
	}
	for _, t := range f.NotTagsAny {
		q += ` AND NOT EXISTS (SELECT 1 FROM project_tags WHERE project_id=projects.id AND tag=?)`
		args = append(args, t)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	out := []Project{}
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Tags, err = s.projectTags(ctx, s.db, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func validTags(tags []string) error {
	if len(tags) > 80 {
		return api.BadRequest("Invalid input for field 'tags': at most 80 tags are allowed.")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if t == "" || len(t) > 255 || strings.ContainsAny(t, "/,") {
			return api.BadRequest("Invalid input for field 'tags': %q must be 1 to 255 characters without '/' or ','.", t)
		}
		if seen[t] {
			return api.BadRequest("Invalid input for field 'tags': %q appears twice.", t)
		}
		seen[t] = true
	}
	return nil
}

func (s *Service) writeTags(ctx context.Context, tx *sql.Tx, id string, tags []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM project_tags WHERE project_id=?`, id); err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO project_tags (project_id, tag) VALUES (?,?)`, id, t); err != nil {
			return err
		}
	}
	return nil
}

func projectConflict(name string) error {
	return api.Conflict("Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : %s.", name)
}

// CreateProject stores a new project and its tags.
func (s *Service) CreateProject(ctx context.Context, p Project) (Project, error) {
	if p.ID == "" {
		p.ID = newID()
	}
	if p.Extra == nil {
		p.Extra = map[string]any{}
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	extra, _ := json.Marshal(p.Extra)
	var parent any
	if p.ParentID != "" && p.ParentID != p.DomainID {
		parent = p.ParentID
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, extra, created_at)
			VALUES (?,?,?,?,?,?,?,?)`, p.ID, p.Name, p.DomainID, parent, p.Description, p.Enabled, string(extra), timeText(now())); err != nil {
			return err
		}
		return s.writeTags(ctx, tx, p.ID, p.Tags)
	})
	if errors.Is(err, store.ErrConflict) {
		return p, projectConflict(p.Name)
	}
	return p, err
}

func (s *Service) updateProject(ctx context.Context, p Project, tags bool) error {
	extra, _ := json.Marshal(p.Extra)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET name=?, description=?, enabled=?, extra=? WHERE id=?`,
			p.Name, p.Description, p.Enabled, string(extra), p.ID); err != nil {
			return err
		}
		if tags {
			return s.writeTags(ctx, tx, p.ID, p.Tags)
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return projectConflict(p.Name)
	}
	if err == nil && !p.Enabled {
		err = s.revoke(ctx, revocationEvent{ProjectID: p.ID})
	}
	s.changed()
	return err
}

func (s *Service) deleteProject(ctx context.Context, id string) error {
	var children int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM projects WHERE parent_id=?`, id).Scan(&children); err != nil {
		return err
	}
	if children > 0 {
		return api.Forbidden("Cannot delete the project %s since it is not a leaf in the hierarchy. Delete its children first.", id)
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM assignments WHERE target_type='project' AND target_id=?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET default_project_id=NULL WHERE default_project_id=?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM app_credentials WHERE project_id=?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE id=?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("Could not find project: %s.", id)
		}
		return nil
	})
	if err == nil {
		err = s.revoke(ctx, revocationEvent{ProjectID: id})
	}
	return err
}

// maxProjectDepth is how deep a project tree may grow, a top-level project
// being at depth 1 (Keystone's max_project_tree_depth).
const maxProjectDepth = 5

// enabledCount returns how many of the projects ids are enabled.
func (s *Service) enabledCount(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	enabled := true
	ps, err := s.listProjects(ctx, projectFilter{IDs: ids, Enabled: &enabled})
	return len(ps), err
}

// checkNewChild refuses a new project under parentID when the tree would
// grow too deep or the branch has a disabled project.
func (s *Service) checkNewChild(ctx context.Context, parentID string) error {
	anc, err := s.ancestors(ctx, parentID)
	if err != nil {
		return err
	}
	if len(anc)+2 > maxProjectDepth {
		return api.Forbidden("Max hierarchy depth reached for %s branch.", parentID)
	}
	branch := append(anc, parentID)
	if n, err := s.enabledCount(ctx, branch); err != nil || n != len(branch) {
		if err == nil {
			err = api.BadRequest("Cannot create a project in a branch containing a disabled project.")
		}
		return err
	}
	return nil
}

// checkEnabledChange refuses to enable a project under a disabled parent, or
// to disable one whose subtree has enabled projects.
func (s *Service) checkEnabledChange(ctx context.Context, p Project) error {
	if p.Enabled {
		anc, err := s.ancestors(ctx, p.ID)
		if err != nil {
			return err
		}
		if n, err := s.enabledCount(ctx, anc); err != nil || n != len(anc) {
			if err == nil {
				err = api.Forbidden("Cannot enable project %s since it has disabled parents.", p.ID)
			}
			return err
		}
		return nil
	}
	sub, err := s.subtree(ctx, p.ID)
	if err != nil {
		return err
	}
	if n, err := s.enabledCount(ctx, sub); err != nil || n > 0 {
		if err == nil {
			err = api.Forbidden("Cannot disable project %s since its subtree contains enabled projects.", p.ID)
		}
		return err
	}
	return nil
}

// ancestors returns the ids of p's parents, nearest first.
func (s *Service) ancestors(ctx context.Context, id string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `WITH RECURSIVE a(id, parent_id, depth) AS (
		SELECT id, parent_id, 0 FROM projects WHERE id=?
		UNION ALL SELECT p.id, p.parent_id, a.depth+1 FROM projects p JOIN a ON p.id=a.parent_id WHERE a.depth < 64)
		SELECT id FROM a WHERE depth > 0 ORDER BY depth`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// subtree returns the ids of p's descendants.
func (s *Service) subtree(ctx context.Context, id string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `WITH RECURSIVE d(id, depth) AS (
		SELECT id, 0 FROM projects WHERE id=?
		UNION ALL SELECT p.id, d.depth+1 FROM projects p JOIN d ON p.parent_id=d.id WHERE d.depth < 64)
		SELECT id FROM d WHERE depth > 0`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
