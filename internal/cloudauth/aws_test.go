package cloudauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

const (
	testAccessKey = "AKIDSTATICEXAMPLE"
	testSecretKey = "static-secret-never-shown"
	ecrTarget     = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
)

func TestAWSHandles(t *testing.T) {
	p := newAWS(AWSOptions{})
	for host, want := range map[string]string{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com":                    "us-east-1",
		"123456789012.dkr.ecr.us-gov-west-1.amazonaws.com":                "us-gov-west-1",
		"123456789012.dkr.ecr-fips.us-east-2.amazonaws.com":               "us-east-2",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":                "cn-north-1",
		"123456789012.dkr-ecr.eu-west-1.on.aws":                           "eu-west-1",
		"123456789012.dkr-ecr-fips.us-west-2.on.aws":                      "us-west-2",
		"123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn": "cn-northwest-1",

		"public.ecr.aws":  "",
		"index.docker.io": "",
		"gcr.io":          "",
		"123456789012.dkr.ecr.us-east-1.amazonaws.com:443":     "",
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io": "",
		"evil.io.123456789012.dkr.ecr.us-east-1.amazonaws.com": "",
		"x.dkr.ecr.us-east-1.amazonaws.com":                    "",
		"12345678901.dkr.ecr.us-east-1.amazonaws.com":          "",
		"1234567890123.dkr.ecr.us-east-1.amazonaws.com":        "",
		"123456789012.dkr.ecr.amazonaws.com":                   "",
		"123456789012.dkr.ecr.us-east-1.on.aws":                "",
		"123456789012.dkr-ecr.us-east-1.amazonaws.com":         "",
		"123456789012.dkr.ecr.US-EAST-1.amazonaws.com":         "",
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.":        "",
	} {
		if got := p.Handles(host); got != (want != "") {
			t.Errorf("Handles(%q) = %v", host, got)
		}
		if got, _ := p.region(host); got != want {
			t.Errorf("region(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestAWSStaticCredentials(t *testing.T) {
	api := newECRStandIn(t)
	staticCredentials(t)
	k, err := New([]string{"aws"}, Options{AWS: AWSOptions{HTTPClient: api.client()}})
	if err != nil {
		t.Fatal(err)
	}

	// The region comes from the host, not from AWS_REGION (us-east-1).
	host := "123456789012.dkr.ecr.eu-west-2.amazonaws.com"
	a := resolveAWS(t, k, host)
	if got := authorization(t, a); got != (authn.AuthConfig{Username: "AWS", Password: "pw-1"}) {
		t.Errorf("credential = %+v, want AWS:pw-1", got)
	}
	reqs := api.requests()
	if len(reqs) != 1 {
		t.Fatalf("ECR requests = %d, want 1", len(reqs))
	}
	checkSigned(t, reqs[0], testAccessKey, "eu-west-2")
	if tok := reqs[0].Get("X-Amz-Security-Token"); tok != "" {
		t.Errorf("X-Amz-Security-Token = %q for static credentials", tok)
	}

	for _, h := range []string{"public.ecr.aws", "index.docker.io", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io"} {
		if a := resolveAWS(t, k, h); a != authn.Anonymous {
			t.Errorf("%s: authenticator %T, want Anonymous", h, a)
		}
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("ECR requests = %d after non-ECR hosts, want 1", n)
	}
}

func TestAWSWebIdentity(t *testing.T) {
	api := newECRStandIn(t)
	const (
		role    = "arn:aws:iam::123456789012:role/signet"
		jwt     = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2lnbmV0OnNpZ25ldCJ9.c2lnbmF0dXJl"
		akid    = "ASIASTSISSUEDEXAMPLE"
		session = "sts-session-token"
	)
	var (
		mu   sync.Mutex
		form []map[string]string
	)
	sts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		form = append(form, map[string]string{
			"Action":           r.PostForm.Get("Action"),
			"RoleArn":          r.PostForm.Get("RoleArn"),
			"WebIdentityToken": r.PostForm.Get("WebIdentityToken"),
		})
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>sts-secret</SecretAccessKey>
      <SessionToken>%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/signet/session</Arn>
      <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>sts-request</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, akid, session, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(sts.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(jwt), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", role)
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	k := NewKeychain(newAWS(AWSOptions{HTTPClient: api.client()}))
	a := resolveAWS(t, k, "123456789012.dkr-ecr.ap-southeast-2.on.aws")
	if got := authorization(t, a); got.Password != "pw-1" {
		t.Errorf("password = %q, want pw-1", got.Password)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{"Action": "AssumeRoleWithWebIdentity", "RoleArn": role, "WebIdentityToken": jwt}
	if len(form) != 1 || fmt.Sprint(form[0]) != fmt.Sprint(want) {
		t.Errorf("STS requests = %v, want one with %v", form, want)
	}
	reqs := api.requests()
	if len(reqs) != 1 {
		t.Fatalf("ECR requests = %d, want 1", len(reqs))
	}
	checkSigned(t, reqs[0], akid, "ap-southeast-2")
	if tok := reqs[0].Get("X-Amz-Security-Token"); tok != session {
		t.Errorf("X-Amz-Security-Token = %q, want the STS session token", tok)
	}
}

func TestAWSRenewsBeforeExpiry(t *testing.T) {
	api := newECRStandIn(t)
	staticCredentials(t)
	base := time.Now()
	api.setExpires(base.Add(10 * time.Minute))
	k := NewKeychain(newAWS(AWSOptions{HTTPClient: api.client()}))
	now := base
	k.now = func() time.Time { return now }

	a := resolveAWS(t, k, "123456789012.dkr.ecr.us-east-1.amazonaws.com")
	now = base.Add(4 * time.Minute)
	if got := authorization(t, a).Password; got != "pw-1" {
		t.Errorf("password = %q before renewal, want pw-1", got)
	}
	if n := len(api.requests()); n != 1 {
		t.Fatalf("ECR requests = %d before renewal, want 1 (cached)", n)
	}
	now = base.Add(6 * time.Minute) // past RefreshBefore the expiry
	if got := authorization(t, a).Password; got != "pw-2" {
		t.Errorf("password = %q after renewal, want pw-2", got)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("ECR requests = %d after renewal, want 2", n)
	}
}

func TestAWSAccessDenied(t *testing.T) {
	api := newECRStandIn(t)
	api.denied = true
	staticCredentials(t)
	k := NewKeychain(newAWS(AWSOptions{HTTPClient: api.client()}))

	host := "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	reg, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Resolve(reg)
	var ce *Error
	if !errors.As(err, &ce) || ce.Provider != "aws" || ce.Host != host {
		t.Fatalf("error = %#v, want a *cloudauth.Error of aws for %s", err, host)
	}
	msg := err.Error()
	for _, s := range []string{"aws", host, "AccessDeniedException"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not name %q", msg, s)
		}
	}
	if strings.Contains(msg, testSecretKey) {
		t.Errorf("error %q shows the secret access key", msg)
	}
}

// TestAWSConfigRetried checks that a configuration that fails to load is
// loaded again on the next call, not kept failed.
func TestAWSConfigRetried(t *testing.T) {
	api := newECRStandIn(t)
	staticCredentials(t)
	cfg := os.Getenv("AWS_CONFIG_FILE")
	if err := os.WriteFile(cfg, []byte("[default]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = missing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newAWS(AWSOptions{HTTPClient: api.client()})
	host := "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	if _, _, err := p.Credential(context.Background(), host); err == nil || !strings.Contains(err.Error(), "loading the AWS configuration") {
		t.Fatalf("error = %v, want one loading the broken AWS configuration", err)
	}
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := p.Credential(context.Background(), host); err != nil || got.Password != "pw-1" {
		t.Errorf("after repair: %+v, %v; want pw-1", got, err)
	}
}

// ecrStandIn answers GetAuthorizationToken as ECR's JSON 1.1 API does,
// with the password pw-<n> for its nth request, and records each request's
// headers. awsEnv points the SDK at it.
type ecrStandIn struct {
	srv    *httptest.Server
	denied bool // answer AccessDeniedException

	mu      sync.Mutex
	expires time.Time
	reqs    []http.Header
}

func newECRStandIn(t *testing.T) *ecrStandIn {
	t.Helper()
	s := &ecrStandIn{expires: time.Now().Add(12 * time.Hour)}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	awsEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_ECR", s.srv.URL)
	return s
}

func (s *ecrStandIn) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != ecrTarget {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Header.Clone())
	n, expires := len(s.reqs), s.expires
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if s.denied {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/x is not authorized to perform: ecr:GetAuthorizationToken"}`)
		return
	}
	token := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "AWS:pw-%d", n))
	if err := json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": token,
		"expiresAt":          float64(expires.UnixMilli()) / 1e3,
		"proxyEndpoint":      "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
	}}}); err != nil {
		panic(err)
	}
}

