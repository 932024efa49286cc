package api

import (
	"context"
	"slices"
	"time"
)

// Credentials are what a validated token says about its caller: who, in
// which scope, with which effective roles. Every service's policy decisions
// are made from these.
type Credentials struct {
	Token string

	UserID, UserName             string
	UserDomainID, UserDomainName string

	// Exactly one scope is set, or none for an unscoped token.
	ProjectID, ProjectName             string
	ProjectDomainID, ProjectDomainName string
	DomainID, DomainName               string
	System                             bool

	Roles   []string // effective role names, implied roles included
	RoleIDs []string

	// IsAdminProject: the project scope is the cloud's admin project, whose
	// admins administer the whole cloud (Keystone's admin_project_name).
	IsAdminProject bool
	AppCredID      string
	AuditIDs       []string
	Methods        []string
	ExpiresAt      time.Time
	IssuedAt       time.Time
}

// HasRole reports whether the credentials carry the named role.
func (c *Credentials) HasRole(name string) bool { return slices.Contains(c.Roles, name) }

// CloudAdmin: an admin who administers everything — system scope or the
// admin project.
func (c *Credentials) CloudAdmin() bool {
	return c.HasRole("admin") && (c.System || c.IsAdminProject)
}

// CloudReader: may read everything (system or admin-project reader).
func (c *Credentials) CloudReader() bool {
	return c.HasRole("reader") && (c.System || c.IsAdminProject)
}

// Authenticator validates a token. It returns a 401 *Error for a token that
// is malformed, expired, revoked or no longer backed by an enabled user and
// scope.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Credentials, error)
}

type credKey struct{}

// WithCredentials returns ctx carrying c.
func WithCredentials(ctx context.Context, c *Credentials) context.Context {
	return context.WithValue(ctx, credKey{}, c)
}

// CredentialsFrom returns the caller's credentials; nil on public routes.
func CredentialsFrom(ctx context.Context) *Credentials {
	c, _ := ctx.Value(credKey{}).(*Credentials)
	return c
}

// Rule is a policy check on the caller, made before a handler runs. Checks
// that need the target resource are made in the handler.
type Rule func(c *Credentials) bool

// Common rules.
var (
	// Authenticated: any valid token.
	Authenticated Rule = func(c *Credentials) bool { return true }
	// Scoped: a token with a project, domain or system scope.
	Scoped Rule = func(c *Credentials) bool { return c.ProjectID != "" || c.DomainID != "" || c.System }
	// AdminOnly: a cloud admin.
	AdminOnly Rule = (*Credentials).CloudAdmin
)
