package compute

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Keypair is a user's SSH public key.
type Keypair struct {
	ID                     int64
	UserID, Name, Type     string
	PublicKey, Fingerprint string
	PrivateKey             string // only when generated, never stored
	CreatedAt              string
}

// fingerprint is the MD5 of the key blob in colon hex, as Nova shows it.
func fingerprint(pub ssh.PublicKey) string {
	sum := md5.Sum(pub.Marshal())
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}

func parsePublicKey(s string) (ssh.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return nil, api.BadRequest("Keypair data is invalid: failed to generate fingerprint")
	}
	return pub, nil
}

func generateKey() (pub, priv string, err error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	sp, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		return "", "", err
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " Generated-by-Nova", string(privPEM), nil
}

const keypairCols = `id, user_id, name, type, public_key, fingerprint, created_at`

func scanKeypair(row interface{ Scan(...any) error }) (Keypair, error) {
	var k Keypair
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Type, &k.PublicKey, &k.Fingerprint, &k.CreatedAt)
	return k, store.Translate(err)
}

func (s *Service) getKeypair(ctx context.Context, user, name string) (Keypair, error) {
	k, err := scanKeypair(s.db.QueryRowContext(ctx, `SELECT `+keypairCols+` FROM compute_keypairs WHERE user_id=? AND name=?`, user, name))
	if api.IsNotFound(err) {
		return k, api.NotFound("Keypair %s not found for user %s", name, user)
	}
	return k, err
}

var keypairNameRe = regexp.MustCompile(`^[a-zA-Z0-9 _\-\.@]+$`)

func keypairView(v api.Version, k Keypair, full bool) map[string]any {
	m := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if v.AtLeast(2, 2) {
		m["type"] = k.Type
	}
	if full {
		m["user_id"] = k.UserID
	}
	return m
}

// keypairUser is whose keypairs a request means: the caller, or with
// ?user_id (2.10+, admin) another user.
func keypairUser(r *http.Request, v api.Version) (string, error) {
	c := api.CredentialsFrom(r.Context())
	if u := r.URL.Query().Get("user_id"); u != "" && v.AtLeast(2, 10) && u != c.UserID {
		if !isAdmin(c) {
			return "", api.Forbidden("Policy doesn't allow os_compute_api:os-keypairs:index to be performed.")
		}
		return u, nil
	}
	return c.UserID, nil
}

