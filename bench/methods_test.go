package bench

// methods is the part of bench/README.md that says how each figure is
// measured.
const methods = `
## How each figure is measured

Everything runs on loopback on this machine; every baseline is measured in the same run, interleaved with
the value where that matters, because the machine is shared and noisy.

- **verify key-based bundle / legacy signature in process**: ` + "`check.Evaluate`" + ` of evidence fetched once
  (conversion, sigstore-go verification, digest binding, result) against sigstore-go parsing and verifying the
  same bundle alone (` + "`testing.Benchmark`" + `, ns/op; 7 interleaved rounds, the fastest of each kept).
- **verify keyless bundle in process**: the same for a keyless Sigstore bundle made by test/sigstoretest (local
  Fulcio with an SCT, Rekor entry with inclusion proof, RFC 3161 timestamp) against sigstore-go's own verifier
  with the same trusted root, identity and artifact digest.
- **verify enterprise-CA certificate bundle in process**: the same for a bundle the real cosign made with
  ` + "`--certificate --certificate-chain`" + ` (a test PKI), under a certificate authority, against sigstore-go with
  the same root and intermediate as its only certificate authority (the chain cosign writes into the v0.3 bundle
  moved to the certificate field once, before timing, as signet does).
- **verify Notary signature in process**: the same for a JWS signature made by notation-go's signing library,
  under a notation authority, against notation-go's verifier on the same envelope, trust policy and trust store.
- **cold check of a key-signed tag in process**: ` + "`check.Decider.Decide`" + ` with the one policy ` + "`signet verify`" + ` makes of its flags (what it runs) of a tag
  signed by cosign (legacy format) in the distribution registry, no cache, one registry client kept across
  iterations (as a running server keeps it), against the three requests such a check needs at least (tag
  manifest, .sig manifest, its layer), sent one after the other on a kept-alive connection; median of
  alternating runs. signet itself sends two: the layer is cosign's plain simple-signing payload, which signet
  rebuilds from the repository and digest and checks against the layer's digest instead of fetching. It reads the Sigstore bundles among the referrers in parallel with the .sig, until it
  has seen that images of this repository pass on their .sig alone; from then on it reads the .sig first and
  the referrers only when the .sig is not enough.
- **signet verify wall time**: the CLI binary (` + "`cmd/signet`" + `, which leaves out the Kubernetes client libraries
  ` + "`signet-server`" + ` links) against ` + "`cosign verify`" + `, same image and key, alternating, median of 15. Both are
  mostly process start-up.
- **policy match among 10,000 policies**: ` + "`Snapshot.Match`" + ` with 10,000 policies against 1.
- **warm admission throughput / p50 / p99**: ` + "`signet serve --policies DIR`" + ` run in the test process and an
  HTTPS floor server, driven by the same closed-loop load generator (N clients over HTTP/1.1 keep-alive) with a
  3-container Pod AdmissionReview whose images are signed and already verified; floor, signet and floor again at
  each level (the better floor run is kept). Headline figures at 8 concurrent clients.
- **warm admission p50 latency with 10,000 policies**: the same pod, one request at a time, against two servers:
  one with 10,000 key policies (one selects the images), one with only that one; alternating rounds.
- **cold pod with 20 distinct images**: a server whose cache entries live 1 ns, so every admission verifies
  afresh; a Pod with 20 distinct signed images (by digest) against a Pod with 1; median of alternating runs.
  signet decides up to 16 images of an object at once. The images are signed through the host they are admitted
  from, as a signature names its repository. After the first image of the registry (its ping is then kept and
  its referrers are read only where the .sig is not enough), signet sends one request per image: the .sig
  manifest, on a connection kept from the admission before. Twice: with the registry on loopback, where every request costs only CPU (the distribution
  registry's and signet's, on the same two shared cores, so the figure measures CPU, not parallelism: measured
  apart with 2,000 requests, the registry spends 0.35 to 0.5 ms of CPU on each manifest request, so the 20
  requests alone need at least 3.5 ms of its time on two cores, about twice the 1-image pod), and through a
  proxy that holds each request 20 ms, a registry as far away as a public one usually is, where waiting
  dominates as it does in a cluster.
- **registry requests**: counted by a reverse proxy in front of the registry. *100 concurrent admissions*: a
  fresh signet serve receives 100 simultaneous Pod admissions of one uncached tag signed with a Sigstore bundle
  (with a bundle only, every request of a verification is needed, so the count does not depend on timing),
  against a fresh signet serve
  admitting another uncached tag once (both include meeting the registry). *3 replicas with the shared cache*: three fresh
  signet serve processes with ` + "`--shared-cache`" + ` on Debian's redis-server each admit, one after the other, a Pod
  of 4 images pinned by digest (a rollout's Pods, as the mutating webhook pins them), against one fresh signet
  serve admitting it; the test also logs 3 replicas without the shared cache (3 times the requests). *Deployment*: through the real API
  server (envtest) with signet serve as validating and mutating webhook: a Deployment of 3 replicas of an
  uncached tag (bundle-signed too) (pinned by the mutating webhook), then its ReplicaSet and 3 Pods as the controllers would create
  them from the admitted template (the test cluster runs no controllers), against one verification of another
  image by a client that has met the registry.
- **resident memory**: the test binary re-runs itself as a child process that compiles 10,000 key policies,
  decides 100,000 distinct digests (each a real ECDSA signature check; an in-memory registry signs each .sig on
  request) until the cache holds 100,000 verified results, runs the garbage collector and returns freed memory
  to the OS (` + "`debug.FreeOSMemory`" + `), then reads its VmRSS from /proc/self/status (the whole process: code,
  policies, cache). The live heap (runtime/metrics ` + "`/memory/classes/heap/objects:bytes`" + `) is logged with it.
  The baseline is the 200 MiB budget.
- **audit of 5,000 Pods** (only in full runs; ` + "`-step audit`" + ` runs it alone, in full with ` + "`-record`" + `): a real API
  server (envtest) holds 5,000 Pods in 10 namespaces, one container each, naming one of 50 tags (each its own
  repository, signed with a Sigstore bundle by one run of cosign) through the counting proxy, each Pod's status set
  through the status subresource as a kubelet reports it running (` + "`containerStatuses[].imageID`" + ` by digest), 16
  creates at a time by a client without a rate limit; one ClusterImagePolicy trusts the key. signet serve runs in a
  child process (the test binary re-run, ` + "`--kubeconfig`" + `, no webhook configured: the audit reads through its
  informers and the load generator calls /validate), each serve in a namespace of its own (its own Lease), the
  audit's with ` + "`--audit-interval 1s`" + ` so that scans run back to back. *Registry requests*: counted by the proxy
  from the start of the audit's serve to its first complete scan (` + "`signet_audit_scan_duration_seconds_count`" + `
  reaches 1 on /metrics; ` + "`signet_audit_objects_decided_total`" + ` ≥ 5,000), against a fresh ` + "`check.Decider`" + ` (new
  registry client, no cache) deciding each of the 50 images once, one after the other, spelled as the audit decides
  them (the tag pinned to the digest that ran); both include meeting the registry, and requests that differ by path
  are logged. *Warm admission p99 during scans*: the 3-container Pod of the warm admission figures, in an audited
  namespace, at 8 concurrent clients, five alternating 1 s windows: a serve without the audit (` + "`--audit-interval 0`" + `,
  same cluster) while the audit's serve is stopped (SIGSTOP: it neither scans nor loads the API server), then the
  audit's serve, scanning (objects decided counted in each window; a window without any fails the step). In cluster
  mode every admission reads the object's ServiceAccount from the API server, so both include that round trip.
  *Resident memory*: VmRSS of each serve after it collected garbage and returned freed memory to the OS (the child
  does it on SIGUSR1): the audit's after its first complete scan, the other once its policy is loaded. The target,
  1.5, is about 5.7 KiB of RSS per audited Pod over a 57 MiB serve: at that rate 50,000 Pods (280 MiB) and the
  200 MiB of the resident memory figure above fit the chart's 512 MiB limit. The informers keep trimmed objects
  (` + "`controller/audit.Trim`" + `) and the scanner one entry per object with its results and report parts.
  ` + "`SIGNET_BENCH_PROFILES=DIR`" + ` keeps heap profiles of both serves and a CPU profile of a scanning one there. A first
  scan not complete 2 minutes after start is reported with its pace, and the figures are taken during it. The step
  takes about 100 s: signing 10 s, API server 6 s, the Pods 15 s, the first scan 20 s, the windows 10 s.
- **admissions answered before the webhook timeout, registry fault: …** and **goroutines / heap in use of serve
  after the registry faults**: test/faults' scenario (` + "`go test ./test/faults`" + ` asserts the same with bounds): the
  distribution registry behind a fault-injecting proxy, 6 images (signed by cosign in the legacy and the bundle
  format, and unsigned) under a policy with ` + "`onError: deny`" + ` and one with ` + "`onError: allow`" + `; signet serve in a child
  process (` + "`--decision-timeout 3s`" + `, cache lifetimes 1 ns so that every admission asks the registry); 8 clients post
  AdmissionReviews of one-image Pods by tag during each fault (3 s; 1 s with ` + "`-step`" + ` alone), one fault after the other
  (only in full runs: test/faults, part of ` + "`make test`" + `, runs the same scenario).
  An answer counts when it arrives within 5 s, the webhook timeout (the verdicts are checked by test/faults, not
  here). Goroutines (` + "`go_goroutines`" + `) and heap in use (` + "`go_memstats_heap_inuse_bytes`" + `) are read from /metrics
  after the child collected garbage (SIGUSR1) and the idle connections to and from it were closed: the baseline after
  a load without fault, before the first fault; the value the most after any fault, once every faulted request
  ended and the fault was off (polled up to 20 s for the values to come back within 3 goroutines and 2 MiB).
- **high availability** (only in full runs: test/ha, part of ` + "`make test`" + `, runs and asserts the same scenario):
  three ` + "`signet-server serve`" + ` processes (` + "`--tls-secret`" + ` shared, 30 s certificates so they rotate every ~20 s,
  ` + "`--shutdown-delay 2s`" + `, ` + "`--decision-timeout 8s`" + `) behind a loopback round-robin TCP front that routes new
  connections to replicas whose /readyz answers 200 (probed every 250 ms) and drops a terminating one 500 ms after
  SIGTERM, as endpoints and kube-proxy do; the webhook configurations (timeout 10 s, failurePolicy Fail) call the
  front; 4 clients create Pods and Deployments (server-side dry run) through the real API server without pause.
  **Rolling restart**: each replica replaced in turn, the new one in rotation before the old one gets SIGTERM;
  admissions decided rightly against attempted. **Failover**: the Lease holder (from the API server's audit log)
  is killed (SIGKILL); the time until another replica holds the Lease against the Lease's 15 s. **Rotations**:
  admissions without a TLS failure against all admissions of the run. **Outage**: kube-apiserver and etcd killed for
  8 s; AdmissionReviews posted to the front (as another API server would) decided rightly against sent.

` + "`go test ./bench`" + ` (part of ` + "`make test`" + `) runs each measurement but the audit once as a smoke test with small counts;
` + "`make bench`" + ` runs them in full and rewrites this file.
`
