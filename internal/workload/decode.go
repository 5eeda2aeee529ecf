package workload

import (
	"errors"
	"fmt"
)

// ErrMalformed marks an object, or a request for one, that is not what the
// API server sends: JSON of the wrong shape, a type that disagrees with the
// request, an image field that is not a string.
var ErrMalformed = errors.New("malformed")

// ErrUnknownKind: the kind is not one whose images signet knows (not built
// in, not a Crossplane package, not declared with --image-field).
var ErrUnknownKind = errors.New("not a kind whose images signet knows")

// malformed wraps err as ErrMalformed, keeping its message.
type malformed struct{ err error }

func (e malformed) Error() string        { return e.err.Error() }
func (e malformed) Unwrap() error        { return e.err }
func (e malformed) Is(target error) bool { return target == ErrMalformed }

func malformedf(format string, args ...any) error {
	return malformed{fmt.Errorf(format, args...)}
}

// Object is what an object says about the images it would run.
type Object struct {
	Kind Kind
	// Images are every image field, in the order the runtime reads them.
	Images []Image
	// PullSecrets are the names in the pod spec's imagePullSecrets, and
	// ServiceAccount its service account ("default" when unset; "" for a
	// kind with no pod spec).
	PullSecrets    []string
	ServiceAccount string
}

// Decode reads the object raw (its JSON, as the API server sends it) of
// kind k at version into its images and pull-secret references. Only the
// fields that can hold images are decoded (see Shape), and the object's own
// apiVersion and kind, which must agree with k.
//
// The error is ErrUnknownKind for a kind Handles refuses (once the object
// agrees with it), and ErrMalformed for an object that is not a JSON object,
// whose type disagrees with k and version, whose image fields are not
// strings, or that is missing (null).
func (e *Extractor) Decode(k Kind, version string, raw []byte) (*Object, error) {
	obj, err := decodeObject(raw, e.Shape(k))
	if err != nil {
		return nil, malformed{err}
	}
	if obj != nil {
		if err := CheckType(k, version, obj); err != nil {
			return nil, malformedf("request.kind is %s %s but %w", version, k, err)
		}
	}
	if !e.Handles(k) {
		return nil, fmt.Errorf("%s is %w", k, ErrUnknownKind)
	}
	if obj == nil {
		return nil, malformedf("the request carries no object")
	}
	images, err := e.Images(k, obj)
	if err != nil {
		return nil, malformed{err}
	}
	o := &Object{Kind: k, Images: images}
	o.PullSecrets, o.ServiceAccount = e.PullSecrets(k, obj)
	return o, nil
}
