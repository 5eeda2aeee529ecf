// Package ha proves signet serve's high availability against the real API
// server and registry: three `signet-server serve` processes behind a
// loopback round-robin TCP front (front.go, test plumbing standing in for
// a Service and kube-proxy), the webhook configurations pointing at the
// front, and a closed-loop client admitting Pods and Deployments through
// the API server the whole time (load.go), through a rolling restart, a
// leader killed, certificate rotations and a control-plane outage.
package ha
