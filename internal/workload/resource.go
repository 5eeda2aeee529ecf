package workload

import "fmt"

// builtinResources are the API resources of the built-in kinds signet
// reads images of (their group is the kind's).
var builtinResources = map[Kind]string{
	{"", "Pod"}:                   "pods",
	{"", "ReplicationController"}: "replicationcontrollers",
	{"", "PodTemplate"}:           "podtemplates",
	{"apps", "Deployment"}:        "deployments",
	{"apps", "ReplicaSet"}:        "replicasets",
	{"apps", "StatefulSet"}:       "statefulsets",
	{"apps", "DaemonSet"}:         "daemonsets",
	{"batch", "Job"}:              "jobs",
	{"batch", "CronJob"}:          "cronjobs",
}

// crossplaneResources are the resources of the Crossplane package kinds.
var crossplaneResources = map[string]string{"Provider": "providers", "Configuration": "configurations", "Function": "functions"}

// Resource returns the API resource (plural, lower case, such as "pods")
// that objects of kind k are served as, for the kinds whose images signet
// knows without being told (the built-in workload kinds and Crossplane
// packages); ok is false for any other kind, declared ones included.
func Resource(k Kind) (resource string, ok bool) {
	if r, ok := builtinResources[k]; ok {
		return r, true
	}
	if isCrossplane(k) {
		return crossplaneResources[k.Kind], true
	}
	return "", false
}

// KindOf returns the kind of the objects served as resource in group, for
// the resources Resource knows; ok is false for any other.
func KindOf(group, resource string) (k Kind, ok bool) {
	for k, r := range builtinResources {
		if k.Group == group && r == resource {
			return k, true
		}
	}
	for kind, r := range crossplaneResources {
		if k := (Kind{group, kind}); r == resource && isCrossplane(k) {
			return k, true
		}
	}
	return Kind{}, false
}

// CheckType compares the apiVersion and kind an object states (obj is its
// decoded JSON; Shape keeps both fields) with the kind k at version it is
// said to be: an object read as another kind would hide its images where
// that kind has none. What the object does not state (absent, null or "")
// is not compared: the type is then the request's alone.
func CheckType(k Kind, version string, obj map[string]any) error {
	want := version
	if k.Group != "" {
		want = k.Group + "/" + version
	}
	if v, ok := obj["apiVersion"]; ok && v != nil && v != "" {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("the object's apiVersion is not a string")
		}
		if s != want {
			return fmt.Errorf("the object's apiVersion %q is not %q", s, want)
		}
	}
	if v, ok := obj["kind"]; ok && v != nil && v != "" {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("the object's kind is not a string")
		}
		if s != k.Kind {
			return fmt.Errorf("the object's kind %q is not %q", s, k.Kind)
		}
	}
	return nil
}

// typeShape is what CheckType reads: kept on every kind's Shape.
var typeShape = &Shape{Fields: map[string]*Shape{"apiVersion": nil, "kind": nil}}
