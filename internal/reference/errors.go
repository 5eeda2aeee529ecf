package reference

import (
	"errors"
	"fmt"
)

// ErrInvalid matches every error returned by [Parse] and
// [Reference.WithDigest]: errors.Is(err, ErrInvalid).
var ErrInvalid = errors.New("invalid image reference")

// maxQuotedInput bounds how much of an input an error message repeats; the
// full input stays in InvalidError.Input.
const maxQuotedInput = 300

// InvalidError says which input was rejected and why. It wraps [ErrInvalid].
type InvalidError struct {
	// Input is the string that was rejected, exactly as given.
	Input string
	// Reason says what is wrong with Input, in lower case.
	Reason string
}

func (e *InvalidError) Error() string {
	input := e.Input
	if len(input) > maxQuotedInput {
		input = input[:maxQuotedInput] + "..."
	}
	return fmt.Sprintf("%v %q: %s", ErrInvalid, input, e.Reason)
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }
