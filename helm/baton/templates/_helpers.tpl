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

{{/* A component's resource name: (dict "root" $ "component" "control"). The
prefix is cut to 50 characters, or fewer for a long component name, so that
the name stays a 63-character DNS label (Services). */}}
{{- define "baton.componentName" -}}
{{- $most := min 50 (sub 62 (len .component)) | int -}}
{{- printf "%s-%s" (include "baton.fullname" .root | trunc $most | trimSuffix "-") .component -}}
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

{{/* A component's ServiceMonitor on `port`: the control service, the queue and
the webhook connector serve /metrics on a plain-HTTP listener of their own
("plain" true); another port is scraped over https with TLS on. */}}
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
      {{- if and .root.Values.tls.enabled (not .plain) }}
      # With TLS on, the HTTP listeners serve the chart's certificate.
      scheme: https
      tlsConfig:
        ca:
          secret:
            name: {{ .root.Values.tls.secretName }}
            key: ca.crt
        serverName: {{ include "baton.componentName" . }}
      {{- end }}
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

{{/* The connectors the chart runs, in the order they claim a target kind for
default_connectors: the first enabled one claims a kind, so the queue
connector keeps queues and SIP keeps phone numbers and SIP URIs when Twilio,
the webhook or the Amazon Connect connector runs beside them. "name" is the
component (and [connectors.<name>]), "key" its key under .Values.connectors. */}}
{{- define "baton.connectorKinds" -}}
{{- toJson (list
  (dict "name" "queue" "key" "queue" "kinds" (list "queue"))
  (dict "name" "sip" "key" "sip" "kinds" (list "phone_number" "sip_uri"))
  (dict "name" "twilio" "key" "twilio" "kinds" (list "queue" "phone_number" "sip_uri"))
  (dict "name" "webhook" "key" "webhook" "kinds" (list "queue"))
  (dict "name" "amazon-connect" "key" "amazonConnect" "kinds" (list "queue"))) -}}
{{- end -}}

