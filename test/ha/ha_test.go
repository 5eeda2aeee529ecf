package ha

import "testing"

// TestHighAvailability: see Run. Run fails the test on any failed or wrong
// admission it does not allow for.
func TestHighAvailability(t *testing.T) {
	rep := Run(t)
	t.Logf("%+v", rep)
}
