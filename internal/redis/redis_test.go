package redis

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseURL: the addresses signet serve --shared-cache takes, and the
// errors for the others, which never repeat the password.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Options
		tls  bool
	}{
		{"redis://cache:6380", Options{Addr: "cache:6380"}, false},
		{"redis://cache", Options{Addr: "cache:6379"}, false},
		{"redis://:pw@cache:6379/2", Options{Addr: "cache:6379", Password: "pw", DB: 2}, false},
		{"redis://user:pw@[::1]:7000/", Options{Addr: "[::1]:7000", Username: "user", Password: "pw"}, false},
		{"rediss://cache.example:6380/1", Options{Addr: "cache.example:6380", DB: 1}, true},
	} {
		got, err := ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if (got.TLS != nil) != tc.tls || (tc.tls && got.TLS.ServerName != "cache.example") {
			t.Errorf("ParseURL(%q): TLS %+v", tc.url, got.TLS)
		}
		got.TLS = nil
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseURL(%q) (-want +got):\n%s", tc.url, diff)
		}
		if strings.Contains(got.String(), "pw") {
			t.Errorf("Options.String() = %q shows the password", got.String())
		}
	}
	for _, bad := range []string{"memcached://:secret@m:11211", "redis://:secret@", "redis://:secret@h:1/db", "redis://:secret@h:1/-1",
		"redis://:secret@h:1?timeout=1", "://:secret@h", "redis://:secret@h:1/0#frag", "redis://:sec ret@h\x7f:1"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) took it", bad)
		} else if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "sec ret") {
			t.Errorf("ParseURL(%q): %v repeats the password", bad, err)
		}
	}
}
