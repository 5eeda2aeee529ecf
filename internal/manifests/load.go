// Package manifests reads Kubernetes-style YAML or JSON files (one or many
// documents, files or directories) into signet's policy objects and the
// Secrets they refer to, for the CLI and the server's file mode. Decoding is
// strict: an unknown field is an error, never ignored.
package manifests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sigstore/sigstore-go/pkg/root"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
)

// MaxFileSize bounds one file.
const MaxFileSize = 8 << 20

// Set is what the files held.
type Set struct {
	Policies []policy.Object
	// Secrets by namespace/name: key → value.
	Secrets map[string]map[string][]byte
	// ConfigMaps by namespace/name: key → value (data and binaryData).
	ConfigMaps map[string]map[string][]byte
	// Sources says which file and document each policy came from, by ID.
	Sources map[string]string
	// TrustRoots by name, for trustRootRef.
	TrustRoots map[string]v1alpha1.TrustRootSpec
	// Others are documents of other kinds (workloads for `policy test
	// --resource`), as JSON.
	Others []Document

	// trustMaterial caches resolved TrustRoots by name.
	trustMu       sync.Mutex
	trustMaterial map[string]trustResult
}

type trustResult struct {
	tm  root.TrustedMaterial
	err error
}

// Document is a decoded document of a kind this package does not interpret.
type Document struct {
	Source     string
	APIVersion string
	Kind       string
	JSON       []byte
}

// Load reads every .yaml, .yml and .json file in paths (directories are read
// recursively, in name order).
func Load(paths ...string) (*Set, error) {
	set := &Set{Secrets: map[string]map[string][]byte{}, ConfigMaps: map[string]map[string][]byte{}, Sources: map[string]string{}, TrustRoots: map[string]v1alpha1.TrustRootSpec{}}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, path)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	var errs []error
	for _, f := range files {
		if err := set.loadFile(f); err != nil {
			errs = append(errs, err)
		}
	}
	return set, errors.Join(errs...)
}

func (s *Set) loadFile(path string) error {
	f, err := os.Open(path) //nolint:gosec // G304: reading the files the user named is the job
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	var errs []error
	for i, doc := range splitDocuments(data) {
		where := path
		if i > 0 || len(doc) < len(data)-4 {
			where = fmt.Sprintf("%s (document %d)", path, i+1)
		}
		if err := s.loadDocument(where, doc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// splitDocuments splits a YAML stream on "---" lines, dropping empty
// documents.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur.Bytes()))) > 0 {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxFileSize)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" || strings.HasPrefix(line, "--- ") {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func (s *Set) loadDocument(where string, doc []byte) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("%s: not YAML: %w", where, err)
	}
	var tm typeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return fmt.Errorf("%s: not an object: %w", where, err)
	}
	switch {
	case tm.Kind == "List" && tm.APIVersion == "v1":
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(js, &list); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		var errs []error
		for i, item := range list.Items {
			if err := s.loadDocument(fmt.Sprintf("%s item %d", where, i+1), item); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case tm.APIVersion == v1alpha1.GroupVersion.String() && (tm.Kind == policy.KindClusterImagePolicy || tm.Kind == policy.KindImagePolicy):
		var obj v1alpha1.ClusterImagePolicy // same shape as ImagePolicy
		if err := strictUnmarshal(js, &obj); err != nil {
			return fmt.Errorf("%s: %s %s: %w", where, tm.Kind, nameOf(js), err)
		}
		o := policy.Object{Kind: tm.Kind, Name: obj.Name, Namespace: obj.Namespace, Spec: obj.Spec}
		if tm.Kind == policy.KindImagePolicy && o.Namespace == "" {
			o.Namespace = "default"
		}
		if prev, dup := s.Sources[o.ID()]; dup {
			return fmt.Errorf("%s: %s is also defined in %s", where, o.ID(), prev)
		}
		s.Sources[o.ID()] = where
		s.Policies = append(s.Policies, o)
		return nil
	case tm.APIVersion == v1alpha1.GroupVersion.String() && tm.Kind == "TrustRoot":
		var obj v1alpha1.TrustRoot
		if err := strictUnmarshal(js, &obj); err != nil {
			return fmt.Errorf("%s: TrustRoot %s: %w", where, nameOf(js), err)
		}
		id := "TrustRoot " + obj.Name
		if prev, dup := s.Sources[id]; dup {
			return fmt.Errorf("%s: %s is also defined in %s", where, id, prev)
		}
		s.Sources[id] = where
		s.TrustRoots[obj.Name] = obj.Spec
		return nil
	case strings.HasPrefix(tm.APIVersion, "signet.dev/"):
		return fmt.Errorf("%s: %s %s is not a kind signet knows (want %s ClusterImagePolicy, ImagePolicy or TrustRoot)", where, tm.APIVersion, tm.Kind, v1alpha1.GroupVersion)
	case tm.APIVersion == "v1" && tm.Kind == "Secret":
		var sec struct {
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Data       map[string]string `json:"data"`
			StringData map[string]string `json:"stringData"`
		}
		if err := json.Unmarshal(js, &sec); err != nil {
			return fmt.Errorf("%s: Secret: %w", where, err)
		}
		values := map[string][]byte{}
		for k, v := range sec.Data {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%s: Secret %s: data.%s is not base64", where, sec.Metadata.Name, k)
			}
			values[k] = b
		}
		for k, v := range sec.StringData {
			values[k] = []byte(v)
		}
		s.Secrets[sec.Metadata.Namespace+"/"+sec.Metadata.Name] = values
		return nil
	case tm.APIVersion == "v1" && tm.Kind == "ConfigMap":
		var cm struct {
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Data       map[string]string `json:"data"`
			BinaryData map[string]string `json:"binaryData"`
		}
		if err := json.Unmarshal(js, &cm); err != nil {
			return fmt.Errorf("%s: ConfigMap: %w", where, err)
		}
		values := map[string][]byte{}
		for k, v := range cm.Data {
			values[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%s: ConfigMap %s: binaryData.%s is not base64", where, cm.Metadata.Name, k)
			}
			values[k] = b
		}
		s.ConfigMaps[cm.Metadata.Namespace+"/"+cm.Metadata.Name] = values
		// Also kept with the other documents: a workload's ConfigMap is
		// not signet's business, but --resource may name one.
		s.Others = append(s.Others, Document{Source: where, APIVersion: tm.APIVersion, Kind: tm.Kind, JSON: js})
		return nil
	case tm.Kind == "" || tm.APIVersion == "":
		return fmt.Errorf("%s: apiVersion and kind are required", where)
	}
	s.Others = append(s.Others, Document{Source: where, APIVersion: tm.APIVersion, Kind: tm.Kind, JSON: js})
	return nil
}

