package server

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/signet-dev/signet/internal/audit"
)

// writeImpact prints the report: JSON (indented, fields as audit.Impact
// documents them), or text: per namespace and object, each image with its
// outcome (before → after in a comparison) and reasons, then the summary
// line.
func writeImpact(w io.Writer, output string, im audit.Impact) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(im)
	}
	var b strings.Builder
	namespace, object := "\x00", ""
	for _, e := range im.Entries {
		if e.Object.Namespace != namespace {
			namespace, object = e.Object.Namespace, ""
			if namespace == "" {
				b.WriteString("cluster-scoped\n")
			} else {
				fmt.Fprintf(&b, "namespace %s\n", namespace)
			}
		}
		if o := e.Object.Kind + " " + e.Object.Name; o != object {
			object = o
			fmt.Fprintf(&b, "  %s\n", o)
		}
		fmt.Fprintf(&b, "    %s: %s\n", e.Path, e.Image)
		outcome := string(e.Outcome)
		if im.Compared {
			outcome = string(e.Before) + " → " + outcome
		}
		reasons := strings.Join(e.Reasons, "; ")
		if reasons == "" {
			reasons = "no reason given"
		}
		if e.Outcome == audit.OutcomeAllowed {
			reasons = "no longer: " + reasons
		}
		fmt.Fprintf(&b, "      %s (%s): %s\n", outcome, strings.Join(e.Policies, ", "), reasons)
	}
	for _, u := range im.Summary.Unread {
		fmt.Fprintf(&b, "not read: %s\n", u)
	}
	b.WriteString(summaryLine(im))
	_, err := io.WriteString(w, b.String())
	return err
}

// summaryLine counts the report in one line.
func summaryLine(im audit.Impact) string {
	s := im.Summary
	scanned := fmt.Sprintf("%s (%s) decided", plural(s.Objects, "object"), plural(s.Images, "image"))
	if len(s.Unread) > 0 {
		scanned += fmt.Sprintf(", %d not read", len(s.Unread))
	}
	if im.Compared {
		return fmt.Sprintf("%s: %s newly denied, %d newly warned, %d newly undecided, %d newly allowed\n",
			scanned, plural(s.Denied, "image"), s.Warned, s.Undecided, s.Allowed)
	}
	return fmt.Sprintf("%s: %s denied, %d warned, %d undecided today\n", scanned, plural(s.Denied, "image"), s.Warned, s.Undecided)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
