package workload

// Request is what an admission request says it is about: the kind of its
// object and the resource (with subresource) it was made to.
type Request struct {
	Kind        Kind
	Group       string // request.resource.group
	Resource    string // request.resource.resource
	SubResource string
}

// EphemeralContainers reports whether r is to the pods/ephemeralcontainers
// subresource, whose object is the whole Pod.
func (r Request) EphemeralContainers() bool {
	return r.Group == "" && r.Resource == "pods" && r.SubResource == "ephemeralcontainers"
}

// ChangesImages reports whether objects sent to r can change images: a
// resource itself, or pods/ephemeralcontainers. Other subresources (status,
// scale, ...) carry other kinds and change no images.
func (r Request) ChangesImages() bool {
	return r.SubResource == "" || r.EphemeralContainers()
}

// Check checks that the resource is the resource of the kind, for the kinds
// and resources signet knows: a Pod is served as "pods", and
// pods/ephemeralcontainers carries a Pod. Other subresources carry other
// kinds (a Scale for deployments/scale) and are not compared; nor are kinds
// and resources signet knows neither of (declared with --image-field: their
// resources are not declared). The kind decides where images are read: a
// request whose kind disagrees with its resource is not one the API server
// made, and reading it as declared could find no images. The error is
// ErrMalformed.
func (r Request) Check() error {
	k := r.Kind
	name := r.Resource
	if r.SubResource != "" {
		name += "/" + r.SubResource
	}
	if r.Group != "" {
		name += "." + r.Group
	}
	if r.EphemeralContainers() {
		if k != (Kind{Kind: "Pod"}) {
			return malformedf("request.kind %s does not match request.resource %s, which carries a Pod", k, name)
		}
		return nil
	}
	if r.SubResource != "" {
		if r.Resource == "" {
			return malformedf("request.resource names no resource for subresource %q", r.SubResource)
		}
		return nil
	}
	if want, ok := Resource(k); ok && (r.Group != k.Group || r.Resource != want) {
		if r.Resource == "" {
			return malformedf("request.resource names no resource; request.kind %s is served as %s", k, want)
		}
		return malformedf("request.kind %s does not match request.resource %s", k, name)
	}
	if owner, ok := KindOf(r.Group, r.Resource); ok && owner != k {
		return malformedf("request.kind %s does not match request.resource %s, which serves %s", k, name, owner)
	}
	return nil
}
