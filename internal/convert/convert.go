package convert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/trustspec"
)

// Options tune a conversion.
type Options struct {
	// AllowLossy converts what signet cannot express anyway, doing what
	// each lossy Note says instead of refusing. Off by default: a lossy
	// conversion can change decisions.
	AllowLossy bool
	// NotationTrustStore is notation's trust store directory (or its
	// configuration directory), for the notation format.
	NotationTrustStore string
}

// Format is one source dialect.
type Format struct {
	// Name is the value of --from.
	Name string
	// Description says what the format reads.
	Description string
	// yaml formats are Kubernetes objects read through internal/manifests;
	// the others are read as whole files.
	yaml    bool
	convert func(c *conv, docs []manifests.Document)
}

// Formats lists the source formats, by name.
func Formats() []Format {
	out := []Format{policyControllerFormat, kyvernoFormat, tanzuFormat, crossplaneFormat, policyJSONFormat, notationFormat}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FormatNames lists the values --from accepts.
func FormatNames() []string {
	var names []string
	for _, f := range Formats() {
		names = append(names, f.Name)
	}
	return names
}

// Note is something the user must know about a conversion: a cluster-wide
// setting to apply, or (Lossy) a source field signet could not express and
// what was done instead.
type Note struct {
	Source string // file (document n)
	Path   string // source field
	Text   string
	Lossy  bool
}

func (n Note) String() string {
	s := n.Text
	if n.Path != "" {
		s = n.Path + ": " + s
	}
	if n.Source != "" {
		s = n.Source + ": " + s
	}
	return s
}

// Problem is a source field that cannot be converted.
type Problem struct {
	Source string
	Path   string
	Reason string
	// Invalid: the source system rejects it too; --allow-lossy cannot help.
	Invalid bool
}

func (p Problem) String() string {
	s := p.Path + ": " + p.Reason
	if p.Source != "" {
		s = p.Source + ": " + s
	}
	return s
}

// RefusedError lists every field a conversion refused.
type RefusedError struct{ Problems []Problem }

func (e *RefusedError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	lead := "cannot convert without changing decisions (--allow-lossy converts anyway, with a warning for each)"
	invalid := 0
	for _, p := range e.Problems {
		if p.Invalid {
			invalid++
		}
	}
	if invalid == len(e.Problems) {
		lead = "the source is invalid"
	}
	return fmt.Sprintf("%s:\n  %s", lead, strings.Join(msgs, "\n  "))
}

// Object is one converted object with where it came from.
type Object struct {
	Source string
	// Policy is a *v1alpha1.ClusterImagePolicy, a *v1alpha1.ImagePolicy, or
	// a *v1alpha1.TrustRoot that converted authorities name in
	// key.trustRootRef or keyless.trustRootRef.
	Policy any
}

// Result is what a conversion produced.
type Result struct {
	Objects []Object
	Notes   []Note
}

// MaxFileSize bounds one input file.
const MaxFileSize = manifests.MaxFileSize

// Convert reads files in the given format and converts them. It returns a
// *RefusedError when something cannot be expressed and opts.AllowLossy is
// off. When the sources convert to no policy at all (every pattern selects
// nothing in the source system, say), it returns the Result, whose Notes
// say why, with an error. Other errors mean the input could not be read.
// ctx bounds checking the TrustRoots it emits (see selfCheck).
func Convert(ctx context.Context, format string, files []string, opts Options) (*Result, error) {
	var f *Format
	for _, cand := range Formats() {
		if cand.Name == format {
			f = &cand
			break
		}
	}
	if f == nil {
		return nil, fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(FormatNames(), ", "))
	}
	if len(files) == 0 {
		return nil, errors.New("give at least one file to convert")
	}
	c := newConv(opts)
	var docs []manifests.Document
	if f.yaml {
		set, err := manifests.Load(files...)
		if err != nil {
			return nil, err
		}
		if len(set.Policies) > 0 {
			return nil, fmt.Errorf("%s is already a signet policy", set.Policies[0].ID())
		}
		c.secrets = set.Secrets
		docs = set.Others
	} else {
		for _, path := range files {
			data, err := readFile(path)
			if err != nil {
				return nil, err
			}
			docs = append(docs, manifests.Document{Source: path, JSON: data})
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no %s documents in %s", f.Name, strings.Join(files, ", "))
	}
	return c.run(ctx, f, docs)
}

func (c *conv) run(ctx context.Context, f *Format, docs []manifests.Document) (*Result, error) {
	f.convert(c, docs)
	if c.fatal != nil {
		return nil, c.fatal
	}
	if len(c.problems) > 0 {
		return nil, &RefusedError{Problems: c.problems}
	}
	if len(c.res.Objects) == 0 {
		return c.res, errors.New("the sources hold no image policy to convert")
	}
	for _, o := range c.res.Objects {
		if err := selfCheck(ctx, o); err != nil {
			return nil, err
		}
	}
	return c.res, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // G304: reading the files the user named is the job
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// selfCheck compiles the converted policy's patterns and settings the way
// signet will, so a conversion never emits a policy signet rejects. Trust
// material and Secrets are not resolved here (they are the cluster's).
func selfCheck(ctx context.Context, o Object) error {
	var obj policy.Object
	switch p := o.Policy.(type) {
	case *v1alpha1.TrustRoot:
		// Material given inline is resolved as signet serve will; remote
		// and repository roots need their mirror or a TUF run, left to the
		// cluster.
		if p.Spec.Keys == nil {
			return nil
		}
		if _, err := trustspec.Resolve(ctx, p.Spec); err != nil {
			return fmt.Errorf("%s: TrustRoot %s: %w", o.Source, p.Name, err)
		}
		return nil
	case *v1alpha1.ClusterImagePolicy:
		obj = policy.Object{Kind: policy.KindClusterImagePolicy, Name: p.Name, Spec: p.Spec}
	case *v1alpha1.ImagePolicy:
		obj = policy.Object{Kind: policy.KindImagePolicy, Name: p.Name, Namespace: p.Namespace, Spec: p.Spec}
	}
	// Only what needs no trust material: swap the authorities for static ones.
	obj.Spec.Authorities = []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	obj.Spec.Threshold = nil
	obj.Spec.PullSecrets = nil // Secrets are the cluster's
	if p := policy.CompileObject(ctx, obj, nil); p.Err != nil {
		return fmt.Errorf("%s: internal error: the converted policy does not compile: %w", o.Source, p.Err)
	}
	return nil
}

func newConv(opts Options) *conv {
	return &conv{opts: opts, res: &Result{}, names: map[string]int{}, secrets: map[string]map[string][]byte{}}
}

// conv collects a conversion's objects, notes and problems.
type conv struct {
	opts     Options
	res      *Result
	problems []Problem
	fatal    error
	names    map[string]int
	secrets  map[string]map[string][]byte
	source   string // the document being converted
}

// note records something the user must act on or know.
func (c *conv) note(path, format string, args ...any) {
	n := Note{Source: c.source, Path: path, Text: fmt.Sprintf(format, args...)}
	for _, old := range c.res.Notes {
		if old == n {
			return
		}
	}
	c.res.Notes = append(c.res.Notes, n)
}

// clusterNote records a cluster-wide setting, once per conversion.
func (c *conv) clusterNote(format string, args ...any) {
	n := Note{Text: fmt.Sprintf(format, args...)}
	for _, old := range c.res.Notes {
		if old == n {
			return
		}
	}
	c.res.Notes = append(c.res.Notes, n)
}

// refuse records that path cannot be expressed. With AllowLossy it records
// a lossy note saying what is done instead (fallback) and returns true: the
// caller then does the fallback. Without, it records a Problem and returns
// false.
func (c *conv) refuse(path, fallback, format string, args ...any) bool {
	reason := "not supported: " + fmt.Sprintf(format, args...)
	if c.opts.AllowLossy {
		c.res.Notes = append(c.res.Notes, Note{Source: c.source, Path: path, Text: reason + "; --allow-lossy: " + fallback, Lossy: true})
		return true
	}
	c.problems = append(c.problems, Problem{Source: c.source, Path: path, Reason: reason})
	return false
}

// invalid records that the source itself is invalid: the source system
// would reject it too, so there is nothing to convert, lossy or not.
func (c *conv) invalid(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Source: c.source, Path: path, Reason: "invalid: " + fmt.Sprintf(format, args...), Invalid: true})
}

