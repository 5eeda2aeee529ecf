package convert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/signet-dev/signet/api/v1alpha1"
)

// Kyverno verifyImages attestations (kyverno.io/v1). Semantics followed (its
// code): each attestation is checked by its own attestor sets (AND'd,
// count entries within a set); every statement of the type must meet every
// condition; a conditions element passes when all of its "all" and one of
// its "any" conditions hold; a condition's key is a JMESPath expression over
// the statement's predicate. An attestation without attestors is read by
// Kyverno without checking who signed it; signet refuses to express that.
// One difference is kept on purpose: within an attestor set, Kyverno's code
// fails at the first entry whose attestations fail, even when count would
// be met by the others; signet counts passing entries, as Kyverno's
// documentation describes count.

type kyAttestation struct {
	Type          string          `json:"type"`
	PredicateType string          `json:"predicateType"` // the deprecated spelling of type
	Name          string          `json:"name"`
	Attestors     []kyAttestorSet `json:"attestors"`
	Conditions    []kyAnyAll      `json:"conditions"`
}

type kyAnyAll struct {
	Any []kyCondition `json:"any"`
	All []kyCondition `json:"all"`
}

type kyCondition struct {
	Key      json.RawMessage `json:"key"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value"`
	Message  string          `json:"message"`
}

// kyAttestationPolicy is one attestation of a verifyImages entry, as the
// authorities of one attestor set.
type kyAttestationPolicy struct {
	path        string // of the attestor set
	count       *int
	authorities []v1alpha1.Authority
}

// kyAttestations converts the attestations of a verifyImages entry: one
// policy per attestation and attestor set, each authority of which must
// have signed statements of the type that all meet the conditions.
func (c *conv) kyAttestations(path string, atts []kyAttestation, repository string) ([]kyAttestationPolicy, bool) {
	var out []kyAttestationPolicy
	for i, a := range atts {
		apath := fmt.Sprintf("%s.attestations[%d]", path, i)
		typ := a.Type
		if typ == "" {
			typ = a.PredicateType
		}
		if typ == "" {
			c.invalid(apath+".type", "required")
			return nil, false
		}
		if len(a.Attestors) == 0 {
			if !c.refuse(apath+".attestors", "attestation dropped", "Kyverno reads these statements without checking who signed them; signet needs the attestors that must have signed them") {
				return nil, false
			}
			continue
		}
		conditions, ok := c.kyConditions(apath+".conditions", a.Conditions)
		if !ok {
			if !c.opts.AllowLossy {
				return nil, false
			}
			continue // refused, and noted as dropped
		}
		for s, set := range a.Attestors {
			spath := fmt.Sprintf("%s.attestors[%d]", apath, s)
			p := kyAttestationPolicy{path: spath, count: set.Count}
			for e, entry := range set.Entries {
				auths, ok := c.kyAttestor(fmt.Sprintf("%s.entries[%d]", spath, e), fmt.Sprintf("attestation-%d-set-%d-entry-%d", i, s, e), entry, repository)
				if !ok {
					return nil, false
				}
				for _, au := range auths {
					au.Attestations = []v1alpha1.Attestation{{PredicateType: typ, Conditions: conditions, Match: "all"}}
					p.authorities = append(p.authorities, au)
				}
			}
			if len(p.authorities) == 0 {
				c.invalid(spath+".entries", "required")
				return nil, false
			}
			out = append(out, p)
		}
	}
	return out, true
}

// kyConditions turns each conditions element into one CEL condition. It
// reports false when a condition is refused (which it records).
func (c *conv) kyConditions(path string, conds []kyAnyAll) ([]string, bool) {
	var out []string
	for i, aa := range conds {
		var all, anyOf []string
		for _, part := range []struct {
			name  string
			conds []kyCondition
			into  *[]string
		}{{"all", aa.All, &all}, {"any", aa.Any, &anyOf}} {
			for j, cond := range part.conds {
				expr, err := kyConditionCEL(cond)
				if err != nil {
					c.refuse(fmt.Sprintf("%s[%d].%s[%d]", path, i, part.name, j), "attestation dropped", "%v; write the condition in CEL by hand", err)
					return nil, false
				}
				*part.into = append(*part.into, expr)
			}
		}
		switch {
		case len(all) > 0 && len(anyOf) == 1:
			out = append(out, strings.Join(all, " && ")+" && "+anyOf[0])
		case len(all) > 0 && len(anyOf) > 1:
			out = append(out, strings.Join(all, " && ")+" && ("+strings.Join(anyOf, " || ")+")")
		case len(all) > 0:
			out = append(out, strings.Join(all, " && "))
		case len(anyOf) > 0:
			out = append(out, strings.Join(anyOf, " || "))
		}
	}
	return out, true
}

// kyKey is a condition key: "{{ a.b.c }}", a JMESPath field path.
var kyKey = regexp.MustCompile(`^\{\{\s*(.*?)\s*\}\}$`)

// kyContextRoots are Kyverno's context variables: a key starting with one
// is not about the predicate.
var kyContextRoots = map[string]bool{"request": true, "images": true, "element": true, "elementIndex": true,
	"serviceAccountName": true, "serviceAccountNamespace": true, "target": true, "@": true}

