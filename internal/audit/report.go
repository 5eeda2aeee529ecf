package audit

import (
	"cmp"
	"encoding/json"
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

// Reports turns the results of one scope into report parts: results sorted
// by object, field and policy; an object's results in one part unless they
// alone exceed the bounds; each result's timestamp carried over from
// previous (the results of the scope's reports as they stand) when it has
// the same value there, now otherwise, so that a scan that changes nothing
// writes nothing.
func Reports(results []Result, previous []ReportResult, now time.Time) []Report {
	since := map[string]Timestamp{}
	for _, r := range previous {
		since[r.identity()] = r.Timestamp
	}
	rs := make([]ReportResult, len(results))
	for i, r := range results {
		rs[i] = reportResult(r)
		if ts, ok := since[rs[i].identity()]; ok {
			rs[i].Timestamp = ts
		} else {
			rs[i].Timestamp = Timestamp{Seconds: now.Unix()}
		}
	}
	slices.SortStableFunc(rs, func(a, b ReportResult) int {
		return cmp.Or(compareRef(a.Resources[0], b.Resources[0]), strings.Compare(a.Rule, b.Rule), strings.Compare(a.Policy, b.Policy))
	})
	var parts []Report
	cur, size := Report{}, 0
	flush := func() {
		if len(cur.Results) > 0 {
			cur.Name = partName(len(parts))
			parts = append(parts, cur)
		}
		cur, size = Report{}, 0
	}
	for i := 0; i < len(rs); {
		// One object's results.
		j := i + 1
		for j < len(rs) && rs[j].Resources[0] == rs[i].Resources[0] {
			j++
		}
		objSize := 0
		for _, r := range rs[i:j] {
			objSize += r.size()
		}
		if len(cur.Results)+(j-i) > MaxResultsPerReport || size+objSize > MaxReportBytes {
			flush()
		}
		for _, r := range rs[i:j] {
			if len(cur.Results) == MaxResultsPerReport || (len(cur.Results) > 0 && size+r.size() > MaxReportBytes) {
				flush()
			}
			cur.Results = append(cur.Results, r)
			cur.Summary.add(r.Result)
			size += r.size()
		}
		i = j
	}
	flush()
	return parts
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

// Same reports whether two report parts hold the same results.
func Same(a, b Report) bool {
	if len(a.Results) != len(b.Results) || a.Summary != b.Summary {
		return false
	}
	for i := range a.Results {
		if a.Results[i].identity() != b.Results[i].identity() || a.Results[i].Timestamp != b.Results[i].Timestamp {
			return false
		}
	}
	return true
}
