package check_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestFetchErrorKinds: a registry that fails makes Fetch undecided, of the
// registry's kind (so that callers can tell an outage from refused
// credentials or a rate limit), with the message that names the image and
// the registry's answer.
func TestFetchErrorKinds(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("ab", 32)
	index := func(n int, manifests string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", registry.MediaTypeOCIIndex)
			if manifests == "" {
				var ms []string
				for i := range n {
					ms = append(ms, fmt.Sprintf(`{"mediaType":%q,"digest":"sha256:%064x","size":1}`, registry.MediaTypeOCIManifest, i))
				}
				manifests = "[" + strings.Join(ms, ",") + "]"
			}
			fmt.Fprintf(w, `{"schemaVersion":2,"mediaType":%q,"manifests":%s}`, registry.MediaTypeOCIIndex, manifests)
		}
	}
	status := func(code int, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(code)
		}
	}
	for _, tc := range []struct {
		name  string
		image string // after the registry host
		serve http.HandlerFunc
		opts  check.Options
		kind  error
		want  string
	}{
		{"credentials refused", "/app:v1", status(http.StatusUnauthorized), check.Options{}, registry.ErrUnauthorized,
			"/v2/app/manifests/v1: registry answered 401 Unauthorized"},
		{"pull not allowed", "/app@" + digest, status(http.StatusForbidden), check.Options{}, registry.ErrForbidden,
			": registry answered 403 Forbidden"},
		{"rate limited", "/app:v1", status(http.StatusTooManyRequests, "Retry-After", "3600"), check.Options{}, registry.ErrRateLimited,
			"registry answered 429 Too Many Requests and asked to wait 1h0m0s, longer than this lookup may wait"},
		{"index with too many platforms", "/app:v1", index(65, ""), check.Options{AllPlatforms: true}, registry.ErrLimit,
			"lists 65 manifests, more than the limit of 64"},
		{"index that is not one", "/app:v1", index(0, "5"), check.Options{AllPlatforms: true}, registry.ErrMalformed,
			": json: cannot unmarshal number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return // anonymous
				}
				tc.serve(w, r)
			}))
			t.Cleanup(srv.Close)
			wantUndecided(t, fetch(t, strings.TrimPrefix(srv.URL, "http://")+tc.image, tc.opts), tc.kind, tc.want)
		})
	}

	t.Run("registry unreachable", func(t *testing.T) {
		t.Parallel()
		addr := registrytest.UnreachableHost(t)
		wantUndecided(t, fetch(t, addr+"/app:v1", check.Options{}), registry.ErrUnreachable, "resolving "+addr+"/app:v1: connecting to "+addr+": ")
	})
}

func fetch(t *testing.T, image string, opts check.Options) error {
	t.Helper()
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.Parse(image)
	if err != nil {
		t.Fatal(err)
	}
	_, err = check.Fetch(t.Context(), rc, ref, opts)
	return err
}

func wantUndecided(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if !check.IsUndecided(err) || errors.Is(err, verify.ErrDenied) || !errors.Is(err, kind) {
		t.Fatalf("error %v, want undecided of kind %q", err, kind)
	}
	for _, other := range []error{registry.ErrUnreachable, registry.ErrUnauthorized, registry.ErrForbidden, registry.ErrRateLimited, registry.ErrNotFound, registry.ErrLimit, registry.ErrMalformed} {
		if !errors.Is(other, kind) && errors.Is(err, other) {
			t.Errorf("error %v is of kind %q too", err, other)
		}
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
}
