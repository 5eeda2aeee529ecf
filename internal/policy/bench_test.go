package policy

import (
	"fmt"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
)

// snapshotOfSize builds n static policies, one per team repository; the
// probe registry.example.org/team-0/app matches exactly one at every size.
func snapshotOfSize(tb testing.TB, n int) *Snapshot {
	static := []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	var ps []*Policy
	for i := range n {
		ps = append(ps, CompileObject(tb.Context(), Object{Kind: KindClusterImagePolicy, Name: fmt.Sprintf("p%d", i), Spec: v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: fmt.Sprintf("registry.example.org/team-%d/**", i)}},
			Authorities: static,
		}}, nil))
	}
	snap, err := NewSnapshot(ps, Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

func BenchmarkMatch(b *testing.B) {
	ref, err := reference.Parse("registry.example.org/team-0/app:v1")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 100, 10000} {
		snap := snapshotOfSize(b, n)
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got := snap.Match(ref, Target{Namespace: "default", Kind: "Pod"}); len(got) != 1 {
					b.Fatalf("matched %d policies", len(got))
				}
			}
		})
	}
}
