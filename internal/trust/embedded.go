package trust

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	_ "embed" // for the embedded trusted root

	"github.com/sigstore/sigstore-go/pkg/root"
)

// The embedded files are strings so that nothing can modify them.
var (
	//go:embed embedded/trusted_root.json
	embeddedTrustedRoot string

	//go:embed embedded/SOURCE
	embeddedSourceFile string
)

// Source records where the embedded public-good trusted root came from, as
// written to embedded/SOURCE by hack/update-trusted-root.sh.
type Source struct {
	// Package is the npm package the root was taken from: "@sigstore/tuf".
	Package string `json:"package"`
	// Version is the package version.
	Version string `json:"version"`
	// Integrity is the npm registry's integrity string of the package
	// tarball, "sha512-" and base64.
	Integrity string `json:"integrity"`
	// Repository is the TUF repository whose target the root is.
	Repository string `json:"repository"`
	// Target is the TUF target name: "trusted_root.json".
	Target string `json:"target"`
	// SHA256 is the hex sha256 of the embedded trusted_root.json; it equals
	// the TUF target's sha256.
	SHA256 string `json:"sha256"`
	// Date is the UTC day (YYYY-MM-DD) the script last changed the files.
	Date string `json:"date"`
}

// PublicGood returns the embedded trusted root of the Sigstore public-good
// instance. Each call parses it afresh, so the caller owns the result. It
// fails only if the embedded root does not match the sha256 recorded in
// SOURCE or does not parse, which the package tests rule out.
func PublicGood() (*root.TrustedRoot, error) {
	src, err := embeddedSource()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(embeddedTrustedRoot))
	if got := hex.EncodeToString(sum[:]); got != src.SHA256 {
		return nil, fmt.Errorf("embedded trusted root has sha256 %s, SOURCE records %s: run hack/update-trusted-root.sh", got, src.SHA256)
	}
	tr, err := root.NewTrustedRootFromJSON([]byte(embeddedTrustedRoot))
	if err != nil {
		return nil, fmt.Errorf("parsing embedded trusted root %s@%s: %w", src.Package, src.Version, err)
	}
	return tr, nil
}

// EmbeddedSource returns where the embedded public-good trusted root came
// from. It panics if the embedded SOURCE is malformed, which the package
// tests rule out.
func EmbeddedSource() Source {
	src, err := embeddedSource()
	if err != nil {
		panic(err)
	}
	return src
}

func embeddedSource() (Source, error) {
	src, err := parseSource(embeddedSourceFile)
	if err != nil {
		return Source{}, fmt.Errorf("parsing embedded SOURCE: %w", err)
	}
	return src, nil
}

// parseSource parses "key: value" lines; blank lines and lines starting with
// '#' are skipped. Every field is required and unknown keys are rejected.
func parseSource(text string) (Source, error) {
	var src Source
	fields := map[string]*string{
		"package":    &src.Package,
		"version":    &src.Version,
		"integrity":  &src.Integrity,
		"repository": &src.Repository,
		"target":     &src.Target,
		"sha256":     &src.SHA256,
		"date":       &src.Date,
	}
	seen := make(map[string]bool, len(fields))
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return Source{}, fmt.Errorf("line %d: want \"key: value\", got %q", n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		field, known := fields[key]
		switch {
		case !known:
			return Source{}, fmt.Errorf("line %d: unknown key %q", n, key)
		case seen[key]:
			return Source{}, fmt.Errorf("line %d: duplicate key %q", n, key)
		case value == "":
			return Source{}, fmt.Errorf("line %d: empty %s", n, key)
		}
		seen[key] = true
		*field = value
	}
	if err := sc.Err(); err != nil {
		return Source{}, err
	}
	for key := range fields {
		if !seen[key] {
			return Source{}, fmt.Errorf("missing %s", key)
		}
	}
	return src, nil
}