func (s *ecrStandIn) setExpires(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expires = t
}

func (s *ecrStandIn) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

// client trusts the stand-ins (httptest's TLS servers share a certificate)
// and refuses any other host, so a test cannot reach AWS.
func (s *ecrStandIn) client() *http.Client {
	return &http.Client{Transport: loopbackOnly{s.srv.Client().Transport}}
}

type loopbackOnly struct{ rt http.RoundTripper }

func (l loopbackOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Hostname() != "127.0.0.1" {
		return nil, fmt.Errorf("test request to %s", r.URL.Host)
	}
	return l.rt.RoundTrip(r)
}

// awsEnv keeps the SDK from the machine's AWS configuration: empty
// configuration files, no IMDS, and none of the variables that choose
// credentials or endpoints but those a test sets.
func awsEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION",
		"AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_STS",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
		"AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	} {
		t.Setenv(k, "") // restored after the test
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		f := filepath.Join(dir, k)
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(k, f)
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "us-east-1")
}

func staticCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
}

// checkSigned checks that h carries a SigV4 signature of accessKey for ECR
// in region.
func checkSigned(t *testing.T, h http.Header, accessKey, region string) {
	t.Helper()
	auth := h.Get("Authorization")
	re := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=` + regexp.QuoteMeta(accessKey) + `/[0-9]{8}/` + regexp.QuoteMeta(region) + `/ecr/aws4_request, SignedHeaders=[^ ]+, Signature=[0-9a-f]{64}$`)
	if !re.MatchString(auth) {
		t.Errorf("Authorization = %q, want a SigV4 signature of %s for ecr in %s", auth, accessKey, region)
	}
}

func resolveAWS(t *testing.T, k *Keychain, host string) authn.Authenticator {
	t.Helper()
	reg, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func authorization(t *testing.T, a authn.Authenticator) authn.AuthConfig {
	t.Helper()
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return *cfg
}
