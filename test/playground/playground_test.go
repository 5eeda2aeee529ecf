package playground

import (
	"bytes"
	"testing"
)

// TestPlaygroundCheck is `make playground`'s scenario, non-interactive: every
// outcome must be as the seed's documentation says.
func TestPlaygroundCheck(t *testing.T) {
	var out bytes.Buffer
	w := Start(t, &out)
	failed := w.Run(t.Context(), &out)
	t.Log(out.String())
	for _, f := range failed {
		t.Error(f)
	}
	if t.Failed() {
		t.Logf("signet serve logs:\n%s", w.Webhook.Logs())
	}
}
