// Package runtime is the host side of compute: the Runtime interface that
// runs a host's containers (Nova's servers, Zun's containers), the types of
// its calls, and the rules shared by every implementation (Spec.Validate,
// Resolve, Prune).
//
// The host agent drives a Runtime with desired-state calls: every call is
// idempotent and says what should be, so a lost, repeated or replayed
// command changes nothing that is already so, and the agent reconciles
// after a crash by calling again. Read the Runtime interface for the
// lifecycle and its guarantees.
//
// Implementations:
//
//   - runtime/runc: the real one. OCI bundles run by runc, one
//     supervising shim process per container (the same binary, `monostack
//     shim`, package runtime/shim), images unpacked once (runtime/imagefs)
//     and an overlayfs root per container, a named network namespace per
//     container for the datapath.
//   - runtime/fake: in memory, for the tests of compute and containers.
//
// Both pass the conformance suite in runtime/runtimetest.
//
// # Images
//
// Images come from the Image service as bytes with an ImageFormat (its
// image.Format: a root filesystem tarball, a `docker save` archive or an
// OCI image layout, plain or compressed). A root filesystem tarball boots
// its /sbin/init, as a server does; docker and OCI images run their
// entrypoint and command, with their environment, working directory and
// user, unless the Spec says otherwise (Process).
//
// # Hosts and owners
//
// A runtime is made with an owner id and touches nothing that does not
// carry it (see runtime/runc for how); two monostack instances on one
// host, tests running side by side, never see each other's containers.
package runtime
