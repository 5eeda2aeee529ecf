package audit

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/internal/policy"
)

var (
	web = Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: "web"}
	job = Object{APIVersion: "v1", Kind: "Pod", Namespace: "team-b", Name: "job"}
)

const main0 = "spec.template.spec.containers[0].image"

func res(obj Object, path, image, pol string, effect policy.Effect, admission, reason string) Result {
	return Result{Object: obj, Path: path, Image: image, Digest: "sha256:aa", Policy: pol, Effect: effect, Admission: admission, Reason: reason}
}

// An image's outcome: denied if a result denies (undecided when every
// denying result is a could-not-decide), else warned if one warns, else
// allowed.
func TestCurrentOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []Result
		want    []Entry
	}{
		{"all pass", []Result{res(web, main0, "app:1", "ClusterImagePolicy a", policy.EffectPass, "allowed", "")}, nil},
		{"no results (exempt)", nil, nil},
		{
			"a fail among passes denies",
			[]Result{
				res(web, main0, "app:1", "ClusterImagePolicy a", policy.EffectPass, "allowed", ""),
				res(web, main0, "app:1", "ClusterImagePolicy b", policy.EffectFail, "denied", "no signature"),
				res(web, main0, "app:1", "ClusterImagePolicy c", policy.EffectWarn, "warned", "unsigned (warn)"),
			},
			[]Entry{{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Outcome: OutcomeDenied,
				Policies: []string{"ClusterImagePolicy b"}, Reasons: []string{"no signature"}}},
		},
		{
			"denied only for could-not-decide is undecided",
			[]Result{
				res(web, main0, "app:1", "ClusterImagePolicy b", policy.EffectError, "denied", "could not decide: timeout"),
				res(web, main0, "app:1", "ClusterImagePolicy c", policy.EffectWarn, "warned", "unsigned (warn)"),
			},
			[]Entry{{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Outcome: OutcomeUndecided,
				Policies: []string{"ClusterImagePolicy b"}, Reasons: []string{"could not decide: timeout"}}},
		},
		{
			"an error and a fail deny",
			[]Result{
				res(web, main0, "app:1", "ClusterImagePolicy b", policy.EffectError, "denied", "could not decide: timeout"),
				res(web, main0, "app:1", "ClusterImagePolicy a", policy.EffectFail, "denied", "no signature"),
			},
			[]Entry{{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Outcome: OutcomeDenied,
				Policies: []string{"ClusterImagePolicy a", "ClusterImagePolicy b"}, Reasons: []string{"could not decide: timeout", "no signature"}}},
		},
		{
			"warned, the other image allowed",
			[]Result{
				res(web, main0, "app:1", "ClusterImagePolicy c", policy.EffectWarn, "warned", "unsigned (warn)"),
				res(web, "spec.template.spec.containers[1].image", "side:1", "ClusterImagePolicy c", policy.EffectPass, "allowed", ""),
			},
			[]Entry{{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Outcome: OutcomeWarned,
				Policies: []string{"ClusterImagePolicy c"}, Reasons: []string{"unsigned (warn)"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Current(web, tc.results)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// Compare lists exactly the images whose outcome changes, either way, with
// the reasons of the side that is not allowed.
func TestCompare(t *testing.T) {
	side := "spec.template.spec.containers[1].image"
	pass := func(path, image, pol string) Result {
		return res(web, path, image, pol, policy.EffectPass, "allowed", "")
	}
	for _, tc := range []struct {
		name          string
		before, after []Result
		want          []Entry
	}{
		{"nothing changes", []Result{pass(main0, "app:1", "ClusterImagePolicy a")},
			[]Result{pass(main0, "app:1", "ClusterImagePolicy a"), pass(main0, "app:1", "ClusterImagePolicy strict")}, nil},
		{
			"allowed to denied, the other image unchanged",
			[]Result{pass(main0, "app:1", "ClusterImagePolicy a"), pass(side, "side:1", "ClusterImagePolicy a")},
			[]Result{
				pass(main0, "app:1", "ClusterImagePolicy a"),
				res(web, main0, "app:1", "ClusterImagePolicy strict", policy.EffectFail, "denied", "no signature matches key strict"),
				pass(side, "side:1", "ClusterImagePolicy a"),
			},
			[]Entry{{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Before: OutcomeAllowed, Outcome: OutcomeDenied,
				Policies: []string{"ClusterImagePolicy strict"}, Reasons: []string{"no signature matches key strict"}}},
		},
		{
			"denied to allowed keeps the old reason",
			[]Result{res(web, main0, "app:1", "(unmatched)", policy.EffectFail, "denied", "no policy selects the image")},
			[]Result{pass(main0, "app:1", "ClusterImagePolicy new")},
			[]Entry{{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Before: OutcomeDenied, Outcome: OutcomeAllowed,
				Policies: []string{"(unmatched)"}, Reasons: []string{"no policy selects the image"}}},
		},
		{
			"allowed to warned and to undecided",
			[]Result{pass(main0, "app:1", "ClusterImagePolicy a"), pass(side, "side:1", "ClusterImagePolicy a")},
			[]Result{
				res(web, main0, "app:1", "ClusterImagePolicy a", policy.EffectWarn, "warned", "unsigned"),
				res(web, side, "side:1", "ClusterImagePolicy a", policy.EffectError, "denied", "could not decide"),
			},
			[]Entry{
				{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Before: OutcomeAllowed, Outcome: OutcomeWarned,
					Policies: []string{"ClusterImagePolicy a"}, Reasons: []string{"unsigned"}},
				{Object: web, Path: side, Image: "side:1", Digest: "sha256:aa", Before: OutcomeAllowed, Outcome: OutcomeUndecided,
					Policies: []string{"ClusterImagePolicy a"}, Reasons: []string{"could not decide"}},
			},
		},
		{
			"results on one side only",
			[]Result{res(web, main0, "app:1", "ClusterImagePolicy a", policy.EffectFail, "denied", "no")},
			nil,
			[]Entry{{Object: web, Path: main0, Image: "app:1", Digest: "sha256:aa", Before: OutcomeDenied, Outcome: OutcomeAllowed,
				Policies: []string{"ClusterImagePolicy a"}, Reasons: []string{"no"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Compare(web, tc.before, tc.after)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// The report's JSON is the same whatever order objects were evaluated in,
// and names every documented field.
func TestImpactJSONIsStable(t *testing.T) {
	a := Entry{Object: web, Path: main0, Image: "app:1", Before: OutcomeAllowed, Outcome: OutcomeDenied, Policies: []string{"ClusterImagePolicy s"}, Reasons: []string{"no"}}
	b := Entry{Object: job, Path: "spec.containers[0].image", Image: "app@sha256:bb", Digest: "sha256:bb", Before: OutcomeAllowed, Outcome: OutcomeWarned}
	c := a
	c.Path = "spec.template.spec.containers[1].image"
	one, err := json.Marshal(NewImpact(true, []Entry{b, c, a}, 2, 3, []string{"z.example/Thing", "a.example/Other"}))
	if err != nil {
		t.Fatal(err)
	}
	two, err := json.Marshal(NewImpact(true, []Entry{a, b, c}, 2, 3, []string{"a.example/Other", "z.example/Thing"}))
	if err != nil {
		t.Fatal(err)
	}
	if string(one) != string(two) {
		t.Fatalf("the same report in another order marshals differently:\n%s\n%s", one, two)
	}
	want := `{"compared":true,"entries":[` +
		`{"object":{"apiVersion":"apps/v1","kind":"Deployment","namespace":"team-a","name":"web"},"path":"spec.template.spec.containers[0].image","image":"app:1","before":"allowed","outcome":"denied","policies":["ClusterImagePolicy s"],"reasons":["no"]},` +
		`{"object":{"apiVersion":"apps/v1","kind":"Deployment","namespace":"team-a","name":"web"},"path":"spec.template.spec.containers[1].image","image":"app:1","before":"allowed","outcome":"denied","policies":["ClusterImagePolicy s"],"reasons":["no"]},` +
		`{"object":{"apiVersion":"v1","kind":"Pod","namespace":"team-b","name":"job"},"path":"spec.containers[0].image","image":"app@sha256:bb","digest":"sha256:bb","before":"allowed","outcome":"warned"}],` +
		`"summary":{"objects":2,"images":3,"denied":2,"warned":1,"undecided":0,"allowed":0,"unread":["a.example/Other","z.example/Thing"]}}`
	if diff := cmp.Diff(want, string(one)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	empty, err := json.Marshal(NewImpact(false, nil, 0, 0, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"compared":false,"entries":[],"summary":{"objects":0,"images":0,"denied":0,"warned":0,"undecided":0,"allowed":0}}`; string(empty) != want {
		t.Errorf("empty report %s, want %s", empty, want)
	}
}
