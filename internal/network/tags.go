package network

import (
	"context"
	"database/sql"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Standard attributes: every resource but a security-group rule carries
// tags, a revision number bumped by each change, and its timestamps.

const (
	maxTags   = 50
	maxTagLen = 255
)

// tagged are the resources with tags: URL collection → table.
var tagged = map[string]string{
	"networks": "networks", "subnets": "subnets", "ports": "ports", "routers": "routers",
	"floatingips": "floatingips", "security-groups": "security_groups",
}

type scanner interface{ Scan(dest ...any) error }

// loadTags returns the tags of every resource of one kind, by id.
func loadTags(ctx context.Context, q queryer, table string, ids ...string) (map[string][]string, error) {
	query := `SELECT resource_id, tag FROM tags WHERE resource=?`
	args := []any{table}
	if len(ids) > 0 && len(ids) < 500 {
		query += ` AND resource_id IN (` + placeholders(len(ids)) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY tag`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id, tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return nil, err
		}
		out[id] = append(out[id], tag)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func setTags(ctx context.Context, tx *sql.Tx, table, id string, tags []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource=? AND resource_id=?`, table, id); err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (resource, resource_id, tag) VALUES (?,?,?) ON CONFLICT DO NOTHING`, table, id, t); err != nil {
			return err
		}
	}
	return nil
}

func deleteTags(ctx context.Context, tx *sql.Tx, table, id string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource=? AND resource_id=?`, table, id)
	return err
}

// bump records a change of a resource: its revision number and updated_at.
func bump(ctx context.Context, q queryer, table, id string) error {
	res, err := q.ExecContext(ctx, `UPDATE `+table+` SET revision_number=revision_number+1, updated_at=? WHERE id=?`, timeText(now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func validTag(t string) error {
	if t == "" || utf8.RuneCountInString(t) > maxTagLen {
		return invalidInput("'%s' exceeds maximum length of %d", t, maxTagLen)
	}
	return nil
}

// tagOwner finds the tagged resource and checks the caller may see it
// (else 404) and, for writes, change it (else 403).
func (s *Service) tagOwner(ctx context.Context, c caller, collection, id string, write bool) (string, error) {
	table := tagged[collection]
	notFound := httpNotFound()
	var visible, owner bool
	switch table {
	case "networks":
		n, err := s.getNetwork(ctx, s.db, id)
		if err != nil {
			return "", err
		}
		visible, owner = c.seesNetwork(n), c.owns(n.ProjectID)
	case "subnets":
		sn, net, err := s.getSubnetWithNetwork(ctx, s.db, id)
		if err != nil {
			return "", err
		}
		visible, owner = c.seesSubnet(sn, net), c.owns(sn.ProjectID) || c.owns(net.ProjectID)
	case "ports":
		p, err := s.getPort(ctx, s.db, id)
		if err != nil {
			return "", err
		}
		netOwner, _ := s.networkOwner(ctx, s.db, p.NetworkID)
		visible = c.seesPort(p, netOwner)
		owner = visible
	case "routers":
		rt, err := s.getRouter(ctx, s.db, id)
		if err != nil {
			return "", err
		}
		visible, owner = c.owns(rt.ProjectID), c.owns(rt.ProjectID)
	case "floatingips":
		f, err := s.getFloatingIP(ctx, s.db, id)
		if err != nil {
			return "", err
		}
		visible, owner = c.owns(f.ProjectID), c.owns(f.ProjectID)
	case "security_groups":
		g, err := s.getSG(ctx, s.db, id)
		if err != nil {
			return "", err
		}
		visible, owner = c.owns(g.ProjectID), c.owns(g.ProjectID)
	default:
		return "", notFound
	}
	if !visible {
		return "", notFound
	}
	if write && !owner {
		return "", policyDenied("update_" + strings.TrimSuffix(table, "s") + ":tags")
	}
	return table, nil
}

// handleTags serves /v2.0/{collection}/{id}/tags[/{tag}].
func (s *Service) handleTags(collection string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, tag := r.PathValue("id"), r.PathValue("tag")
		write := r.Method != http.MethodGet
		var c caller
		var err error
		if write {
			c, err = writerOf(r, "update_"+collection+":tags")
		} else {
			c, err = callerOf(r, "get_"+collection+":tags")
		}
		if err != nil {
			return err
		}
		ctx := r.Context()
		table, err := s.tagOwner(ctx, c, collection, id, write)
		if err != nil {
			return err
		}
		current, err := loadTags(ctx, s.db, table, id)
		if err != nil {
			return err
		}
		tags := current[id]
		if tags == nil {
			tags = []string{}
		}
		writeTags := func(next []string) error {
			slices.Sort(next)
			next = slices.Compact(next)
			if len(next) > maxTags {
				return badResource(strings.ReplaceAll(collection, "-", "_"), "The number of tags exceed the per-resource limit of %d", maxTags)
			}
			return s.write(ctx, func(tx *sql.Tx) error {
				if err := setTags(ctx, tx, table, id, next); err != nil {
					return err
				}
				return bump(ctx, tx, table, id)
			})
		}
		switch {
		case r.Method == http.MethodGet && tag == "":
			api.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
		case r.Method == http.MethodGet:
			if err := validTag(tag); err != nil {
				return err
			}
			if !slices.Contains(tags, tag) {
				return tagNotFound(tag)
			}
			w.WriteHeader(http.StatusNoContent)
		case (r.Method == http.MethodPut || r.Method == http.MethodPost) && tag == "":
			var body struct {
				Tags *[]string `json:"tags"`
			}
			b, err := api.ReadBody(r, api.MaxBody)
			if err != nil {
				return err
			}
			if err := api.Unmarshal(b, &body); err != nil || body.Tags == nil {
				return invalidInput("Invalid tags body")
			}
			seen := map[string]bool{}
			for _, t := range *body.Tags {
				if err := validTag(t); err != nil {
					return err
				}
				if seen[t] {
					return invalidInput("Duplicate items in the list: '%s'", t)
				}
				seen[t] = true
			}
			next := *body.Tags
			if r.Method == http.MethodPost {
				next = append(slices.Clone(tags), next...)
			}
			if err := writeTags(next); err != nil {
				return err
			}
			out := slices.Clone(next)
			slices.Sort(out)
			out = slices.Compact(out)
			status := http.StatusOK
			if r.Method == http.MethodPost {
				status = http.StatusCreated
			}
			api.WriteJSON(w, status, map[string]any{"tags": out})
		case r.Method == http.MethodPut:
			if err := validTag(tag); err != nil {
				return err
			}
			if !slices.Contains(tags, tag) {
				if err := writeTags(append(tags, tag)); err != nil {
					return err
				}
			}
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodDelete && tag == "":
			if err := writeTags(nil); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
		default: // DELETE one tag
			if err := validTag(tag); err != nil {
				return err
			}
			i := slices.Index(tags, tag)
			if i < 0 {
				return tagNotFound(tag)
			}
			if err := writeTags(slices.Delete(slices.Clone(tags), i, i+1)); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
		}
		return nil
	}
}
