package identity

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/fernet"
)

// tokenInfo is a token that passed validation, with everything its body and
// the caller's credentials need resolved.
type tokenInfo struct {
	p             *payload
	user          User
	userDomain    Domain
	project       *Project
	projectDomain *Domain
	domain        *Domain
	roles         []Role
	appCred       *AppCredential
	creds         *api.Credentials

	bodyOnce            sync.Once
	body, bodyNoCatalog []byte
	bodyErr             error
}

// errTokenNotFound is what validation answers for a token that is bad in any
// way: malformed, unknown key, expired, revoked, or whose user or scope is
// gone or disabled.
func errTokenNotFound() error { return api.NotFound("Could not find token.") }

// issue encrypts p into a token string and resolves it.
func (s *Service) issue(ctx context.Context, p *payload) (string, *tokenInfo, error) {
	info, err := s.resolve(ctx, p)
	if err != nil {
		return "", nil, err
	}
	tok, err := fernet.Encrypt(s.keys.Primary(), p.marshal(), p.IssuedAt)
	if err != nil {
		return "", nil, err
	}
	info.creds.Token = tok
	return tok, info, nil
}

// validate checks a token string and resolves it. allowExpired accepts a
// token up to AllowExpiredWindow past its expiry (?allow_expired=true).
func (s *Service) validate(ctx context.Context, tok string, allowExpired bool) (*tokenInfo, error) {
	if !allowExpired {
		if info := s.cache.get(tok, s.gen.Load()); info != nil {
			return info, nil
		}
	}
	if len(tok) > 1024 {
		return nil, errTokenNotFound()
	}
	raw, _, err := fernet.Decrypt(s.keys.Keys(), tok)
	if err != nil {
		return nil, errTokenNotFound()
	}
	p, err := unmarshalPayload(raw)
	if err != nil {
		return nil, errTokenNotFound()
	}
	t := now()
	if t.After(p.ExpiresAt) && !(allowExpired && t.Before(p.ExpiresAt.Add(s.cfg.AllowExpiredWindow))) {
		return nil, errTokenNotFound()
	}
	gen := s.gen.Load()
	info, err := s.resolve(ctx, p)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status < 500 {
			return nil, errTokenNotFound()
		}
		return nil, err
	}
	if s.revoked(p, info.userDomain.ID, info.creds.ProjectDomainID) {
		return nil, errTokenNotFound()
	}
	info.creds.Token = tok
	if !allowExpired {
		s.cache.put(tok, gen, info, p.ExpiresAt)
	}
	return info, nil
}

// Authenticate is the api.Authenticator every service's routes use.
func (s *Service) Authenticate(ctx context.Context, tok string) (*api.Credentials, error) {
	info, err := s.validate(ctx, tok, false)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, api.Unauthorized("The request you have made requires authentication.")
		}
		return nil, err
	}
	return info.creds, nil
}

// resolve looks up what a payload names and checks it still holds: the user
// and its domain are enabled, the scope exists and is enabled, and the user
// has roles on it. Failures are 401s.
func (s *Service) resolve(ctx context.Context, p *payload) (*tokenInfo, error) {
	// What a payload names (user, scope, roles) is the same for every token
	// of that user and scope: remembered like validations, for a second or
	// until the next write.
	key := scopeKey{user: p.UserID, project: p.ProjectID, domain: p.DomainID, system: p.System, appCred: p.AppCredID}
	gen := s.gen.Load()
	if base := s.scopes.get(key, gen); base != nil {
		return base.withPayload(p), nil
	}
	info, err := s.resolveUncached(ctx, p)
	if err == nil {
		s.scopes.put(key, gen, info)
	}
	return info, err
}

// withPayload is a copy of a resolved token for another payload of the
// same user and scope.
func (t *tokenInfo) withPayload(p *payload) *tokenInfo {
	c := *t.creds
	c.Token, c.AuditIDs, c.Methods, c.ExpiresAt, c.IssuedAt = "", p.AuditIDs, p.Methods, p.ExpiresAt, p.IssuedAt
	return &tokenInfo{p: p, user: t.user, userDomain: t.userDomain, project: t.project, projectDomain: t.projectDomain,
		domain: t.domain, roles: t.roles, appCred: t.appCred, creds: &c}
}