func nameOf(js []byte) string {
	var m struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	_ = json.Unmarshal(js, &m)
	return m.Metadata.Name
}

// strictUnmarshal decodes as the API server does with strict field
// validation: field names are case-sensitive, and unknown or duplicate
// fields are errors.
func strictUnmarshal(js []byte, v any) error {
	strictErrs, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// Resolver resolves secretRefs from the loaded Secrets and trust roots from
// a fixed default.
type Resolver struct {
	Set *Set
	// DefaultNamespace is where secretRefs without a namespace look.
	DefaultNamespace string
	// Default returns the default trusted material (lazily: a policy with
	// only insecure keys never needs it).
	Default func() (root.TrustedMaterial, error)
	// TrustRoot resolves a TrustRoot among the files within ctx (a remote
	// one is fetched from its mirror; nil: named trust roots are refused).
	// Each is resolved once per Set.
	TrustRoot func(ctx context.Context, spec v1alpha1.TrustRootSpec) (root.TrustedMaterial, error)
}

var _ policy.Resolver = Resolver{}

// SecretKeys implements policy.Resolver.
func (r Resolver) SecretKeys(_ context.Context, namespace, name string) (map[string][]byte, error) {
	if namespace == "" {
		namespace = r.DefaultNamespace
	}
	if v, ok := r.Set.Secrets[namespace+"/"+name]; ok {
		return v, nil
	}
	if namespace == "" {
		// A secretRef without a namespace: any one Secret of that name.
		var found map[string][]byte
		n := 0
		for k, v := range r.Set.Secrets {
			if strings.HasSuffix(k, "/"+name) {
				found, n = v, n+1
			}
		}
		if n == 1 {
			return found, nil
		}
	}
	return nil, fmt.Errorf("the Secret %s/%s is not among the files given", namespace, name)
}

// ConfigMapData implements policy.ConfigMapResolver: a ConfigMap among the
// files.
func (r Resolver) ConfigMapData(_ context.Context, namespace, name string) (map[string][]byte, error) {
	if namespace == "" {
		namespace = r.DefaultNamespace
	}
	if v, ok := r.Set.ConfigMaps[namespace+"/"+name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("the ConfigMap %s/%s is not among the files given", namespace, name)
}

// TrustedMaterial implements policy.Resolver.
func (r Resolver) TrustedMaterial(ctx context.Context, name string) (root.TrustedMaterial, error) {
	if name == "" {
		return r.Default()
	}
	spec, ok := r.Set.TrustRoots[name]
	if !ok {
		return nil, fmt.Errorf("TrustRoot %s is not among the files given", name)
	}
	if r.TrustRoot == nil {
		return nil, fmt.Errorf("TrustRoot %s: named trust roots are not available here", name)
	}
	r.Set.trustMu.Lock()
	defer r.Set.trustMu.Unlock()
	if res, ok := r.Set.trustMaterial[name]; ok {
		return res.tm, res.err
	}
	tm, err := r.TrustRoot(ctx, spec)
	if err != nil {
		err = fmt.Errorf("TrustRoot %s: %w", name, err)
	}
	if r.Set.trustMaterial == nil {
		r.Set.trustMaterial = map[string]trustResult{}
	}
	r.Set.trustMaterial[name] = trustResult{tm, err}
	return tm, err
}