func (s *Service) handleListKeypairs(w http.ResponseWriter, r *http.Request, v api.Version) error {
	user, err := keypairUser(r, v)
	if err != nil {
		return err
	}
	page := api.Page{}
	if v.AtLeast(2, 35) {
		if page, err = api.ParsePage(r, 0, 1000); err != nil {
			return err
		}
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT `+keypairCols+` FROM compute_keypairs WHERE user_id=? ORDER BY name`, user)
	if err != nil {
		return err
	}
	var all []Keypair
	for rows.Next() {
		k, err := scanKeypair(rows)
		if err != nil {
			rows.Close()
			return err
		}
		all = append(all, k)
	}
	rows.Close()
	if all, err = pageOf(all, page, func(k Keypair) string { return k.Name }, "keypair"); err != nil {
		return err
	}
	out := []any{}
	for _, k := range all {
		out = append(out, map[string]any{"keypair": keypairView(v, k, false)})
	}
	resp := map[string]any{"keypairs": out}
	if len(all) > 0 {
		if l := api.NextLink(r, page, len(all), all[len(all)-1].Name); l != nil {
			resp["keypairs_links"] = []any{l}
		}
	}
	api.WriteJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Service) handleShowKeypair(w http.ResponseWriter, r *http.Request, v api.Version) error {
	user, err := keypairUser(r, v)
	if err != nil {
		return err
	}
	k, err := s.getKeypair(r.Context(), user, r.PathValue("name"))
	if err != nil {
		return err
	}
	m := keypairView(v, k, true)
	m["id"], m["created_at"] = k.ID, parseTime(k.CreatedAt).Format("2006-01-02T15:04:05.000000")
	m["deleted"], m["deleted_at"], m["updated_at"] = false, nil, nil
	api.WriteJSON(w, http.StatusOK, map[string]any{"keypair": m})
	return nil
}

func (s *Service) handleCreateKeypair(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b struct {
		Keypair *struct {
			Name      string  `json:"name"`
			PublicKey *string `json:"public_key"`
			Type      string  `json:"type"`
			UserID    string  `json:"user_id"`
		} `json:"keypair"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	kb := b.Keypair
	if kb == nil {
		return api.BadRequest("Invalid input for field/attribute keypair. Value: None. 'keypair' is a required property")
	}
	if !keypairNameRe.MatchString(kb.Name) || !within255(kb.Name) || (!v.AtLeast(2, 92) && strings.Contains(kb.Name, "@")) {
		return api.BadRequest("Keypair data is invalid: Keypair name contains unsafe characters")
	}
	c := api.CredentialsFrom(r.Context())
	k := Keypair{Name: kb.Name, UserID: c.UserID, Type: "ssh", CreatedAt: nowText()}
	if kb.UserID != "" && v.AtLeast(2, 10) && kb.UserID != c.UserID {
		if !isAdmin(c) {
			return api.Forbidden("Policy doesn't allow os_compute_api:os-keypairs:create to be performed.")
		}
		k.UserID = kb.UserID
	}
	if kb.Type != "" {
		if !v.AtLeast(2, 2) || (kb.Type != "ssh" && kb.Type != "x509") {
			return api.BadRequest("Invalid input for field/attribute type. Value: %s. '%s' is not one of ['ssh', 'x509']", kb.Type, kb.Type)
		}
		if kb.Type == "x509" {
			return api.BadRequest("Keypair data is invalid: x509 keypairs are not supported by this cloud")
		}
		k.Type = kb.Type
	}
	status := http.StatusOK
	if v.AtLeast(2, 2) {
		status = http.StatusCreated
	}
	if kb.PublicKey == nil {
		if v.AtLeast(2, 92) {
			return api.BadRequest("Invalid input for field/attribute keypair. 'public_key' is a required property")
		}
		pub, priv, err := generateKey()
		if err != nil {
			return err
		}
		k.PublicKey, k.PrivateKey = pub, priv
	} else {
		k.PublicKey = strings.TrimSpace(*kb.PublicKey)
	}
	pub, err := parsePublicKey(k.PublicKey)
	if err != nil {
		return err
	}
	k.Fingerprint = fingerprint(pub)
	ctx := r.Context()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		limit, err := s.quotaLimit(ctx, tx, c.ProjectID, "key_pairs")
		if err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_keypairs WHERE user_id=?`, k.UserID).Scan(&n); err != nil {
			return err
		}
		if limit >= 0 && n+1 > limit {
			return api.Forbidden("Quota exceeded, too many key pairs.")
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_keypairs WHERE user_id=? AND name=?`, k.UserID, k.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return api.Conflict("Key pair '%s' already exists.", k.Name)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO compute_keypairs(user_id, name, type, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			k.UserID, k.Name, k.Type, k.PublicKey, k.Fingerprint, k.CreatedAt)
		return err
	})
	if err != nil {
		return err
	}
	m := keypairView(v, k, true)
	if k.PrivateKey != "" {
		m["private_key"] = k.PrivateKey
	}
	api.WriteJSON(w, status, map[string]any{"keypair": m})
	return nil
}

func (s *Service) handleDeleteKeypair(w http.ResponseWriter, r *http.Request, v api.Version) error {
	user, err := keypairUser(r, v)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM compute_keypairs WHERE user_id=? AND name=?`, user, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Keypair %s not found for user %s", name, user)
	}
	if v.AtLeast(2, 2) {
		w.WriteHeader(http.StatusNoContent)
	} else {
		w.WriteHeader(http.StatusAccepted)
	}
	return nil
}
