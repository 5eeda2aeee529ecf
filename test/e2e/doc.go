// Package e2e holds end-to-end tests against the real components: the
// Kubernetes API server and etcd, the distribution registry and the cosign
// CLI, started by test/harness.
package e2e