type scopeKey struct {
	user, project, domain, appCred string
	system                         bool
}

// scopeCache remembers resolved scopes, as tokenCache does validations.
type scopeCache struct {
	mu    sync.RWMutex
	m     map[scopeKey]scopeEntry
	swept time.Time
}

type scopeEntry struct {
	gen   uint64
	until time.Time
	info  *tokenInfo
}

func (c *scopeCache) get(k scopeKey, gen uint64) *tokenInfo {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || e.gen != gen || time.Now().After(e.until) {
		return nil
	}
	return e.info
}

func (c *scopeCache) put(k scopeKey, gen uint64, info *tokenInfo) {
	now := time.Now()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 16384 {
		c.m = map[scopeKey]scopeEntry{}
	}
	// Expired entries go at most once per TTL, so that an idle cloud does
	// not keep the scopes of a busy hour; a map that lost most of its
	// entries is made anew (a Go map does not shrink).
	if now.Sub(c.swept) > cacheTTL {
		c.swept = now
		before := len(c.m)
		for key, e := range c.m {
			if now.After(e.until) {
				delete(c.m, key)
			}
		}
		if before > 64 && len(c.m) < before/2 {
			c.m = maps.Clone(c.m)
		}
	}
	c.m[k] = scopeEntry{gen: gen, until: now.Add(cacheTTL), info: info.withPayload(info.p)}
	c.mu.Unlock()
}

