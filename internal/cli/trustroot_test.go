package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
)

func runSignet(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	r := clitest.Run(t, Execute, args...)
	return r.Stdout, r.Stderr, r.Code
}

// TestTrustRootCreateAndInspect: a TrustRoot built from a repository
// directory and one fetched from a mirror both hold a repository that
// verifies offline and trust what the Sigstore's root trusts.
func TestTrustRootCreateAndInspect(t *testing.T) {
	s := sigstoretest.New(t)
	want, _ := trust.NewMaterial(s.TrustedRootJSON())
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	repo.RotateRoot()
	repo.Refresh()
	rootFile := clitest.WriteTemp(t, "root.json", repo.InitialRoot())
	srv := repo.Serve(t)

	for _, from := range [][]string{{"--from-dir", repo.Dir()}, {"--from-url", srv.URL}} {
		t.Run(from[0], func(t *testing.T) {
			manifest := filepath.Join(t.TempDir(), "trustroot.yaml")
			args := append([]string{"trustroot", "create", "air-gapped", "--root", rootFile, "-o", manifest}, from...)
			if _, stderr, code := runSignet(t, args...); code != ExitOK {
				t.Fatalf("create: exit %d: %s", code, stderr)
			}
			data, err := os.ReadFile(manifest)
			if err != nil {
				t.Fatal(err)
			}
			var tr v1alpha1.TrustRoot
			if err := yaml.UnmarshalStrict(data, &tr); err != nil {
				t.Fatalf("the manifest does not parse: %v\n%s", err, data)
			}
			if tr.Kind != "TrustRoot" || tr.Name != "air-gapped" || tr.Spec.Repository == nil || !bytes.Equal(tr.Spec.Repository.Root, repo.InitialRoot()) {
				t.Fatalf("manifest: %s %s %+v", tr.Kind, tr.Name, tr.Spec)
			}
			if !strings.Contains(string(data), "its TUF metadata expires") {
				t.Errorf("the manifest does not say when to rebuild it:\n%s", data[:200])
			}

			// Inspect it with the mirror down: the repository is self-contained.
			srv.SetDown(true)
			defer srv.SetDown(false)
			out, stderr, code := runSignet(t, "trustroot", "inspect", manifest, "-o", "json")
			if code != ExitOK {
				t.Fatalf("inspect: exit %d: %s", code, stderr)
			}
			var in inspection
			if err := json.Unmarshal([]byte(out), &in); err != nil {
				t.Fatal(err)
			}
			if in.Version != want.Version || in.TUFRootVersion != 2 || in.MetadataExpires == nil {
				t.Errorf("inspect: version %s (want %s), TUF root v%d (want 2), metadata expiry %v", in.Version, want.Version, in.TUFRootVersion, in.MetadataExpires)
			}
			if c := in.Summary.Current; c.CertificateAuthorities != 1 || c.TransparencyLogs != 1 || c.CTLogs != 1 || c.TimestampAuthorities != 1 {
				t.Errorf("inspect: current %+v, want one of each", c)
			}
		})
	}

	t.Run("expired repository refused", func(t *testing.T) {
		expired := tuftest.New(t)
		expired.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
		expired.ExpireTimestamp()
		_, stderr, code := runSignet(t, "trustroot", "create", "x", "--from-dir", expired.Dir(), "--root", clitest.WriteTemp(t, "root.json", expired.InitialRoot()))
		if code != ExitUndecided || !strings.Contains(stderr, "expired") {
			t.Fatalf("exit %d, stderr %q; want 2 and a message saying expired", code, stderr)
		}
	})
	t.Run("wrong root refused", func(t *testing.T) {
		_, stderr, code := runSignet(t, "trustroot", "create", "x", "--from-dir", repo.Dir()) // the public-good root does not sign it
		if code != ExitUndecided || !strings.Contains(stderr, "does not verify") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if _, _, code := runSignet(t, "trustroot", "create", "x"); code != ExitUndecided {
			t.Fatalf("create without a source: exit %d", code)
		}
		if _, _, code := runSignet(t, "trustroot", "create", "x", "--from-dir", "a", "--from-url", "http://b"); code != ExitUndecided {
			t.Fatalf("create with two sources: exit %d", code)
		}
	})
}

func TestTrustRootInspectText(t *testing.T) {
	out, stderr, code := runSignet(t, "trustroot", "inspect")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"embedded public-good root", "Certificate authorities (", "https://fulcio.sigstore.dev", "Transparency logs (", "CT logs (", "Timestamp authorities (", "Valid now:", "Next expiry:"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	s := sigstoretest.New(t)
	out, stderr, code = runSignet(t, "trustroot", "inspect", clitest.WriteTemp(t, "trusted_root.json", s.TrustedRootJSON()))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, sigstoretest.FulcioURL) || !strings.Contains(out, "Valid now: 1 CAs, 1 transparency logs, 1 CT logs, 1 TSAs") {
		t.Errorf("inspect of a trusted root:\n%s", out)
	}
	if _, _, code := runSignet(t, "trustroot", "inspect", clitest.WriteTemp(t, "x.yaml", []byte("kind: Pod\n"))); code != ExitUndecided {
		t.Errorf("inspect of a Pod: exit %d", code)
	}
}

// TestTrustRootServe: the served directory works as a TUF mirror; nothing
// outside it, and no listing, is served.
func TestTrustRootServe(t *testing.T) {
	s := sigstoretest.New(t)
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	secret := clitest.WriteTemp(t, "secret.txt", []byte("not part of the repository"))
	if err := os.Symlink(secret, filepath.Join(repo.Dir(), "link.json")); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		done <- Execute(ctx, []string{"trustroot", "serve", repo.Dir(), "--listen", addr}, &bytes.Buffer{}, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/timestamp.json")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trustroot serve did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	m, err := trust.NewMirror(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := trust.NewTUF(repo.InitialRoot(), m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatalf("TUF client against trustroot serve: %v", err)
	}
	if want, _ := trust.NewMaterial(s.TrustedRootJSON()); got.Version != want.Version {
		t.Errorf("version %s, want %s", got.Version, want.Version)
	}

	for _, path := range []string{"/targets/", "/", "/link.json", "/../secret.txt", "/%2e%2e/secret.txt", "/targets/../../secret.txt"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.URL.Opaque = "//" + addr + path // keep the dots as sent
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/timestamp.json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}
