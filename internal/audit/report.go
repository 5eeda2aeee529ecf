package audit

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The contents of wgpolicyk8s.io/v1alpha2 PolicyReports and
// ClusterPolicyReports, the format Policy Reporter and Kyverno's tooling
// read. Package controller/audit writes them; this file decides what they
// hold.

// ReportName is the name of the first report of a scope; the next parts
// are ReportName-2, ReportName-3, ...
const ReportName = "signet-audit"

// Bounds of one report part, far below the API server's 1.5 MiB object
// limit (and etcd's): at most MaxResultsPerReport results and about
// MaxReportBytes of JSON.
const (
	MaxResultsPerReport = 1000
	MaxReportBytes      = 512 << 10
)

// Report is one report part: the results of some objects of one scope (a
// namespace, or "" for cluster-scoped objects).
type Report struct {
	Name    string         `json:"-"`
	Summary Summary        `json:"summary"`
	Results []ReportResult `json:"results"`
}

// Summary counts a report's results by result.
type Summary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// ReportResult is one result as the report format has it.
type ReportResult struct {
	Source    string    `json:"source"`
	Policy    string    `json:"policy"`
	Rule      string    `json:"rule"`
	Category  string    `json:"category"`
	Severity  string    `json:"severity"`
	Timestamp Timestamp `json:"timestamp"`
	Result    string    `json:"result"`
	Scored    bool      `json:"scored"`
	// Resources name the object (one).
	Resources  []ResourceRef     `json:"resources"`
	Message    string            `json:"message,omitempty"`
	Properties map[string]string `json:"properties"`
}

// Timestamp is when a result first took its value.
type Timestamp struct {
	Seconds int64 `json:"seconds"`
	Nanos   int32 `json:"nanos"`
}

// ResourceRef is a core/v1 ObjectReference as the reports have it.
type ResourceRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

// Source is the reports' source field.
const Source = "signet"

// Written is what a scope's report parts held when they were last written
// (or read back), kept compactly: enough to carry timestamps over, to keep
// each object in its part, and to tell a changed part from an unchanged
// one. The zero value is a scope with no reports.
type Written struct {
	// Parts are the parts' names and a digest of what each holds.
	Parts []WrittenPart
	since map[uint64]Timestamp // result identity → timestamp
	part  map[string]string    // object → the part it is in
}

// WrittenPart is one part as written.
type WrittenPart struct {
	Name string
	Sum  [sha256.Size]byte
}

// Sum returns the part whose name is name, and whether there is one.
func (w Written) Sum(name string) ([sha256.Size]byte, bool) {
	for _, p := range w.Parts {
		if p.Name == name {
			return p.Sum, true
		}
	}
	return [sha256.Size]byte{}, false
}

// Record makes the record of parts (as Reports returns them, or as read
// from the cluster).
func Record(parts []Report) Written {
	w := Written{since: map[uint64]Timestamp{}, part: map[string]string{}}
	for _, p := range parts {
		w.Parts = append(w.Parts, WrittenPart{Name: p.Name, Sum: p.sum()})
		for _, r := range p.Results {
			w.since[r.identityHash()] = r.Timestamp
			w.part[objectKey(r.Resources[0])] = p.Name
		}
	}
	return w
}

// Reports turns the results of one scope into report parts, given what
// was written before: each result keeps the timestamp it had when it has
// the same value, else takes now; an object stays in the part it was in
// while that part has room, and a new object goes to the first part with
// room, else to a new part; a part holds at most MaxResultsPerReport
// results and about MaxReportBytes, and an object's results stay in one
// part unless they alone exceed that. So a scan that changes nothing
// makes the same parts (nothing is written), and a change touches the
// parts of the objects it changed. When deletions leave more than twice
// the parts the results need (plus one), the parts are packed again.
func Reports(results []Result, previous Written, now time.Time) []Report {
	rs := make([]ReportResult, len(results))
	for i, r := range results {
		rs[i] = reportResult(r)
		if ts, ok := previous.since[rs[i].identityHash()]; ok {
			rs[i].Timestamp = ts
		} else {
			rs[i].Timestamp = Timestamp{Seconds: now.Unix()}
		}
	}
	slices.SortStableFunc(rs, compareResults)
	// The objects, each with its results and their size.
	type object struct {
		key     string
		results []ReportResult
		size    int
	}
	var objects []object
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].Resources[0] == rs[i].Resources[0] {
			j++
		}
		o := object{key: objectKey(rs[i].Resources[0]), results: rs[i:j]}
		for _, r := range o.results {
			o.size += r.size()
		}
		objects = append(objects, o)
		i = j
	}
	type part struct {
		Report
		size int
	}
	byName := map[string]*part{}
	var order []*part
	newPart := func() *part {
		for i := 0; ; i++ {
			if name := partName(i); byName[name] == nil {
				p := &part{Report: Report{Name: name}}
				byName[name] = p
				order = append(order, p)
				return p
			}
		}
	}
	for _, wp := range previous.Parts {
		byName[wp.Name] = &part{Report: Report{Name: wp.Name}}
		order = append(order, byName[wp.Name])
	}
	fits := func(p *part, o object) bool {
		return len(p.Results)+len(o.results) <= MaxResultsPerReport && p.size+o.size <= MaxReportBytes
	}
	add := func(p *part, o object) {
		p.Results = append(p.Results, o.results...)
		p.size += o.size
	}
	var placeLater []object
	for _, o := range objects {
		if p := byName[previous.part[o.key]]; p != nil && fits(p, o) {
			add(p, o)
			continue
		}
		placeLater = append(placeLater, o)
	}
	for _, o := range placeLater {
		placed := false
		for _, p := range order {
			if fits(p, o) {
				add(p, o)
				placed = true
				break
			}
		}
		if placed {
			continue
		}
		// A new part; an object larger than a part alone fills several.
		p := newPart()
		for _, r := range o.results {
			if len(p.Results) == MaxResultsPerReport || (len(p.Results) > 0 && p.size+r.size() > MaxReportBytes) {
				p = newPart()
			}
			p.Results = append(p.Results, r)
			p.size += r.size()
		}
	}
	used, size := 0, 0
	for _, p := range order {
		if len(p.Results) > 0 {
			used++
		}
		size += p.size
	}
	if least := max((len(rs)+MaxResultsPerReport-1)/MaxResultsPerReport, (size+MaxReportBytes-1)/MaxReportBytes); used > 2*least+1 && len(previous.Parts) > 0 {
		// Deletions left the parts mostly empty: pack them again (one
		// rewrite of every part, rather than many half-empty objects).
		return Reports(results, Written{since: previous.since}, now)
	}
	var parts []Report
	for _, p := range order {
		if len(p.Results) == 0 {
			continue
		}
		slices.SortStableFunc(p.Results, compareResults)
		for _, r := range p.Results {
			p.Summary.add(r.Result)
		}
		parts = append(parts, p.Report)
	}
	slices.SortFunc(parts, func(a, b Report) int { return cmp.Compare(partIndex(a.Name), partIndex(b.Name)) })
	return parts
}