func (s *Service) resolveUncached(ctx context.Context, p *payload) (*tokenInfo, error) {
	unauth := func(format string, args ...any) error { return api.Unauthorized(format, args...) }
	info := &tokenInfo{p: p}
	var err error
	if info.user, err = s.GetUser(ctx, p.UserID); err != nil {
		return nil, unauth("Could not find user: %s.", p.UserID)
	}
	if !info.user.Enabled {
		return nil, unauth("User %s is disabled.", p.UserID)
	}
	if info.userDomain, err = s.GetDomain(ctx, info.user.DomainID); err != nil || !info.userDomain.Enabled {
		return nil, unauth("The domain of user %s is disabled.", p.UserID)
	}
	c := &api.Credentials{
		UserID: info.user.ID, UserName: info.user.Name,
		UserDomainID: info.userDomain.ID, UserDomainName: info.userDomain.Name,
		AuditIDs: p.AuditIDs, Methods: p.Methods, ExpiresAt: p.ExpiresAt, IssuedAt: p.IssuedAt,
		AppCredID: p.AppCredID,
	}
	var roleIDs []string
	switch {
	case p.ProjectID != "":
		proj, err := s.GetProject(ctx, p.ProjectID)
		if err != nil || !proj.Enabled {
			return nil, unauth("Project %s is not available.", p.ProjectID)
		}
		pd, err := s.GetDomain(ctx, proj.DomainID)
		if err != nil || !pd.Enabled {
			return nil, unauth("The domain of project %s is disabled.", p.ProjectID)
		}
		info.project, info.projectDomain = &proj, &pd
		c.ProjectID, c.ProjectName, c.ProjectDomainID, c.ProjectDomainName = proj.ID, proj.Name, pd.ID, pd.Name
		c.IsAdminProject = proj.Name == s.cfg.AdminProjectName && pd.ID == "default"
		roleIDs, err = s.effectiveRoleIDs(ctx, p.UserID, "project", p.ProjectID)
		if err != nil {
			return nil, err
		}
	case p.DomainID != "":
		d, err := s.GetDomain(ctx, p.DomainID)
		if err != nil || !d.Enabled {
			return nil, unauth("Domain %s is not available.", p.DomainID)
		}
		info.domain = &d
		c.DomainID, c.DomainName = d.ID, d.Name
		if roleIDs, err = s.effectiveRoleIDs(ctx, p.UserID, "domain", p.DomainID); err != nil {
			return nil, err
		}
	case p.System:
		c.System = true
		if roleIDs, err = s.effectiveRoleIDs(ctx, p.UserID, "system", "all"); err != nil {
			return nil, err
		}
	}
	if p.AppCredID != "" {
		ac, err := s.getAppCredential(ctx, p.AppCredID)
		if err != nil || ac.UserID != p.UserID {
			return nil, unauth("Could not find application credential: %s.", p.AppCredID)
		}
		if ac.ExpiresAt != nil && now().After(*ac.ExpiresAt) {
			return nil, unauth("Application credential %s has expired.", p.AppCredID)
		}
		info.appCred = &ac
		// Only the roles the credential was made with, and only while the
		// user still has them.
		roleIDs = slices.DeleteFunc(roleIDs, func(id string) bool { return !slices.Contains(ac.RoleIDs, id) })
	}
	scoped := p.ProjectID != "" || p.DomainID != "" || p.System
	if len(roleIDs) > 0 {
		all, err := s.rolesByID(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range roleIDs {
			// As in Keystone, a domain-specific role only implies global
			// ones and is not in tokens: policy goes by role name, and a
			// domain's own "admin" is not the admin role.
			if r, ok := all[id]; ok && r.DomainID == "" {
				info.roles = append(info.roles, r)
				c.Roles = append(c.Roles, r.Name)
				c.RoleIDs = append(c.RoleIDs, r.ID)
			}
		}
	}
	if scoped && len(info.roles) == 0 {
		return nil, unauth("User %s has no access to the requested scope.", p.UserID)
	}
	info.creds = c
	return info, nil
}

// tokenCache remembers validated tokens for a second, or until the next
// write that could change their meaning, whichever comes first. Expired
// entries are dropped by a sweep made at most once a TTL, from get or put, so
// that the cache holds about the tokens seen in the last two TTLs rather than
// growing to max and staying there (a cached validation holds ~6 KB).
type tokenCache struct {
	mu        sync.RWMutex
	m         map[string]cacheEntry
	max       int
	nextSweep time.Time
}

type cacheEntry struct {
	gen   uint64
	until time.Time
	info  *tokenInfo
}

// cacheTTL bounds how stale a cached validation can be even without a local
// write (a write made by another server of a scaled-out cloud).
const cacheTTL = time.Second

func newTokenCache(max int) *tokenCache { return &tokenCache{m: map[string]cacheEntry{}, max: max} }

func (c *tokenCache) get(tok string, gen uint64) *tokenInfo {
	t := time.Now()
	c.mu.RLock()
	e, ok := c.m[tok]
	sweep := t.After(c.nextSweep) && len(c.m) > 0
	c.mu.RUnlock()
	if sweep {
		c.mu.Lock()
		c.sweepLocked(t)
		c.mu.Unlock()
	}
	if !ok || e.gen != gen || t.After(e.until) {
		return nil
	}
	return e.info
}

func (c *tokenCache) put(tok string, gen uint64, info *tokenInfo, expires time.Time) {
	t := time.Now()
	until := t.Add(cacheTTL)
	if expires.Before(until) {
		until = expires
	}
	c.mu.Lock()
	c.sweepLocked(t)
	if len(c.m) >= c.max {
		clear(c.m) // crude, but a full cache is rare and refills in a second
	}
	c.m[tok] = cacheEntry{gen: gen, until: until, info: info}
	c.mu.Unlock()
}

// sweepLocked drops expired entries, at most once a TTL (or when the cache
// is full). A map emptied by more than half is rebuilt, since deleting does
// not give a map's memory back.
func (c *tokenCache) sweepLocked(t time.Time) {
	if t.Before(c.nextSweep) && len(c.m) < c.max {
		return
	}
	c.nextSweep = t.Add(cacheTTL)
	n := len(c.m)
	for k, e := range c.m {
		if t.After(e.until) {
			delete(c.m, k)
		}
	}
	if len(c.m) < n/2 {
		m := make(map[string]cacheEntry, len(c.m))
		for k, e := range c.m {
			m[k] = e
		}
		c.m = m
	}
}
