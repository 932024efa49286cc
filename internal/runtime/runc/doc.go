// Package runc is the real runtime.Runtime: OCI bundles (runtime-spec
// types) run by the runc binary, one shim per container, overlayfs roots
// over images unpacked once, and a named network namespace per container.
//
// # Layout
//
// Everything of a runtime of owner O lives under Config.StateDir (say
// <data-dir>/runtime), in RunDir (runc's --root, /run/monostack/O/runc by
// default) and in names that carry O:
//
//	StateDir/images/<image>/rootfs         the unpacked image (overlay lower, never written)
//	StateDir/images/<image>/image.json     kind and config (entrypoint, env, …)
//	StateDir/containers/<id>/record.json   the Spec and image config, written at Create (synced);
//	                                        SetDevices rewrites its devices
//	                        fs/upper, fs/work       the container's writable layer
//	                        bundle/config.json      the OCI config, made again before each run;
//	                                                SetDevices keeps its devices the live ones
//	                        bundle/rootfs           the overlay mount, or the root device's ext4
//	                                                (host mount namespace)
//	                        shim.json shim.pid      the shim's config; its pid and start time
//	                        console.log[.1]         stdout+stderr, rotated at MaxLogBytes
//	                        started.json exit.json  the current run: start, and how it ended
//	                        runc.log shim.log       runc's and the shim's own errors
//	                        attach.sock             a terminal container's terminal, served by
//	                                                its shim (see package shim and terminal.go)
//	                        .exec-*/                an exec's process.json, pid and runc log
//	/var/run/netns/ms-O-<id>                      the network namespace (lo up)
//	cgroup /monostack-O-<id> in every hierarchy   made and removed by runc
//
// A container of a root device (a server booted from a volume) has no
// fs/ directory: its bundle/rootfs is the device's ext4 filesystem, mounted
// nodev, and what the container writes stays on the device; Delete
// unmounts it and leaves the device alone. The record keeps the loop
// device's backing file, and every mount checks it (see rootdev.go).
//
// Temporary directories (.tmp-*, .new-*, .trash-*) make an unpacked image,
// a new container and a deletion atomic: an image is whole or absent, a
// container directory always has its record, and Recover removes what an
// interrupted operation left. Owners may hold letters, digits and '_'
// only, so that no owner's prefix is another's.
//
// # A container's runs
//
// Create makes the record, the overlay, the namespace and config.json, then
// starts the shim (`monostack shim --dir <container dir>`, setsid, its
// stdio in shim.log) and waits for it to say the runc container is made:
// the shim runs `runc create` with a pipe as the container's stdout and
// stderr and, being the child subreaper, becomes the parent of the
// container's init when runc exits. Start is `runc start`. The shim copies
// the pipe into console.log, forwards SIGTERM/SIGINT to the init, and when
// the init exits reaps it, drains the pipe, notes an OOM kill from the
// cgroup, writes exit.json atomically, runs `runc delete` and exits. A
// Stopped container therefore has no runc container; Start makes one
// again (a new shim) on the same overlay and namespace.
//
// The daemon keeps no state of its own in memory beyond per-container
// locks: State and List read the files above and ask runc (`runc state`,
// `runc list`; whether runc has a container at all is read from its state
// directory, runc's own layout). A runtime over the same StateDir after a
// restart, a crash or a kill -9 of the daemon is the same runtime. Recover
// repairs what cannot repair itself: a container whose shim died is killed
// (nothing would keep its output or its exit any more) and recorded with
// exit 137; one that ended unobserved (a reboot) gets exit -1; stopped
// containers get their overlay and namespace back so that ports can be
// plugged before they start again; orphans (namespaces, runc containers,
// mounts, directories with O's names but no record) are reported for
// RemoveOrphans.
//
// # Hot-plug
//
// SetDevices changes the devices of a container whose init is live
// (Created, Running or Paused) without a process in it: the daemon writes
// the container's v1 devices cgroup (devices.deny, then devices.allow) and
// makes or removes the nodes through /proc/<init>/root, opening each
// directory without following symlinks (mknodat, unlinkat, then chown and
// chmod through a handle on the node). Nothing runs in the container, so
// it works on a frozen one and on images with no mknod or rm, and nothing
// the container made in its /dev can make the daemon write elsewhere. The
// order is: take away access, remove nodes, give access, make nodes; a
// failure undoes what was done and leaves the record as it was.
// config.json says what devices the live container has (it was made from
// it, and hot-plug keeps it so), and a change is worked out against it;
// the record says what later boots get. Device keys the default rules (or
// runc's own list) allow are never denied, so that a device shared with
// /dev/null, say, does not take /dev/null away. cgroup v1 checks access
// when a device is opened: a descriptor opened before a removal stays
// usable until closed. With cgroup v2 only, runc's eBPF device program
// cannot be changed from outside, and SetDevices of a live container is
// ErrState; a stopped one gets its devices at its next boot.
//
// # Security
//
// As strict as Docker's defaults, or stricter:
//
//   - capabilities: Docker's 14 (DefaultCapabilities) in the bounding,
//     effective and permitted sets of a root process, none inheritable or
//     ambient; a non-root process has them in its bounding set only;
//   - no_new_privs; RLIMIT_NOFILE 65536 (or the daemon's own hard limit);
//     oom_score_adj 0;
//   - namespaces: pid, mount, uts, ipc, cgroup, and the network namespace
//     made beforehand; root propagation rprivate; no user namespace (root in
//     the container is root on the host, as with Docker's default);
//   - /proc and /sys: MaskedPaths hidden, ReadonlyPaths read-only, /sys and
//     the cgroup filesystem read-only; /dev a tmpfs with runc's default
//     nodes;
//   - devices: the cgroup denies all but null, zero, full, random, urandom,
//     tty, console, ptmx and the ptys, plus each Spec.Devices node. (runc
//     1.1 adds its own default list, which also allows mknod of any node
//     and /dev/net/tun; making a tun device still needs CAP_NET_ADMIN.)
//   - seccomp: a deny list (default allow) returning EPERM for what Docker's
//     default profile refuses to a container without CAP_SYS_ADMIN and the
//     other missing capabilities: mount and the new mount API, unshare,
//     setns and clone with namespace flags (clone3 answers ENOSYS so that
//     libc falls back to clone), keyctl and friends, bpf,
//     perf_event_open, userfaultfd, io_uring, kexec, modules, reboot, swap,
//     clock and time setting, … Docker's profile is an allow list, which
//     also blocks syscalls newer than the profile; this one lets those
//     through. Config.NoSeccomp turns it off for debugging.
//   - cgroup limits from the Spec: memory (and memory+swap to the same: no
//     swap), CPU quota over a 100 ms period and shares, pids (4096 by
//     default).
//
// Not done: AppArmor/SELinux profiles, user namespaces, read-only root
// filesystems, disk quotas on the writable layer.
//
// # Operation
//
// The daemon must run as root in the host's mount namespace. Under
// systemd, the daemon's unit needs KillMode=process (or Delegate and a
// cgroup of the shims' own), else stopping the daemon kills the shims and
// so, at the next Recover, the containers.
package runc
