// Package workload finds every image an object would run: every (field
// path, image) of every image-bearing kind. It works on the decoded JSON of
// the object, so one decode serves every kind, and it never skips an image
// because of labels, annotations, owner references or a deletion timestamp.
package workload

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Image is one image reference in an object.
type Image struct {
	// Path is the field path, as in spec.containers[1].image.
	Path string
	// Image is the reference as written.
	Image string
	// Pointer is the JSON Pointer of the field (for a JSON Patch).
	Pointer string
}

// Kind identifies an object kind by group and kind ("" group for core).
type Kind struct {
	Group string
	Kind  string
}

func (k Kind) String() string {
	if k.Group == "" {
		return k.Kind
	}
	return k.Kind + "." + k.Group
}

// podSpecPaths says where each built-in kind keeps its pod spec.
var podSpecPaths = map[Kind][]string{
	{"", "Pod"}:                   {"spec"},
	{"", "ReplicationController"}: {"spec", "template", "spec"},
	{"", "PodTemplate"}:           {"template", "spec"},
	{"apps", "Deployment"}:        {"spec", "template", "spec"},
	{"apps", "ReplicaSet"}:        {"spec", "template", "spec"},
	{"apps", "StatefulSet"}:       {"spec", "template", "spec"},
	{"apps", "DaemonSet"}:         {"spec", "template", "spec"},
	{"batch", "Job"}:              {"spec", "template", "spec"},
	{"batch", "CronJob"}:          {"spec", "jobTemplate", "spec", "template", "spec"},
}

// crossplanePackages keep their package image in spec.package.
var crossplanePackages = map[string]bool{"Provider": true, "Configuration": true, "Function": true}

// DefaultCrossplaneRegistry is the registry Crossplane (v2) pulls a package
// from when its spec.package names none; Crossplane's --registry flag
// changes it (Crossplane before v2: xpkg.upbound.io).
const DefaultCrossplaneRegistry = "xpkg.crossplane.io"

// Extractor lists images; it knows the built-in kinds and any declared ones.
type Extractor struct {
	custom             map[Kind][][]string
	shapes             map[Kind]*Shape
	crossplaneRegistry string
}

// Option configures an Extractor: a Custom kind, or CrossplaneRegistry.
type Option interface {
	apply(e *Extractor) error
}

// CrossplaneRegistry is the registry host (with its port, if any) that
// Crossplane resolves a package without a registry against, as its
// --registry flag; DefaultCrossplaneRegistry unless given. A Crossplane
// package's image is reported with it, fully qualified, so the policies of
// that registry decide it and a pin patch names it.
type CrossplaneRegistry string

func (r CrossplaneRegistry) apply(e *Extractor) error {
	host := string(r)
	// The host must read as a registry when put in front of a repository
	// (by the container runtime's rule as by Crossplane's), or the
	// qualified reference would name another one.
	if host == "" || strings.ContainsAny(host, "/@ \t\r\n") || !hasRegistry(host+"/x") {
		return fmt.Errorf("crossplane registry %q: want a registry host such as %s, with a port if any, and no scheme or path", host, DefaultCrossplaneRegistry)
	}
	e.crossplaneRegistry = host
	return nil
}

func (c Custom) apply(e *Extractor) error {
	if c.Kind.Kind == "" {
		return fmt.Errorf("custom image fields: kind is required")
	}
	for _, p := range c.Paths {
		segs := strings.Split(p, ".")
		for _, s := range segs {
			if strings.TrimSuffix(s, "[]") == "" {
				return fmt.Errorf("custom image fields of %s: %q has an empty field name", c.Kind, p)
			}
		}
		e.custom[c.Kind] = append(e.custom[c.Kind], segs)
	}
	return nil
}

// Custom declares the image fields of another kind: paths of dotted field
// names, where "[]" after a name walks every element of a list, e.g.
// "spec.steps[].image".
type Custom struct {
	Kind  Kind
	Paths []string
}

