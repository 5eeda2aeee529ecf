package sharedcache

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/redis"
	"github.com/signet-dev/signet/test/harness"
)

// TestRedisClient: signet's client against the real redis-server: values
// round-trip, expire, stay in their database, are bounded; a wrong password
// is the server's refusal (never repeated); a server that hangs is given up
// at the deadline.
func TestRedisClient(t *testing.T) {
	srv := harness.StartRedis(t)
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		t.Cleanup(cancel)
		return c
	}
	c := redis.New(redis.Options{Addr: srv.Addr, Password: srv.Password, DB: 3, MaxValue: 1 << 10})
	t.Cleanup(func() { c.Close() })
	value := []byte("binary\x00\r\n\xffvalue")
	if err := c.Set(ctx(), "k", value, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, found, err := c.Get(ctx(), "k")
	if err != nil || !found || string(got) != string(value) {
		t.Fatalf("Get = %q, %v, %v; want %q", got, found, err, value)
	}
	if ttl, err := srv.Do("SELECT", "3"); err != nil || ttl != "OK" {
		t.Fatalf("SELECT 3: %q %v", ttl, err)
	}
	if other, err := srv.Do("GET", "k"); err != nil || other != "" {
		t.Errorf("database 0 holds %q (%v): the value is not in database 3 only", other, err)
	}
	if _, found, err := c.Get(ctx(), "missing"); found || err != nil {
		t.Errorf("a missing key: found %v, %v", found, err)
	}
	if err := c.Set(ctx(), "short", value, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, found, err := c.Get(ctx(), "short"); found || err != nil {
		t.Errorf("a value past its PX: found %v, %v", found, err)
	}
	if err := c.Set(ctx(), "big", make([]byte, 2<<10), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx(), "big"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a value over MaxValue: %v", err)
	}
	// The connection that refused the big value is closed; others work.
	if _, found, err := c.Get(ctx(), "k"); !found || err != nil {
		t.Errorf("after a refused value: found %v, %v", found, err)
	}

	wrong := redis.New(redis.Options{Addr: srv.Addr, Password: "not-" + srv.Password})
	_, _, err = wrong.Get(ctx(), "k")
	var server *redis.Error
	if !errors.As(err, &server) || strings.Contains(err.Error(), srv.Password) {
		t.Errorf("a wrong password: %v", err)
	}
	none := redis.New(redis.Options{Addr: srv.Addr})
	if _, _, err := none.Get(ctx(), "k"); !errors.As(err, &server) {
		t.Errorf("no password: %v", err)
	}

	srv.Pause()
	start := time.Now()
	short, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := c.Get(short, "k"); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a paused server: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a paused server held Get for %s", d)
	}
	srv.Resume()
	if _, found, err := c.Get(ctx(), "k"); !found || err != nil {
		t.Errorf("after the server resumed: found %v, %v", found, err)
	}
}
