// Package loopfile is the real blockdev.Store: a volume is a sparse file
// <dir>/<id>.img, attached to a container as a loop device.
//
// Files are made whole or not at all: Create and Clone write a temporary
// file .tmp-<id>.<random> in the same directory, fsync it, link it to its
// name (link fails if the name exists, so nothing is ever replaced),
// remove the temporary name and fsync the directory. A crash leaves at
// most a temporary file, which Recover removes; the id exists only once
// its file is complete and durable.
//
// Loop devices are driven with ioctls (LOOP_CTL_GET_FREE, LOOP_CONFIGURE,
// LOOP_SET_CAPACITY, LOOP_CLR_FD) and found by reading
// /sys/block/loopN/loop/backing_file. That path is also the ownership
// rule: a device is this Store's if and only if its backing file is in the
// Store's directory. The Store keeps no record of its devices, so there is
// nothing to get out of step with the kernel after a crash: what is bound
// is what is attached.
//
// One directory belongs to one Store (one process): the per-volume locks
// that make Attach, Detach and Delete safe under concurrency are in
// memory. Two Stores on two directories never touch each other's files or
// devices.
package loopfile