var strictField = regexp.MustCompile(`(unknown|duplicate) field "([^"]*)"`)

// decode decodes a document strictly: every field the converter does not
// know is refused by name (a field it does not know is a field whose meaning
// it cannot keep). With AllowLossy unknown fields are ignored with a note.
func (c *conv) decode(js []byte, v any) bool {
	strictErrs, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		c.invalid("", "%v", err)
		return false
	}
	for _, e := range strictErrs {
		m := strictField.FindStringSubmatch(e.Error())
		if m == nil {
			c.invalid("", "%v", e)
			continue
		}
		if m[1] == "duplicate" {
			c.invalid(m[2], "duplicate field")
			continue
		}
		c.refuse(m[2], "ignored", "a field this converter does not know (it cannot keep its meaning)")
	}
	return true
}

// present reports whether a raw optional field was given.
func present(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}

// objectName makes a unique metadata.name from parts.
func (c *conv) objectName(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('-')
		}
		b.WriteString(p)
	}
	name := sanitizeName(b.String())
	if name == "" {
		name = "converted"
	}
	if n := c.names[name]; n > 0 {
		c.names[name] = n + 1
		name = fmt.Sprintf("%s-%d", strings.TrimRight(truncate(name, 58), "-"), n+1)
	} else {
		c.names[name] = 1
	}
	return name
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func sanitizeName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(truncate(strings.Trim(b.String(), "-"), 63), "-")
}

