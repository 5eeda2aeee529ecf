// Package version reports which build of signet is running: the release
// version and commit stamped in at link time (see the Makefile), falling back to
// what the Go toolchain recorded in the binary.
package version

import (
	"runtime"
	"runtime/debug"
)

// Stamped at link time with -ldflags "-X github.com/signet-dev/signet/internal/version.version=...".
var (
	version = ""
	commit  = ""
)

// Info describes one build of signet.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the running binary's build information. Fields that were not
// stamped at link time come from the Go build info, or read "unknown".
func Get() Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && info.Commit == "" {
				info.Commit = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}
