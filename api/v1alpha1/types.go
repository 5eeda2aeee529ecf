// Package v1alpha1 holds signet's policy API, group signet.dev, version
// v1alpha1: ClusterImagePolicy (cluster-wide) and ImagePolicy (one namespace).
// Field names follow sigstore policy-controller where they mean the same.
//
// +kubebuilder:object:generate=true
// +groupName=signet.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of signet's policies.
var GroupVersion = schema.GroupVersion{Group: "signet.dev", Version: "v1alpha1"}

// AddToScheme registers signet's policy types in a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ClusterImagePolicy{}, &ClusterImagePolicyList{}, &ImagePolicy{}, &ImagePolicyList{}, &TrustRoot{}, &TrustRootList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// ClusterImagePolicy says how the images it selects must be signed and
// attested, in every namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=cip,categories=signet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterImagePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImagePolicySpec   `json:"spec"`
	Status ImagePolicyStatus `json:"status,omitempty"`
}

// ClusterImagePolicyList is a list of ClusterImagePolicy.
//
// +kubebuilder:object:root=true
type ClusterImagePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterImagePolicy `json:"items"`
}

// ImagePolicy is a ClusterImagePolicy that applies only in its own
// namespace. It adds requirements there; it can never relax the cluster's
// rules: every matching policy must pass, and an image that no
// ClusterImagePolicy selects stays unmatched (denied under the default
// --unmatched=deny) whatever an ImagePolicy says. Its key and credential
// Secrets are read from its own namespace only.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=ip,categories=signet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ImagePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImagePolicySpec   `json:"spec"`
	Status ImagePolicyStatus `json:"status,omitempty"`
}

// ImagePolicyList is a list of ImagePolicy.
//
// +kubebuilder:object:root=true
type ImagePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImagePolicy `json:"items"`
}

