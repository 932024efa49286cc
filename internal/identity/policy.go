package identity

import "github.com/monostack/monostack/internal/api"

// Keystone's personas (reader ⊂ member ⊂ admin) at its three scopes:
//
//   - a cloud admin (admin on the system, or on the admin project, as
//     DevStack's admin is) administers everything; a cloud reader reads it;
//   - a domain admin administers the users, groups, projects and
//     assignments of its domain; a domain reader reads them;
//   - anyone may read themselves, their own projects and the domain their
//     token is in.
//
// Route rules (api.Rule) make the coarse check; the handlers below make the
// checks that need the target's domain.

func isCloudAdmin(c *api.Credentials) bool  { return c.CloudAdmin() }
func isCloudReader(c *api.Credentials) bool { return c.CloudReader() }

// domainAdmin: the caller administers domain d.
func domainAdmin(c *api.Credentials, d string) bool {
	return c.CloudAdmin() || (c.DomainID == d && c.HasRole("admin"))
}

// domainReader: the caller may read what is in domain d.
func domainReader(c *api.Credentials, d string) bool {
	return c.CloudReader() || (c.DomainID == d && c.HasRole("reader"))
}

// adminOrDomainAdmin is the route rule for write APIs a domain admin may use.
func adminOrDomainAdmin(c *api.Credentials) bool {
	return c.CloudAdmin() || (c.DomainID != "" && c.HasRole("admin"))
}

// readerOrDomainReader is the route rule for list APIs a domain reader may use.
func readerOrDomainReader(c *api.Credentials) bool {
	return c.CloudReader() || (c.DomainID != "" && c.HasRole("reader"))
}

// listDomainFilter narrows a list to what the caller may read: everything
// for a cloud reader, its own domain for a domain reader.
func listDomainFilter(c *api.Credentials) string {
	if c.CloudReader() {
		return ""
	}
	return c.DomainID
}

func forbidden() error {
	return api.Forbidden("You are not authorized to perform the requested action.")
}
