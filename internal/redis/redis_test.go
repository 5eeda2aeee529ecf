package redis

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

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

// TestHostileAnswers: whatever a server answers, a read is bounded (a
// line, a value), fails with an error, and never waits past the deadline.
// (A server that answers so is a stand-in here: test/sharedcache runs the
// real one.)
func TestHostileAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
	}{
		{"a value over the limit", "$1048577\r\n"},
		{"a length that is not a number", "$abc\r\n"},
		{"a negative length", "$-2\r\n"},
		{"a line without end", "+" + strings.Repeat("x", 2*maxLine)},
		{"an integer", ":1\r\n"},
		{"a value cut short", "$5\r\nabc"},
		{"a value not ending in CRLF", "$3\r\nabcXY"},
		{"a line ending in LF alone", "$3\nabc\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 1024)
				_, _ = c.Read(buf) // the command
				_, _ = c.Write([]byte(tc.answer))
				time.Sleep(2 * time.Second) // and then nothing
			}()
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			v, found, err := New(Options{Addr: l.Addr().String()}).Get(ctx, "k")
			if err == nil {
				t.Errorf("Get = %q, %v: want an error", v, found)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Get took %s", d)
			}
		})
	}
}
