package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// PublicKey is a trusted signing key.
type PublicKey struct {
	// Key is an *ecdsa.PublicKey (P-256, P-384, P-521), *rsa.PublicKey (2048
	// bits or more) or ed25519.PublicKey.
	Key crypto.PublicKey
	// Fingerprint is "sha256:<hex>" of the DER SubjectPublicKeyInfo: how
	// results name the key.
	Fingerprint string
}

// ParsePublicKeyPEM parses one PEM "PUBLIC KEY" (or "RSA PUBLIC KEY") block.
func ParsePublicKeyPEM(data []byte) (PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return PublicKey{}, fmt.Errorf("not a PEM public key")
	}
	if len(trimSpace(rest)) > 0 {
		return PublicKey{}, fmt.Errorf("more than one PEM block: give one key per entry")
	}
	var (
		key crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return PublicKey{}, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	if err != nil {
		return PublicKey{}, fmt.Errorf("parsing public key: %w", err)
	}
	return NewPublicKey(key)
}

// NewPublicKey checks that key is of a supported type and size and computes
// its fingerprint.
func NewPublicKey(key crypto.PublicKey) (PublicKey, error) {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return PublicKey{}, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return PublicKey{}, fmt.Errorf("RSA key of %d bits is too small: at least 2048", k.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return PublicKey{}, fmt.Errorf("unsupported public key type %T", key)
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return PublicKey{}, fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return PublicKey{Key: key, Fingerprint: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
