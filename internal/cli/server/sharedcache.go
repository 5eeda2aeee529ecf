package server

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/redis"
)

// sharedCacheOptions are the flags of the optional shared result cache
// (check.SharedCache): a Redis-protocol server every replica reaches.
type sharedCacheOptions struct {
	url          string
	keyFile      string
	passwordFile string
	caFile       string
	timeout      time.Duration

	// Parsed by Validate.
	redis redis.Options
	key   []byte
}

// maxSecretFile bounds the key, password and CA files.
const maxSecretFile = 64 << 10

func (o *sharedCacheOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.url, "shared-cache", "", "share verified results between replicas through this Redis-protocol server: redis://[user@]host:port[/db], or rediss:// for TLS; off by default (each replica verifies on its own). Needs --shared-cache-key-file")
	f.StringVar(&o.keyFile, "shared-cache-key-file", "", "file with the secret (at least 32 bytes, the same in every replica) that MACs the shared cache's entries, so that whoever can write to the server cannot admit anything; e.g. a mounted Secret")
	f.StringVar(&o.passwordFile, "shared-cache-password-file", "", "file with the shared cache server's password (preferred to a password in --shared-cache, which shows in the process list)")
	f.StringVar(&o.caFile, "shared-cache-ca-file", "", "PEM CA certificates to verify a rediss:// server with, instead of the system's")
	f.DurationVar(&o.timeout, "shared-cache-timeout", check.DefaultSharedTimeout, "bound of each shared cache operation; a server that fails is left alone for a while (1s doubling to 30s) and results are verified meanwhile")
}

// Validate parses the address and reads the files: a shared cache without
// a key, or with a short one, is refused.
func (o *sharedCacheOptions) Validate(decisionTimeout time.Duration) error {
	if o.url == "" {
		if o.keyFile != "" || o.passwordFile != "" || o.caFile != "" {
			return errors.New("--shared-cache-key-file, --shared-cache-password-file and --shared-cache-ca-file need --shared-cache")
		}
		return nil
	}
	ro, err := redis.ParseURL(o.url)
	if err != nil {
		return fmt.Errorf("--shared-cache: %w", err)
	}
	if o.keyFile == "" {
		return errors.New("--shared-cache needs --shared-cache-key-file: entries are MACed with a key only signet holds, so that a writable cache cannot admit anything")
	}
	key, err := local.ReadFile(o.keyFile, maxSecretFile)
	if err != nil {
		return fmt.Errorf("--shared-cache-key-file: %w", err)
	}
	// A Secret written by hand often ends with a newline.
	key = bytes.TrimSpace(key)
	if len(key) < check.MinSharedKeyBytes {
		return fmt.Errorf("--shared-cache-key-file %s holds %d bytes, fewer than %d: generate one with, e.g., openssl rand -base64 48", o.keyFile, len(key), check.MinSharedKeyBytes)
	}
	if o.passwordFile != "" {
		if ro.Password != "" {
			return errors.New("give the shared cache's password in --shared-cache or in --shared-cache-password-file, not both")
		}
		pw, err := local.ReadFile(o.passwordFile, maxSecretFile)
		if err != nil {
			return fmt.Errorf("--shared-cache-password-file: %w", err)
		}
		ro.Password = string(bytes.TrimRight(pw, "\r\n"))
		if ro.Password == "" {
			return fmt.Errorf("--shared-cache-password-file %s is empty", o.passwordFile)
		}
	}
	if o.caFile != "" {
		if ro.TLS == nil {
			return errors.New("--shared-cache-ca-file needs a rediss:// --shared-cache")
		}
		pem, err := local.ReadFile(o.caFile, maxSecretFile)
		if err != nil {
			return fmt.Errorf("--shared-cache-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--shared-cache-ca-file %s holds no PEM certificate", o.caFile)
		}
		ro.TLS.RootCAs = pool
	}
	if o.timeout <= 0 || o.timeout >= decisionTimeout {
		return fmt.Errorf("--shared-cache-timeout %s must be positive and below --decision-timeout %s", o.timeout, decisionTimeout)
	}
	ro.MaxValue = check.DefaultSharedMaxValue
	o.redis, o.key = ro, key
	return nil
}

// build returns the shared tier, or nil when there is none. It connects
// on first use: a server down at start-up only means verifying meanwhile.
func (o *sharedCacheOptions) build(log *slog.Logger) (*check.SharedCache, error) {
	if o.url == "" {
		return nil, nil
	}
	log.Info("sharing verified results between replicas", "server", o.redis.String(), "timeout", o.timeout.String())
	return check.NewSharedCache(redis.New(o.redis), o.key, check.SharedOptions{
		Timeout: o.timeout, MaxValue: check.DefaultSharedMaxValue, Log: log.With("component", "shared-cache"),
	})
}
