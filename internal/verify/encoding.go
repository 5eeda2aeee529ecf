package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/signet-dev/signet/internal/registry"
)

// EncodeResult writes r as bytes that DecodeResult reads back into a Result
// that decides the same: every field, and the errors of the result, its
// authorities and their failures with their text, their *Denial and
// *Undecided structure (errors.As finds them) and every kind they match
// (errors.Is against this package's kinds, package registry's and
// context's). An error of another type becomes its text and the kinds it
// matches. It is for package check's shared cache, whose entries another
// signet process reads.
//
// An error whose kind is not one of those (which EncodeResult could not
// give back exactly) makes EncodeResult fail: such a result is not shared.
func EncodeResult(r Result) ([]byte, error) {
	w := wireResult{Result: plainResult(r)}
	var err error
	if w.Err, err = encodeError(r.Err); err != nil {
		return nil, err
	}
	for _, a := range r.Authorities {
		wa := wireAuthority{}
		if wa.Err, err = encodeError(a.Err); err != nil {
			return nil, err
		}
		for _, f := range a.Failures {
			wf, err := encodeError(f.Err)
			if err != nil {
				return nil, err
			}
			wa.Failures = append(wa.Failures, wf)
		}
		w.Authorities = append(w.Authorities, wa)
	}
	return json.Marshal(w)
}

// DecodeResult reads what EncodeResult wrote.
func DecodeResult(data []byte) (Result, error) {
	var w wireResult
	if err := json.Unmarshal(data, &w); err != nil {
		return Result{}, fmt.Errorf("decoding a result: %w", err)
	}
	r := Result(w.Result)
	if len(w.Authorities) != len(r.Authorities) {
		return Result{}, fmt.Errorf("decoding a result: %d authorities, errors for %d", len(r.Authorities), len(w.Authorities))
	}
	var err error
	if r.Err, err = decodeError(w.Err); err != nil {
		return Result{}, err
	}
	if len(r.Authorities) > 0 {
		// The decoded slices are the result's own; no one else holds them.
		for i := range r.Authorities {
			a, wa := &r.Authorities[i], w.Authorities[i]
			if len(wa.Failures) != len(a.Failures) {
				return Result{}, fmt.Errorf("decoding a result: authority %s has %d failures, errors for %d", a.Name, len(a.Failures), len(wa.Failures))
			}
			if a.Err, err = decodeError(wa.Err); err != nil {
				return Result{}, err
			}
			for j := range a.Failures {
				if a.Failures[j].Err, err = decodeError(wa.Failures[j]); err != nil {
					return Result{}, err
				}
			}
		}
	}
	return r, nil
}

// plainResult is Result without its MarshalJSON (which adds the reason and
// codes for users): the fields as they are. AuthorityResult's and
// Failure's MarshalJSON add fields that decoding ignores.
type plainResult Result

type wireResult struct {
	Result      plainResult     `json:"r"`
	Err         *wireError      `json:"e,omitempty"`
	Authorities []wireAuthority `json:"a,omitempty"`
}

// wireAuthority holds the errors of one AuthorityResult, which its JSON
// leaves out.
type wireAuthority struct {
	Err      *wireError   `json:"e,omitempty"`
	Failures []*wireError `json:"f,omitempty"`
}

// wireError is an error: a known sentinel (by name), a *Denial, an
// *Undecided, or any other error as its text, the sentinels its own Is
// method matches and the errors it wraps.
type wireError struct {
	Sentinel  string         `json:"s,omitempty"`
	Denial    *wireDenial    `json:"d,omitempty"`
	Undecided *wireUndecided `json:"u,omitempty"`
	Msg       string         `json:"m,omitempty"`
	Is        []string       `json:"is,omitempty"`
	Wraps     []*wireError   `json:"w,omitempty"`
	// Multi says the error unwraps to a list (Unwrap() []error).
	Multi bool `json:"mu,omitempty"`
}

type wireDenial struct {
	Kind   string        `json:"k,omitempty"`
	Reason string        `json:"r"`
	Causes []*wireDenial `json:"c,omitempty"`
}

type wireUndecided struct {
	Kind string     `json:"k,omitempty"`
	Err  *wireError `json:"e,omitempty"`
}

// sentinels are the errors kinds are matched against, by name.
var sentinels = func() map[string]error {
	m := map[string]error{
		"verify.Denied":            ErrDenied,
		"verify.Undecided":         ErrUndecided,
		"registry.NotFound":        registry.ErrNotFound,
		"registry.Limit":           registry.ErrLimit,
		"registry.DigestMismatch":  registry.ErrDigestMismatch,
		"registry.Unreachable":     registry.ErrUnreachable,
		"registry.Unauthorized":    registry.ErrUnauthorized,
		"registry.Forbidden":       registry.ErrForbidden,
		"registry.RateLimited":     registry.ErrRateLimited,
		"registry.Malformed":       registry.ErrMalformed,
		"context.Canceled":         context.Canceled,
		"context.DeadlineExceeded": context.DeadlineExceeded,
	}
	for _, k := range kinds {
		m["verify."+Codes(k)[0]] = k
	}
	return m
}()

// sentinelNames are sentinels' names by error.
var sentinelNames = func() map[error]string {
	m := make(map[error]string, len(sentinels))
	for n, e := range sentinels {
		m[e] = n
	}
	return m
}()

