// Package imagefs turns image bytes into a root filesystem and a root
// filesystem back into bytes: Unpack applies a root filesystem tarball, or
// the layers of a `docker save` archive or an OCI image layout in order
// (whiteouts and opaque directories included), into a directory and reads
// the image's config; WriteTar writes a directory tree as a tarball (a
// container's snapshot); Users looks users and groups up in a root
// filesystem's /etc/passwd and /etc/group.
//
// Unpacking is done as if chrooted into the target: every path is resolved
// with openat2(RESOLVE_IN_ROOT), so an absolute or ../ symlink in an image
// points inside it, never at the host. Entries are created relative to
// their parent directory's descriptor without following a final symlink.
// Device nodes in images are skipped (the runtime makes /dev); ownership,
// modes (setuid included), times, hard links, FIFOs and the xattrs
// user.* and security.capability are kept.
//
// Layers and whole files may be plain, gzip or zstd compressed; OCI blobs
// (blobs/sha256/<hex>) are checked against their digest.
package imagefs