// ImagePolicySpec is what a policy requires of the images it selects.
//
// +kubebuilder:validation:XValidation:rule="!has(self.threshold) || self.threshold <= size(self.authorities)",message="threshold cannot exceed the number of authorities"
type ImagePolicySpec struct {
	// Images selects the images the policy governs, by repository and
	// tag. An image matched by any entry is governed.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	Images []ImageMatcher `json:"images"`

	// ExcludeImages are images this policy does not govern even though
	// images selects them (for example a more specific policy's scope, as
	// containers-policy.json's most specific scope wins, or Kyverno's
	// skipImageReferences). Other policies still apply to them; an image no
	// policy governs follows the cluster's setting for unmatched images.
	// A tag cannot exclude (whoever writes the reference chooses its tag):
	// tag is refused here.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:XValidation:rule="self.all(m, !has(m.tag))",message="a tag cannot exclude an image: whoever writes the reference chooses its tag"
	// +listType=atomic
	// +optional
	ExcludeImages []ImageMatcher `json:"excludeImages,omitempty"`

	// Authorities are the ways an image can satisfy the policy: keys,
	// keyless identities, or a static pass or fail. Threshold of them must
	// pass.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Authorities []Authority `json:"authorities"`

	// Threshold is how many authorities must pass, counting distinct
	// signers: two authorities satisfied by the same key or identity count
	// once. Default 1 (any authority).
	// +kubebuilder:validation:Minimum=1
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`

	// PullSecrets are registry credentials for the images this policy
	// governs and their signatures: kubernetes.io/dockerconfigjson Secrets,
	// for registries whose pull secrets are not on the workloads (nodes
	// pulling with containerd-configured credentials, for example). Signet
	// tries registry credentials in this order: the workload's
	// imagePullSecrets, its service account's, these (of every matching
	// policy, in the order of the policies), those of signet's fallback
	// service account (--fallback-service-account); its own Docker config
	// only for registries none of those names. Each credential is sent only
	// to the registry it names; when a registry refuses one (401 or 403),
	// the next one for that registry is tried. A missing Secret, or one
	// without registry credentials, makes the policy invalid.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	PullSecrets []PullSecretReference `json:"pullSecrets,omitempty"`

	// Mode is enforce (deny images that fail, the default) or warn (admit
	// them with a warning).
	// +kubebuilder:validation:Enum=enforce;warn
	// +kubebuilder:default=enforce
	// +optional
	Mode string `json:"mode,omitempty"`

	// OnError is what happens when signet cannot decide (registry
	// unreachable, limits exceeded): deny (the default), warn (admit with a
	// warning) or allow.
	// +kubebuilder:validation:Enum=deny;warn;allow
	// +kubebuilder:default=deny
	// +optional
	OnError string `json:"onError,omitempty"`

	// SignedIdentity also requires the image reference the signer wrote in
	// the signature to name the image: off (the default), matchRepository
	// (same repository, any tag), matchExact (the reference as written) or
	// matchRepoDigestOrExact (same repository for a reference by digest,
	// the reference as written for one by tag; containers-policy.json's
	// default). The meanings are containers-policy.json's: the image by tag
	// alone means :latest, and an exact comparison needs a signature naming
	// a tag or digest. cosign writes only the repository, so its signatures
	// pass matchRepository and neither of the others.
	// +kubebuilder:validation:Enum=off;matchRepository;matchExact;matchRepoDigestOrExact
	// +kubebuilder:default=off
	// +optional
	SignedIdentity string `json:"signedIdentity,omitempty"`

	// Platforms: index (the default) requires the referenced digest to be
	// signed; all also requires every platform manifest of an index.
	// +kubebuilder:validation:Enum=index;all
	// +kubebuilder:default=index
	// +optional
	Platforms string `json:"platforms,omitempty"`

	// Digest: pin (the default) rewrites tag references to the digest that
	// was verified; require denies references without a digest; none leaves
	// references as they are.
	// +kubebuilder:validation:Enum=pin;require;none
	// +kubebuilder:default=pin
	// +optional
	Digest string `json:"digest,omitempty"`

	// Match narrows where the policy applies: namespaces by label and
	// resource kinds. Default: everywhere, every kind.
	// +optional
	Match *MatchResources `json:"match,omitempty"`
}

// ImageMatcher selects images by repository, and optionally by tag.
// Exactly one of glob or prefix; tag narrows either to some tags.
//
// +kubebuilder:validation:XValidation:rule="has(self.glob) != has(self.prefix)",message="give exactly one of glob or prefix"
type ImageMatcher struct {
	// Glob matches the normalized repository (registry/path, as in
	// docker.io/library/nginx): "*" matches within one path segment, "**"
	// across segments. "nginx" means docker.io/library/nginx; "**" matches
	// every image. A tag goes in tag, not here.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Glob string `json:"glob,omitempty"`

	// Prefix matches repositories that start with it on a path boundary:
	// "registry.example.org/team" matches registry.example.org/team and
	// registry.example.org/team/app, not registry.example.org/team-evil.
	// The registry host compares exactly, ignoring case. A single Docker
	// Hub segment ("docker.io/bitnami", "nginx") selects both the official
	// image (docker.io/library/nginx) and the organization of that name
	// (docker.io/bitnami/redis).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Tag, when set, narrows glob or prefix to the images whose reference
	// names a matching tag: "*" matches any run of characters ("v1.*",
	// "release-*"); "*" alone is every tag, as is no tag field. An image
	// written without tag or digest has the tag latest (what the runtime
	// pulls). An image given by digest alone (repo@sha256:...) has no tag
	// to compare and is selected by every tag pattern of its repository:
	// deploying by digest never escapes a policy, it meets the
	// requirements of every tag. A reference with both (repo:tag@sha256:...)
	// is selected by its tag, and verified at its digest: the tag only
	// selects policies, it never changes what is verified. Whoever writes
	// the reference chooses its tag, so a tag cannot lift a requirement:
	// tag is refused in excludeImages (the policy is invalid and denies
	// what it selects), and images of a repository that no pattern
	// selects for their tag follow the cluster's setting for unmatched
	// images (deny by default).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.*-]+$`
	// +optional
	Tag string `json:"tag,omitempty"`
}

