package verify

import (
	"errors"
	"fmt"
)

var (
	// ErrDenied: the image does not meet the requirement (no signature, wrong
	// key or identity, payload for another digest, missing attestation, ...).
	ErrDenied = errors.New("denied")
	// ErrUndecided: signet could not find out (registry unreachable, no trust
	// root, limits exceeded, ...). What that means is the policy's choice.
	ErrUndecided = errors.New("could not decide")
)

// Denial is an ErrDenied with its reason.
type Denial struct{ Reason string }

func (e *Denial) Error() string { return e.Reason }
func (e *Denial) Is(target error) bool {
	return target == ErrDenied
}

func denied(format string, args ...any) error {
	return &Denial{Reason: fmt.Sprintf(format, args...)}
}

// Undecided wraps the cause of a could-not-decide outcome.
type Undecided struct{ Err error }

func (e *Undecided) Error() string        { return e.Err.Error() }
func (e *Undecided) Unwrap() error        { return e.Err }
func (e *Undecided) Is(target error) bool { return target == ErrUndecided }

// AsUndecided marks err as an ErrUndecided outcome.
func AsUndecided(err error) error {
	if err == nil || errors.Is(err, ErrUndecided) {
		return err
	}
	return &Undecided{Err: err}
}
