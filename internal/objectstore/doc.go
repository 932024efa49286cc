// Package objectstore is Swift v1, the OpenStack Object Storage API:
// accounts (one per Keystone project, AUTH_<project id>), containers and
// objects, with Swift's listings (plain text, JSON, XML; prefix, delimiter,
// markers, reverse), metadata and its limits, container ACLs, ranges and
// conditional requests, expiring objects, server-side copy, dynamic and
// static large objects, bulk delete, TempURL and /info.
//
// Rows live in the shared store (tables swift_*). The bytes of a small
// object (a Content-Length of up to inlineMax, 64 KiB) live in the database
// too, in swift_blobs, written and deleted in the transaction that writes
// or deletes the row: a small PUT costs no fsync of its own, only its share
// of the group commit (see inline.go). The bytes of any other object live
// in one file, DataDir/objects/<hash prefix>/<sha256 of
// account/container/name>-<version>, so that names of any bytes can never
// reach the file system's namespace. A row's file column says which:
// "db/..." names a blob. For files, the order of every write is what keeps
// the two in step after a kill -9 at any moment:
//
//   - PUT: the bytes go to a temporary file (hashed as they stream), which
//     is renamed into place and fsynced, and its directory fsynced; only
//     then is the row committed (synchronous=FULL), and only then is the
//     client answered. The file the row replaced is removed after the
//     commit. (Until its row commits a file is invisible, so renaming it
//     before its fsync is as safe as after, and cheaper: see install.)
//   - DELETE: the row is removed and committed first, then the file.
//
// A crash can therefore leave only files that no row refers to, and
// temporary files; New removes both, drops any row whose file (or blob) is
// missing or whose file is of the wrong size, deletes any blob no row names
// (none can be left by a crash), and recomputes every container's counters
// from the rows.
//
// Row writes go through one committer goroutine that puts the writes queued
// while the previous commit ran into one transaction (a group commit), so
// concurrent PUTs share an fsync of the database; every writer still waits
// for the commit that holds its row.
//
// Bytes of files stream and are never held whole in memory: bodies through
// a pooled buffer and the page cache; bodies of 1 MiB or more (or of
// unknown length) with O_DIRECT, reading and hashing the next megabyte
// while the last is written, their MD5 computed in SIMD lanes beside other
// uploads'. GETs are sendfile from the file to the socket. A blob (at most
// 64 KiB) is read whole into a pooled buffer on PUT and from the database
// on GET. Listings read only swift_objects, never swift_blobs.
//
// Object names reach the handler as sent only if the server does not clean
// paths first: wrap the serving mux in PreservePaths (see there).
package objectstore
