// Package testcloud is the shared harness of the services' HTTP tests: a
// real identity service on a temporary SQLite store, bootstrapped like
// `monostack up` (with bcrypt cost 4 to keep it fast), served by httptest
// together with whatever routers a test mounts next to it, plus admin and
// demo tokens and small helpers to send requests and check responses.
//
// The image, network, object store and compute tests each used to build
// this by hand, with the same forty-odd lines of set-up and the same
// request helper; their harness_test.go files are now thin layers over
// this package that keep the names their tests use.
//
// It imports identity, so identity's own in-package tests cannot use it and
// keep their own harness.
package testcloud