// AnnotationSource names where a converted policy came from.
const AnnotationSource = "signet.dev/converted-from"

// addCluster adds a ClusterImagePolicy.
func (c *conv) addCluster(name, from string, spec v1alpha1.ImagePolicySpec) {
	p := &v1alpha1.ClusterImagePolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: policy.KindClusterImagePolicy},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{AnnotationSource: from}},
		Spec:       spec,
	}
	c.res.Objects = append(c.res.Objects, Object{Source: c.source, Policy: p})
}

// addNamespaced adds an ImagePolicy.
func (c *conv) addNamespaced(name, namespace, from string, spec v1alpha1.ImagePolicySpec) {
	p := &v1alpha1.ImagePolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: policy.KindImagePolicy},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: map[string]string{AnnotationSource: from}},
		Spec:       spec,
	}
	c.res.Objects = append(c.res.Objects, Object{Source: c.source, Policy: p})
}

// addTrustRoot adds a TrustRoot holding spec and returns its name; a
// TrustRoot with the same spec is reused.
func (c *conv) addTrustRoot(name, from string, spec v1alpha1.TrustRootSpec) string {
	want, _ := json.Marshal(spec)
	for _, o := range c.res.Objects {
		if tr, ok := o.Policy.(*v1alpha1.TrustRoot); ok {
			if got, _ := json.Marshal(tr.Spec); string(got) == string(want) {
				return tr.Name
			}
		}
	}
	c.emitTrustRoot(name, from, spec)
	return name
}

// emitTrustRoot adds a TrustRoot named name.
func (c *conv) emitTrustRoot(name, from string, spec v1alpha1.TrustRootSpec) {
	tr := &v1alpha1.TrustRoot{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "TrustRoot"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{AnnotationSource: from}},
		Spec:       spec,
	}
	c.res.Objects = append(c.res.Objects, Object{Source: c.source, Policy: tr})
}

// secretValue finds a Secret given among the input files, by namespace
// ("" for any) and name.
func (c *conv) secretValues(namespace, name string) (map[string][]byte, bool) {
	if namespace != "" {
		v, ok := c.secrets[namespace+"/"+name]
		return v, ok
	}
	var found map[string][]byte
	n := 0
	for k, v := range c.secrets {
		if strings.HasSuffix(k, "/"+name) {
			found, n = v, n+1
		}
	}
	return found, n == 1
}
