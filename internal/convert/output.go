package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// YAML renders the objects as a YAML stream. The notes come first as
// comments (lossy ones marked WARNING), then each object with the notes of
// its source document.
func (r *Result) YAML() ([]byte, error) {
	var b bytes.Buffer
	for _, n := range r.Notes {
		if n.Source == "" {
			writeComment(&b, "NOTE: "+n.String())
		}
	}
	written := map[string]bool{}
	for i, o := range r.Objects {
		if i > 0 || b.Len() > 0 {
			b.WriteString("---\n")
		}
		if !written[o.Source] {
			written[o.Source] = true
			for _, n := range r.Notes {
				if n.Source != o.Source {
					continue
				}
				if n.Lossy {
					writeComment(&b, "WARNING (lossy): "+n.String())
				} else {
					writeComment(&b, "NOTE: "+n.String())
				}
			}
		}
		out, err := yaml.Marshal(o.Policy)
		if err != nil {
			return nil, err
		}
		b.Write(dropEmptyStatus(out))
	}
	return b.Bytes(), nil
}

func writeComment(b *bytes.Buffer, s string) {
	for _, line := range strings.Split(s, "\n") {
		fmt.Fprintf(b, "# %s\n", line)
	}
}

// dropEmptyStatus removes the "status: {}" and "creationTimestamp: null"
// lines that marshalling an unsaved object produces.
func dropEmptyStatus(y []byte) []byte {
	var out []string
	for _, line := range strings.Split(string(y), "\n") {
		t := strings.TrimSpace(line)
		if t == "status: {}" || t == "creationTimestamp: null" {
			continue
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

// JSON renders the objects as a v1 List (notes are not part of JSON; the
// CLI prints them on stderr).
func (r *Result) JSON() ([]byte, error) {
	items := make([]json.RawMessage, 0, len(r.Objects))
	for _, o := range r.Objects {
		y, err := yaml.Marshal(o.Policy)
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(dropEmptyStatus(y))
		if err != nil {
			return nil, err
		}
		items = append(items, js)
	}
	out, err := json.MarshalIndent(struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}{"v1", "List", items}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
