// Package identity is Keystone v3: domains, projects, users, groups, roles
// and their assignments, the service catalog, application credentials, and
// the tokens every other service validates.
//
// Tokens are Fernet tokens (see package fernet) carrying only ids and times;
// roles and the catalog are computed when a token is validated, so removing
// a role, disabling a user or revoking a token takes effect at once. The
// result of a validation is cached for a second and the whole cache is
// dropped on any write that could change a token's meaning (the generation
// counter), which is what makes validation cheap for every other service.
package identity
