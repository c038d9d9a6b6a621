{{/*
Shared pieces of the Pulse chart. Helpers are prefixed "pulse."; those taking a component are
called with (dict "root" $ "component" "<name>").
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "pulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name: release name, plus the chart name unless it is in it. */}}
{{- define "pulse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Object name of a component: the full name for Pulse itself, "<fullname>-<component>" else. */}}
{{- define "pulse.componentName" -}}
{{- if eq .component "server" }}
{{- include "pulse.fullname" .root }}
{{- else }}
{{- printf "%s-%s" (include "pulse.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* chart-version for the helm.sh/chart label. */}}
{{- define "pulse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Values of a component that has an image: its own section for the bundled backends, .Values.pulse
for Pulse's own image (server, load generator, test, and the rule and dashboard objects).
*/}}
{{- define "pulse.componentValues" -}}
{{- $v := .root.Values.pulse }}
{{- if has .component (list "collector" "jaeger" "prometheus" "alertmanager" "loki" "victorialogs" "grafana" "postgresql" "nats") }}
{{- $v = index .root.Values .component }}
{{- end }}
{{- toYaml $v }}
{{- end }}

{{/* The image reference of a component. */}}
{{- define "pulse.image" -}}
{{- $v := include "pulse.componentValues" . | fromYaml }}
{{- printf "%s:%s" $v.image.repository (toString (default .root.Chart.AppVersion $v.image.tag)) }}
{{- end }}

{{/* The version label of a component: its image tag. */}}
{{- define "pulse.version" -}}
{{- $v := include "pulse.componentValues" . | fromYaml }}
{{- toString (default .root.Chart.AppVersion $v.image.tag) | trunc 63 | quote }}
{{- end }}

{{/* Labels that select a component's pods; never change them (Deployment selectors are immutable). */}}
{{- define "pulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pulse.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Every label of a component's objects. */}}
{{- define "pulse.labels" -}}
helm.sh/chart: {{ include "pulse.chart" .root }}
{{ include "pulse.selectorLabels" . }}
app.kubernetes.io/version: {{ include "pulse.version" . }}
app.kubernetes.io/part-of: pulse
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* metadata of a namespaced object of a component; pass "name" to override the name. */}}
{{- define "pulse.metadata" -}}
name: {{ .name | default (include "pulse.componentName" .) }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "pulse.labels" . | nindent 2 }}
{{- end }}

{{/*
Pod security: every pod runs as a non-root numeric user with the runtime's default seccomp
profile; writable paths are emptyDirs owned through fsGroup. Prometheus and Alertmanager keep
their images' user (nobody); the others use 10001.
*/}}
{{- define "pulse.podSecurityContext" -}}
{{- $uid := 10001 }}
{{- if has .component (list "prometheus" "alertmanager") }}{{ $uid = 65534 }}{{ end }}
runAsNonRoot: true
runAsUser: {{ $uid }}
runAsGroup: {{ $uid }}
fsGroup: {{ $uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security: read-only root, no privilege escalation, no capabilities. */}}
{{- define "pulse.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The pod spec fields every component shares. */}}
{{- define "pulse.podCommon" -}}
serviceAccountName: {{ include "pulse.componentName" . }}
automountServiceAccountToken: {{ eq .component "collector" }}
{{- /* No <SERVICE>_SERVICE_HOST/_PORT variables: a Service named pulse* would put PULSE_*
variables into the environment, which Pulse refuses as unknown settings. */}}
enableServiceLinks: false
securityContext:
  {{- include "pulse.podSecurityContext" . | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Annotation that rolls pods when the named templates' output changes. */}}
{{- define "pulse.checksum" -}}
{{- $root := .root }}
{{- $sum := "" }}
{{- range .templates }}
{{- $sum = print $sum (include (print $root.Template.BasePath "/" .) $root) }}
{{- end }}
checksum/config: {{ sha256sum $sum }}
{{- end }}

{{/*
Endpoints: a bundled backend's Service, or the external endpoint from values. A consumer that
needs an endpoint which is neither bundled nor given fails the render with a message.
*/}}
{{- define "pulse.svcHost" -}}
{{- printf "%s.%s.svc" (include "pulse.componentName" .) .root.Release.Namespace }}
{{- end }}

{{/* OTLP/gRPC URL Pulse and the load generator export to. */}}
{{- define "pulse.collectorOtlpEndpoint" -}}
{{- if .Values.collector.enabled }}
{{- printf "http://%s:4317" (include "pulse.svcHost" (dict "root" . "component" "collector")) }}
{{- else }}
{{- .Values.collector.external.otlpEndpoint }}
{{- end }}
{{- end }}

{{/* host:port of the OTLP/gRPC receiver traces go to. */}}
{{- define "pulse.jaegerOtlpEndpoint" -}}
{{- if .Values.jaeger.enabled }}
{{- printf "%s:4317" (include "pulse.svcHost" (dict "root" . "component" "jaeger")) }}
{{- else }}
{{- required "jaeger.enabled=false: set jaeger.external.otlpEndpoint (host:port), where the collector sends traces" .Values.jaeger.external.otlpEndpoint }}
{{- end }}
{{- end }}

{{/* Jaeger query URL for Grafana. */}}
{{- define "pulse.jaegerQueryUrl" -}}
{{- if .Values.jaeger.enabled }}
{{- printf "http://%s:16686" (include "pulse.svcHost" (dict "root" . "component" "jaeger")) }}
{{- else }}
{{- required "jaeger.enabled=false with Grafana on: set jaeger.external.queryUrl" .Values.jaeger.external.queryUrl }}
{{- end }}
{{- end }}

{{/* Prometheus base URL (query API; OTLP under /api/v1/otlp). */}}
{{- define "pulse.prometheusUrl" -}}
{{- if .Values.prometheus.enabled }}
{{- printf "http://%s:9090" (include "pulse.svcHost" (dict "root" . "component" "prometheus")) }}
{{- else }}
{{- required "prometheus.enabled=false: set prometheus.external.url, where the collector sends metrics and Grafana queries" .Values.prometheus.external.url | trimSuffix "/" }}
{{- end }}
{{- end }}

{{/*
"true" when a bundled component is deployed: its section is enabled and, for a logs backend,
logs.backend chooses it. Empty otherwise, so `if include "pulse.bundled" $ctx` reads naturally.
*/}}
{{- define "pulse.bundled" -}}
{{- $logs := list "loki" "victorialogs" }}
{{- if and (index .root.Values .component).enabled (or (not (has .component $logs)) (eq .root.Values.logs.backend .component)) }}true{{ end }}
{{- end }}

{{/* HTTP port of each logs backend's API (queries, OTLP ingestion, own metrics). */}}
{{- define "pulse.logsPort" -}}
{{- get (dict "loki" 3100 "victorialogs" 9428) . }}
{{- end }}

{{/* Base URL of the logs backend logs.backend chooses: its bundled Service or its external.url. */}}
{{- define "pulse.logsUrl" -}}
{{- $backend := .Values.logs.backend }}
{{- if (index .Values $backend).enabled }}
{{- printf "http://%s:%s" (include "pulse.svcHost" (dict "root" . "component" $backend)) (include "pulse.logsPort" $backend) }}
{{- else }}
{{- required (printf "%s.enabled=false: set %s.external.url, where the collector sends logs and Grafana queries" $backend $backend) (index .Values $backend).external.url | trimSuffix "/" }}
{{- end }}
{{- end }}

{{/* Where the collector's otlp_http/logs exporter sends (it appends /v1/logs). */}}
{{- define "pulse.logsOtlpEndpoint" -}}
{{- $path := get (dict "loki" "/otlp" "victorialogs" "/insert/opentelemetry") .Values.logs.backend }}
{{- printf "%s%s" (include "pulse.logsUrl" .) $path }}
{{- end }}

{{/* Alertmanager base URL; empty when neither bundled nor given. */}}
{{- define "pulse.alertmanagerUrl" -}}
{{- if .Values.alertmanager.enabled }}
{{- printf "http://%s:9093" (include "pulse.svcHost" (dict "root" . "component" "alertmanager")) }}
{{- else }}
{{- .Values.alertmanager.external.url | trimSuffix "/" }}
{{- end }}
{{- end }}

{{/* Prometheus URL for the chart test; empty when there is none. */}}
{{- define "pulse.testPrometheusUrl" -}}
{{- if .Values.prometheus.enabled }}
{{- include "pulse.prometheusUrl" . }}
{{- else }}
{{- .Values.prometheus.external.url | trimSuffix "/" }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding Pulse's credentials. */}}
{{- define "pulse.authSecretName" -}}
{{- .Values.pulse.auth.existingSecret | default (printf "%s-auth" (include "pulse.fullname" .)) }}
{{- end }}

{{/* Name of the Secret holding Pulse's certificates. */}}
{{- define "pulse.tlsSecretName" -}}
{{- .Values.pulse.tls.existingSecret | default (printf "%s-tls" (include "pulse.fullname" .)) }}
{{- end }}

{{/*
The gRPC client settings of the chart's own clients (load generator, test): environment
variables and volume mounts for credentials and certificates.
*/}}
{{- define "pulse.clientEnv" -}}
- name: PULSE_TARGET
  value: {{ printf "%s:50051" (include "pulse.svcHost" (dict "root" . "component" "server")) }}
{{- if .Values.pulse.auth.enabled }}
- name: PULSE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "pulse.authSecretName" . }}
      key: client-token
{{- end }}
{{- end }}

{{- define "pulse.clientTlsArgs" -}}
{{- if .Values.pulse.tls.enabled }}
- --tls-ca
- /etc/pulse/tls/ca.crt
{{- if .Values.pulse.tls.clientAuth }}
- --tls-cert
- /etc/pulse/tls/client.crt
- --tls-key
- /etc/pulse/tls/client.key
{{- end }}
{{- end }}
{{- end }}

{{- define "pulse.clientTlsVolume" -}}
{{- if .Values.pulse.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "pulse.tlsSecretName" . }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "pulse.clientTlsMount" -}}
{{- if .Values.pulse.tls.enabled }}
- name: tls
  mountPath: /etc/pulse/tls
  readOnly: true
{{- end }}
{{- end }}

{{/* Probe pair for HTTP components: liveness and readiness on the given paths and port name. */}}
{{- define "pulse.httpProbes" -}}
livenessProbe:
  httpGet: {path: {{ .live }}, port: {{ .port }}}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  httpGet: {path: {{ .ready }}, port: {{ .port }}}
  periodSeconds: 10
  timeoutSeconds: 5
{{- end }}

{{/*
`pulse doctor` arguments for the backends: a bundled backend is found in the cluster, an external
one is given by URL, one the doctor cannot read is skipped. Without the bundled collector Pulse's
telemetry goes somewhere the chart does not know, so every telemetry check is skipped.
*/}}
{{- define "pulse.doctorBackendArgs" -}}
{{- $external := dict
  "prometheus" .Values.prometheus.external.url
  "jaeger" .Values.jaeger.external.queryUrl
  "loki" .Values.loki.external.url
  "victorialogs" .Values.victorialogs.external.url }}
{{- range $backend := list "prometheus" "jaeger" .Values.logs.backend }}
{{- if not $.Values.collector.enabled }}
- --skip={{ $backend }}
{{- else if (index $.Values $backend).enabled }}
{{- else if index $external $backend }}
- --{{ $backend }}={{ index $external $backend | trimSuffix "/" }}
{{- else }}
- --skip={{ $backend }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Shared state of several replicas. Sensors are shared when PostgreSQL is bundled or an existing
one's URL is given; logs when NATS is bundled or an existing one's URL is given. Each helper
prints "true" or nothing.
*/}}
{{- define "pulse.sensorsShared" -}}
{{- if or .Values.postgresql.enabled .Values.postgresql.external.existingSecret }}true{{ end }}
{{- end }}

{{/* Whether Pulse's data directory is its PersistentVolumeClaim: embedded sensors, persisted. */}}
{{- define "pulse.dataClaim" -}}
{{- if and .Values.pulse.persistence.enabled (not (include "pulse.sensorsShared" .)) }}true{{ end }}
{{- end }}

{{- define "pulse.busShared" -}}
{{- if or .Values.nats.enabled .Values.nats.external.url .Values.nats.external.existingSecret }}true{{ end }}
{{- end }}

{{/* More than one replica needs both shared: refuse to render otherwise, naming what is missing. */}}
{{- define "pulse.checkReplicas" -}}
{{- $p := .Values.pulse }}
{{- $many := or $p.autoscaling.enabled (gt (int $p.replicas) 1) }}
{{- if $many }}
{{- $missing := list }}
{{- if not (include "pulse.sensorsShared" .) }}
{{- $missing = append $missing "sensors (postgresql.enabled, or postgresql.external.existingSecret)" }}
{{- end }}
{{- if not (include "pulse.busShared" .) }}
{{- $missing = append $missing "logs (nats.enabled, or nats.external.url)" }}
{{- end }}
{{- if $missing }}
{{- fail (printf "pulse.replicas > 1 or pulse.autoscaling.enabled needs shared state, but these would stay embedded in each pod: %s. Embedded state is for one replica: every pod would answer from its own data." (join "; " $missing)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret holding key `url`, the PostgreSQL URL Pulse connects with. */}}
{{- define "pulse.postgresqlSecretName" -}}
{{- if .Values.postgresql.enabled }}
{{- .Values.postgresql.existingSecret | default (include "pulse.componentName" (dict "root" . "component" "postgresql")) }}
{{- else }}
{{- .Values.postgresql.external.existingSecret }}
{{- end }}
{{- end }}

{{/* The NATS URL of the log bus. */}}
{{- define "pulse.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s:4222" (include "pulse.svcHost" (dict "root" . "component" "nats")) }}
{{- else }}
{{- .Values.nats.external.url }}
{{- end }}
{{- end }}
