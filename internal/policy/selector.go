package policy

import "fmt"

// requirement is one matchExpressions entry.
type requirement struct {
	Key      string
	Operator string
	Values   []string
}

// Label selector operators.
const (
	opIn           = "In"
	opNotIn        = "NotIn"
	opExists       = "Exists"
	opDoesNotExist = "DoesNotExist"
)

// selector is a compiled label selector with Kubernetes semantics: every
// matchLabels pair and every expression must hold.
type selector struct {
	labels map[string]string
	exprs  []requirement
}

func compileSelector(matchLabels map[string]string, exprs []requirement) (*selector, error) {
	sel := &selector{labels: matchLabels}
	for i, e := range exprs {
		switch e.Operator {
		case opIn, opNotIn:
			if len(e.Values) == 0 {
				return nil, fmt.Errorf("matchExpressions[%d]: operator %s needs values", i, e.Operator)
			}
		case opExists, opDoesNotExist:
			if len(e.Values) > 0 {
				return nil, fmt.Errorf("matchExpressions[%d]: operator %s takes no values", i, e.Operator)
			}
		default:
			return nil, fmt.Errorf("matchExpressions[%d]: unknown operator %q", i, e.Operator)
		}
		if e.Key == "" {
			return nil, fmt.Errorf("matchExpressions[%d]: key is required", i)
		}
		sel.exprs = append(sel.exprs, e)
	}
	return sel, nil
}

func (s *selector) matches(labels map[string]string) bool {
	for k, v := range s.labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.exprs {
		v, ok := labels[e.Key]
		switch e.Operator {
		case opIn:
			if !ok || !contains(e.Values, v) {
				return false
			}
		case opNotIn:
			if ok && contains(e.Values, v) {
				return false
			}
		case opExists:
			if !ok {
				return false
			}
		case opDoesNotExist:
			if ok {
				return false
			}
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
