// Package api is the HTTP plumbing every OpenStack service of monostack
// shares: handlers that return errors and one place that turns those errors
// into the service's own fault body, request ids, JSON decoding with limits
// and clear 400s, token authentication and policy checks, paging links and
// microversion negotiation.
//
// A service builds a Router with its fault format and registers routes on it;
// every route names the policy rule it needs, so no handler runs unchecked.
package api
