// Package app is the one place that wires configuration to the store, the
// services and the HTTP listener. `monostack up` is Up.
package app
