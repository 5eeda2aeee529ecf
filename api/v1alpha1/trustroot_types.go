package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrustRoot is a Sigstore root of trust that keyless authorities name in
// keyless.trustRootRef: the Fulcio certificate authorities, Rekor and CT
// logs and timestamp authorities a keyless signature may chain to. Use one
// for a private Sigstore instance, or to run keyless verification in a
// cluster without internet access. Authorities without a trustRootRef use
// the Sigstore public-good root built into signet.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tr,categories=signet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.expires`
// +kubebuilder:printcolumn:name="Refreshed",type=date,JSONPath=`.status.lastRefreshTime`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrustRoot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TrustRootSpec   `json:"spec"`
	Status TrustRootStatus `json:"status,omitempty"`
}

// TrustRootList is a list of TrustRoot.
//
// +kubebuilder:object:root=true
type TrustRootList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrustRoot `json:"items"`
}

// TrustRootSpec holds exactly one source of trusted material.
//
// +kubebuilder:validation:XValidation:rule="(has(self.remote) ? 1 : 0) + (has(self.repository) ? 1 : 0) + (has(self.trustedRoot) ? 1 : 0) + (has(self.keys) ? 1 : 0) == 1",message="give exactly one of remote, repository, trustedRoot or keys"
type TrustRootSpec struct {
	// Remote fetches the trusted root from a TUF repository mirror, such as
	// https://tuf-repo-cdn.sigstore.dev or a copy of it inside your network,
	// and refreshes it periodically. signet fetches only from the mirror.
	// +optional
	Remote *TUFRemote `json:"remote,omitempty"`

	// Repository holds a whole TUF repository inside the object, for
	// clusters with no route to any mirror. Build it with
	// `signet trustroot create --from-dir DIR` (or --from-url), and again
	// before its TUF metadata expires: expired metadata is refused, as the
	// TUF specification requires.
	// +optional
	Repository *TUFRepository `json:"repository,omitempty"`

	// TrustedRoot is a Sigstore trusted_root.json given as it is, without
	// TUF: you vouch for its content and keep it current.
	// +optional
	TrustedRoot *TrustedRootSource `json:"trustedRoot,omitempty"`

	// Keys gives the certificate authorities, logs and timestamp
	// authorities directly, as PEM, for a private Sigstore deployment.
	// +optional
	Keys *TrustRootKeys `json:"keys,omitempty"`
}

// TUFRemote is a TUF repository served over HTTP(S).
type TUFRemote struct {
	// Mirror is the repository's URL: metadata (N.root.json,
	// timestamp.json, ...) at its top and targets under targets/. Plain
	// http:// is accepted: TUF metadata is signed and targets are checked
	// against it.
	// +kubebuilder:validation:Pattern=`^https?://[^?#@]+$`
	// +kubebuilder:validation:MaxLength=2048
	Mirror string `json:"mirror"`

	// Root is the repository's initial root.json, base64-encoded. signet
	// trusts it to begin with and follows the repository's root rotations
	// from there. Take it from a source you trust, not from the mirror.
	Root []byte `json:"root"`

	// TrustedRootTarget is the TUF target holding the trusted root.
	// Default: trusted_root.json. It must be a relative path without "..".
	// +kubebuilder:validation:MaxLength=255
	// +optional
	TrustedRootTarget string `json:"trustedRootTarget,omitempty"`

	// RefreshInterval is how often the mirror is checked for new metadata.
	// Default 24h; at least 1m. A failed refresh keeps the last good root
	// and is retried sooner (every minute, backing off to the interval).
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="refreshInterval must be at least 1m"
	// +optional
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
}

// TUFRepository is a serialized TUF repository.
type TUFRepository struct {
	// MirrorFS is the repository as a tar.gz archive, base64-encoded:
	// metadata at its top (or under one top-level directory), targets under
	// Targets. Links, absolute paths and ".." are refused. At most 32 MiB
	// decompressed (the API server's object size limit is lower).
	MirrorFS []byte `json:"mirrorFS"`

	// Root is the repository's initial root.json, base64-encoded.
	Root []byte `json:"root"`

	// Targets is the directory of the archive holding the targets.
	// Default: targets.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Targets string `json:"targets,omitempty"`

	// TrustedRootTarget is the TUF target holding the trusted root.
	// Default: trusted_root.json.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	TrustedRootTarget string `json:"trustedRootTarget,omitempty"`
}

