{{/* Names */}}
{{- define "streamgauge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "streamgauge.fullname" -}}
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

{{/* Name of one component's objects: (list $ "worker") */}}
{{- define "streamgauge.component" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "streamgauge.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "streamgauge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "streamgauge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels: (list $ "worker") */}}
{{- define "streamgauge.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "streamgauge.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "streamgauge.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
{{ include "streamgauge.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: streamgauge
{{- end }}

{{- define "streamgauge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Worker pods: at most one per partition. */}}
{{- define "streamgauge.maxWorkers" -}}
{{- $partitions := int .Values.kafka.partitions }}
{{- $max := int .Values.autoscaling.maxReplicas }}
{{- if or (le $max 0) (gt $max $partitions) }}{{ $partitions }}{{ else }}{{ $max }}{{ end }}
{{- end }}

{{/* keda or hpa, from autoscaling.engine and what the cluster serves. */}}
{{/* What scales the workers: keda, hpa or none. auto picks what the cluster can run: KEDA;
else an HPA when its metric is served (the external metrics API for the lag, or CPU); else
none, and the Deployment keeps worker.replicas (NOTES says so): never a silent one pod. */}}
{{- define "streamgauge.autoscaler" -}}
{{- $engine := .Values.autoscaling.engine }}
{{- if not .Values.autoscaling.enabled }}none
{{- else if eq $engine "auto" }}
{{- if .Capabilities.APIVersions.Has "keda.sh/v1alpha1" }}keda
{{- else if or (eq .Values.autoscaling.hpa.metric "cpu") (.Capabilities.APIVersions.Has "external.metrics.k8s.io/v1beta1") }}hpa
{{- else }}none{{ end }}
{{- else if has $engine (list "keda" "hpa") }}
{{- $engine }}
{{- else }}
{{- fail (printf "autoscaling.engine must be auto, keda or hpa, not %q" $engine) }}
{{- end }}
{{- end }}

{{/* Whether an optional CRD-backed object renders: (list $ .Values.x.enabled "group/version") */}}
{{- define "streamgauge.enabled" -}}
{{- $root := index . 0 }}
{{- $enabled := toString (index . 1) }}
{{- if eq $enabled "auto" }}
{{- if $root.Capabilities.APIVersions.Has (index . 2) }}true{{ end }}
{{- else if eq $enabled "true" }}true
{{- end }}
{{- end }}

{{/* The chart's Secret: the credentials not taken from an existing Secret. */}}
{{- define "streamgauge.secretName" -}}
{{- include "streamgauge.fullname" . }}
{{- end }}

{{- define "streamgauge.saslEnabled" -}}
{{- if .Values.kafka.sasl.mechanism }}true{{ end }}
{{- end }}

{{/* Kafka and ClickHouse credentials (what the migration hook needs too). */}}
{{- define "streamgauge.credentialData" -}}
{{- if not .Values.clickhouse.existingSecret }}
clickhouse-password: {{ .Values.clickhouse.password | b64enc | quote }}
{{- end }}
{{- if include "streamgauge.saslEnabled" . }}
kafka-sasl-username: {{ .Values.kafka.sasl.username | b64enc | quote }}
{{- if not .Values.kafka.sasl.existingSecret }}
kafka-sasl-password: {{ .Values.kafka.sasl.password | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "streamgauge.secretData" -}}
{{- include "streamgauge.credentialData" . }}
{{- if and .Values.api.enabled (not .Values.api.existingSecret) (not (include "streamgauge.apiKeyGenerated" .)) }}
api-keys: {{ .Values.api.keys | b64enc | quote }}
{{- end }}
{{- end }}

{{/* Whether the chart makes the API's key: auth on, and no keys given. */}}
{{- define "streamgauge.apiKeyGenerated" -}}
{{- if and .Values.api.enabled .Values.api.auth (not .Values.api.keys) (not .Values.api.existingSecret) }}true{{ end }}
{{- end }}

{{- define "streamgauge.apiKeySecretName" -}}
{{- printf "%s-api-key" (include "streamgauge.fullname" .) }}
{{- end }}

{{/* A secretKeyRef: (list name key) */}}
{{- define "streamgauge.secretRef" -}}
valueFrom:
  secretKeyRef:
    name: {{ index . 0 }}
    key: {{ index . 1 }}
{{- end }}

{{/* Credentials: (list $ secretName), the secret holding what no existing Secret holds. */}}
{{- define "streamgauge.clickhousePasswordRef" -}}
{{- $root := index . 0 }}
{{- if $root.Values.clickhouse.existingSecret }}
{{- include "streamgauge.secretRef" (list $root.Values.clickhouse.existingSecret $root.Values.clickhouse.existingSecretKey) }}
{{- else }}
{{- include "streamgauge.secretRef" (list (index . 1) "clickhouse-password") }}
{{- end }}
{{- end }}

{{- define "streamgauge.saslPasswordRef" -}}
{{- $root := index . 0 }}
{{- if $root.Values.kafka.sasl.existingSecret }}
{{- include "streamgauge.secretRef" (list $root.Values.kafka.sasl.existingSecret $root.Values.kafka.sasl.existingSecretKey) }}
{{- else }}
{{- include "streamgauge.secretRef" (list (index . 1) "kafka-sasl-password") }}
{{- end }}
{{- end }}

{{/* Environment of every streamgauge container: Kafka, ClickHouse, topics, config. */}}
{{- define "streamgauge.env" -}}
{{- include "streamgauge.envWith" (list . (include "streamgauge.secretName" .)) }}
{{- end }}

{{/* The environment of a component with its own ClickHouse user: (list $ "worker"|"api") */}}
{{- define "streamgauge.envFor" -}}
{{- $root := index . 0 }}
{{- include "streamgauge.envWith" (list $root (include "streamgauge.secretName" $root) (index . 1)) }}
{{- end }}

{{/* The same, with credentials from another copy of the chart's Secret: (list $ name) */}}
{{- define "streamgauge.envWith" -}}
{{- $secret := index . 1 }}
{{- /* A component's own ClickHouse user (worker, api): (list $ secret component) */}}
{{- $own := dict }}
{{- if gt (len .) 2 }}
{{- $own = (index (index . 0).Values (index . 2)).clickhouse | default dict }}
{{- end }}
{{- with index . 0 }}
- name: STREAMGAUGE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: STREAMGAUGE_LAG_SLO_SECONDS
  value: {{ .Values.lagSloSeconds | quote }}
- name: STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
- name: STREAMGAUGE_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- with .Values.kafka.tls }}
{{- if .caSecret }}
- name: STREAMGAUGE_KAFKA_SSL_CA_FILE
  value: {{ printf "/etc/streamgauge/kafka-ca/%s" .caSecretKey | quote }}
{{- end }}
{{- if .clientSecret }}
- name: STREAMGAUGE_KAFKA_SSL_CERTIFICATE_FILE
  value: {{ printf "/etc/streamgauge/kafka-client/%s" .certificateKey | quote }}
- name: STREAMGAUGE_KAFKA_SSL_KEY_FILE
  value: {{ printf "/etc/streamgauge/kafka-client/%s" .keyKey | quote }}
{{- if .keyPasswordKey }}
- name: STREAMGAUGE_KAFKA_SSL_KEY_PASSWORD
  {{- include "streamgauge.secretRef" (list .clientSecret .keyPasswordKey) | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}
{{- if include "streamgauge.saslEnabled" . }}
- name: STREAMGAUGE_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
{{- if eq (upper .Values.kafka.sasl.mechanism) "OAUTHBEARER" }}
- name: STREAMGAUGE_KAFKA_OAUTHBEARER_TOKEN_URL
  value: {{ required "kafka.sasl.oauthbearer.tokenUrl is required with OAUTHBEARER" .Values.kafka.sasl.oauthbearer.tokenUrl | quote }}
- name: STREAMGAUGE_KAFKA_OAUTHBEARER_CLIENT_ID
  value: {{ required "kafka.sasl.oauthbearer.clientId is required with OAUTHBEARER" .Values.kafka.sasl.oauthbearer.clientId | quote }}
{{- with .Values.kafka.sasl.oauthbearer.scope }}
- name: STREAMGAUGE_KAFKA_OAUTHBEARER_SCOPE
  value: {{ . | quote }}
{{- end }}
- name: STREAMGAUGE_KAFKA_OAUTHBEARER_CLIENT_SECRET
  {{- include "streamgauge.saslPasswordRef" (list . $secret) | nindent 2 }}
{{- else }}
- name: STREAMGAUGE_KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is required with kafka.sasl.mechanism" .Values.kafka.sasl.username | quote }}
- name: STREAMGAUGE_KAFKA_SASL_PASSWORD
  {{- include "streamgauge.saslPasswordRef" (list . $secret) | nindent 2 }}
{{- end }}
{{- end }}
- name: STREAMGAUGE_TOPIC
  value: {{ .Values.kafka.topic | quote }}
- name: STREAMGAUGE_DLQ_TOPIC
  value: {{ .Values.kafka.dlqTopic | quote }}
- name: STREAMGAUGE_CONSUMER_GROUP
  value: {{ .Values.kafka.consumerGroup | quote }}
- name: STREAMGAUGE_LAG_GROUPS
  value: {{ .Values.kafka.consumerGroup | quote }}
- name: STREAMGAUGE_KAFKA_GROUP_PROTOCOL
  value: {{ .Values.kafka.groupProtocol | quote }}
- name: STREAMGAUGE_TOPIC_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: STREAMGAUGE_TOPIC_REPLICATION
  value: {{ .Values.kafka.replication | quote }}
- name: STREAMGAUGE_TOPIC_RETENTION_HOURS
  value: {{ .Values.kafka.retentionHours | quote }}
{{- if .Values.kafka.schemaRegistryUrl }}
- name: STREAMGAUGE_SCHEMA_REGISTRY_URL
  value: {{ .Values.kafka.schemaRegistryUrl | quote }}
{{- with .Values.kafka.schemaRegistry }}
{{- if .existingSecret }}
- name: STREAMGAUGE_SCHEMA_REGISTRY_USERNAME
  {{- include "streamgauge.secretRef" (list .existingSecret .usernameKey) | nindent 2 }}
- name: STREAMGAUGE_SCHEMA_REGISTRY_PASSWORD
  {{- include "streamgauge.secretRef" (list .existingSecret .passwordKey) | nindent 2 }}
{{- end }}
{{- if .caSecret }}
- name: STREAMGAUGE_SCHEMA_REGISTRY_CA_FILE
  value: {{ printf "/etc/streamgauge/registry-ca/%s" .caSecretKey | quote }}
{{- end }}
{{- end }}
{{- end }}
- name: STREAMGAUGE_CLICKHOUSE_HOST
  value: {{ required "clickhouse.host is required" .Values.clickhouse.host | quote }}
- name: STREAMGAUGE_CLICKHOUSE_PORT
  value: {{ .Values.clickhouse.port | quote }}
- name: STREAMGAUGE_CLICKHOUSE_SECURE
  value: {{ .Values.clickhouse.secure | toString | quote }}
{{- if .Values.clickhouse.caSecret }}
- name: STREAMGAUGE_CLICKHOUSE_CA_FILE
  value: {{ printf "/etc/streamgauge/clickhouse-ca/%s" .Values.clickhouse.caSecretKey | quote }}
{{- end }}
- name: STREAMGAUGE_CLICKHOUSE_DATABASE
  value: {{ .Values.clickhouse.database | quote }}
{{- if $own.user }}
- name: STREAMGAUGE_CLICKHOUSE_USER
  value: {{ $own.user | quote }}
- name: STREAMGAUGE_CLICKHOUSE_PASSWORD
  {{- include "streamgauge.secretRef" (list (required (printf "%s.clickhouse.existingSecret must hold the password of %s.clickhouse.user" (index $ 2) (index $ 2)) $own.existingSecret) $own.existingSecretKey) | nindent 2 }}
{{- else }}
- name: STREAMGAUGE_CLICKHOUSE_USER
  value: {{ .Values.clickhouse.user | quote }}
- name: STREAMGAUGE_CLICKHOUSE_PASSWORD
  {{- include "streamgauge.clickhousePasswordRef" (list . $secret) | nindent 2 }}
{{- end }}
{{- if .Values.clickhouse.cluster }}
- name: STREAMGAUGE_CLICKHOUSE_CLUSTER
  value: {{ .Values.clickhouse.cluster | quote }}
{{- end }}
{{- range $name, $value := .Values.config }}
{{- if not (hasPrefix "STREAMGAUGE_" $name) }}
{{- fail (printf "config keys are STREAMGAUGE_* variables, not %q" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every streamgauge pod. */}}
{{- define "streamgauge.podSpec" -}}
{{- include "streamgauge.podSpecAs" (list . (include "streamgauge.serviceAccountName" .)) }}
{{- end }}

{{/* The pod spec run as another ServiceAccount: (list $ name) (the migration hook's own). */}}
{{- define "streamgauge.podSpecAs" -}}
serviceAccountName: {{ index . 1 }}
{{- with index . 0 }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
{{- end }}

{{- define "streamgauge.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- with .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .Values.kafka.tls.clientSecret }}
- name: kafka-client
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .Values.clickhouse.caSecret }}
- name: clickhouse-ca
  secret:
    secretName: {{ . }}
{{- end }}
{{- if and .Values.kafka.schemaRegistryUrl .Values.kafka.schemaRegistry.caSecret }}
- name: registry-ca
  secret:
    secretName: {{ .Values.kafka.schemaRegistry.caSecret }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "streamgauge.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/streamgauge/kafka-ca
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.clientSecret }}
- name: kafka-client
  mountPath: /etc/streamgauge/kafka-client
  readOnly: true
{{- end }}
{{- if .Values.clickhouse.caSecret }}
- name: clickhouse-ca
  mountPath: /etc/streamgauge/clickhouse-ca
  readOnly: true
{{- end }}
{{- if and .Values.kafka.schemaRegistryUrl .Values.kafka.schemaRegistry.caSecret }}
- name: registry-ca
  mountPath: /etc/streamgauge/registry-ca
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Container-level settings shared by every streamgauge container. */}}
{{- define "streamgauge.container" -}}
image: {{ include "streamgauge.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  {{- include "streamgauge.volumeMounts" . | nindent 2 }}
{{- end }}

{{/* Rolls pods when the chart's Secret changes. */}}
{{- define "streamgauge.checksum" -}}
checksum/secret: {{ include "streamgauge.secretData" . | sha256sum }}
{{- end }}
