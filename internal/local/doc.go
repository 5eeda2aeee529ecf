// Package local loads what signet's commands take from the machine they
// run on rather than from a cluster: files named on the command line, each
// read within a size bound (ReadFile); the default trusted root, a
// trusted_root.json file or else the embedded public-good root
// (TrustedRoot); TrustRoots given among policy files (TrustRoot); and
// registry clients whose credentials come from the Docker config
// (RegistryClient).
//
// The commands of package cli and of package cli/server share it. It does
// not import the Kubernetes client libraries, so the signet binary does not
// pay their start-up.
package local
