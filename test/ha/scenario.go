package ha

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
)

// The replicas' settings, as the Helm chart sets them but shorter: a
// decision within 8 s of a 10 s webhook timeout, 2 s out of rotation
// before the listener closes, and a 30 s certificate (rotated every 20 s
// or so, so the test sees rotations throughout).
const (
	workers         = 4
	decisionTimeout = 8 * time.Second
	shutdownDelay   = 2 * time.Second
	certValidity    = 30 * time.Second
	webhookTimeout  = 10
	leaseDuration   = 15 * time.Second // internal/controller/leader
	leaseRetry      = 2 * time.Second
)

// Report is what Run measured.
type Report struct {
	// RollingRestart counts the admissions through the API server while the
	// three replicas were replaced one by one.
	RollingRestart Tally
	// Failover is the time from the leader's SIGKILL to another replica
	// holding the Lease; AfterKill counts the admissions from the kill
	// until a replacement was in rotation.
	Failover  time.Duration
	AfterKill Tally
	// Rotations is the number of serving-certificate rotations seen, and
	// RotationTLSFailures the admissions that failed at the API server's
	// TLS handshake with signet over the whole run.
	Rotations, RotationTLSFailures int
	// Whole counts every admission of the run.
	Whole Tally
	// OutageDecided is the number of admissions the replicas decided (all
	// rightly, or Run fails) while the API server and etcd were down, and
	// Resync how long after the API server was back every replica
	// enforced a policy made then.
	OutageDecided int
	Resync        time.Duration
}

// Tally is how admissions came out.
type Tally struct{ Attempted, Failed, Wrong int }

func (t tally) export() Tally {
	return Tally{Attempted: t.attempted(), Failed: t.counts[failed] + t.counts[other], Wrong: t.counts[wrong]}
}

// LeaseDuration is how long a Lease lasts unrenewed (the failover bound).
const LeaseDuration = leaseDuration

