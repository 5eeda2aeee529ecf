// Package policydir keeps a directory of per-namespace CRI-O policy files
// (<namespace>.json), each replaced atomically: the node agent syncs it,
// signet export writes one file of it.
package policydir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// CheckNamespace rejects names that are not Kubernetes namespace names (DNS
// labels), so a name can never lead a file outside the directory.
func CheckNamespace(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("%q is not a namespace name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// WriteFileAtomic writes data to path so that readers see the old content
// or the new, never a part: a temporary file in the same directory, synced,
// then renamed over path. The file is readable by everyone (0644): the
// runtime reads it, and it holds only public keys and certificates.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { //nolint:gosec // G304: our own directory
		_ = d.Sync() // make the rename durable where the filesystem allows
		d.Close()
	}
	return nil
}

// Changes says what Sync did.
type Changes struct {
	Written   []string // namespaces whose file was (re)written
	Unchanged []string // namespaces whose file already had the content
	Removed   []string // namespaces whose file was removed
}

// Sync makes dir hold exactly <namespace>.json with the given content for
// every namespace in want: files with other content are replaced
// atomically, files with the same content are not touched, and
// <name>.json files of namespaces not in want are removed. Other files
// (not named like a namespace's file) are left alone.
func Sync(dir string, want map[string][]byte) (Changes, error) {
	var ch Changes
	names := make([]string, 0, len(want))
	for ns := range want {
		if err := CheckNamespace(ns); err != nil {
			return ch, err
		}
		names = append(names, ns)
	}
	sort.Strings(names)
	var errs []error
	for _, ns := range names {
		path := filepath.Join(dir, ns+".json")
		old, err := os.ReadFile(path) //nolint:gosec // G304: a checked namespace name in our directory
		if err == nil && bytes.Equal(old, want[ns]) {
			ch.Unchanged = append(ch.Unchanged, ns)
			continue
		}
		if err := WriteFileAtomic(path, want[ns]); err != nil {
			errs = append(errs, err)
			continue
		}
		ch.Written = append(ch.Written, ns)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ch, errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".json.tmp-") {
			// Left by a write that never finished (the process died between
			// creating and renaming it); nothing reads it.
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
			continue
		}
		ns, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || CheckNamespace(ns) != nil {
			continue
		}
		if _, keep := want[ns]; keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		ch.Removed = append(ch.Removed, ns)
	}
	return ch, errors.Join(errs...)
}