// TrustedRootSource is a trusted_root.json, inline or in a ConfigMap.
//
// +kubebuilder:validation:XValidation:rule="has(self.data) != has(self.configMapRef)",message="give exactly one of data or configMapRef"
type TrustedRootSource struct {
	// Data is the trusted_root.json itself
	// (application/vnd.dev.sigstore.trustedroot+json).
	// +kubebuilder:validation:MaxLength=1048576
	// +optional
	Data string `json:"data,omitempty"`

	// ConfigMapRef names a ConfigMap in signet's own namespace holding the
	// trusted root. It is re-read every minute, so editing the ConfigMap
	// takes effect without touching the TrustRoot.
	// +optional
	ConfigMapRef *ConfigMapKeyRef `json:"configMapRef,omitempty"`
}

// ConfigMapKeyRef is a key of a ConfigMap in signet's namespace.
type ConfigMapKeyRef struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key holding the trusted root. Default: trusted_root.json.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// TrustRootKeys is Sigstore trusted material given directly. Give at
// least one entry. A keyless authority needs a certificate authority, and
// a transparency log unless it sets insecureIgnoreTlog.
//
// +kubebuilder:validation:XValidation:rule="size(self.certificateAuthorities) + size(self.transparencyLogs) + size(self.ctLogs) + size(self.timestampAuthorities) > 0",message="give at least one certificate authority, log or timestamp authority"
type TrustRootKeys struct {
	// CertificateAuthorities are Fulcio certificate authorities.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	CertificateAuthorities []CertificateAuthorityKey `json:"certificateAuthorities"`

	// TransparencyLogs are Rekor transparency logs.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	TransparencyLogs []LogPublicKey `json:"transparencyLogs"`

	// CTLogs are certificate-transparency logs, whose signed certificate
	// timestamps Fulcio embeds in the certificates it issues.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	CTLogs []LogPublicKey `json:"ctLogs"`

	// TimestampAuthorities are RFC 3161 timestamp authorities.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	TimestampAuthorities []CertificateAuthorityKey `json:"timestampAuthorities"`
}

// CertificateAuthorityKey is a certificate authority given as a PEM chain.
type CertificateAuthorityKey struct {
	// URI names the authority, for messages and status.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	URI string `json:"uri,omitempty"`

	// CertChain is PEM certificates: for a Fulcio CA, its intermediates
	// then its root; for a timestamp authority, its signing certificate,
	// intermediates, then its root.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	CertChain string `json:"certChain"`

	// ValidFrom and ValidUntil bound when certificates (or timestamps) it
	// issued are trusted. Default: unbounded.
	// +optional
	ValidFrom *metav1.Time `json:"validFrom,omitempty"`
	// +optional
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`
}

// LogPublicKey is a transparency log given by its public key.
type LogPublicKey struct {
	// BaseURL is the log's URL, for messages and status.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	BaseURL string `json:"baseURL,omitempty"`

	// PublicKey is the log's PEM public key. Its log ID is the SHA-256 of
	// the key, as Rekor and CT logs compute it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	PublicKey string `json:"publicKey"`

	// ValidFrom and ValidUntil bound when entries it signed are trusted.
	// Default: unbounded.
	// +optional
	ValidFrom *metav1.Time `json:"validFrom,omitempty"`
	// +optional
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`
}

// TrustRootStatus is what signet last resolved the TrustRoot to.
type TrustRootStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is True when signet has trusted material from this
	// TrustRoot (after a failed refresh it keeps the last good material
	// and says why in the message). Expired is True when the TUF metadata
	// has expired or nothing in the root is valid now. ExpiresSoon is True
	// when either happens within 30 days.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Version identifies the material in use: "sha256:" and the hash of
	// its trusted root JSON.
	// +optional
	Version string `json:"version,omitempty"`

	// Expires is when the first currently valid authority or log of the
	// material stops being valid.
	// +optional
	Expires *metav1.Time `json:"expires,omitempty"`

	// MetadataExpires is when the TUF metadata the material came through
	// expires (remote and repository only). A repository must be rebuilt,
	// and a mirror refreshed, before then.
	// +optional
	MetadataExpires *metav1.Time `json:"metadataExpires,omitempty"`

	// LastRefreshTime is when the material was last resolved successfully.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`
}
