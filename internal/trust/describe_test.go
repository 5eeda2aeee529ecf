package trust

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rawRoot is the part of trusted_root.json Describe reports on, read straight
// from the JSON to check Describe against.
type rawRoot struct {
	Tlogs                  []rawLog `json:"tlogs"`
	Ctlogs                 []rawLog `json:"ctlogs"`
	CertificateAuthorities []rawCA  `json:"certificateAuthorities"`
	TimestampAuthorities   []rawCA  `json:"timestampAuthorities"`
}

type rawLog struct {
	BaseURL   string `json:"baseUrl"`
	PublicKey struct {
		ValidFor rawWindow `json:"validFor"`
	} `json:"publicKey"`
	LogID struct {
		KeyID string `json:"keyId"`
	} `json:"logId"`
}

type rawCA struct {
	URI       string `json:"uri"`
	CertChain struct {
		Certificates []struct{} `json:"certificates"`
	} `json:"certChain"`
	ValidFor rawWindow `json:"validFor"`
}

type rawWindow struct {
	Start *time.Time `json:"start"`
	End   *time.Time `json:"end"`
}

func (w rawWindow) window() Window {
	var out Window
	if w.Start != nil {
		s := w.Start.UTC()
		out.Start = &s
	}
	if w.End != nil {
		e := w.End.UTC()
		out.End = &e
	}
	return out
}

func TestDescribePublicGood(t *testing.T) {
	var raw rawRoot
	if err := json.Unmarshal([]byte(embeddedTrustedRoot), &raw); err != nil {
		t.Fatal(err)
	}
	tr, err := PublicGood()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Describe(tr, now)

	// Logs: the base URL, hex log ID and window of each log in the JSON.
	type logView struct {
		BaseURL, LogID string
		Validity       Window
	}
	logViews := func(logs []Log) map[string]logView {
		m := map[string]logView{}
		for _, l := range logs {
			m[l.LogID] = logView{l.BaseURL, l.LogID, l.Validity}
		}
		return m
	}
	rawLogViews := func(logs []rawLog) map[string]logView {
		m := map[string]logView{}
		for _, l := range logs {
			id, err := base64.StdEncoding.DecodeString(l.LogID.KeyID)
			if err != nil {
				t.Fatal(err)
			}
			m[hex.EncodeToString(id)] = logView{l.BaseURL, hex.EncodeToString(id), l.PublicKey.ValidFor.window()}
		}
		return m
	}
	if diff := cmp.Diff(rawLogViews(raw.Tlogs), logViews(s.TransparencyLogs)); diff != "" {
		t.Errorf("transparency logs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(rawLogViews(raw.Ctlogs), logViews(s.CTLogs)); diff != "" {
		t.Errorf("CT logs (-want +got):\n%s", diff)
	}

	// Authorities: URI, window and chain length, in order.
	type caView struct {
		URI      string
		Validity Window
		Certs    int
	}
	caViews := func(as []Authority) []caView {
		var out []caView
		for _, a := range as {
			out = append(out, caView{a.URI, a.Validity, len(a.Certificates)})
		}
		return out
	}
	rawCAViews := func(cas []rawCA) []caView {
		var out []caView
		for _, c := range cas {
			out = append(out, caView{c.URI, c.ValidFor.window(), len(c.CertChain.Certificates)})
		}
		return out
	}
	if diff := cmp.Diff(rawCAViews(raw.CertificateAuthorities), caViews(s.CertificateAuthorities)); diff != "" {
		t.Errorf("certificate authorities (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(rawCAViews(raw.TimestampAuthorities), caViews(s.TimestampAuthorities)); diff != "" {
		t.Errorf("timestamp authorities (-want +got):\n%s", diff)
	}

	// Every entry has a window with a start, every certificate a non-empty
	// validity, and every authority a subject.
	for _, a := range append(s.CertificateAuthorities, s.TimestampAuthorities...) {
		if a.Validity.Start == nil {
			t.Errorf("authority %s: no validity start", a.URI)
		}
		if a.Subject == "" {
			t.Errorf("authority %s: no subject", a.URI)
		}
		for _, c := range a.Certificates {
			if !c.NotBefore.Before(c.NotAfter) || c.Subject == "" || len(c.SHA256) != 64 {
				t.Errorf("authority %s: bad certificate %+v", a.URI, c)
			}
		}
	}
	for _, l := range append(s.TransparencyLogs, s.CTLogs...) {
		if l.Validity.Start == nil || l.KeyType == "" || l.LogID == "" {
			t.Errorf("log %s: incomplete %+v", l.BaseURL, l)
		}
	}

	if s.Current.CertificateAuthorities < 1 || s.Current.TransparencyLogs < 1 || s.Current.CTLogs < 1 {
		t.Errorf("Current = %+v, want at least one valid CA, Rekor log and CT log on %s", s.Current, now)
	}
	if s.NextExpiry == nil || !s.NextExpiry.At.After(now) {
		t.Errorf("NextExpiry = %+v, want a moment after %s", s.NextExpiry, now)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("marshaling Summary: %v", err)
	}
}

// signet trusts the embedded root by default, so it must be usable today.
func TestPublicGoodValidNow(t *testing.T) {
	tr, err := PublicGood()
	if err != nil {
		t.Fatal(err)
	}
	s := Describe(tr, time.Now())
	if s.Current.CertificateAuthorities < 1 || s.Current.TransparencyLogs < 1 || s.Current.CTLogs < 1 {
		t.Errorf("embedded root trusts nothing valid now: Current = %+v; run hack/update-trusted-root.sh", s.Current)
	}
}

func TestDescribeBeforeAnything(t *testing.T) {
	tr, err := PublicGood()
	if err != nil {
		t.Fatal(err)
	}
	s := Describe(tr, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if diff := cmp.Diff(Counts{}, s.Current); diff != "" {
		t.Errorf("Current in 2000 (-want +got):\n%s", diff)
	}
	if s.NextExpiry != nil {
		t.Errorf("NextExpiry = %+v, want nil when nothing is valid", s.NextExpiry)
	}
	for _, a := range s.CertificateAuthorities {
		if a.ValidNow {
			t.Errorf("authority %s valid in 2000", a.URI)
		}
	}
}

func TestWindowContains(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	before, inside, after := t0.Add(-time.Second), t0.Add(time.Minute), t1.Add(time.Second)
	tests := []struct {
		name string
		w    Window
		at   time.Time
		want bool
	}{
		{"unbounded", Window{}, before, true},
		{"before start", Window{Start: &t0, End: &t1}, before, false},
		{"at start", Window{Start: &t0, End: &t1}, t0, true},
		{"inside", Window{Start: &t0, End: &t1}, inside, true},
		{"at end", Window{Start: &t0, End: &t1}, t1, true},
		{"after end", Window{Start: &t0, End: &t1}, after, false},
		{"open end", Window{Start: &t0}, after, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Contains(tt.at); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}
