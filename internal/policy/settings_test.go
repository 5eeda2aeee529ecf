package policy

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/verify"
)

// TestSettings checks that CompileObject parses every setting with its
// default, and refuses a spelling it does not know naming the field and
// every allowed value.
func TestSettings(t *testing.T) {
	type got struct {
		Mode           Mode
		OnError        Action
		Digest         DigestRule
		Platforms      Platforms
		SignedIdentity verify.SignedIdentity
	}
	defaults := got{ModeEnforce, ActionDeny, DigestPin, PlatformsIndex, verify.SignedIdentityOff}
	for _, tc := range []struct {
		name string
		spec v1alpha1.ImagePolicySpec
		want got
		err  string
	}{
		{name: "defaults", want: defaults},
		{name: "every setting",
			spec: v1alpha1.ImagePolicySpec{Mode: "warn", OnError: "allow", Digest: "require", Platforms: "all", SignedIdentity: "matchExact"},
			want: got{ModeWarn, ActionAllow, DigestRequire, PlatformsAll, verify.MatchExact}},
		{name: "onError warn, digest none, matchRepository",
			spec: v1alpha1.ImagePolicySpec{Mode: "enforce", OnError: "warn", Digest: "none", Platforms: "index", SignedIdentity: "matchRepository"},
			want: got{ModeEnforce, ActionWarn, DigestNone, PlatformsIndex, verify.MatchRepository}},
		{name: "matchRepoDigestOrExact", spec: v1alpha1.ImagePolicySpec{SignedIdentity: "matchRepoDigestOrExact"},
			want: got{ModeEnforce, ActionDeny, DigestPin, PlatformsIndex, verify.MatchRepoDigestOrExact}},
		{name: "bad mode", spec: v1alpha1.ImagePolicySpec{Mode: "audit"}, want: defaults,
			err: `ClusterImagePolicy p is invalid: spec.mode: "audit" is not one of enforce, warn`},
		{name: "bad onError", spec: v1alpha1.ImagePolicySpec{OnError: "ignore"}, want: defaults,
			err: `ClusterImagePolicy p is invalid: spec.onError: "ignore" is not one of deny, warn, allow`},
		{name: "bad digest", spec: v1alpha1.ImagePolicySpec{Digest: "Pin"}, want: defaults,
			err: `ClusterImagePolicy p is invalid: spec.digest: "Pin" is not one of pin, require, none`},
		{name: "bad platforms", spec: v1alpha1.ImagePolicySpec{Platforms: "some"}, want: defaults,
			err: `ClusterImagePolicy p is invalid: spec.platforms: "some" is not one of index, all`},
		{name: "bad signedIdentity", spec: v1alpha1.ImagePolicySpec{SignedIdentity: "exactReference"}, want: defaults,
			err: `ClusterImagePolicy p is invalid: spec.signedIdentity: "exactReference" is not one of off, matchRepository, matchExact, matchRepoDigestOrExact`},
		{name: "every error, in field order", spec: v1alpha1.ImagePolicySpec{Mode: "m", OnError: "o", Digest: "d", Platforms: "p", SignedIdentity: "s"}, want: defaults,
			err: `ClusterImagePolicy p is invalid: spec.mode: "m" is not one of enforce, warn; ` +
				`spec.onError: "o" is not one of deny, warn, allow; ` +
				`spec.signedIdentity: "s" is not one of off, matchRepository, matchExact, matchRepoDigestOrExact; ` +
				`spec.platforms: "p" is not one of index, all; ` +
				`spec.digest: "d" is not one of pin, require, none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Images = []v1alpha1.ImageMatcher{{Glob: "**"}}
			spec.Authorities = []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
			p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: spec}, nil)
			err := ""
			if p.Err != nil {
				err = p.Err.Error()
			}
			if diff := cmp.Diff(tc.err, err); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got{p.Mode(), p.OnError(), p.Digest(), p.Platforms(), p.SignedIdentity()}); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseAction covers the values of --unmatched and onError.
func TestParseAction(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Action
		err  string
	}{
		{"", ActionDeny, ""},
		{"deny", ActionDeny, ""},
		{"warn", ActionWarn, ""},
		{"allow", ActionAllow, ""},
		{"Allow", ActionDeny, `"Allow" is not one of deny, warn, allow`},
		{"audit", ActionDeny, `"audit" is not one of deny, warn, allow`},
	} {
		got, err := ParseAction(tc.in)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tc.want || msg != tc.err {
			t.Errorf("ParseAction(%q) = %q, %q; want %q, %q", tc.in, got, msg, tc.want, tc.err)
		}
	}
	if err := (Config{Unmatched: "ignore"}).Validate(); err == nil || err.Error() != `unmatched images: "ignore" is not one of deny, warn, allow` {
		t.Errorf("Config.Validate: %v", err)
	}
}

// TestSettingsJSON checks that the typed values marshal as the API spells
// them (signet policy test -o json shows each policy's mode).
func TestSettingsJSON(t *testing.T) {
	got, err := json.Marshal(struct {
		M Mode
		A Action
		D DigestRule
		P Platforms
	}{ModeWarn, ActionAllow, DigestRequire, PlatformsAll})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"M":"warn","A":"allow","D":"require","P":"all"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