// Authority is one way to satisfy a policy. Exactly one of key, keyless or
// static.
//
// +kubebuilder:validation:XValidation:rule="(has(self.key) ? 1 : 0) + (has(self.keyless) ? 1 : 0) + (has(self.certificate) ? 1 : 0) + (has(self.notation) ? 1 : 0) + (has(self.static) ? 1 : 0) == 1",message="give exactly one of key, keyless, certificate, notation or static"
// +kubebuilder:validation:XValidation:rule="!(has(self.keyless) && has(self.insecureIgnoreTlog) && self.insecureIgnoreTlog)",message="insecureIgnoreTlog applies only to key and certificate authorities"
type Authority struct {
	// Name names the authority in results and denial messages. Default
	// authority-<index>.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Name string `json:"name,omitempty"`

	// Key trusts signatures made with the given public keys.
	// +optional
	Key *KeyAuthority `json:"key,omitempty"`

	// Keyless trusts Fulcio certificates issued to the given identities.
	// +optional
	Keyless *KeylessAuthority `json:"keyless,omitempty"`

	// Certificate trusts cosign signatures made with a certificate from
	// your own certificate authority (an enterprise PKI, no Fulcio:
	// cosign sign --key ... --certificate ... --certificate-chain ...),
	// issued to one of the given identities.
	// +optional
	Certificate *CertificateAuthority `json:"certificate,omitempty"`

	// Notation trusts Notary Project signatures (notation sign; ACR with
	// Ratify, AWS Signer), stored as OCI referrers of the image, as a
	// Notary Project trust policy statement with these trust stores and
	// identities would.
	// +optional
	Notation *NotationAuthority `json:"notation,omitempty"`

	// Static passes or fails every image without looking at signatures.
	// +optional
	Static *StaticAuthority `json:"static,omitempty"`

	// Attestations, when given, are required instead of a plain signature:
	// each must be met by an in-toto statement signed by this authority.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Attestations []Attestation `json:"attestations,omitempty"`

	// Source says where signatures are stored when not next to the image.
	// +optional
	Source *Source `json:"source,omitempty"`

	// InsecureIgnoreTlog accepts key or certificate signatures that were
	// never written to a transparency log. Not allowed for keyless.
	// +optional
	InsecureIgnoreTlog bool `json:"insecureIgnoreTlog,omitempty"`

	// InsecureIgnoreSCT accepts Fulcio certificates without an embedded
	// signed certificate timestamp.
	// +optional
	InsecureIgnoreSCT bool `json:"insecureIgnoreSCT,omitempty"`
}

// KeyAuthority holds trusted public keys. Exactly one of data or secretRef.
//
// +kubebuilder:validation:XValidation:rule="has(self.data) != has(self.secretRef)",message="give exactly one of data or secretRef"
type KeyAuthority struct {
	// Data is one or more PEM public keys (ECDSA P-256/P-384/P-521, RSA of
	// at least 2048 bits, Ed25519); a signature by any of them passes.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Data string `json:"data,omitempty"`

	// SecretRef names a Secret whose values are PEM public keys; a
	// signature by any of them passes (or by the one named by
	// secretRef.key). A ClusterImagePolicy reads it from
	// secretRef.namespace (default: the namespace signet runs in); an
	// ImagePolicy only from its own namespace.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// TrustRootRef names a TrustRoot whose transparency logs and timestamp
	// authorities date key signatures (a private Rekor); default: the
	// Sigstore public-good root built into signet. Unused with
	// insecureIgnoreTlog.
	// +optional
	TrustRootRef string `json:"trustRootRef,omitempty"`
}

// CertificateAuthority trusts signing certificates that chain to one of
// its CA roots, through its intermediates, and were issued to one of its
// identities. The chain is checked at the time of signing: a verified
// transparency log entry or RFC 3161 timestamp (with trustRootRef), else
// the current time (with insecureIgnoreTlog), so a signature made with a
// certificate that has expired since is denied unless a log or timestamp
// authority dated it. Signing certificates need the code-signing extended
// key usage, as cosign's do.
//
// +kubebuilder:validation:XValidation:rule="(has(self.roots) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) == 1",message="give exactly one of roots, secretRef or configMapRef"
type CertificateAuthority struct {
	// Roots are PEM CA certificates; a signing certificate must chain to
	// one of them.
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	Roots string `json:"roots,omitempty"`

	// SecretRef names a Secret whose key ca.crt (or secretRef.key) holds
	// the PEM CA roots, and whose key intermediates.crt, when present,
	// holds intermediates. Namespaces as for key.secretRef.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// ConfigMapRef names a ConfigMap holding the CA bundle as secretRef's
	// Secret does (key ca.crt or configMapRef.key; intermediates.crt), such
	// as a bundle cert-manager's trust-manager distributes. Namespaces as
	// for secretRef.
	// +optional
	ConfigMapRef *SecretReference `json:"configMapRef,omitempty"`

	// Intermediates are PEM CA certificates that may stand between a root
	// and a signing certificate; never trusted alone. The chain a
	// signature carries is not used: give the intermediates here.
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	Intermediates string `json:"intermediates,omitempty"`

	// Identities: a signing certificate matching any one passes.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Identities []CertificateIdentity `json:"identities"`

	// TrustRootRef names a TrustRoot whose transparency logs and timestamp
	// authorities date signatures (its Fulcio CAs are not used); default:
	// the Sigstore public-good root built into signet. Unused with
	// insecureIgnoreTlog.
	// +optional
	TrustRootRef string `json:"trustRootRef,omitempty"`
}

