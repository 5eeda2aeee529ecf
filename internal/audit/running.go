package audit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/workload"
)

// podStatus is what RunningImages reads of a Pod: its containers' names, and
// the image IDs the kubelet reported for them.
type podStatus struct {
	Spec struct {
		Containers          []named `json:"containers"`
		InitContainers      []named `json:"initContainers"`
		EphemeralContainers []named `json:"ephemeralContainers"`
	} `json:"spec"`
	Status struct {
		ContainerStatuses          []containerStatus `json:"containerStatuses"`
		InitContainerStatuses      []containerStatus `json:"initContainerStatuses"`
		EphemeralContainerStatuses []containerStatus `json:"ephemeralContainerStatuses"`
	} `json:"status"`
}

type named struct {
	Name string `json:"name"`
}

type containerStatus struct {
	Name    string `json:"name"`
	ImageID string `json:"imageID"`
}

// RunningImages returns a Pod's images as they run: a container whose
// status has an image ID of the image's repository with a digest
// (repository@sha256:..., docker-pullable:// or not) is decided at that
// digest, spelled as written plus "@digest" (as admission pins it); other
// images (not started yet, an image ID without the repository, image
// volumes) are decided as written, which resolves their tags. pod is the
// Pod's JSON; images are its images as workload.Extractor.Decode found
// them.
func RunningImages(pod []byte, images []workload.Image) ([]workload.Image, error) {
	var p podStatus
	if err := json.Unmarshal(pod, &p); err != nil {
		return nil, fmt.Errorf("reading the Pod's container statuses: %w", err)
	}
	lists := map[string]struct {
		spec   []named
		status []containerStatus
	}{
		"spec.containers":          {p.Spec.Containers, p.Status.ContainerStatuses},
		"spec.initContainers":      {p.Spec.InitContainers, p.Status.InitContainerStatuses},
		"spec.ephemeralContainers": {p.Spec.EphemeralContainers, p.Status.EphemeralContainerStatuses},
	}
	out := make([]workload.Image, len(images))
	for i, im := range images {
		out[i] = im
		list, index, ok := containerOf(im.Path)
		if !ok {
			continue
		}
		l := lists[list]
		if index >= len(l.spec) {
			continue
		}
		for _, st := range l.status {
			if st.Name == l.spec[index].Name {
				if digest := digestOf(im.Image, st.ImageID); digest != "" {
					out[i].Image = pinned(im.Image, digest)
				}
				break
			}
		}
	}
	return out, nil
}

// containerOf splits a field path like spec.containers[2].image.
func containerOf(path string) (list string, index int, ok bool) {
	list, rest, ok := strings.Cut(path, "[")
	if !ok {
		return "", 0, false
	}
	n, tail, ok := strings.Cut(rest, "]")
	if !ok || tail != ".image" {
		return "", 0, false
	}
	index, err := strconv.Atoi(n)
	return list, index, err == nil && index >= 0
}

// digestOf returns the digest of imageID when it names the repository of
// image (as the runtime reports it: repository@sha256:..., maybe behind
// docker-pullable://), else "".
func digestOf(image, imageID string) string {
	id := strings.TrimPrefix(imageID, "docker-pullable://")
	ranRef, err := reference.Parse(id)
	if err != nil || ranRef.Digest() == "" {
		return ""
	}
	written, err := reference.Parse(image)
	if err != nil || written.Name() != ranRef.Name() {
		return ""
	}
	// The runtime says what ran, even where the image names another
	// digest.
	return ranRef.Digest()
}

// pinned spells image at digest: as written, with its digest replaced or
// appended.
func pinned(image, digest string) string {
	if at := strings.LastIndex(image, "@"); at >= 0 {
		image = image[:at]
	}
	return image + "@" + digest
}
