{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "tokensync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name: the release name, with the chart name
appended unless the release name contains it. Release "tokensync" gives the
names of the kustomize install (tokensync-controller-manager, ...).
Truncated to 40 characters, so that the longest suffix
(-controller-manager-metrics-monitor) still fits in 63.
*/}}
{{- define "tokensync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "tokensync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "tokensync.labels" -}}
helm.sh/chart: {{ include "tokensync.chart" . }}
app.kubernetes.io/name: {{ include "tokensync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "tokensync.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the manager pods (Deployment selector, metrics Service).
*/}}
{{- define "tokensync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokensync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/*
Name of the manager's ServiceAccount.
*/}}
{{- define "tokensync.serviceAccountName" -}}
{{- default (printf "%s-controller-manager" (include "tokensync.fullname" .)) .Values.serviceAccount.name }}
{{- end }}

{{/*
Image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "tokensync.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Namespace of the leader election Lease and of its Role.
*/}}
{{- define "tokensync.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/*
Name of the metrics port, on the container and on the Service.
*/}}
{{- define "tokensync.metricsPortName" -}}
{{- if .Values.metrics.secure }}https-metrics{{ else }}http-metrics{{ end }}
{{- end }}

{{/*
The ServiceAccount as an RBAC subject.
*/}}
{{- define "tokensync.serviceAccountSubject" -}}
- kind: ServiceAccount
  name: {{ include "tokensync.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
The rules of a role of config/ that hack/sync-chart.sh copies into files/,
so that the chart grants exactly what kustomize installs (and what
`make manifests` generates from the +kubebuilder:rbac markers), as a
"rules:" block. Call with (list $ "files/rbac/role.yaml").
*/}}
{{- define "tokensync.rules" -}}
{{- $role := (index . 0).Files.Get (index . 1) | fromYaml }}
{{- if not $role.rules }}
{{- fail (printf "%s has no rules: run hack/sync-chart.sh" (index . 1)) }}
{{- end -}}
rules:
{{ toYaml $role.rules }}
{{- end }}

{{/*
The aggregation labels (rbac.authorization.k8s.io/aggregate-to-...) of a
role copied into files/, one per line. Call with (list $ "files/rbac/x.yaml").
*/}}
{{- define "tokensync.aggregationLabels" -}}
{{- $role := (index . 0).Files.Get (index . 1) | fromYaml }}
{{- range $k, $v := $role.metadata.labels }}
{{- if hasPrefix "rbac.authorization.k8s.io/" $k }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end }}
{{- end }}