func compareResults(a, b ReportResult) int {
	return cmp.Or(compareRef(a.Resources[0], b.Resources[0]), strings.Compare(a.Rule, b.Rule), strings.Compare(a.Policy, b.Policy))
}

// objectKey names an object in a scope: its UID, else kind and name.
func objectKey(r ResourceRef) string {
	if r.UID != "" {
		return r.UID
	}
	return r.Kind + "/" + r.Name
}

// partIndex is the position of a part's name (0 for ReportName).
func partIndex(name string) int {
	if n, ok := strings.CutPrefix(name, ReportName+"-"); ok {
		i, _ := strconv.Atoi(n)
		return i - 1
	}
	return 0
}

func partName(i int) string {
	if i == 0 {
		return ReportName
	}
	return ReportName + "-" + strconv.Itoa(i+1)
}

// IsReportName reports whether name is one of the parts' names.
func IsReportName(name string) bool {
	if name == ReportName {
		return true
	}
	n, ok := strings.CutPrefix(name, ReportName+"-")
	if !ok {
		return false
	}
	i, err := strconv.Atoi(n)
	return err == nil && i >= 2 && strconv.Itoa(i) == n
}

func reportResult(r Result) ReportResult {
	props := map[string]string{"image": r.Image, "admission": r.Admission}
	if r.Digest != "" {
		props["digest"] = r.Digest
	}
	if len(r.Authorities) > 0 {
		props["authorities"] = strings.Join(r.Authorities, ",")
	}
	severity := "high"
	if r.Admission != "denied" {
		severity = "medium"
	}
	return ReportResult{
		Source: Source, Policy: r.Policy, Rule: r.Path, Category: "Image Verification", Severity: severity,
		Result: string(r.Effect), Scored: true, Message: r.message(),
		Resources: []ResourceRef{{APIVersion: r.Object.APIVersion, Kind: r.Object.Kind, Namespace: r.Object.Namespace,
			Name: r.Object.Name, UID: r.Object.UID}},
		Properties: props,
	}
}

// message is what the report says of a result, in admission's words.
func (r Result) message() string {
	name := r.Image
	if r.Digest != "" && !strings.Contains(name, "@") {
		name += " (" + r.Digest + ")"
	}
	switch {
	case r.Reason == "" && r.Effect == "pass":
		return name + " passed " + r.Policy
	case strings.Contains(r.Reason, r.Image):
		return r.Reason
	}
	return name + ": " + r.Reason
}

// identity is what makes a result the same result as before: everything
// but its timestamp.
func (r ReportResult) identity() string {
	keys := make([]string, 0, len(r.Properties))
	for k, v := range r.Properties {
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	ref := r.Resources[0]
	return strings.Join(append([]string{r.Policy, r.Rule, r.Result, r.Message, ref.APIVersion, ref.Kind, ref.Namespace, ref.Name, ref.UID}, keys...), "\x00")
}

func (r ReportResult) identityHash() uint64 {
	h := fnv.New64a()
	h.Write([]byte(r.identity()))
	return h.Sum64()
}

func (r ReportResult) size() int {
	b, _ := json.Marshal(r)
	return len(b) + 8
}

func (s *Summary) add(result string) {
	switch result {
	case "pass":
		s.Pass++
	case "fail":
		s.Fail++
	case "warn":
		s.Warn++
	case "error":
		s.Error++
	case "skip":
		s.Skip++
	}
}

func compareRef(a, b ResourceRef) int {
	return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name), strings.Compare(a.UID, b.UID))
}

// sum digests what a part holds: its results (timestamps included).
func (r Report) sum() [sha256.Size]byte {
	h := sha256.New()
	for _, res := range r.Results {
		fmt.Fprintf(h, "%s\x00%d\x00", res.identity(), res.Timestamp.Seconds)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// Changed reports whether part differs from what was written under its
// name (a part not written before has changed).
func (w Written) Changed(part Report) bool {
	sum, ok := w.Sum(part.Name)
	return !ok || sum != part.sum()
}
