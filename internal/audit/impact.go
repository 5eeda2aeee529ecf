package audit

import (
	"cmp"
	"slices"
	"strings"

	"github.com/signet-dev/signet/internal/policy"
)

// Outcome is what admission makes of one image of one object, all its
// policies' results taken together.
type Outcome string

// Outcomes, from the results of one image: OutcomeDenied when a result
// denies (OutcomeUndecided when every denying result is a "could not
// decide", policy.EffectError), else OutcomeWarned when one warns, else
// OutcomeAllowed (also for an image without results: a namespace the
// policies exempt).
const (
	OutcomeAllowed   Outcome = "allowed"
	OutcomeWarned    Outcome = "warned"
	OutcomeDenied    Outcome = "denied"
	OutcomeUndecided Outcome = "undecided"
)

// Entry is one image of one object in an impact report: an image whose
// outcome changes between two evaluations (Before is set), or, for what
// the cluster denies today, an image admission does not simply allow.
type Entry struct {
	Object Object `json:"object"`
	// Path is the image's field path; Image the image as decided (for a
	// running Pod container, pinned to the digest the kubelet reported).
	Path   string `json:"path"`
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
	// Before is the outcome under the cluster's policies as they are
	// (omitted in a report of today's outcomes); Outcome the outcome
	// reported: with the given policies, or today.
	Before  Outcome `json:"before,omitempty"`
	Outcome Outcome `json:"outcome"`
	// Policies and Reasons are those of the results that make the
	// outcome that is not "allowed" (Outcome's, else Before's for an image
	// a change allows), in admission's words, sorted.
	Policies []string `json:"policies,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
}

// imageOutcome is the outcome of one image with the policies and reasons
// that make it.
type imageOutcome struct {
	path, image, digest string
	outcome             Outcome
	policies, reasons   []string
}

// outcomes folds the results of one object into one outcome per image (by
// path and image), in the order the images first appear.
func outcomes(results []Result) []imageOutcome {
	var out []imageOutcome
	index := map[[2]string]int{}
	var denying, warning [][]Result
	for _, r := range results {
		k := [2]string{r.Path, r.Image}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, imageOutcome{path: r.Path, image: r.Image})
			denying, warning = append(denying, nil), append(warning, nil)
		}
		if out[i].digest == "" {
			out[i].digest = r.Digest
		}
		switch r.Admission {
		case "denied":
			denying[i] = append(denying[i], r)
		case "warned":
			warning[i] = append(warning[i], r)
		}
	}
	for i := range out {
		var making []Result
		switch {
		case len(denying[i]) > 0:
			out[i].outcome, making = OutcomeUndecided, denying[i]
			for _, r := range denying[i] {
				if r.Effect != policy.EffectError {
					out[i].outcome = OutcomeDenied
				}
			}
		case len(warning[i]) > 0:
			out[i].outcome, making = OutcomeWarned, warning[i]
		default:
			out[i].outcome = OutcomeAllowed
		}
		for _, r := range making {
			out[i].policies = append(out[i].policies, r.Policy)
			if r.Reason != "" {
				out[i].reasons = append(out[i].reasons, r.Reason)
			}
		}
		out[i].policies = sortedUnique(out[i].policies)
		out[i].reasons = sortedUnique(out[i].reasons)
	}
	return out
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// Compare returns the images of obj whose outcome differs between before
// and after, the results of one object under two snapshots (an image with
// results on one side only is allowed on the other).
func Compare(obj Object, before, after []Result) []Entry {
	b, a := outcomes(before), outcomes(after)
	seen := map[[2]string]imageOutcome{}
	for _, o := range b {
		seen[[2]string{o.path, o.image}] = o
	}
	var out []Entry
	for _, o := range a {
		k := [2]string{o.path, o.image}
		was, ok := seen[k]
		delete(seen, k)
		if !ok {
			was = imageOutcome{outcome: OutcomeAllowed}
		}
		if was.outcome == o.outcome {
			continue
		}
		e := entryOf(obj, o)
		e.Before = was.outcome
		if o.outcome == OutcomeAllowed {
			e.Policies, e.Reasons = was.policies, was.reasons
		}
		if e.Digest == "" {
			e.Digest = was.digest
		}
		out = append(out, e)
	}
	// Images with results before only: allowed after.
	for _, o := range b {
		if _, ok := seen[[2]string{o.path, o.image}]; !ok || o.outcome == OutcomeAllowed {
			continue
		}
		e := entryOf(obj, o)
		e.Before, e.Outcome = o.outcome, OutcomeAllowed
		out = append(out, e)
	}
	return out
}

// Current returns the images of obj that admission would not simply allow
// today, from the object's results.
func Current(obj Object, results []Result) []Entry {
	var out []Entry
	for _, o := range outcomes(results) {
		if o.outcome != OutcomeAllowed {
			out = append(out, entryOf(obj, o))
		}
	}
	return out
}

func entryOf(obj Object, o imageOutcome) Entry {
	return Entry{Object: obj, Path: o.path, Image: o.image, Digest: o.digest, Outcome: o.outcome, Policies: o.policies, Reasons: o.reasons}
}

// Impact is the report of signet policy impact: the entries, sorted by
// namespace, object and image path, and the counts. Its JSON is stable: the
// same cluster and policies give the same bytes.
type Impact struct {
	// Compared says the report compares the cluster's policies with the
	// given ones (Entries are changes), rather than listing today's
	// outcomes.
	Compared bool          `json:"compared"`
	Entries  []Entry       `json:"entries"`
	Summary  ImpactSummary `json:"summary"`
}

// ImpactSummary counts an impact report.
type ImpactSummary struct {
	// Objects and Images count what was evaluated.
	Objects int `json:"objects"`
	Images  int `json:"images"`
	// Denied, Warned, Undecided and Allowed count the entries by Outcome:
	// newly so, in a comparison.
	Denied    int `json:"denied"`
	Warned    int `json:"warned"`
	Undecided int `json:"undecided"`
	Allowed   int `json:"allowed"`
	// Unread names what could not be read (a kind the caller may not
	// list, an object admission could not read either), sorted: the
	// report may miss entries for them.
	Unread []string `json:"unread,omitempty"`
}

// NewImpact sorts entries and unread into a report and counts them;
// objects and images are the numbers evaluated.
func NewImpact(compared bool, entries []Entry, objects, images int, unread []string) Impact {
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(x, y Entry) int {
		return cmp.Or(
			strings.Compare(x.Object.Namespace, y.Object.Namespace),
			strings.Compare(x.Object.Kind, y.Object.Kind),
			strings.Compare(x.Object.Name, y.Object.Name),
			strings.Compare(x.Object.APIVersion, y.Object.APIVersion),
			strings.Compare(x.Path, y.Path),
			strings.Compare(x.Image, y.Image),
		)
	})
	if entries == nil {
		entries = []Entry{}
	}
	im := Impact{Compared: compared, Entries: entries, Summary: ImpactSummary{Objects: objects, Images: images, Unread: sortedUnique(slices.Clone(unread))}}
	for _, e := range entries {
		switch e.Outcome {
		case OutcomeDenied:
			im.Summary.Denied++
		case OutcomeWarned:
			im.Summary.Warned++
		case OutcomeUndecided:
			im.Summary.Undecided++
		case OutcomeAllowed:
			im.Summary.Allowed++
		}
	}
	return im
}
