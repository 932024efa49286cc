// Package image is Glance v2: image records, their bytes, sharing with
// other projects, and the interoperable import flow.
//
// Bytes live in files under the data directory: an upload is streamed to a
// temporary file (hashed with MD5 and SHA-512 on the way, never held in
// memory), fsynced, checked against its container format and renamed into
// images/<id> before the record turns active, so a record that says active
// always has its bytes and a cut upload leaves the image queued with
// nothing behind. At start, states that only exist while a request runs
// (saving, importing) are rolled back and unreferenced files removed.
//
// Container formats compute can boot are inspected when data arrives and
// the result kept with the image (Format): a root filesystem tarball
// (bare), a `docker save` tarball or an OCI image layout (docker). Compute
// reads the bytes with Open.
//
// Visibility follows Glance: public and community images are readable by
// all (community ones are listed only on request), shared ones by their
// members, private ones by their owner; a project that may not see an image
// gets a 404, never a 403.
package image
