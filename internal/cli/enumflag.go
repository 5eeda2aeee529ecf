package cli

import "github.com/spf13/pflag"

// EnumVar defines a flag holding one of a typed set of strings
// (policy.Action, ...), value by default. parse checks each value given
// while the flags are parsed, so a spelling it does not know is a usage
// error naming the allowed values:
//
//	invalid argument "audit" for "--unmatched" flag: "audit" is not one of deny, warn, allow
//
// Help lists the flag as a string, as StringVar does.
func EnumVar[T ~string](f *pflag.FlagSet, p *T, name string, value T, parse func(string) (T, error), usage string) {
	*p = value
	f.Var(&enumValue[T]{p: p, parse: parse}, name, usage)
}

type enumValue[T ~string] struct {
	p     *T
	parse func(string) (T, error)
}

var _ pflag.Value = (*enumValue[string])(nil)

func (v *enumValue[T]) String() string { return string(*v.p) }
func (v *enumValue[T]) Type() string   { return "string" }

func (v *enumValue[T]) Set(s string) error {
	t, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = t
	return nil
}
