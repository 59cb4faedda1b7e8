{{/* The chart name. */}}
{{- define "baton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource name prefix: <release>-<chart>, or the release alone when it already names the chart. */}}
{{- define "baton.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: (dict "root" $ "component" "control"). */}}
{{- define "baton.componentName" -}}
{{- printf "%s-%s" (include "baton.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "baton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource of a component. */}}
{{- define "baton.labels" -}}
helm.sh/chart: {{ include "baton.chart" .root }}
{{ include "baton.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: baton
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of a component. */}}
{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "baton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "baton.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image of a component: (dict "root" $ "values" .Values.control). */}}
{{- define "baton.image" -}}
{{- $repository := default .root.Values.image.repository .values.image.repository -}}
{{- $tag := default .root.Values.image.tag .values.image.tag | default .root.Chart.AppVersion -}}
{{- $digest := default .root.Values.image.digest .values.image.digest -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "baton.imagePullPolicy" -}}
{{- default .root.Values.image.pullPolicy .values.image.pullPolicy -}}
{{- end -}}

{{/* The control service's in-cluster gRPC address. */}}
{{- define "baton.controlGrpcAddress" -}}
{{- printf "%s.%s.svc:%v" (include "baton.componentName" (dict "root" . "component" "control")) .Release.Namespace .Values.control.service.grpcPort -}}
{{- end -}}

{{/* Fails unless the control service's replica settings suit its store. */}}
{{- define "baton.checkControlReplicas" -}}
{{- $control := .Values.control -}}
{{- $most := int $control.replicas -}}
{{- if and $control.autoscaling.enabled (gt (int $control.autoscaling.maxReplicas) $most) -}}
{{- $most = int $control.autoscaling.maxReplicas -}}
{{- end -}}
{{- if and (gt $most 1) (ne .Values.store.type "postgres") -}}
{{- fail (printf "control: %d replicas need store.type=postgres: the SQLite store lives in one pod's volume, so a second replica would not see the first one's handoffs (set control.replicas=1 and no autoscaling above 1, or select the PostgreSQL store)" $most) -}}
{{- end -}}
{{- if and (eq .Values.store.type "postgres") (not .Values.store.postgres.url) (not .Values.store.postgres.existingSecret) -}}
{{- fail "store.type=postgres needs store.postgres.url or store.postgres.existingSecret" -}}
{{- end -}}
{{- end -}}

{{/* Pod-level settings shared by every component: (dict "root" $ "values" …). */}}
{{- define "baton.podCommon" -}}
serviceAccountName: {{ include "baton.serviceAccountName" .root }}
automountServiceAccountToken: {{ .root.Values.serviceAccount.automountServiceAccountToken }}
enableServiceLinks: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Environment variables shared by every component. The OTLP endpoint is in
each service's configuration ([telemetry] otlp_endpoint). */}}
{{- define "baton.commonEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ printf "baton-%s" .component | quote }}
{{- with .values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The TLS volume mount and volume: the Secret's tls.crt, tls.key and ca.crt. */}}
{{- define "baton.tlsVolumeMount" -}}
- name: tls
  mountPath: /etc/baton/tls
  readOnly: true
{{- end -}}

{{- define "baton.tlsVolume" -}}
- name: tls
  secret:
    secretName: {{ required "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" .Values.tls.secretName }}
    defaultMode: 0440
{{- end -}}

{{/* A PodDisruptionBudget spec's budget: maxUnavailable 1 when nothing is set. */}}
{{- define "baton.pdbBudget" -}}
{{- if not (eq (toString .minAvailable) "") }}
minAvailable: {{ if regexMatch "^[0-9]+$" (toString .minAvailable) }}{{ int .minAvailable }}{{ else }}{{ .minAvailable | quote }}{{ end }}
{{- else if not (eq (toString .maxUnavailable) "") }}
maxUnavailable: {{ if regexMatch "^[0-9]+$" (toString .maxUnavailable) }}{{ int .maxUnavailable }}{{ else }}{{ .maxUnavailable | quote }}{{ end }}
{{- else }}
maxUnavailable: 1
{{- end }}
{{- end -}}

{{/* A component's HorizontalPodAutoscaler: (dict "root" $ "values" … "component" …). */}}
{{- define "baton.hpa" -}}
{{- $autoscaling := .values.autoscaling -}}
{{- if $autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "baton.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "baton.componentName" . }}
  minReplicas: {{ $autoscaling.minReplicas }}
  maxReplicas: {{ $autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $autoscaling.targetCPUUtilizationPercentage }}
    {{- if $autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ $autoscaling.targetMemoryUtilizationPercentage }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* A component's PodDisruptionBudget. */}}
{{- define "baton.pdb" -}}
{{- if .values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "baton.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
spec:
  {{- include "baton.pdbBudget" .values.podDisruptionBudget | nindent 2 }}
  selector:
    matchLabels:
      {{- include "baton.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A component's ServiceMonitor: the control service and the queue serve /metrics on their HTTP port. */}}
{{- define "baton.serviceMonitor" -}}
{{- if .root.Values.serviceMonitor.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "baton.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
    {{- with .root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "baton.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .root.Release.Namespace }}
  endpoints:
    - port: {{ .port }}
      path: /metrics
      interval: {{ .root.Values.serviceMonitor.interval }}
{{- end }}
{{- end -}}

{{/* A component's [telemetry] section as JSON: log format and OTLP export. */}}
{{- define "baton.telemetryConfig" -}}
{{- $telemetry := dict "log_format" .Values.logFormat -}}
{{- with .Values.telemetry.otlp.endpoint -}}
{{- $_ := set $telemetry "otlp_endpoint" . -}}
{{- $_ := set $telemetry "otlp_protocol" $.Values.telemetry.otlp.protocol -}}
{{- end -}}
{{- toJson $telemetry -}}
{{- end -}}

{{/* A component's [tls] section as JSON: (dict "root" $ "component" …). Connectors
require the control service's client certificate when tls.mutual; the control
service's own listeners do not ask callers for one. */}}
{{- define "baton.tlsConfig" -}}
{{- $tls := dict "cert_file" "/etc/baton/tls/tls.crt" "key_file" "/etc/baton/tls/tls.key" -}}
{{- if and .root.Values.tls.mutual (ne .component "control") -}}
{{- $_ := set $tls "client_ca_file" "/etc/baton/tls/ca.crt" -}}
{{- end -}}
{{- toJson $tls -}}
{{- end -}}

{{/* The port a component's gRPC probes call: its gRPC port, or with TLS on the
plain-text health listener (Kubernetes' gRPC probes cannot speak TLS).
(dict "root" $ "port" <gRPC port>) */}}
{{- define "baton.probePort" -}}
{{- if .root.Values.tls.enabled -}}
{{- .root.Values.tls.probePort -}}
{{- else -}}
{{- .port -}}
{{- end -}}
{{- end -}}

{{/* Command-line arguments of a component with TLS on: the plain-text health
listener for the probes. */}}
{{- define "baton.probeArgs" -}}
{{- if .Values.tls.enabled -}}
, "--health-listen", {{ printf "0.0.0.0:%v" .Values.tls.probePort | quote }}
{{- end -}}
{{- end -}}