// NewExtractor returns an extractor for the built-in kinds plus the Custom
// ones given, resolving Crossplane packages against CrossplaneRegistry
// (default DefaultCrossplaneRegistry).
func NewExtractor(opts ...Option) (*Extractor, error) {
	e := &Extractor{custom: map[Kind][][]string{}, crossplaneRegistry: DefaultCrossplaneRegistry}
	for _, o := range opts {
		if err := o.apply(e); err != nil {
			return nil, err
		}
	}
	e.shapes = map[Kind]*Shape{}
	for k := range podSpecPaths {
		e.shapes[k] = e.shapeOf(k)
	}
	for k := range e.custom {
		e.shapes[k] = e.shapeOf(k)
	}
	return e, nil
}

// Kinds returns the kinds whose images the extractor knows, but for the
// Crossplane packages (in any pkg.crossplane.io group) and PodTemplate:
// the built-in workload kinds and the declared ones, sorted.
func (e *Extractor) Kinds() []Kind {
	var out []Kind
	for k := range podSpecPaths {
		if k.Kind != "PodTemplate" {
			out = append(out, k)
		}
	}
	for k := range e.custom {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Kind) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// CrossplanePackageKinds are the Crossplane package kinds in
// pkg.crossplane.io.
func CrossplanePackageKinds() []Kind {
	return []Kind{{"pkg.crossplane.io", "Configuration"}, {"pkg.crossplane.io", "Function"}, {"pkg.crossplane.io", "Provider"}}
}

// Handles reports whether objects of kind can hold images.
func (e *Extractor) Handles(k Kind) bool {
	if _, ok := podSpecPaths[k]; ok {
		return true
	}
	if _, ok := e.custom[k]; ok {
		return true
	}
	return isCrossplane(k)
}

// Shape is the part of an object's JSON that Images, PullSecrets and
// CheckType read (apiVersion and kind, for every kind),
// so that a decoder may drop the rest: for an object value, the fields read
// (by exact name) with the shapes of their values; for a list value, the
// shape of every element. A nil *Shape keeps the whole value, and so does
// a value whose JSON type the shape does not expect (an object where a list
// belongs stays whole, so Images reports it as it would on the full object).
type Shape struct {
	Fields map[string]*Shape
	Elem   *Shape
}

// podSpecShape is what podSpecImages and PullSecrets read of a pod spec.
var podSpecShape = func() *Shape {
	container := &Shape{Elem: &Shape{Fields: map[string]*Shape{"image": nil}}}
	return &Shape{Fields: map[string]*Shape{
		"initContainers":      container,
		"containers":          container,
		"ephemeralContainers": container,
		"volumes":             {Elem: &Shape{Fields: map[string]*Shape{"image": {Fields: map[string]*Shape{"reference": nil}}}}},
		"imagePullSecrets":    {Elem: &Shape{Fields: map[string]*Shape{"name": nil}}},
		"serviceAccountName":  nil,
	}}
}()

// Shape returns what Images, PullSecrets and CheckType read of objects of
// kind k: apiVersion and kind alone for a kind that holds no images.
func (e *Extractor) Shape(k Kind) *Shape {
	if s, ok := e.shapes[k]; ok {
		return s
	}
	if isCrossplane(k) {
		return crossplaneShape
	}
	return typeShape
}

// crossplaneShape is what Images and CheckType read of a Crossplane package.
var crossplaneShape = mergeShapes(typeShape, &Shape{Fields: map[string]*Shape{"spec": {Fields: map[string]*Shape{"package": nil}}}})

// shapeOf builds the shape of kind k from the same tables Images walks.
func (e *Extractor) shapeOf(k Kind) *Shape {
	root := typeShape
	if path, ok := podSpecPaths[k]; ok {
		s := podSpecShape
		for i := len(path) - 1; i >= 0; i-- {
			s = &Shape{Fields: map[string]*Shape{path[i]: s}}
		}
		root = mergeShapes(root, s)
	}
	if isCrossplane(k) {
		root = mergeShapes(root, crossplaneShape)
	}
	for _, segs := range e.custom[k] {
		var s *Shape // the image itself: kept whole
		for i := len(segs) - 1; i >= 0; i-- {
			name, list := strings.CutSuffix(segs[i], "[]")
			if list {
				s = &Shape{Elem: s}
			}
			s = &Shape{Fields: map[string]*Shape{name: s}}
		}
		root = mergeShapes(root, s)
	}
	return root
}

// MergeShapes is the shape that reads what a or b reads.
func MergeShapes(a, b *Shape) *Shape { return mergeShapes(a, b) }

// Prune returns the part of v (decoded JSON) that s reads: fields s does
// not name are left out, recursively; a value whose type s does not expect
// is kept whole (as a decoder pruning by s keeps it). v is not changed.
func Prune(v any, s *Shape) any {
	if s == nil {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		if s.Fields == nil {
			return v
		}
		out := make(map[string]any, len(s.Fields))
		for name, fs := range s.Fields {
			if fv, ok := v[name]; ok {
				out[name] = Prune(fv, fs)
			}
		}
		return out
	case []any:
		if s.Elem == nil {
			return v
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = Prune(e, s.Elem)
		}
		return out
	}
	return v
}

// mergeShapes is the shape that reads what a or b reads.
func mergeShapes(a, b *Shape) *Shape {
	if a == nil || b == nil {
		return nil // one keeps the whole value
	}
	out := &Shape{}
	if a.Fields != nil || b.Fields != nil {
		out.Fields = map[string]*Shape{}
		for _, from := range []*Shape{a, b} {
			for name, s := range from.Fields {
				if prev, ok := out.Fields[name]; ok {
					s = mergeShapes(prev, s)
				}
				out.Fields[name] = s
			}
		}
	}
	switch {
	case a.Elem != nil && b.Elem != nil:
		out.Elem = mergeShapes(a.Elem, b.Elem)
	case a.Elem != nil:
		out.Elem = a.Elem
	case b.Elem != nil:
		out.Elem = b.Elem
	}
	return out
}

func isCrossplane(k Kind) bool {
	return crossplanePackages[k.Kind] && (k.Group == "pkg.crossplane.io" || strings.HasSuffix(k.Group, ".pkg.crossplane.io"))
}

// Images lists the images of obj (decoded JSON) of kind k. subresource is
// "ephemeralcontainers" for that Pod subresource (whose body is a Pod).
// A field that is not a string where an image belongs is an error: the
// object is malformed, and an image hidden in it must not slip through.
func (e *Extractor) Images(k Kind, obj map[string]any) ([]Image, error) {
	var out []Image
	if path, ok := podSpecPaths[k]; ok {
		spec, err := walk(obj, path)
		if err != nil {
			return nil, err
		}
		if spec != nil {
			imgs, err := podSpecImages(spec, strings.Join(path, "."))
			if err != nil {
				return nil, err
			}
			out = append(out, imgs...)
		}
	}
	if isCrossplane(k) {
		spec, _ := obj["spec"].(map[string]any)
		if v, ok := spec["package"]; ok {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("spec.package: not a string")
			}
			out = append(out, Image{Path: "spec.package", Image: e.qualifyPackage(s), Pointer: "/spec/package"})
		}
	}
	for _, segs := range e.custom[k] {
		imgs, err := customImages(obj, segs, "", "")
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// qualifyPackage returns a Crossplane package reference as Crossplane pulls
// it: one that names no registry gets the Crossplane registry in front, as
// Crossplane's go-containerregistry name.ParseReference with
// name.WithDefaultRegistry does (a single path component stays one: no
// "library/" is added for a registry other than Docker Hub's). A reference
// that names its registry is returned as written.
func (e *Extractor) qualifyPackage(ref string) string {
	if ref == "" || hasRegistry(ref) {
		return ref
	}
	return e.crossplaneRegistry + "/" + ref
}

// hasRegistry reports whether ref's first path component names a registry:
// it contains '.' or ':', or is "localhost" (go-containerregistry's rule,
// which Crossplane uses, and the container runtime's for lower-case names).
func hasRegistry(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (first == "localhost" || strings.ContainsAny(first, ".:"))
}

func walk(obj map[string]any, path []string) (map[string]any, error) {
	cur := obj
	for i, p := range path {
		v, ok := cur[p]
		if !ok || v == nil {
			return nil, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not an object", strings.Join(path[:i+1], "."))
		}
		cur = m
	}
	return cur, nil
}

func podSpecImages(spec map[string]any, prefix string) ([]Image, error) {
	var out []Image
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		v, ok := spec[list]
		if !ok || v == nil {
			continue
		}
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s.%s: not a list", prefix, list)
		}
		for i, item := range items {
			c, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.%s[%d]: not an object", prefix, list, i)
			}
			n := strconv.Itoa(i)
			path := prefix + "." + list + "[" + n + "].image"
			img, err := stringField(c, "image", path)
			if err != nil {
				return nil, err
			}
			out = append(out, Image{Path: path, Image: img, Pointer: "/" + strings.ReplaceAll(prefix, ".", "/") + "/" + list + "/" + n + "/image"})
		}
	}
	// Image volumes (KEP-4639): volumes[].image.reference.
	if v, ok := spec["volumes"]; ok && v != nil {
		vols, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s.volumes: not a list", prefix)
		}
		for i, item := range vols {
			vol, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.volumes[%d]: not an object", prefix, i)
			}
			iv, ok := vol["image"]
			if !ok || iv == nil {
				continue
			}
			src, ok := iv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.volumes[%d].image: not an object", prefix, i)
			}
			path := fmt.Sprintf("%s.volumes[%d].image.reference", prefix, i)
			ref, err := stringField(src, "reference", path)
			if err != nil {
				return nil, err
			}
			out = append(out, Image{Path: path, Image: ref, Pointer: fmt.Sprintf("/%s/volumes/%d/image/reference", strings.ReplaceAll(prefix, ".", "/"), i)})
		}
	}
	return out, nil
}

