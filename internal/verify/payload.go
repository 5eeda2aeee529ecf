package verify

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/signet-dev/signet/internal/reference"
)

// simpleSigning is the signed payload of a legacy cosign signature (the
// containers/image "simple signing" format).
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

func parseSimpleSigning(payload []byte) (simpleSigning, error) {
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		return ss, fmt.Errorf("signed payload is not a simple-signing document: %w", err)
	}
	switch ss.Critical.Type {
	case "cosign container image signature", "atomic container signature":
	default:
		return ss, fmt.Errorf("signed payload has type %q, not a container image signature", ss.Critical.Type)
	}
	if ss.Critical.Image.DockerManifestDigest == "" {
		return ss, errors.New("signed payload names no docker-manifest-digest")
	}
	return ss, nil
}

func checkSignedIdentity(mode SignedIdentity, image reference.Reference, signed string) error {
	if mode == SignedIdentityOff {
		return nil
	}
	if signed == "" {
		return errors.New("the signature names no image (signed identity required)")
	}
	ref, err := reference.Parse(signed)
	if err != nil {
		return fmt.Errorf("signed identity %q: %w", signed, err)
	}
	// As containers/image: the image as pulled carries its tag ("latest"
	// when none is written); an exact comparison needs a signature that
	// names more than a repository (cosign writes only the repository).
	intended := image.String()
	if image.Tag() == "" && image.Digest() == "" {
		intended += ":latest"
	}
	exact := func() error {
		if ref.Tag() == "" && ref.Digest() == "" {
			return fmt.Errorf("the signature names only the repository %s, and %s needs the exact reference signed", ref.Name(), modeName(mode))
		}
		if ref.String() != intended {
			return fmt.Errorf("signed for %s, not %s", ref.String(), intended)
		}
		return nil
	}
	switch mode {
	case MatchRepository:
		if ref.Name() != image.Name() {
			return fmt.Errorf("signed for repository %s, not %s", ref.Name(), image.Name())
		}
	case MatchExact:
		return exact()
	case MatchRepoDigestOrExact:
		if image.Tag() != "" || image.Digest() == "" {
			return exact() // by tag (with or without a digest): exactly
		}
		if ref.Tag() == "" && ref.Digest() == "" {
			return fmt.Errorf("the signature names only the repository %s, and %s needs a tag or digest in it", ref.Name(), modeName(mode))
		}
		if ref.Name() != image.Name() {
			return fmt.Errorf("signed for repository %s, not %s", ref.Name(), image.Name())
		}
	}
	return nil
}

func modeName(m SignedIdentity) string {
	switch m {
	case MatchRepository:
		return "signedIdentity matchRepository"
	case MatchExact:
		return "signedIdentity matchExact"
	case MatchRepoDigestOrExact:
		return "signedIdentity matchRepoDigestOrExact"
	}
	return "signedIdentity off"
}