// Run runs three replicas behind the front with the load
// on, through: a rolling restart (zero failed admissions, zero wrong
// decisions); the leader killed (another takes the Lease within its
// duration, status writing resumes, admissions go on); certificate
// rotations all along (every replica's certificate trusted by the
// webhook configurations at every moment, zero TLS failures); and an
// outage of the API server and etcd (replicas decide from their snapshot,
// stay ready, and follow policy changes once it is back). The API
// server's audit log then shows that only the Lease holder wrote status.
func Run(t *testing.T) Report {
	var rep Report
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	auditPolicyFile, auditLog := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(auditPolicyFile, []byte(auditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(filepath.Join(root, "deploy/crds")), harness.WithScheme(scheme),
		harness.WithAPIServerFlag("audit-policy-file", auditPolicyFile), harness.WithAPIServerFlag("audit-log-path", auditLog))
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	signed := reg.PushRandomImage(t, "prod/app", "v1")
	cosign.Sign(t, signed.Ref, key, harness.Legacy)
	unsigned := reg.PushRandomImage(t, "prod/app", "unsigned")
	late := reg.PushRandomImage(t, "prod/late", "v1")
	cosign.Sign(t, late.Ref, key, harness.Legacy)
	bin := buildServer(t)

	ctx := t.Context()
	c := cluster.Client
	for _, ns := range []string{"signet-system", "team"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	policy := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "prod"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/prod/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}}
	if err := c.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}

	front := startFront(t)
	registerWebhooks(t, cluster, front.Addr())

	users := 0
	start := func() *replica {
		name := fmt.Sprintf("signet-replica-%d", users)
		users++
		kubeconfig := cluster.AddUser(t, name, "system:masters", "signet-replicas")
		r := startReplica(t, bin, name, kubeconfig,
			"--namespace", "signet-system", "--tls-secret", "signet-webhook-tls", "--tls-host", "127.0.0.1",
			"--validating-webhook", "signet", "--mutating-webhook", "signet", "--allow-http-registry",
			"--decision-timeout", decisionTimeout.String(), "--shutdown-delay", shutdownDelay.String(),
			"--cert-validity", certValidity.String())
		front.add(r.addr)
		return r
	}
	replicas := []*replica{start(), start(), start()}
	for _, r := range replicas {
		if err := waitInRotation(front, r, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	certs := watchCertificates(t, cluster, func() []*replica { return replicas })
	defer certs.stop()

	l := startLoad(c, "team", signed.Ref, unsigned.Ref, workers)
	defer l.stop()
	began := time.Now()
	waitFor(t, 60*time.Second, "the first admissions", func() error {
		if n := l.between(began, time.Now()); n.counts[admitted] == 0 || n.counts[denied] == 0 {
			return fmt.Errorf("so far: %s", n)
		}
		return nil
	})

	t.Run("rolling restart", func(t *testing.T) {
		from := time.Now()
		for i := range replicas {
			// A Deployment rollout with maxSurge 1: the new pod is ready
			// before the old one is told to stop.
			next := start()
			if err := waitInRotation(front, next, 60*time.Second); err != nil {
				t.Fatal(err)
			}
			old := replicas[i]
			front.terminating(old.addr)
			took, err := old.terminate(shutdownDelay + decisionTimeout + 2*time.Second + 5*time.Second)
			front.remove(old.addr)
			replicas[i] = next
			if err != nil {
				t.Fatal(err)
			}
			if took < shutdownDelay {
				t.Errorf("%s exited %s after SIGTERM, before its --shutdown-delay %s", old.name, took, shutdownDelay)
			}
			if !strings.Contains(old.logs.String(), `"msg":"stopped"`) {
				t.Errorf("%s did not log that it stopped:\n%s", old.name, tail(old.logs.String(), 10))
			}
			t.Logf("%s stopped %s after SIGTERM", old.name, took.Round(time.Millisecond))
		}
		time.Sleep(time.Second)
		got := l.between(from, time.Now())
		t.Logf("during the rolling restart: %s", got)
		rep.RollingRestart = got.export()
		if got.counts[failed] != 0 || got.counts[wrong] != 0 || got.counts[other] != 0 || got.attempted() < 20 {
			t.Errorf("rolling restart: %s; want every admission decided rightly, and some:\n%s", got, strings.Join(got.samples, "\n"))
		}
	})

	t.Run("leader killed", func(t *testing.T) {
		events, err := readAudit(auditLog)
		if err != nil {
			t.Fatal(err)
		}
		holder := lastHolder(events)
		var leader *replica
		for _, r := range replicas {
			if r.name == holder {
				leader = r
			}
		}
		if leader == nil {
			t.Fatalf("the Lease was last written by %q, not a running replica", holder)
		}
		before := leaseHolder(t, c)
		killed := time.Now()
		leader.kill()
		var failover time.Duration
		waitFor(t, leaseDuration+leaseRetry+5*time.Second, "another replica to take the Lease", func() error {
			if h := leaseHolder(t, c); h == before || h == "" {
				return fmt.Errorf("the Lease is still held by %q", h)
			}
			failover = time.Since(killed)
			return nil
		})
		t.Logf("failover: the Lease changed hands %s after the leader was killed", failover.Round(time.Millisecond))
		rep.Failover = failover
		if failover > leaseDuration+leaseRetry+3*time.Second {
			t.Errorf("failover took %s; the Lease lasts %s, tried every %s", failover, leaseDuration, leaseRetry)
		}
		// Status writing resumes: a changed policy's status is written.
		var p v1alpha1.ClusterImagePolicy
		if err := c.Get(ctx, client.ObjectKey{Name: policy.Name}, &p); err != nil {
			t.Fatal(err)
		}
		p.Spec.Images = append(p.Spec.Images, v1alpha1.ImageMatcher{Glob: reg.Host + "/staging/**"})
		if err := c.Update(ctx, &p); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the new leader to write the policy's status", func() error {
			var got v1alpha1.ClusterImagePolicy
			if err := c.Get(ctx, client.ObjectKey{Name: policy.Name}, &got); err != nil {
				return err
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if got.Status.ObservedGeneration != got.Generation || cond == nil || cond.Status != metav1.ConditionTrue {
				return fmt.Errorf("generation %d, status %+v", got.Generation, got.Status)
			}
			return nil
		})
		// ...and a TrustRoot's: its status, and the TUF state the leader
		// saves for a restart with the mirror down.
		sig := sigstoretest.New(t)
		repo := tuftest.New(t)
		repo.AddTarget(trust.DefaultTrustedRootTarget, sig.TrustedRootJSON())
		mirror := repo.Serve(t)
		if err := c.Create(ctx, &v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{Name: "after-failover"},
			Spec: v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: mirror.URL, Root: repo.InitialRoot()}}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the new leader to write the TrustRoot's status and save its TUF state", func() error {
			var tr v1alpha1.TrustRoot
			if err := c.Get(ctx, client.ObjectKey{Name: "after-failover"}, &tr); err != nil {
				return err
			}
			cond := meta.FindStatusCondition(tr.Status.Conditions, "Ready")
			if cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != tr.Generation {
				return fmt.Errorf("TrustRoot status %+v", tr.Status)
			}
			var cm corev1.ConfigMap
			return c.Get(ctx, client.ObjectKey{Namespace: "signet-system", Name: "signet-trustroot-after-failover"}, &cm)
		})
		// The Deployment replaces the killed pod.
		for i, r := range replicas {
			if r == leader {
				front.remove(r.addr)
				replicas[i] = start()
				if err := waitInRotation(front, replicas[i], 60*time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
		got := l.between(killed, time.Now())
		gap := l.longestGap(killed, time.Now())
		t.Logf("after the leader was killed: %s; longest time without a decided admission %s", got, gap.Round(time.Millisecond))
		rep.AfterKill = got.export()
		// Requests in flight on the killed replica's connections fail
		// (the API server does not send an admission again), and so do
		// connections the front gave it before its probe failed; nothing
		// else may.
		if got.counts[wrong] != 0 || got.counts[other] != 0 || got.counts[failed] > 2*workers || gap > 3*time.Second {
			t.Errorf("after the leader was killed: %s, longest gap %s; want no wrong decision, at most %d failures (the requests in flight), admissions going on:\n%s",
				got, gap, 2*workers, strings.Join(got.samples, "\n"))
		}
	})

	t.Run("certificate rotations", func(t *testing.T) {
		waitFor(t, 3*certValidity, "two certificate rotations", func() error {
			if n := certs.result().rotations; n < 2 {
				return fmt.Errorf("%d so far", n)
			}
			return nil
		})
		rot := certs.result()
		t.Logf("certificate rotations: %d; checks of every replica's certificate against the webhook configurations: %d", rot.rotations, rot.checks)
		rep.Rotations = rot.rotations
		for _, v := range rot.violations {
			t.Error(v)
		}
		tlsFailures := 0
		for _, s := range l.all() {
			if s.out == failed && (strings.Contains(s.err, "x509") || strings.Contains(s.err, "tls:")) {
				tlsFailures++
				t.Errorf("a TLS failure at the API server: %s", s.err)
			}
		}
		rep.RotationTLSFailures = tlsFailures
		got := l.between(began, time.Now())
		if got.counts[wrong] != 0 || got.counts[other] != 0 {
			t.Errorf("so far: %s:\n%s", got, strings.Join(got.samples, "\n"))
		}
	})

	t.Run("control plane outage", func(t *testing.T) {
		// No rotation can happen while the API server is down: start the
		// outage right after one, so the certificates outlive it (a 30 s
		// certificate here; a year's in a cluster).
		waitFreshCertificate(t, cluster, replicas)
		ca := caBundle(t, cluster)
		cluster.StopControlPlane(t)
		down := time.Now()
		hc := reviewClient(ca)
		decided := 0
		for time.Since(down) < 8*time.Second {
			for _, tc := range []struct {
				image string
				allow bool
			}{{signed.Ref, true}, {unsigned.Ref, false}} {
				allowed, err := review(hc, front.Addr(), tc.image)
				if err != nil {
					t.Fatalf("with the API server down, a review of %s: %v", tc.image, err)
				}
				if allowed != tc.allow {
					t.Fatalf("with the API server down, %s: allowed %v, want %v", tc.image, allowed, tc.allow)
				}
				decided++
			}
		}
		for _, r := range replicas {
			if code := readyz(r.addr); code != http.StatusOK {
				t.Errorf("with the API server down, %s /readyz answers %d; want 200 (it decides from its snapshot)", r.name, code)
			}
		}
		t.Logf("API server and etcd down for %s: %d admissions decided by the replicas from their snapshot", time.Since(down).Round(time.Millisecond), decided)
		rep.OutageDecided = decided
		cluster.StartControlPlane(t)
		up := time.Now()
		// Back: the replicas follow a policy change made now.
		other := cosign.GenerateKeyPair(t)
		otherPub, err := os.ReadFile(other.Public)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the API server to take a policy", func() error {
			return c.Create(ctx, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Spec: v1alpha1.ImagePolicySpec{
				Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/prod/late"}},
				Authorities: []v1alpha1.Authority{{Name: "other", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(otherPub)}}},
			}})
		})
		created := time.Now()
		for _, r := range replicas {
			// Informers list again with client-go's back-off (at most 30 s).
			waitFor(t, 60*time.Second, r.name+" to enforce the policy made after the outage", func() error {
				// Certificates rotate again now the API server is back.
				allowed, err := review(reviewClient(caBundle(t, cluster)), r.addr, late.Ref)
				if err != nil {
					return err
				}
				if allowed {
					return fmt.Errorf("%s still admits %s", r.name, late.Ref)
				}
				return nil
			})
		}
		t.Logf("the API server was back %s after its start; every replica enforced a new policy %s after it was made",
			created.Sub(up).Round(time.Millisecond), time.Since(created).Round(time.Millisecond))
		rep.Resync = time.Since(created)
		time.Sleep(2 * time.Second)
		got := l.between(down, time.Now())
		t.Logf("through the outage (the API server's own failures are not admissions): %s", got)
		if got.counts[wrong] != 0 || got.counts[failed] != 0 {
			t.Errorf("through the outage: %s:\n%s", got, strings.Join(got.samples, "\n"))
		}
	})

	l.stop()
	whole := l.between(began, time.Now())
	t.Logf("the whole run: %s", whole)
	rep.Whole = whole.export()
	if whole.counts[wrong] != 0 {
		t.Errorf("wrong decisions in the run:\n%s", strings.Join(whole.samples, "\n"))
	}

	t.Run("only the leader writes", func(t *testing.T) {
		events, err := readAudit(auditLog)
		if err != nil {
			t.Fatal(err)
		}
		ld := checkLeadership(events)
		t.Logf("audit log: %d leader-only writes, Lease holders in turn %v", ld.writes, ld.holders)
		if len(ld.holders) < 2 || ld.writes == 0 {
			t.Errorf("the audit log shows holders %v and %d leader-only writes; want a failover and some writes", ld.holders, ld.writes)
		}
		for _, v := range ld.violations {
			t.Errorf("written by a replica not holding the Lease: %s", v)
		}
	})

	return rep
}
