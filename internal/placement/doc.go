// Package placement is the Placement service (api-ref placement, 1.0–1.39)
// under /placement: resource providers (one per compute host), their
// inventories, traits and aggregates, allocations per consumer (a server),
// usages and allocation candidates, in the {"errors": [...]} fault format.
//
// Besides the API, the scheduler uses its Go API: EnsureProvider when a host
// registers, Claim to pick a host and record a server's allocations in one
// SQLite transaction (so concurrent creates never overcommit a host), and
// Release when the server goes.
package placement
