package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestLoadUnderRace is the load test of `make test` (which runs it with
// -race): up to 2,000 admissions in at most 10 s from 16 concurrent clients,
// loopback only, mixing signed and unsigned images, tags and digests, an
// enforced and a warn-mode policy and an unmatched image, with cache
// lifetimes short enough that verifications, cache hits and expiries
// interleave. Every answer must arrive and be the right decision.
func TestLoadUnderRace(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	signed := reg.PushRandomImage(t, "prod/app", "v1")
	cosign.Sign(t, signed.Ref, key, harness.Legacy)
	bundled := reg.PushRandomImage(t, "prod/api", "v1")
	cosign.Sign(t, bundled.Ref, key, harness.Bundle)
	unsigned := reg.PushRandomImage(t, "prod/app", "unsigned")
	audited := reg.PushRandomImage(t, "audit/app", "v1")

	pub := readKey(t, key)
	dir := writePolicies(t, keyPolicy("prod", reg.Host+"/prod/**", "enforce", pub), keyPolicy("audit", reg.Host+"/audit/**", "warn", pub))
	s := startSignet(t, dir, "--cache-ttl", "300ms", "--cache-negative-ttl", "100ms", "--decision-timeout", "20s")

	type pod struct {
		images []string
		allow  bool
		// want is in the denial message, or in a warning when allowed.
		want string
	}
	pods := []pod{
		{[]string{signed.Tag}, true, ""},
		{[]string{signed.Ref}, true, ""},
		{[]string{bundled.Tag, signed.Ref}, true, ""},
		{[]string{unsigned.Tag}, false, "no signature found"},
		{[]string{unsigned.Ref}, false, "no signature found"},
		{[]string{signed.Ref, unsigned.Tag, bundled.Ref}, false, unsigned.Tag},
		{[]string{audited.Tag}, true, "denied by policy audit"},
		{[]string{"registry.example.org/other/app:v1"}, false, "did not match any image policies"},
		{[]string{signed.Tag + "@" + unsigned.Digest}, false, "no signature found"},
	}
	bodies := make([][]byte, len(pods))
	for i, p := range pods {
		bodies[i] = podReview(fmt.Sprintf("load-%d", i), "default", p.images...)
	}
	check := func(i int, r *admissionv1.AdmissionResponse) error {
		p := pods[i%len(pods)]
		msg := ""
		if r.Result != nil {
			msg = r.Result.Message
		}
		switch {
		case r.Allowed != p.allow:
			return fmt.Errorf("%v: allowed %v, want %v (%s)", p.images, r.Allowed, p.allow, msg)
		case !p.allow && !strings.Contains(msg, p.want):
			return fmt.Errorf("%v: denied with %q, want %q in it", p.images, msg, p.want)
		case p.allow && p.want != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), p.want):
			return fmt.Errorf("%v: warnings %q, want %q in them", p.images, r.Warnings, p.want)
		}
		return nil
	}
	l := drive(s, 16, 2000, 10*time.Second, func(i int) []byte { return bodies[i%len(bodies)] }, check)
	t.Logf("%d admissions in %s (%.0f/s): p50 %.1f ms, p99 %.1f ms, %d errors", l.n, l.elapsed.Round(time.Millisecond), l.throughput(), ms(l.quantile(0.5)), ms(l.quantile(0.99)), l.errors)
	if l.errors > 0 {
		t.Fatalf("%d of %d admissions failed or were wrong; the first: %v\nsignet serve logs (tail):\n%s", l.errors, l.n, l.firstErr, tail(s.logs.String(), 4000))
	}
	if l.n < 2*len(pods) {
		t.Fatalf("only %d admissions in 10 s", l.n)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