{{/* A component's Service: (dict "root" $ "values" … "component" … "ports"
(list (dict "name" "grpc" "port" … "appProtocol" "grpc") …)). Each port
targets the container port of the same name. */}}
{{- define "baton.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "baton.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
  {{- with .values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .values.service.type }}
  selector:
    {{- include "baton.selectorLabels" . | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
      appProtocol: {{ .appProtocol }}
    {{- end }}
{{- end -}}

{{/* A connector's NetworkPolicy: its gRPC port only from the control pods,
and its other listeners (ports: list of (dict "port" name "protocol" …))
from `from` (everyone when empty); no other rule when it has none.
Ingress only: egress (to Twilio, AWS, trunks, CRMs) is not restricted.
With "metrics" true and serviceMonitor on, the metrics port from
networkPolicy.metricsFrom.
(dict "root" $ "component" … "ports" … "from" … "why" "<comment>" "metrics" bool) */}}
{{- define "baton.connectorNetworkPolicy" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "baton.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "baton.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress"]
  ingress:
    # ConnectorService: only the control service (and the `helm test` pod's
    # health check).
    - from:
        - podSelector:
            matchLabels:
              {{- include "baton.selectorLabels" (dict "root" .root "component" "control") | nindent 14 }}
        {{- with include "baton.testPeer" .root }}{{ . | nindent 8 }}{{ end }}
      ports:
        - port: grpc
          protocol: TCP
    {{- if .ports }}
    # {{ .why }}
    - ports:
        {{- range .ports }}
        - port: {{ .port }}
          protocol: {{ .protocol }}
        {{- end }}
      {{- with .from }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- if and .metrics .root.Values.serviceMonitor.enabled }}
    # /metrics for the scraper.
    - ports:
        - port: metrics
          protocol: TCP
      {{- with .root.Values.networkPolicy.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
{{- end -}}

{{/* A connector's data PersistentVolumeClaim, `<name>-data`, unless it uses
an existing claim: (dict "root" $ "values" … "component" …). */}}
{{- define "baton.dataClaim" -}}
{{- $persistence := .values.persistence -}}
{{- if and $persistence.enabled (not $persistence.existingClaim) }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "baton.componentName" . }}-data
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
spec:
  accessModes:
    {{- toYaml $persistence.accessModes | nindent 4 }}
  {{- with $persistence.storageClassName }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ $persistence.size | quote }}
{{- end }}
{{- end -}}

{{/* A connector's data directory, on the data volume of its Deployment
(emptyDir, or its claim with persistence): (dict "component" …). */}}
{{- define "baton.dataDir" -}}
{{- printf "/var/lib/baton-%s" .component -}}
{{- end -}}

{{/* A connector's configuration file as JSON, in the sections every
connector shares (the connector SDK's): `config` (the user's keys with the
chart-managed ones set, its [server] listen addresses among them) plus
server.drain_timeout (values.drainTimeoutSeconds), server.tenants
(values.tenants, when any), [store] data_dir (the
transfer journal, on the data volume), [telemetry], [metrics] listen on
values.service.metricsPort with serviceMonitor on (connectors that have
one), and [tls] with TLS on. The probes' health listener is the
--health-listen flag every connector takes (baton.probeArgs).
(dict "root" $ "values" … "component" … "config" …) */}}
{{- define "baton.connectorConfig" -}}
{{- $config := .config -}}
{{- $server := $config.server | default dict -}}
{{- $_ := set $server "drain_timeout" (printf "%vs" .values.drainTimeoutSeconds) -}}
{{- with .values.tenants }}{{ $_ := set $server "tenants" . }}{{ end -}}
{{- $_ := set $config "server" $server -}}
{{- $_ := set $config "store" (dict "data_dir" (include "baton.dataDir" .)) -}}
{{- $_ := set $config "telemetry" (include "baton.telemetryConfig" .root | fromJson) -}}
{{- if and .root.Values.serviceMonitor.enabled .values.service.metricsPort -}}
{{- $_ := set $config "metrics" (dict "listen" (printf "0.0.0.0:%v" .values.service.metricsPort)) -}}
{{- end -}}
{{- if .root.Values.tls.enabled -}}
{{- $_ := set $config "tls" (include "baton.tlsConfig" . | fromJson) -}}
{{- end -}}
{{- toJson $config -}}
{{- end -}}

{{/* A connector's ConfigMap holding `<component>.yaml`, which its binary
reads: (dict "root" $ "component" … "binary" … "config" <JSON from
baton.connectorConfig>). */}}
{{- define "baton.connectorConfigMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "baton.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
data:
  # Read by `{{ .binary }} --config /etc/baton/config/{{ .component }}.yaml`.
  {{ .component }}.yaml: |
    {{- .config | fromJson | toYaml | nindent 4 }}
{{- end -}}

{{/* The http(s) URL of a component's HTTP port inside the cluster:
(dict "root" $ "component" … "port" …). */}}
{{- define "baton.serviceUrl" -}}
{{- printf "%s://%s.%s.svc:%v" (ternary "https" "http" .root.Values.tls.enabled) (include "baton.componentName" .) .root.Release.Namespace .port -}}
{{- end -}}

{{/* Fails when a connector that keeps its state in one pod would run more
than one: (dict "values" … "key" "connectors.<name>" "why" "…"). */}}
{{- define "baton.checkSingleReplica" -}}
{{- if or (gt (int .values.replicas) 1) (and .values.autoscaling.enabled (gt (int .values.autoscaling.maxReplicas) 1)) -}}
{{- fail (printf "%s: only 1 replica: %s" .key .why) -}}
{{- end -}}
{{- end -}}

{{/* A connector's Deployment. (dict
  "root" $ "values" … "component" …
  "binary" "baton-connector-…"
  "singleReplica" bool     one pod always (its state lives in it)
  "recreate" "<why>"       the Recreate strategy, with the reason; RollingUpdate when empty
  "checksums" (dict "config" "<template file>" …)   restart pods when these change
  "graceComment" "<what happens on SIGTERM>"   besides the drain every connector does
  "args" (list …)          more command-line arguments
  "ports" (list (dict "name" … "port" … "protocol" …))   besides grpc (and health, and
                           metrics with serviceMonitor when values.service.metricsPort is set)
  "envTemplate" "<template name>"   more environment, rendered with this dict
  "configSecret" "<Secret name>"    the file comes from this Secret, not the ConfigMap
)
Every connector has a data volume at baton.dataDir, its config's data_dir
(the transfer journal): an emptyDir, or with values.persistence.enabled its
claim. */}}
{{- define "baton.connectorDeployment" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $name := include "baton.componentName" . -}}
{{- $probePort := include "baton.probePort" (dict "root" $root "port" $values.service.grpcPort) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "baton.labels" . | nindent 4 }}
spec:
  {{- if .singleReplica }}
  replicas: 1
  {{- else if not $values.autoscaling.enabled }}
  replicas: {{ $values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    {{- if .recreate }}
    # {{ .recreate }}
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
    {{- end }}
  selector:
    matchLabels:
      {{- include "baton.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "baton.labels" . | nindent 8 }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- range $kind, $file := .checksums }}
        checksum/{{ $kind }}: {{ include (print $root.Template.BasePath "/" $file) $root | sha256sum }}
        {{- end }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "baton.podCommon" . | nindent 6 }}
      # On SIGTERM the connector drains for drain_timeout (new transfers
      # refused, running ones go on), then hands those still running to the
      # next process through its transfer journal; the pod gets that and a
      # margin before it is killed.
      {{- with .graceComment }}
      # {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ add $values.drainTimeoutSeconds 10 }}
      containers:
        - name: {{ .component }}
          image: {{ include "baton.image" . }}
          imagePullPolicy: {{ include "baton.imagePullPolicy" . }}
          command: [{{ .binary | quote }}, "--config", "/etc/baton/config/{{ .component }}.yaml"{{ range .args }}, {{ . | quote }}{{ end }}{{ include "baton.probeArgs" $root }}]
          ports:
            - name: grpc
              containerPort: {{ $values.service.grpcPort }}
              protocol: TCP
            {{- if $root.Values.tls.enabled }}
            - name: health
              containerPort: {{ $root.Values.tls.probePort }}
              protocol: TCP
            {{- end }}
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: {{ .protocol }}
            {{- end }}
            {{- if and $root.Values.serviceMonitor.enabled $values.service.metricsPort }}
            - name: metrics
              containerPort: {{ $values.service.metricsPort }}
              protocol: TCP
            {{- end }}
          env:
            {{- include "baton.commonEnv" . | nindent 12 }}
            {{- if .envTemplate }}
            {{- with include .envTemplate . | trim }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- end }}
          startupProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/baton/config
              readOnly: true
            - name: data
              mountPath: {{ include "baton.dataDir" . }}
            - name: tmp
              mountPath: /tmp
            {{- if $root.Values.tls.enabled }}
            {{- include "baton.tlsVolumeMount" $root | nindent 12 }}
            {{- end }}
            {{- with .secretMount }}{{ if .secretName }}
            - name: {{ .name }}
              mountPath: {{ .mountPath }}
              readOnly: true
            {{- end }}{{ end }}
      volumes:
        - name: config
          {{- if .configSecret }}
          secret:
            secretName: {{ .configSecret }}
            defaultMode: 0440
            items:
              - key: {{ .component }}.yaml
                path: {{ .component }}.yaml
          {{- else }}
          configMap:
            name: {{ $name }}
          {{- end }}
        # The transfer journal: an emptyDir keeps it across container
        # restarts (a crash, an OOM kill, a failed liveness probe), a claim
        # across the pod being replaced too.
        - name: data
          {{- if $values.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ $values.persistence.existingClaim | default (printf "%s-data" $name) }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        - name: tmp
          emptyDir: {}
        {{- if $root.Values.tls.enabled }}
        {{- include "baton.tlsVolume" $root | nindent 8 }}
        {{- end }}
        {{- with .secretMount }}{{ if .secretName }}
        # A Secret the component reads beside its configuration.
        - name: {{ .name }}
          secret:
            secretName: {{ .secretName }}
            defaultMode: 0440
        {{- end }}{{ end }}
{{- end -}}

{{/* The SIP connector's own environment: the address it announces, and the
chart-managed sections of a configuration file it does not render. */}}
{{- define "baton.sipEnv" -}}
{{- $sip := .values -}}
{{- $root := .root -}}
{{- if and (not $sip.existingConfigSecret) (not (dig "sip" "public_address" "" $sip.config)) }}
# Via and Contact must name an address peers can answer, not 0.0.0.0.
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: BATON_SIP_SIP__PUBLIC_ADDRESS
  value: "$(POD_IP):{{ $sip.service.sipPort }}"
{{- end }}
{{- if $sip.existingConfigSecret }}
# The chart-managed sections of a configuration it does not render.
{{- with $root.Values.telemetry.otlp.endpoint }}
- name: BATON_SIP_TELEMETRY__OTLP_ENDPOINT
  value: {{ . | quote }}
- name: BATON_SIP_TELEMETRY__OTLP_PROTOCOL
  value: {{ $root.Values.telemetry.otlp.protocol | quote }}
{{- end }}
{{- if $root.Values.tls.enabled }}
- name: BATON_SIP_TLS__CERT_FILE
  value: /etc/baton/tls/tls.crt
- name: BATON_SIP_TLS__KEY_FILE
  value: /etc/baton/tls/tls.key
{{- if $root.Values.tls.mutual }}
- name: BATON_SIP_TLS__CLIENT_CA_FILE
  value: /etc/baton/tls/ca.crt
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The queue's OIDC client secret from its Secret, when the desktop signs
in through an issuer as a confidential client. */}}
{{- define "baton.queueEnv" -}}
{{- with .values.oidc }}{{ if and .enabled .clientSecret.existingSecret }}
- name: BATON_QUEUE_DESK__OIDC__CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .clientSecret.existingSecret }}
      key: {{ .clientSecret.key }}
{{- end }}{{ end }}
{{- end -}}

{{/* The webhook connector's endpoint signing secrets, one variable per
endpoint from the Secret's key of the endpoint's name. */}}
{{- define "baton.webhookEnv" -}}
{{- $secret := .values.existingSecret | default (printf "%s-endpoint-secrets" (include "baton.componentName" .)) -}}
{{- range $endpoint, $_ := .values.config.endpoints }}
- name: BATON_WEBHOOK_ENDPOINTS__{{ upper $endpoint }}__SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $endpoint }}
{{- end }}
{{- end -}}

{{/* The Twilio connector's credentials from its Secret; the API key's
variables only when there is one (or may be, in an existing Secret). */}}
{{- define "baton.twilioEnv" -}}
{{- $credentials := .values.credentials -}}
{{- $secret := $credentials.existingSecret | default (printf "%s-credentials" (include "baton.componentName" .)) -}}
{{- range $variable, $key := dict "ACCOUNT_SID" "account-sid" "AUTH_TOKEN" "auth-token" "API_KEY_SID" "api-key-sid" "API_KEY_SECRET" "api-key-secret" }}
{{- $optional := hasPrefix "api-key" $key -}}
{{- if or (not $optional) $credentials.existingSecret $credentials.apiKeySid }}
- name: BATON_TWILIO_CREDENTIALS__{{ $variable }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      {{- if $optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}


{{/* The Amazon Connect connector's AWS credentials from its Secret, as
BATON_AMAZON_CONNECT_CREDENTIALS__* (they win over the file and over AWS_*);
the session token only when there is one (or may be, in an existing Secret). */}}
{{- define "baton.amazonConnectEnv" -}}
{{- $credentials := .values.credentials -}}
{{- $secret := $credentials.existingSecret | default (printf "%s-credentials" (include "baton.componentName" .)) -}}
{{- range $variable, $key := dict "ACCESS_KEY_ID" "access-key-id" "SECRET_ACCESS_KEY" "secret-access-key" "SESSION_TOKEN" "session-token" }}
{{- $optional := eq $key "session-token" -}}
{{- if or (not $optional) $credentials.existingSecret $credentials.sessionToken }}
- name: BATON_AMAZON_CONNECT_CREDENTIALS__{{ $variable }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      {{- if $optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The `helm test` pod as a NetworkPolicy peer (nothing when tests are
off): it asks each component's gRPC port for its health. */}}
{{- define "baton.testPeer" -}}
{{- if .Values.tests.enabled -}}
- podSelector:
    matchLabels:
      {{- include "baton.selectorLabels" (dict "root" . "component" "test") | nindent 6 }}
{{- end -}}
{{- end -}}
