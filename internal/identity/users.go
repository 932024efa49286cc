package identity

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"

	"golang.org/x/crypto/bcrypt"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// User is a Keystone user. Extra holds the free-form attributes Keystone
// keeps (email, description, ...).
type User struct {
	ID               string
	Name             string
	DomainID         string
	Enabled          bool
	DefaultProjectID string
	Extra            map[string]any
	Options          map[string]any
	passwordHash     string
}

const userCols = `id, name, domain_id, enabled, coalesce(default_project_id, ''), extra, options, password_hash`

// MaxPasswordLength bounds passwords, as Keystone's max_password_length does.
const MaxPasswordLength = 4096

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var extra, opts string
	err := row.Scan(&u.ID, &u.Name, &u.DomainID, &u.Enabled, &u.DefaultProjectID, &extra, &opts, &u.passwordHash)
	if err != nil {
		return u, store.Translate(err)
	}
	json.Unmarshal([]byte(extra), &u.Extra)
	json.Unmarshal([]byte(opts), &u.Options)
	return u, nil
}

// GetUser returns the user with id.
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return u, api.NotFound("Could not find user: %s.", id)
	}
	return u, err
}

// UserByName returns the user called name in domainID.
func (s *Service) UserByName(ctx context.Context, domainID, name string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE domain_id=? AND lower(name)=lower(?)`, domainID, name))
	if errors.Is(err, store.ErrNotFound) {
		return u, api.NotFound("Could not find user: %s.", name)
	}
	return u, err
}

type userFilter struct {
	DomainID, Name, GroupID string
	Enabled                 *bool
}

func (s *Service) listUsers(ctx context.Context, f userFilter) ([]User, error) {
	q := `SELECT ` + userCols + ` FROM users WHERE 1=1`
	var args []any
	if f.DomainID != "" {
		q += ` AND domain_id=?`
		args = append(args, f.DomainID)
	}
	if f.Name != "" {
		q += ` AND name=?`
		args = append(args, f.Name)
	}
	if f.Enabled != nil {
		q += ` AND enabled=?`
		args = append(args, *f.Enabled)
	}
	if f.GroupID != "" {
		q += ` AND id IN (SELECT user_id FROM user_groups WHERE group_id=?)`
		args = append(args, f.GroupID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// preHash turns a password of any length up to MaxPasswordLength into the
// 44 bytes bcrypt sees, so that nothing past bcrypt's 72-byte limit is
// silently ignored.
func preHash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

func (s *Service) hashPassword(password string) (string, error) {
	if len(password) > MaxPasswordLength {
		return "", api.BadRequest("Invalid input for field 'password': it is longer than %d characters.", MaxPasswordLength)
	}
	h, err := bcrypt.GenerateFromPassword(preHash(password), s.cfg.BcryptCost)
	return string(h), err
}

// dummy is a hash of nothing anyone knows, checked for unknown users so that
// they take as long as a wrong password.
func (s *Service) dummy() []byte {
	s.dummyOnce.Do(func() {
		s.dummyHash, _ = bcrypt.GenerateFromPassword(preHash(newID()), s.cfg.BcryptCost)
	})
	return s.dummyHash
}

// checkPassword reports whether password is u's. A nil user is checked
// against the dummy hash and always fails.
func (s *Service) checkPassword(u *User, password string) bool {
	if len(password) > MaxPasswordLength {
		password = password[:MaxPasswordLength]
	}
	if u == nil || u.passwordHash == "" {
		bcrypt.CompareHashAndPassword(s.dummy(), preHash(password))
		return false
	}
	if bcrypt.CompareHashAndPassword([]byte(u.passwordHash), preHash(password)) != nil {
		return false
	}
	// A hash of a lower cost than configured (a generated bootstrap
	// password, or a cost raised since) is made again at the configured cost.
	if cost, err := bcrypt.Cost([]byte(u.passwordHash)); err == nil && cost < s.cfg.BcryptCost {
		go s.rehash(u.ID, u.passwordHash, password)
	}
	return true
}

// rehash replaces the user's hash, if it is still old, by one at the
// configured cost.
func (s *Service) rehash(userID, old, password string) {
	h, err := s.hashPassword(password)
	if err != nil {
		return
	}
	if _, err := s.db.ExecContext(context.Background(), `UPDATE users SET password_hash=? WHERE id=? AND password_hash=?`, h, userID, old); err != nil && s.log != nil {
		s.log.Warn("rehashing a password", "user", userID, "err", err)
	}
}

func userConflict(name string) error {
	return api.Conflict("Conflict occurred attempting to store user - Duplicate entry found with name %s.", name)
}

// CreateUser stores a new user, hashing password when it is not empty.
func (s *Service) CreateUser(ctx context.Context, u User, password string) (User, error) {
	return s.createUserAtCost(ctx, u, password, false)
}

// createUserAtCost is CreateUser; with minCost the password (a random one)
// is hashed at bcrypt's minimum cost, to be rehashed at its first use.
func (s *Service) createUserAtCost(ctx context.Context, u User, password string, minCost bool) (User, error) {
	if u.ID == "" {
		u.ID = newID()
	}
	if u.Extra == nil {
		u.Extra = map[string]any{}
	}
	if u.Options == nil {
		u.Options = map[string]any{}
	}
	if password != "" {
		var h string
		var err error
		if minCost && len(password) <= MaxPasswordLength {
			var b []byte
			b, err = bcrypt.GenerateFromPassword(preHash(password), bcrypt.MinCost)
			h = string(b)
		} else {
			h, err = s.hashPassword(password)
		}
		if err != nil {
			return u, err
		}
		u.passwordHash = h
	}
	extra, _ := json.Marshal(u.Extra)
	opts, _ := json.Marshal(u.Options)
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, name, domain_id, enabled, password_hash, default_project_id, extra, options, created_at)
		VALUES (?,?,?,?,?,?,?,?,?)`, u.ID, u.Name, u.DomainID, u.Enabled, u.passwordHash, nullable(u.DefaultProjectID),
		string(extra), string(opts), timeText(now()))
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return u, userConflict(u.Name)
	}
	return u, store.Translate(err)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// updateUser saves u; a new password (non-empty) is hashed. Disabling the
// user or changing the password revokes the user's tokens; disabling also
// deletes the user's application credentials.
func (s *Service) updateUser(ctx context.Context, u User, password string) error {
	if password != "" {
		h, err := s.hashPassword(password)
		if err != nil {
			return err
		}
		u.passwordHash = h
	}
	extra, _ := json.Marshal(u.Extra)
	opts, _ := json.Marshal(u.Options)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET name=?, enabled=?, password_hash=?, default_project_id=?, extra=?, options=? WHERE id=?`,
			u.Name, u.Enabled, u.passwordHash, nullable(u.DefaultProjectID), string(extra), string(opts), u.ID); err != nil {
			return err
		}
		if u.Enabled {
			return nil
		}
		// As in Keystone, a disabled user's application credentials go:
		// enabling the user again does not bring them back.
		_, err := tx.ExecContext(ctx, `DELETE FROM app_credentials WHERE user_id=?`, u.ID)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return userConflict(u.Name)
	}
	if err != nil {
		return err
	}
	s.changed()
	if !u.Enabled || password != "" {
		return s.revoke(ctx, revocationEvent{UserID: u.ID})
	}
	return nil
}

func (s *Service) deleteUser(ctx context.Context, id string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM assignments WHERE actor_type='user' AND actor_id=?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id=?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("Could not find user: %s.", id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.revoke(ctx, revocationEvent{UserID: id})
}