// CertificateIdentity is who a signing certificate was issued to: every
// field given must match, and at least one is given. Regular expressions
// (RE2) must match the whole value.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.email) && has(self.emailRegExp))",message="give at most one of email or emailRegExp"
// +kubebuilder:validation:XValidation:rule="!(has(self.uri) && has(self.uriRegExp))",message="give at most one of uri or uriRegExp"
// +kubebuilder:validation:XValidation:rule="!(has(self.subject) && has(self.subjectRegExp))",message="give at most one of subject or subjectRegExp"
type CertificateIdentity struct {
	// Email is one of the certificate's email SANs.
	// +optional
	Email string `json:"email,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	EmailRegExp string `json:"emailRegExp,omitempty"`
	// URI is one of the certificate's URI SANs.
	// +optional
	URI string `json:"uri,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	URIRegExp string `json:"uriRegExp,omitempty"`
	// Hostname is matched against the certificate's DNS SANs as TLS
	// matches host names (wildcard SANs included).
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// Subject is the certificate's subject distinguished name as RFC 2253
	// writes it, e.g. "CN=release,O=Example Corp,C=US".
	// +optional
	Subject string `json:"subject,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// NotationAuthority is one Notary Project trust policy statement: its trust
// stores, trusted identities and verification level. Signatures are
// verified by the Notary Project's notation-go library: the envelope's
// integrity (JWS or COSE), the signing certificate chain to a CA or signing
// authority of the trust store, a trusted identity, expiry, an RFC 3161
// timestamp against timestampAuthorities (without one, the signing
// certificate must be valid now), revocation (OCSP or CRL, online, for
// certificates that name them), and unknown critical attributes refused.
//
// +kubebuilder:validation:XValidation:rule="has(self.certificateAuthorities) || has(self.signingAuthorities) || has(self.secretRef)",message="give certificateAuthorities, signingAuthorities or secretRef"
type NotationAuthority struct {
	// CertificateAuthorities are PEM CA certificates: the trust store of
	// type "ca".
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	CertificateAuthorities string `json:"certificateAuthorities,omitempty"`

	// SigningAuthorities are PEM certificates of signing services (AWS
	// Signer): the trust store of type "signingAuthority".
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	SigningAuthorities string `json:"signingAuthorities,omitempty"`

	// TimestampAuthorities are PEM root certificates of timestamp
	// authorities: the trust store of type "tsa".
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	TimestampAuthorities string `json:"timestampAuthorities,omitempty"`

	// SecretRef names a Secret holding trust stores by key: ca.crt,
	// signingAuthority.crt and tsa.crt (PEM), added to those given here.
	// Namespaces as for key.secretRef.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// TrustedIdentities are "x509.subject: <distinguished name>" entries
	// (e.g. "x509.subject: C=US, ST=WA, O=Example, CN=release"), or "*"
	// alone for every identity the trust stores certify.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	TrustedIdentities []string `json:"trustedIdentities"`

	// VerificationLevel is the Notary Project level: strict (default:
	// every check enforced), permissive (expiry, timestamp and revocation
	// failures are only noted on the signature) or audit (only integrity
	// enforced; authenticity noted). What a level enforces denies the
	// signature, and the policy's mode and onError apply as to any denial.
	// +kubebuilder:validation:Enum=strict;permissive;audit
	// +optional
	VerificationLevel string `json:"verificationLevel,omitempty"`

	// Revocation overrides the level's revocation action: enforce, log or
	// skip. Air-gapped clusters whose certificates name OCSP responders or
	// CRLs they cannot reach use log or skip.
	// +kubebuilder:validation:Enum=enforce;log;skip
	// +optional
	Revocation string `json:"revocation,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace is where the Secret is, for a ClusterImagePolicy; default:
	// the namespace signet runs in. An ImagePolicy reads Secrets of its own
	// namespace only: any other namespace here makes the policy invalid
	// (it then denies every image it selects).
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Key, when set, is the one entry of the Secret to use (for example
	// cosign.pub); otherwise every entry is a trusted key.
	// +optional
	Key string `json:"key,omitempty"`
}

// KeylessAuthority trusts certificates issued by a trusted Fulcio to one of
// the identities.
type KeylessAuthority struct {
	// Identities: a certificate matching any one passes.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Identities []Identity `json:"identities"`

	// TrustRootRef names a TrustRoot; default: the Sigstore public-good
	// root built into signet.
	// +optional
	TrustRootRef string `json:"trustRootRef,omitempty"`
}

// Identity is an OIDC issuer and a certificate subject, each exact or a
// regular expression that must match the whole value.
//
// +kubebuilder:validation:XValidation:rule="has(self.issuer) != has(self.issuerRegExp)",message="give exactly one of issuer or issuerRegExp"
// +kubebuilder:validation:XValidation:rule="has(self.subject) != has(self.subjectRegExp)",message="give exactly one of subject or subjectRegExp"
type Identity struct {
	// +optional
	Issuer string `json:"issuer,omitempty"`
	// IssuerRegExp is a regular expression (RE2) the whole issuer must
	// match; at most 1024 characters, compiling to at most 2048
	// instructions (a larger one makes the policy invalid).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	IssuerRegExp string `json:"issuerRegExp,omitempty"`
	// Subject is the certificate's subject alternative name: an email or
	// a URI such as a CI workflow.
	// +optional
	Subject string `json:"subject,omitempty"`
	// SubjectRegExp is a regular expression (RE2) the whole subject must
	// match; at most 1024 characters, compiling to at most 2048
	// instructions (a larger one makes the policy invalid).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// StaticAuthority decides without signatures.
type StaticAuthority struct {
	// Action is pass or fail.
	// +kubebuilder:validation:Enum=pass;fail
	Action string `json:"action"`
	// Message is shown when the authority fails.
	// +optional
	Message string `json:"message,omitempty"`
}

// Attestation is a required in-toto statement.
type Attestation struct {
	// Name names the attestation in messages. Default: the predicate type.
	// +optional
	Name string `json:"name,omitempty"`
	// PredicateType is compared exactly, e.g. https://slsa.dev/provenance/v1.
	// +kubebuilder:validation:MinLength=1
	PredicateType string `json:"predicateType"`
	// Conditions are CEL expressions over the statement (predicateType,
	// subject, predicate) that must all be true. Each is limited to a cost
	// of 1,000,000 (about one unit per operation) on one statement, and a
	// statement over 4 MiB, 64 levels deep or with more than 100,000
	// elements fails. Evaluation stops at the admission's deadline; a
	// statement left unevaluated then makes the result "could not decide",
	// which onError decides.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Conditions []string `json:"conditions,omitempty"`
	// Match: any (the default) is met by one satisfying statement; all
	// requires every statement of the type signed by the authority to
	// satisfy the conditions.
	// +kubebuilder:validation:Enum=any;all
	// +kubebuilder:default=any
	// +optional
	Match string `json:"match,omitempty"`
}

// Source says where an authority's signatures are.
type Source struct {
	// OCI is the repository holding the signatures (like cosign's
	// COSIGN_REPOSITORY).
	// +optional
	OCI string `json:"oci,omitempty"`
	// SignaturePullSecrets are kubernetes.io/dockerconfigjson Secrets with
	// credentials for the oci repository (which must be set), used only to
	// read signatures there: from signet's namespace for a
	// ClusterImagePolicy, from the policy's own namespace for an
	// ImagePolicy.
	// +listType=atomic
	// +optional
	SignaturePullSecrets []LocalObjectReference `json:"signaturePullSecrets,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
// PullSecretReference names a Secret of registry credentials.
type PullSecretReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace is where the Secret is, for a ClusterImagePolicy; default:
	// the namespace signet runs in (signet then needs to read Secrets in
	// that namespace). An ImagePolicy reads Secrets of its own namespace
	// only: any other namespace here makes the policy invalid (it then
	// denies every image it selects).
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

type LocalObjectReference struct {
	Name string `json:"name"`
}

// MatchResources narrows where a policy applies.
type MatchResources struct {
	// NamespaceSelector selects namespaces by label.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// Kinds limits the policy to these resource kinds (Pod, Deployment,
	// Provider, ...). Default: every kind.
	// +listType=set
	// +optional
	Kinds []string `json:"kinds,omitempty"`
}

// ImagePolicyStatus says whether signet could load the policy.
type ImagePolicyStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready is True when the policy is loaded and enforced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
