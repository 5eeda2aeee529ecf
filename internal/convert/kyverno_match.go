package convert

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
)

// Which workloads a Kyverno rule applies to: its match (kinds, with the
// pod controllers Kyverno autogenerates rules for, and namespaces) and its
// exclude (whole namespaces), as a signet policy's match.

// kyAutogen are the kinds Kyverno applies a Pod rule to as well.
var kyAutogen = []string{"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}

type kyMatch struct {
	Any       []kyFilter   `json:"any"`
	All       []kyFilter   `json:"all"`
	Resources *kyResources `json:"resources"`
}

type kyFilter struct {
	Resources kyResources `json:"resources"`
}

// kyExclude is a rule's exclude block. signet converts exclusions of whole
// namespaces and refuses the other filters (kinds, names, selectors,
// users) by name.
type kyExclude struct {
	Any []kyExFilter `json:"any"`
	All []kyExFilter `json:"all"`
	// The legacy form: one filter at the top of the block.
	kyExFilter
}

type kyExFilter struct {
	Resources    *kyExResources  `json:"resources"`
	Subjects     json.RawMessage `json:"subjects"`
	Roles        json.RawMessage `json:"roles"`
	ClusterRoles json.RawMessage `json:"clusterRoles"`
}

type kyExResources struct {
	Kinds             []string        `json:"kinds"`
	Namespaces        []string        `json:"namespaces"`
	Names             json.RawMessage `json:"names"`
	Name              json.RawMessage `json:"name"`
	NamespaceSelector json.RawMessage `json:"namespaceSelector"`
	Selector          json.RawMessage `json:"selector"`
	Annotations       json.RawMessage `json:"annotations"`
	Operations        json.RawMessage `json:"operations"`
}

type kyResources struct {
	Kinds      []string `json:"kinds"`
	Namespaces []string `json:"namespaces"`
}

// kyExclude narrows a rule's match by its exclude block, where that is a
// set of namespaces (excluded when any filter matches, or when the one
// "all" filter does): the policy's namespace selector then requires
// kubernetes.io/metadata.name NotIn them. Other exclusions (kinds, names,
// selectors, users) are refused by name.
func (c *conv) kyExclude(path string, match *v1alpha1.MatchResources, ex *kyExclude) (*v1alpha1.MatchResources, bool) {
	type filter struct {
		path string
		f    kyExFilter
	}
	var filters []filter
	for i, f := range ex.Any {
		filters = append(filters, filter{fmt.Sprintf("%s.any[%d]", path, i), f})
	}
	switch {
	case len(ex.All) > 1 || len(ex.All) == 1 && len(ex.Any) > 0:
		return match, c.refuse(path+".all", "ignored: the rule applies to what it excluded too", "combining several exclude filters with all is not expressible")
	case len(ex.All) == 1:
		filters = append(filters, filter{path + ".all[0]", ex.All[0]})
	}
	if ex.Resources != nil || present(ex.Subjects) || present(ex.Roles) || present(ex.ClusterRoles) {
		filters = append(filters, filter{path, ex.kyExFilter})
	}
	var excluded []string
	for _, f := range filters {
		var r kyExResources
		if f.f.Resources != nil {
			r = *f.f.Resources
		}
		for _, other := range []struct {
			field string
			raw   json.RawMessage
		}{{"subjects", f.f.Subjects}, {"roles", f.f.Roles}, {"clusterRoles", f.f.ClusterRoles},
			{"resources.names", r.Names}, {"resources.name", r.Name}, {"resources.namespaceSelector", r.NamespaceSelector},
			{"resources.selector", r.Selector}, {"resources.annotations", r.Annotations}, {"resources.operations", r.Operations}} {
			if present(other.raw) {
				return match, c.refuse(f.path+"."+other.field, "ignored: the rule applies to what it excluded too", "only whole namespaces can be excluded from a signet policy")
			}
		}
		if len(r.Kinds) > 0 {
			return match, c.refuse(f.path+".resources.kinds", "ignored: the rule applies to what it excluded too", "only whole namespaces can be excluded from a signet policy (list the kinds to check in match instead)")
		}
		if len(r.Namespaces) == 0 {
			c.invalid(f.path+".resources", "an exclude filter with no namespaces excludes everything")
			return match, false
		}
		for _, ns := range r.Namespaces {
			if strings.ContainsAny(ns, "*?") {
				return match, c.refuse(f.path+".resources.namespaces", "ignored: the rule applies to what it excluded too", "%q: namespace wildcards are not expressible", ns)
			}
			if !slices.Contains(excluded, ns) {
				excluded = append(excluded, ns)
			}
		}
	}
	if len(excluded) == 0 {
		return match, true
	}
	out := &v1alpha1.MatchResources{}
	if match != nil {
		out.Kinds = match.Kinds
		if match.NamespaceSelector != nil {
			out.NamespaceSelector = match.NamespaceSelector.DeepCopy()
		}
	}
	if out.NamespaceSelector == nil {
		out.NamespaceSelector = &metav1.LabelSelector{}
	}
	out.NamespaceSelector.MatchExpressions = append(out.NamespaceSelector.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded,
	})
	return out, true
}

func (c *conv) kyMatch(path string, annotations map[string]string, m kyMatch) (*v1alpha1.MatchResources, bool) {
	filters := m.Any
	if len(m.All) > 0 {
		if len(m.All) > 1 || len(m.Any) > 0 {
			c.refuse(path+".all", "rule skipped", "combining several filters with all is not expressible")
			return nil, false
		}
		filters = m.All
	}
	if m.Resources != nil {
		filters = append(filters, kyFilter{Resources: *m.Resources})
	}
	if len(filters) == 0 {
		c.invalid(path, "a rule needs a match")
		return nil, false
	}
	kinds := map[string]bool{}
	allKinds := false
	var namespaces []string
	for i, f := range filters {
		ns := strings.Join(f.Resources.Namespaces, ",")
		if i > 0 && ns != strings.Join(namespaces, ",") {
			c.refuse(path, "rule skipped", "filters with different namespaces are not expressible in one signet policy")
			return nil, false
		}
		namespaces = f.Resources.Namespaces
		for _, k := range f.Resources.Kinds {
			parts := strings.Split(k, "/")
			k = parts[len(parts)-1]
			switch k {
			case "*":
				allKinds = true
			case "Pod":
				auto := annotations["pod-policies.kyverno.io/autogen-controllers"]
				switch auto {
				case "":
					for _, a := range kyAutogen {
						kinds[a] = true
					}
				case "none":
					kinds["Pod"] = true
				default:
					kinds["Pod"] = true
					for _, a := range strings.Split(auto, ",") {
						kinds[strings.TrimSpace(a)] = true
					}
				}
			default:
				kinds[k] = true
			}
		}
	}
	out := &v1alpha1.MatchResources{}
	if !allKinds {
		for _, k := range kyAutogen {
			if kinds[k] {
				out.Kinds = append(out.Kinds, k)
				delete(kinds, k)
			}
		}
		for k := range kinds {
			out.Kinds = append(out.Kinds, k)
		}
	}
	for _, ns := range namespaces {
		if strings.ContainsAny(ns, "*?") {
			c.refuse(path+".namespaces", "rule skipped", "%q: namespace wildcards are not expressible", ns)
			return nil, false
		}
	}
	if len(namespaces) > 0 {
		out.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: namespaces,
		}}}
	}
	if out.NamespaceSelector == nil && len(out.Kinds) == 0 {
		return nil, true
	}
	return out, true
}
