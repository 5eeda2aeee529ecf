package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/test/sigstoretest"
)

// The keyless signer of the verify-bundle conformance tests.
const (
	vbIssuer   = "https://token.actions.githubusercontent.com"
	vbIdentity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

func writeBytes(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// editBundleJSON rewrites a bundle's JSON with edit.
func editBundleJSON(t *testing.T, raw []byte, edit func(*protobundle.Bundle)) []byte {
	t.Helper()
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(raw, &pb); err != nil {
		t.Fatal(err)
	}
	edit(&pb)
	out, err := protojson.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyBundleKeyless runs `signet verify-bundle` as the Sigstore client
// conformance suite does, on keyless bundles made by a local Sigstore whose
// trusted root is given with --trusted-root: exit 0 only for the exact
// identity and issuer and the signed artifact, 1 for anything that does not
// verify, 2 for bad usage.
func TestVerifyBundleKeyless(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	dir := t.TempDir()
	trustedRoot := writeBytes(t, dir, "trusted_root.json", s.TrustedRootJSON())
	content := []byte("release 1.2.3\n")
	file := writeBytes(t, dir, "artifact.txt", content)
	other := writeBytes(t, dir, "other.txt", []byte("release 1.2.4\n"))
	sum := sha256.Sum256(content)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	otherSum := sha256.Sum256([]byte("release 1.2.4\n"))
	otherDigest := "sha256:" + hex.EncodeToString(otherSum[:])

	o := sigstoretest.SignOptions{Identity: vbIdentity, Issuer: vbIssuer}
	bundleFile := func(name string, raw []byte) string { return writeBytes(t, dir, name, raw) }
	message := bundleFile("message.json", s.MessageBundle(t, content, o))
	statement := sigstoretest.Statement(t, "https://slsa.dev/provenance/v1", nil, "artifact.txt", digest)
	dsse := bundleFile("dsse.json", s.Bundle(t, statement, o))
	v2 := o
	v2.RekorV2 = true
	v2NoTSA := v2
	v2NoTSA.NoTimestamp = true
	noSCT := o
	noSCT.NoSCT = true
	evil := o
	evil.Identity = "https://evil.example/" + vbIdentity
	longer := o
	longer.Identity = vbIdentity + "-evil"
	evilIssuer := o
	evilIssuer.Issuer = vbIssuer + ".evil.example"
	version := func(v string) sigstoretest.SignOptions { o := o; o.BundleVersion = v; return o }
	noLog := bundleFile("no-log.json", editBundleJSON(t, s.MessageBundle(t, content, o), func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.TlogEntries = nil
	}))

	keyless := func(bundle, artifact string, extra ...string) []string {
		return append([]string{"verify-bundle", "--bundle", bundle, "--certificate-identity", vbIdentity,
			"--certificate-oidc-issuer", vbIssuer, "--trusted-root", trustedRoot, artifact}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		say  []string
	}{
		{"message signature, file", keyless(message, file), ExitOK, []string{"verified"}},
		{"message signature, digest", keyless(message, digest), ExitOK, []string{"verified"}},
		{"message signature, another file", keyless(message, other), ExitDenied, []string{"does not verify"}},
		{"message signature, another digest", keyless(message, otherDigest), ExitDenied, []string{"does not verify"}},
		{"DSSE, file", keyless(dsse, file), ExitOK, []string{"verified"}},
		{"DSSE, digest", keyless(dsse, digest), ExitOK, []string{"verified"}},
		{"DSSE, another file", keyless(dsse, other), ExitDenied, []string{"does not verify"}},
		{"DSSE, another digest", keyless(dsse, otherDigest), ExitDenied, []string{"does not verify"}},
		{"bundle v0.1", keyless(bundleFile("v01.json", s.MessageBundle(t, content, version("0.1"))), file), ExitOK, []string{"verified"}},
		{"bundle v0.2", keyless(bundleFile("v02.json", s.MessageBundle(t, content, version("0.2"))), file), ExitOK, []string{"verified"}},
		{"bundle v0.3", keyless(bundleFile("v03.json", s.MessageBundle(t, content, version("0.3"))), file), ExitOK, []string{"verified"}},
		{"DSSE bundle v0.1", keyless(bundleFile("dsse-v01.json", s.Bundle(t, statement, version("0.1"))), file), ExitOK, []string{"verified"}},
		{"Rekor v2, message signature", keyless(bundleFile("v2.json", s.MessageBundle(t, content, v2)), file), ExitOK, []string{"verified"}},
		{"Rekor v2, DSSE", keyless(bundleFile("v2-dsse.json", s.Bundle(t, statement, v2)), file), ExitOK, []string{"verified"}},
		{"Rekor v2 without a signed timestamp", keyless(bundleFile("v2-no-tsa.json", s.MessageBundle(t, content, v2NoTSA)), file), ExitDenied,
			[]string{"does not verify", "no verified time of signing"}},
		{"wrong subject", append(keyless(message, file)[:4], "release@acme.example", "--certificate-oidc-issuer", vbIssuer, "--trusted-root", trustedRoot, file), ExitDenied,
			[]string{"does not verify", "release@acme.example"}},
		{"wrong issuer", append(keyless(message, file)[:6], "https://accounts.google.com", "--trusted-root", trustedRoot, file), ExitDenied,
			[]string{"does not verify", "https://accounts.google.com"}},
		{"subject that contains the expected one", keyless(bundleFile("evil.json", s.MessageBundle(t, content, evil)), file), ExitDenied,
			[]string{"does not verify", "certificate identity (issuer " + vbIssuer + ", subject https://evil.example/" + vbIdentity + ") does not match identities [issuer " + vbIssuer + ", subject " + vbIdentity + "]"}},
		{"subject that extends the expected one", keyless(bundleFile("longer.json", s.MessageBundle(t, content, longer)), file), ExitDenied, []string{"does not verify"}},
		{"issuer that contains the expected one", keyless(bundleFile("evil-issuer.json", s.MessageBundle(t, content, evilIssuer)), file), ExitDenied, []string{"does not verify"}},
		{"no SCT", keyless(bundleFile("no-sct.json", s.MessageBundle(t, content, noSCT)), file), ExitDenied, []string{"does not verify", "signed certificate timestamp"}},
		{"no transparency log entry", keyless(noLog, file), ExitDenied, []string{"does not verify", "no entry of a transparency log in the trusted root verified"}},
		{"signed by another Sigstore", keyless(bundleFile("other-sigstore.json", sigstoretest.New(t).MessageBundle(t, content, o)), file), ExitDenied, []string{"does not verify"}},
		{"the public-good root does not trust the local Sigstore", []string{"verify-bundle", "--bundle", message,
			"--certificate-identity", vbIdentity, "--certificate-oidc-issuer", vbIssuer, file}, ExitDenied, []string{"does not verify", "the log is not in the trusted root"}},
		{"malformed digest", keyless(message, "sha256:abc"), ExitUndecided, []string{`"sha256:abc" is not a sha256 digest`}},
		{"no such artifact", keyless(message, filepath.Join(dir, "missing.txt")), ExitUndecided, []string{"missing.txt"}},
		{"no such trusted root", []string{"verify-bundle", "--bundle", message, "--certificate-identity", vbIdentity,
			"--certificate-oidc-issuer", vbIssuer, "--trusted-root", filepath.Join(dir, "missing.json"), file}, ExitUndecided, []string{"missing.json"}},
		{"identity without issuer", []string{"verify-bundle", "--bundle", message, "--certificate-identity", vbIdentity, "--trusted-root", trustedRoot, file},
			ExitUndecided, []string{"--certificate-oidc-issuer"}},
		{"no artifact", []string{"verify-bundle", "--bundle", message, "--certificate-identity", vbIdentity, "--certificate-oidc-issuer", vbIssuer, "--trusted-root", trustedRoot},
			ExitUndecided, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := signet(t, tc.args...)
			r.want(t, tc.code, tc.say...)
		})
	}
}

// TestVerifyBundleKeyRekorV2: a bundle signed with a key and logged in a
// Rekor v2 log verifies with --key and the trusted root of the log, dated
// by its RFC 3161 timestamp; without the timestamp, or with another key, it
// does not. A Rekor v1 entry's SET is a time of signing on its own.
func TestVerifyBundleKeyRekorV2(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	dir := t.TempDir()
	trustedRoot := writeBytes(t, dir, "trusted_root.json", s.TrustedRootJSON())
	content := []byte("release 1.2.3\n")
	file := writeBytes(t, dir, "artifact.txt", content)
	keyFile := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return writeBytes(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	key, other := newKey(), newKey()
	pub, otherPub := keyFile("key.pub", key), keyFile("other.pub", other)
	signed := writeBytes(t, dir, "v2.json", s.MessageBundle(t, content, sigstoretest.SignOptions{Key: key, RekorV2: true}))
	noTSA := writeBytes(t, dir, "v2-no-tsa.json", s.MessageBundle(t, content, sigstoretest.SignOptions{Key: key, RekorV2: true, NoTimestamp: true}))
	v1NoTSA := writeBytes(t, dir, "v1-no-tsa.json", s.MessageBundle(t, content, sigstoretest.SignOptions{Key: key, NoTimestamp: true}))

	signet(t, "verify-bundle", "--bundle", signed, "--key", pub, "--trusted-root", trustedRoot, file).want(t, ExitOK, "verified")
	signet(t, "verify-bundle", "--bundle", signed, "--key", otherPub, "--trusted-root", trustedRoot, file).want(t, ExitDenied, "does not verify")
	signet(t, "verify-bundle", "--bundle", noTSA, "--key", pub, "--trusted-root", trustedRoot, file).want(t, ExitDenied, "does not verify", "no verified time of signing")
	// A Rekor v1 entry's SET dates the signature without a TSA.
	signet(t, "verify-bundle", "--bundle", v1NoTSA, "--key", pub, "--trusted-root", trustedRoot, file).want(t, ExitOK, "verified")
}

// TestVerifyBundleKeyEvidenceCarried: with --key, what a bundle carries is
// verified whatever else would do: an RFC 3161 timestamp by an authority
// the trusted root does not hold is refused even though the log's entry
// dates the signature, and with --insecure-ignore-tlog a log entry must
// still be of a log of the trusted root. A bundle without either verifies
// with --insecure-ignore-tlog alone.
func TestVerifyBundleKeyEvidenceCarried(t *testing.T) {
	s, other := sigstoretest.New(t), sigstoretest.New(t)
	dir := t.TempDir()
	trustedRoot := writeBytes(t, dir, "trusted_root.json", s.TrustedRootJSON())
	content := []byte("release 1.2.3\n")
	file := writeBytes(t, dir, "artifact.txt", content)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := writeBytes(t, dir, "key.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	signed := s.MessageBundle(t, content, sigstoretest.SignOptions{Key: key})
	var theirs protobundle.Bundle
	if err := protojson.Unmarshal(other.MessageBundle(t, content, sigstoretest.SignOptions{Key: key}), &theirs); err != nil {
		t.Fatal(err)
	}
	badTSA := writeBytes(t, dir, "bad-tsa.json", editBundleJSON(t, signed, func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.TimestampVerificationData = theirs.VerificationMaterial.TimestampVerificationData
	}))
	otherLog := writeBytes(t, dir, "other-log.json", other.MessageBundle(t, content, sigstoretest.SignOptions{Key: key, NoTimestamp: true}))
	offline := writeBytes(t, dir, "offline.json", editBundleJSON(t, s.MessageBundle(t, content, sigstoretest.SignOptions{Key: key, NoTimestamp: true}), func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.TlogEntries = nil
	}))

	args := func(bundle string, extra ...string) []string {
		return append([]string{"verify-bundle", "--bundle", bundle, "--key", pub, "--trusted-root", trustedRoot, file}, extra...)
	}
	signet(t, args(writeBytes(t, dir, "signed.json", signed))...).want(t, ExitOK, "verified")
	signet(t, args(badTSA)...).want(t, ExitDenied, "does not verify", "RFC 3161 timestamp of the signature does not verify with a trusted timestamp authority")
	signet(t, args(otherLog, "--insecure-ignore-tlog")...).want(t, ExitDenied, "does not verify", "the log is not in the trusted root")
	signet(t, args(offline)...).want(t, ExitDenied, "no transparency log entry", "--insecure-ignore-tlog")
	signet(t, args(offline, "--insecure-ignore-tlog")...).want(t, ExitOK, "verified")
}
