package admission

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/workload"
)

// benchPodReview is a 3-container pod as the API server sends it: with
// managed fields, resources, environment and status.
const benchPodReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"0b4c8d51-3f9b-4c2e-9d2a-6c1e0e6f0a11","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"requestKind":{"group":"","version":"v1","kind":"Pod"},"requestResource":{"group":"","version":"v1","resource":"pods"},"name":"web-7d9f8b6c5d-x2v4k","namespace":"default","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller","uid":"5e3f","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"]},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d9f8b6c5d-x2v4k","generateName":"web-7d9f8b6c5d-","namespace":"default","labels":{"app":"web","pod-template-hash":"7d9f8b6c5d"},"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-30T10:00:00Z"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d9f8b6c5d","uid":"a1","controller":true,"blockOwnerDeletion":true}],"managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-12-01T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"a1\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{}}}}}}]},"spec":{"containers":[{"name":"app","image":"registry.example.org/team/app:v1.4.2","ports":[{"containerPort":8080,"protocol":"TCP"}],"env":[{"name":"MODE","value":"production"},{"name":"LOG","value":"info"}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"volumeMounts":[{"name":"kube-api-access","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}],"imagePullPolicy":"IfNotPresent"},{"name":"sidecar","image":"registry.example.org/team/proxy:v2.0.0","resources":{"limits":{"cpu":"100m","memory":"64Mi"}},"imagePullPolicy":"IfNotPresent"},{"name":"metrics","image":"registry.example.org/team/exporter:v0.9.1","imagePullPolicy":"IfNotPresent"}],"volumes":[{"name":"kube-api-access","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}}]}}],"restartPolicy":"Always","serviceAccountName":"default","nodeSelector":{"kubernetes.io/os":"linux"},"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]},"status":{"phase":"Pending","qosClass":"Burstable"}},"oldObject":null,"dryRun":false,"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}}`

// BenchmarkValidate is the admission path without the network: decode,
// images, policy match, decisions (static policies), encode.
func BenchmarkValidate(b *testing.B) {
	p := policy.CompileObject(b.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "static", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}, Digest: "none",
		Authorities: []v1alpha1.Authority{{Name: "s", Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}}, nil)
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	rc, err := registry.New()
	if err != nil {
		b.Fatal(err)
	}
	ex, err := workload.NewExtractor()
	if err != nil {
		b.Fatal(err)
	}
	h := (&Handler{Snapshot: func() *policy.Snapshot { return snap }, Decider: &check.Decider{Registry: rc}, Extractor: ex}).Validate()
	body := []byte(benchPodReview)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
}
