package cli

import (
	"fmt"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/workload"
)

// CrossplaneRegistryUsage is the help of --crossplane-registry, the same for
// every command that decides Crossplane packages.
const CrossplaneRegistryUsage = "registry of a Crossplane package (Provider, Configuration, Function spec.package) that names none, as Crossplane's own --registry: " +
	"such a package is decided (and pinned) as this registry's (set xpkg.upbound.io for Crossplane before v2)"

// ValidateCrossplaneRegistry checks a --crossplane-registry value: a
// registry host, with its port if any, that an image reference reads as
// its registry.
func ValidateCrossplaneRegistry(host string) error {
	if _, err := workload.NewExtractor(workload.CrossplaneRegistry(host)); err != nil {
		return fmt.Errorf("--crossplane-registry: %w", err)
	}
	if _, err := reference.Parse(host + "/signet/check:v1"); err != nil {
		return fmt.Errorf("--crossplane-registry %q: not a registry host: %w", host, err)
	}
	return nil
}
