// Package compute is Nova's v2.1 API under /compute: flavors, keypairs,
// quotas and limits, availability zones, hypervisors and services, server
// groups, instance actions and servers with their actions.
//
// The API records what was asked in the store and answers at once (202);
// a worker goroutine per server then drives the other services through
// small interfaces wired in internal/app:
//
//   - Images looks up the image a caller may boot;
//   - Networks makes, binds and deletes the server's ports (a thin adapter
//     over the network service's CreatePort/GetPort/BindPort/DeletePort);
//   - Placement picks a host and claims the server's resources atomically
//     (*placement.Service implements it);
//   - Hosts is the host side: it is sent idempotent desired-state calls
//     (EnsureServer, DeleteServer, Action) and reports what runs through
//     Service.ReportServers.
//
// The database is the truth of what was asked, the host the truth of what
// is: after a restart, Start resumes every build, delete or action that was
// in flight, so no server stays in BUILD or in a task state.
package compute
