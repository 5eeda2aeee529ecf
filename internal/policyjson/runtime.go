package policyjson

import (
	"fmt"
	"strconv"
	"strings"
)

// Runtime is the oldest containers-image library (the one CRI-O, podman and
// skopeo link) the file must load in: the export writes only the fields
// that version reads, because containers-image rejects a whole policy.json
// with a key it does not know ("Unknown key") and every pull then fails.
// The zero Runtime is DefaultRuntime.
//
// What each version reads, from containers-image's signature package
// (policy_config.go, policy_config_sigstore.go):
//
//	v5.22  sigstoreSigned with keyPath/keyData and signedIdentity
//	v5.24  fulcio (caData, oidcIssuer, subjectEmail), rekorPublicKeyData
//	v5.33  keyPaths, keyDatas, rekorPublicKeyDatas (also v5.32.2, a backport)
//	v5.35  pki
//
// signet writes fulcio and rekorPublicKeyData, so v5.24 is the oldest
// target; keyDatas and rekorPublicKeyDatas only for v5.33 and newer.
type Runtime struct {
	// Minor is containers-image's minor version: v5.<Minor>.
	Minor int
	// CRIO is the CRI-O minor version (1.<CRIO>) the target was named by;
	// 0 when it was named by its containers-image version.
	CRIO int
}

// DefaultRuntime is CRI-O 1.28 (containers-image v5.27): the release
// Kubernetes' own signature verification guide (seed 003) runs, the first
// CRI-O whose image pulls verify sigstore signatures under Kubernetes, and
// a file it loads loads in every newer runtime. It costs only what no
// runtime before containers-image v5.33 can say: any one of several keys
// or Rekor logs in one requirement.
var DefaultRuntime = Runtime{Minor: 27, CRIO: 28}

// crioImage maps a CRI-O minor version to the containers-image minor its
// go.mod requires at 1.<minor>.0 (1.27: at 1.27.1; 1.30 requires a
// v5.29.3 development version). Releases after the last entry require
// that one or newer.
var crioImage = []struct{ crio, image int }{
	{27, 25}, {28, 27}, {29, 29}, {30, 29}, {31, 32}, {32, 33}, {33, 34}, {34, 35},
}

// Fields of the policy.json format that depend on the runtime version.
const (
	minImageFulcio   = 24 // fulcio, rekorPublicKeyData
	minImageKeyDatas = 33 // keyPaths, keyDatas, rekorPublicKeyDatas
	minImagePKI      = 35 // pki
)

// ParseRuntime reads a runtime named as crio-1.MINOR[.PATCH] or
// containers-image-5.MINOR[.PATCH] (a leading v is accepted).
func ParseRuntime(s string) (Runtime, error) {
	name, ver, ok := cutRuntime(s)
	if !ok {
		return Runtime{}, fmt.Errorf("runtime %q: want crio-1.MINOR or containers-image-5.MINOR", s)
	}
	major, minor, err := majorMinor(ver)
	if err != nil {
		return Runtime{}, fmt.Errorf("runtime %q: %w", s, err)
	}
	switch name {
	case "crio":
		if major != 1 {
			return Runtime{}, fmt.Errorf("runtime %q: CRI-O versions are 1.MINOR", s)
		}
		first, last := crioImage[0], crioImage[len(crioImage)-1]
		if minor < first.crio {
			return Runtime{}, fmt.Errorf("runtime %q: signet exports fulcio and rekorPublicKeyData, which containers-image reads since v5.%d (CRI-O 1.%d)", s, minImageFulcio, first.crio)
		}
		r := Runtime{Minor: last.image, CRIO: minor}
		for _, m := range crioImage {
			if m.crio == minor {
				r.Minor = m.image
			}
		}
		return r, nil
	default:
		if major != 5 {
			return Runtime{}, fmt.Errorf("runtime %q: containers-image versions are 5.MINOR", s)
		}
		if minor < minImageFulcio {
			return Runtime{}, fmt.Errorf("runtime %q: signet exports fulcio and rekorPublicKeyData, which containers-image reads since v5.%d", s, minImageFulcio)
		}
		return Runtime{Minor: minor}, nil
	}
}

func cutRuntime(s string) (name, version string, ok bool) {
	for _, p := range []struct{ prefix, name string }{
		{"crio-", "crio"}, {"cri-o-", "crio"}, {"containers-image-", "containers-image"},
	} {
		if v, ok := strings.CutPrefix(s, p.prefix); ok {
			return p.name, strings.TrimPrefix(v, "v"), true
		}
	}
	return "", "", false
}

func majorMinor(v string) (int, int, error) {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, fmt.Errorf("version %q: want MAJOR.MINOR[.PATCH]", v)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return 0, 0, fmt.Errorf("version %q: %q is not a number", v, p)
		}
		n[i] = x
	}
	return n[0], n[1], nil
}

func (r Runtime) orDefault() Runtime {
	if r.Minor == 0 {
		return DefaultRuntime
	}
	return r
}

// String names the runtime as ParseRuntime reads it.
func (r Runtime) String() string {
	r = r.orDefault()
	if r.CRIO != 0 {
		return fmt.Sprintf("crio-1.%d", r.CRIO)
	}
	return fmt.Sprintf("containers-image-5.%d", r.Minor)
}

// describe names the runtime with its containers-image version, for
// messages.
func (r Runtime) describe() string {
	r = r.orDefault()
	if r.CRIO != 0 {
		return fmt.Sprintf("CRI-O 1.%d (containers-image v5.%d)", r.CRIO, r.Minor)
	}
	return fmt.Sprintf("containers-image v5.%d", r.Minor)
}

// readsLists reports whether the runtime reads keyDatas and
// rekorPublicKeyDatas.
func (r Runtime) readsLists() bool { return r.orDefault().Minor >= minImageKeyDatas }

// readsPKI reports whether the runtime reads pki.
func (r Runtime) readsPKI() bool { return r.orDefault().Minor >= minImagePKI }

// Set parses s with ParseRuntime (flag.Value).
func (r *Runtime) Set(s string) error {
	v, err := ParseRuntime(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Type names the flag's value.
func (r *Runtime) Type() string { return "runtime" }
