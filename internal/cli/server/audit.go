package server

import (
	"log/slog"

	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/internal/admission"
	"github.com/signet-dev/signet/internal/audit"
	controlleraudit "github.com/signet-dev/signet/internal/controller/audit"
)

// audit is the background audit (--audit-interval): the leader re-decides
// what runs with the admission handler's Decider (one cache, one
// single-flight), and writes reports, Events and metrics. nil when the
// policies come from files or the interval is 0.
func (o *serveOptions) audit(log *slog.Logger, cluster *rest.Config, policies *policySource, handler *admission.Handler, metrics *serveMetrics) (*controlleraudit.Scanner, error) {
	if o.auditInterval == 0 || policies.leading == nil {
		return nil, nil
	}
	return controlleraudit.New(cluster, &controlleraudit.Scanner{
		Auditor:   &audit.Auditor{Decider: handler.Decider, Namespaces: policies.auditNamespaces},
		Extractor: o.extractor,
		Snapshot:  policies.snapshot,
		Leading:   policies.leading,
		Interval:  o.auditInterval,
		Log:       log.With("component", "audit"),
		Metrics:   controlleraudit.NewMetrics(metrics.registry),
		Busy:      handler.InFlight,
	})
}