// stringField reads a required string field; a missing image is "" (the
// API server rejects it for Pods; admission denies it for others).
func stringField(m map[string]any, name, path string) (string, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: not a string", path)
	}
	return s, nil
}

func customImages(v any, segs []string, path, ptr string) ([]Image, error) {
	if len(segs) == 0 {
		if v == nil {
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: not a string", path)
		}
		return []Image{{Path: path, Image: s, Pointer: ptr}}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: not an object", path)
	}
	name, list := strings.CutSuffix(segs[0], "[]")
	child, ok := m[name]
	if !ok || child == nil {
		return nil, nil
	}
	p := name
	if path != "" {
		p = path + "." + name
	}
	ptr += "/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
	if !list {
		return customImages(child, segs[1:], p, ptr)
	}
	items, ok := child.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: not a list", p)
	}
	var out []Image
	for i, item := range items {
		imgs, err := customImages(item, segs[1:], fmt.Sprintf("%s[%d]", p, i), fmt.Sprintf("%s/%d", ptr, i))
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// PullSecrets returns the imagePullSecrets names and the service account of
// the object's pod spec ("" when the kind has none; the API server's
// default service account is "default").
func (e *Extractor) PullSecrets(k Kind, obj map[string]any) (secrets []string, serviceAccount string) {
	path, ok := podSpecPaths[k]
	if !ok {
		return nil, ""
	}
	spec, err := walk(obj, path)
	if err != nil || spec == nil {
		return nil, ""
	}
	if list, ok := spec["imagePullSecrets"].([]any); ok {
		for _, item := range list {
			if m, ok := item.(map[string]any); ok {
				if n, ok := m["name"].(string); ok && n != "" {
					secrets = append(secrets, n)
				}
			}
		}
	}
	serviceAccount, _ = spec["serviceAccountName"].(string)
	if serviceAccount == "" {
		serviceAccount = "default"
	}
	return secrets, serviceAccount
}
