package ha

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// auditPolicy records, from the API server, every write signet's replicas
// make (group signet-replicas), with who made it and when.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["signet-replicas"]
    verbs: [create, update, patch, delete]
  - level: None
`

type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	StageTimestamp time.Time `json:"stageTimestamp"`
	Stage          string    `json:"stage"`
}

func (e auditEvent) ok() bool { return e.ResponseStatus.Code >= 200 && e.ResponseStatus.Code < 300 }

func (e auditEvent) String() string {
	r := e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		r += "/" + e.ObjectRef.Subresource
	}
	return fmt.Sprintf("%s %s %s %s/%s (%d)", e.StageTimestamp.Format("15:04:05.000000"), e.User.Username, e.Verb, r, e.ObjectRef.Name, e.ResponseStatus.Code)
}

// leaderOnly: writes only the Lease holder makes (status, reports,
// Events, TUF state); certificates, CA bundles and the Lease itself any
// replica may write.
func (e auditEvent) leaderOnly() bool {
	switch {
	case e.ObjectRef.Subresource == "status":
		return true
	case e.ObjectRef.Resource == "policyreports" || e.ObjectRef.Resource == "clusterpolicyreports" || e.ObjectRef.Resource == "events":
		return true
	case e.ObjectRef.Resource == "configmaps" && strings.HasPrefix(e.ObjectRef.Name, "signet-trustroot-"):
		return true // a remote TrustRoot's saved TUF state
	}
	return false
}

func (e auditEvent) leaseWrite() bool {
	return e.ObjectRef.Resource == "leases" && e.ObjectRef.Name == "signet-controller" && e.ok()
}

func readAudit(path string) ([]auditEvent, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the audit log the test configured
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log line %q: %w", sc.Text(), err)
		}
		if e.Stage == "ResponseComplete" && strings.HasPrefix(e.User.Username, "signet-replica-") {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StageTimestamp.Before(out[j].StageTimestamp) })
	return out, sc.Err()
}

// leadership is what the audit log says of the election: the holders in
// turn (a successful write of the Lease names its holder: an acquisition,
// a renewal or a release), and every leader-only write made by a replica
// that was not the last to write the Lease.
type leadership struct {
	holders    []string // in turn, each once per term
	writes     int      // leader-only writes
	violations []string
}

func checkLeadership(events []auditEvent) leadership {
	var l leadership
	holder := ""
	for _, e := range events {
		if e.leaseWrite() {
			if e.User.Username != holder {
				holder = e.User.Username
				l.holders = append(l.holders, holder)
			}
			continue
		}
		if !e.leaderOnly() || !e.ok() {
			continue
		}
		l.writes++
		if e.User.Username != holder {
			l.violations = append(l.violations, fmt.Sprintf("%s while %q held the Lease", e, holder))
		}
	}
	return l
}

// lastHolder is the replica that last wrote the Lease.
func lastHolder(events []auditEvent) string {
	h := ""
	for _, e := range events {
		if e.leaseWrite() {
			h = e.User.Username
		}
	}
	return h
}
