{{/*
Base name of the objects: fullnameOverride, else the release name when it
contains the chart name, else "<release>-<chart>". At most 55 characters, so
"<base>-webhook" (the Service, a DNS label) fits in 63.
*/}}
{{- define "signet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of the Deployment, Service and PodDisruptionBudget. */}}
{{- define "signet.webhookName" -}}
{{- printf "%s-webhook" (include "signet.fullname" .) -}}
{{- end -}}

{{/* Name of the ServiceAccount signet runs as. */}}
{{- define "signet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "signet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels that select signet's pods; never change them in an upgrade. */}}
{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "signet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "signet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The image reference: pinned by digest when image.digest is set. */}}
{{- define "signet.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Namespaces never enforced: the release namespace first (signet must always be
able to start), then excludedNamespaces. As a YAML flow list.
*/}}
{{- define "signet.excludedNamespaces" -}}
{{- prepend .Values.excludedNamespaces .Release.Namespace | uniq | toJson -}}
{{- end -}}

{{/*
--decision-timeout: decisionTimeout, checked to be below
webhook.timeoutSeconds and at most 29s (what signet serve accepts), else 5s
less than webhook.timeoutSeconds (4/5 of it for 5s or less).
*/}}
{{- define "signet.decisionTimeout" -}}
{{- $limit := int .Values.webhook.timeoutSeconds -}}
{{- with .Values.decisionTimeout -}}
{{- $ms := 0 -}}
{{- if regexMatch "^[0-9]+ms$" . -}}
{{- $ms = trimSuffix "ms" . | int -}}
{{- else if regexMatch "^[0-9]+s$" . -}}
{{- $ms = mul (trimSuffix "s" . | int) 1000 -}}
{{- else -}}
{{- fail (printf "decisionTimeout %q: give whole seconds (20s) or milliseconds (19500ms)" .) -}}
{{- end -}}
{{- if or (le $ms 0) (ge $ms (mul $limit 1000)) (gt $ms 29000) -}}
{{- fail (printf "decisionTimeout %s must be positive, below webhook.timeoutSeconds (%ds) and at most 29s, so signet answers before the API server gives up" . $limit) -}}
{{- end -}}
{{- . -}}
{{- else -}}
{{- if gt $limit 5 -}}
{{- sub $limit 5 }}s
{{- else -}}
{{- mul $limit 800 }}ms
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Label matchers that select this release's series in the alerts:
metrics.prometheusRule.selector, else those of the ServiceMonitor's scrapes.
*/}}
{{- define "signet.metricsSelector" -}}
{{- default (printf "job=%q,namespace=%q" (include "signet.webhookName" .) .Release.Namespace) .Values.metrics.prometheusRule.selector -}}
{{- end -}}

{{/*
Seconds in a duration of hours, minutes and seconds ("1h30m"), the form
values.schema.json allows for audit.interval; "0" is 0.
*/}}
{{- define "signet.durationSeconds" -}}
{{- $seconds := 0 -}}
{{- range $unit, $factor := dict "h" 3600 "m" 60 "s" 1 -}}
{{- with regexFind (printf "[0-9]+%s" $unit) (toString $) -}}
{{- $seconds = add $seconds (mul (trimSuffix $unit . | atoi) $factor) -}}
{{- end -}}
{{- end -}}
{{- $seconds -}}
{{- end -}}
