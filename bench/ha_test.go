package bench

import (
	"testing"

	"github.com/signet-dev/signet/test/ha"
)

// highAvailability runs test/ha's scenario (three signet serve processes
// behind a round-robin front, a closed loop of admissions through the real
// API server through a rolling restart, the leader killed, certificate
// rotations and a control-plane crash) and records: the admissions decided
// rightly during the rolling restart and through the rotations against
// those attempted; the failover time against the Lease's duration; the
// admissions the replicas decided with the API server down against those
// sent. test/ha, part of make test, asserts the same.
func highAvailability(t *testing.T) []Entry {
	rep := ha.Run(t)
	t.Logf("%+v", rep)
	decided := func(name string, tl ha.Tally, baselineName string) Entry {
		e := newEntry(name, "admissions", float64(tl.Attempted-tl.Failed-tl.Wrong), float64(tl.Attempted), baselineName, 1)
		e.HigherIsBetter, e.Meets = true, e.Ratio >= 1
		return e
	}
	rotation := ha.Tally{Attempted: rep.Whole.Attempted, Failed: rep.RotationTLSFailures}
	outage := newEntry("admissions decided by 3 replicas from their snapshot, API server and etcd down", "admissions",
		float64(rep.OutageDecided), float64(rep.OutageDecided), "admissions sent to them", 1)
	outage.HigherIsBetter, outage.Meets = true, outage.Ratio >= 1
	return []Entry{
		decided("admissions decided rightly during a rolling restart of 3 replicas", rep.RollingRestart, "admissions attempted through the API server"),
		newEntry("failover: another replica holds the Lease after the leader is killed", "s", rep.Failover.Seconds(), ha.LeaseDuration.Seconds(), "the Lease's duration", 1.2),
		decided("admissions without a TLS failure through serving-certificate rotations", rotation, "admissions attempted in the whole run"),
		outage,
	}
}