// kyConditionCEL translates one condition whose meaning CEL can keep: a
// key that is a plain field path of the predicate, compared with Equals or
// NotEquals to a plain string or a boolean, or with AnyIn, AllIn, AnyNotIn
// or AllNotIn to a list of plain strings. "Plain" leaves out what Kyverno
// reads as something else: wildcards, variables, durations and quantities.
//
// Where Kyverno is looser (it also lets "*" and "?" in the statement's own
// values act as wildcards, and compares numbers as their text), the CEL is
// stricter: it denies what Kyverno might allow, never the reverse.
func kyConditionCEL(cond kyCondition) (string, error) {
	var key string
	if err := json.Unmarshal(cond.Key, &key); err != nil {
		return "", fmt.Errorf("key %s is not a string", cond.Key)
	}
	m := kyKey.FindStringSubmatch(key)
	if m == nil {
		return "", fmt.Errorf("key %q is not a {{ }} expression", key)
	}
	field, err := kyFieldPath(m[1])
	if err != nil {
		return "", err
	}
	switch cond.Operator {
	case "Equals", "Equal", "NotEquals", "NotEqual":
		var v any
		if err := json.Unmarshal(cond.Value, &v); err != nil {
			return "", fmt.Errorf("value: %w", err)
		}
		not := strings.HasPrefix(cond.Operator, "Not")
		switch v := v.(type) {
		case bool:
			if not {
				return fmt.Sprintf("type(%s) == bool && %s != %t", field, field, v), nil
			}
			return fmt.Sprintf("%s == %t", field, v), nil
		case string:
			if err := kyPlain(v, true); err != nil {
				return "", err
			}
			if not {
				return fmt.Sprintf("type(%s) == string && %s != %s", field, field, celString(v)), nil
			}
			return fmt.Sprintf("%s == %s", field, celString(v)), nil
		}
		return "", fmt.Errorf("%s value %s: only a string or a boolean is converted", cond.Operator, cond.Value)
	case "AnyIn", "AllIn", "AnyNotIn", "AllNotIn":
		var vals []string
		if err := json.Unmarshal(cond.Value, &vals); err != nil {
			return "", fmt.Errorf("%s value %s: only a list of strings is converted", cond.Operator, cond.Value)
		}
		quoted := make([]string, len(vals))
		for i, v := range vals {
			if err := kyPlain(v, false); err != nil {
				return "", err
			}
			quoted[i] = celString(v)
		}
		list := "[" + strings.Join(quoted, ", ") + "]"
		// A value counts as absent from the list only if it is a string
		// without wildcard characters (which Kyverno would match).
		test := func(x string) string { return x + " in " + list }
		if strings.HasSuffix(cond.Operator, "NotIn") {
			test = func(x string) string {
				return fmt.Sprintf(`type(%[1]s) == string && !(%[1]s in %[2]s) && !%[1]s.matches("[*?]")`, x, list)
			}
		}
		each := "all"
		if strings.HasPrefix(cond.Operator, "Any") {
			each = "exists"
		}
		return fmt.Sprintf("(type(%s) == list ? %s.%s(k, %s) : %s)", field, field, each, test("k"), test(field)), nil
	}
	return "", fmt.Errorf("operator %q is not converted (Equals, NotEquals, AnyIn, AllIn, AnyNotIn and AllNotIn are)", cond.Operator)
}

// kyPlain refuses a value Kyverno would not compare as plain text.
func kyPlain(v string, equals bool) error {
	switch {
	case strings.ContainsAny(v, "*?"):
		return fmt.Errorf("value %q: wildcards are not converted (use matches() in CEL)", v)
	case strings.Contains(v, "{{"):
		return fmt.Errorf("value %q: variables are not converted", v)
	}
	if !equals {
		return nil
	}
	if _, err := time.ParseDuration(v); err == nil {
		return fmt.Errorf("value %q: Kyverno compares durations by length", v)
	}
	if _, err := resource.ParseQuantity(v); err == nil {
		return fmt.Errorf("value %q: Kyverno compares quantities by amount", v)
	}
	return nil
}

// celIdent is a field name CEL can select with a dot.
var celIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// celReserved are CEL's reserved words, which cannot follow a dot.
var celReserved = map[string]bool{"true": true, "false": true, "null": true, "in": true, "as": true, "break": true,
	"const": true, "continue": true, "else": true, "for": true, "function": true, "if": true, "import": true,
	"let": true, "loop": true, "package": true, "namespace": true, "return": true, "var": true, "void": true, "while": true}

// kyFieldPath translates a JMESPath field path (identifiers and quoted
// identifiers joined by dots) into a CEL selection from predicate.
func kyFieldPath(expr string) (string, error) {
	var b strings.Builder
	b.WriteString("predicate")
	rest := expr
	for first := true; ; first = false {
		var seg string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexFunc(rest[1:], func(r rune) bool { return r == '"' || r == '\\' })
			if end < 0 || rest[1+end] != '"' {
				return "", fmt.Errorf("key {{ %s }}: only plain field paths are converted", expr)
			}
			seg, rest = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexByte(rest, '.')
			if end < 0 {
				end = len(rest)
			}
			seg, rest = rest[:end], rest[end:]
			if !celIdent.MatchString(seg) {
				return "", fmt.Errorf("key {{ %s }}: %q is not a plain field name (JMESPath functions, filters and indexes are not converted)", expr, seg)
			}
		}
		if first && kyContextRoots[seg] {
			return "", fmt.Errorf("key {{ %s }} reads Kyverno's context (%s), not the statement's predicate", expr, seg)
		}
		if celIdent.MatchString(seg) && !celReserved[seg] {
			b.WriteString("." + seg)
		} else {
			b.WriteString("[" + celString(seg) + "]")
		}
		if rest == "" {
			return b.String(), nil
		}
		if rest[0] != '.' || len(rest) == 1 {
			return "", fmt.Errorf("key {{ %s }}: only plain field paths are converted", expr)
		}
		rest = rest[1:]
	}
}

// celString is s as a CEL string literal.
func celString(s string) string { return strconv.Quote(s) }