func sentinelName(err error) (string, error) {
	if err == nil {
		return "", nil
	}
	if n, ok := sentinelNames[err]; ok {
		return n, nil
	}
	return "", fmt.Errorf("encoding a result: the kind %q (%T) has no name to be read back by", err.Error(), err)
}

func sentinel(name string) (error, error) {
	if name == "" {
		return nil, nil
	}
	if e, ok := sentinels[name]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("decoding a result: unknown kind %q", name)
}

func encodeError(err error) (*wireError, error) {
	if err == nil {
		return nil, nil
	}
	if n, ok := sentinelNames[err]; ok {
		return &wireError{Sentinel: n}, nil
	}
	switch e := err.(type) { //nolint:errorlint // the node itself, not what it wraps: each node is encoded in turn
	case *Denial:
		d, err := encodeDenial(e)
		return &wireError{Denial: d}, err
	case *Undecided:
		k, err := sentinelName(e.Kind)
		if err != nil {
			return nil, err
		}
		inner, err := encodeError(e.Err)
		return &wireError{Undecided: &wireUndecided{Kind: k, Err: inner}}, err
	}
	w := &wireError{Msg: err.Error()}
	if is, ok := err.(interface{ Is(error) bool }); ok {
		for _, n := range sortedSentinelNames {
			if is.Is(sentinels[n]) {
				w.Is = append(w.Is, n)
			}
		}
	}
	var wrapped []error
	switch u := err.(type) { //nolint:errorlint // this node's own Unwrap method
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			wrapped = []error{inner}
		}
	case interface{ Unwrap() []error }:
		wrapped, w.Multi = u.Unwrap(), true
	}
	for _, inner := range wrapped {
		wi, err := encodeError(inner)
		if err != nil {
			return nil, err
		}
		w.Wraps = append(w.Wraps, wi)
	}
	return w, nil
}

func encodeDenial(d *Denial) (*wireDenial, error) {
	if d == nil {
		return nil, errors.New("encoding a result: a nil cause of a denial")
	}
	k, err := sentinelName(d.Kind)
	if err != nil {
		return nil, err
	}
	w := &wireDenial{Kind: k, Reason: d.Reason}
	for _, c := range d.Causes {
		wc, err := encodeDenial(c)
		if err != nil {
			return nil, err
		}
		w.Causes = append(w.Causes, wc)
	}
	return w, nil
}

func decodeError(w *wireError) (error, error) {
	switch {
	case w == nil:
		return nil, nil
	case w.Sentinel != "":
		return sentinel(w.Sentinel)
	case w.Denial != nil:
		return decodeDenial(w.Denial)
	case w.Undecided != nil:
		k, err := sentinel(w.Undecided.Kind)
		if err != nil {
			return nil, err
		}
		inner, err := decodeError(w.Undecided.Err)
		if err != nil {
			return nil, err
		}
		if inner == nil {
			return nil, errors.New("decoding a result: an undecided outcome without its error")
		}
		return &Undecided{Kind: k, Err: inner}, nil
	}
	e := &decodedError{msg: w.Msg}
	for _, n := range w.Is {
		s, err := sentinel(n)
		if err != nil {
			return nil, err
		}
		e.is = append(e.is, s)
	}
	var wraps []error
	for _, wi := range w.Wraps {
		inner, err := decodeError(wi)
		if err != nil {
			return nil, err
		}
		if inner == nil {
			return nil, errors.New("decoding a result: a nil wrapped error")
		}
		wraps = append(wraps, inner)
	}
	switch {
	case w.Multi:
		return &decodedErrors{decodedError: *e, wraps: wraps}, nil
	case len(wraps) > 1:
		return nil, errors.New("decoding a result: an error wrapping one error wraps several")
	case len(wraps) == 1:
		return &decodedWrapper{decodedError: *e, wrap: wraps[0]}, nil
	}
	return e, nil
}

func decodeDenial(w *wireDenial) (*Denial, error) {
	if w == nil {
		return nil, errors.New("decoding a result: a nil cause of a denial")
	}
	k, err := sentinel(w.Kind)
	if err != nil {
		return nil, err
	}
	d := &Denial{Kind: k, Reason: w.Reason}
	for _, wc := range w.Causes {
		c, err := decodeDenial(wc)
		if err != nil {
			return nil, err
		}
		d.Causes = append(d.Causes, c)
	}
	return d, nil
}

// decodedError is an error of a type EncodeResult does not know (a
// fmt.Errorf wrapping, a library's error) as read back: its text and the
// sentinels it matched itself; decodedWrapper and decodedErrors also give
// back what it wrapped, one error or a list.
type decodedError struct {
	msg string
	is  []error
}

func (e *decodedError) Error() string { return e.msg }

func (e *decodedError) Is(target error) bool {
	return slices.Contains(e.is, target)
}

type decodedWrapper struct {
	decodedError
	wrap error
}

func (e *decodedWrapper) Unwrap() error { return e.wrap }

type decodedErrors struct {
	decodedError
	wraps []error
}

func (e *decodedErrors) Unwrap() []error { return e.wraps }

// sortedSentinelNames fixes the order of wireError.Is.
var sortedSentinelNames = slices.Sorted(maps.Keys(sentinels))
