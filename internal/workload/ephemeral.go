package workload

import (
	"strconv"
	"strings"
)

// ephemeralNamesShape keeps the names of a Pod's ephemeral containers.
var ephemeralNamesShape = &Shape{Fields: map[string]*Shape{
	"spec": {Fields: map[string]*Shape{
		"ephemeralContainers": {Elem: &Shape{Fields: map[string]*Shape{"name": nil}}},
	}},
}}

// ephemeralNames returns the names of the ephemeral containers of the Pod
// raw, by index ("" where an element has none).
func ephemeralNames(raw []byte) ([]string, error) {
	obj, err := decodeObject(raw, ephemeralNamesShape)
	if err != nil || obj == nil {
		return nil, err
	}
	spec, _ := obj["spec"].(map[string]any)
	list, _ := spec["ephemeralContainers"].([]any)
	names := make([]string, len(list))
	for i, item := range list {
		c, _ := item.(map[string]any)
		names[i], _ = c["name"].(string)
	}
	return names, nil
}

// AddedEphemeralContainers reports, for each image of the Pod object (a
// request to pods/ephemeralcontainers, whose oldObject is the Pod before),
// whether it is the image of an ephemeral container that oldObject does not
// have (by name, as the API server compares them): through that
// subresource, those are the only fields a patch may change. The API server
// drops every other change of that subresource, and refuses a change to an
// ephemeral container that already exists. The error is ErrMalformed.
func AddedEphemeralContainers(object, oldObject []byte) (func(Image) bool, error) {
	names, err := ephemeralNames(object)
	if err != nil {
		return nil, malformedf("the object: %w", err)
	}
	oldNames, err := ephemeralNames(oldObject)
	if err != nil {
		return nil, malformedf("the old object: %w", err)
	}
	existing := make(map[string]bool, len(oldNames))
	for _, n := range oldNames {
		existing[n] = true
	}
	added := map[int]bool{}
	for i, n := range names {
		if !existing[n] {
			added[i] = true
		}
	}
	return func(im Image) bool {
		i, ok := ephemeralIndex(im.Pointer)
		return ok && added[i]
	}, nil
}

// ephemeralIndex returns the index of the ephemeral container whose image
// pointer is ptr (/spec/ephemeralContainers/N/image); ok is false for any
// other field.
func ephemeralIndex(ptr string) (i int, ok bool) {
	rest, ok := strings.CutPrefix(ptr, "/spec/ephemeralContainers/")
	if !ok {
		return 0, false
	}
	n, ok := strings.CutSuffix(rest, "/image")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	return i, err == nil
}
