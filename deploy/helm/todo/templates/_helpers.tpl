{{/* Labels every object carries. */}}
{{- define "todo.labels" -}}
app.kubernetes.io/part-of: todo
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "name" "todo-backend"). */}}
{{- define "todo.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "todo.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end }}

{{/* A topic's name as the services see it. */}}
{{- define "todo.topic" -}}
{{ printf "%s%s" .root.Values.topicPrefix .name }}
{{- end }}

{{/* The bootstrap address of the Kafka cluster. */}}
{{- define "todo.kafkaBootstrap" -}}
{{- if .Values.kafka.create -}}
{{ printf "%s-kafka-bootstrap:%d" .Values.kafka.clusterName (int .Values.kafka.listener.port) }}
{{- else -}}
{{ required "kafka.external.bootstrapServers is required when kafka.create=false" .Values.kafka.external.bootstrapServers }}
{{- end -}}
{{- end }}

{{/*
A Kafka principal: (dict "root" $ "who" "backend"|"eventService"|"dapr").
Gives "username", "secret", "key": Strimzi's KafkaUser Secret (named after the
user, key "password") when the chart creates the cluster, else kafka.external.
*/}}
{{- define "todo.kafkaUser" -}}
{{- $v := .root.Values -}}
{{- if $v.kafka.create -}}
{{- $name := get (dict "backend" $v.backend.name "eventService" $v.eventService.name "dapr" "todo-dapr") .who -}}
username: {{ $name }}
secret: {{ $name }}
key: password
{{- else -}}
{{- $u := get $v.kafka.external .who -}}
username: {{ $u.username }}
secret: {{ $u.passwordSecret.name }}
key: {{ $u.passwordSecret.key }}
{{- end -}}
{{- end }}

{{- define "todo.kafkaSecurityProtocol" -}}
{{- if .Values.kafka.create -}}SASL_PLAINTEXT{{- else -}}{{ .Values.kafka.external.securityProtocol }}{{- end -}}
{{- end }}

{{/* The Kafka settings both services share (todo-kafka's KafkaArgs and TopicSettings). */}}
{{- define "todo.kafkaEnv" -}}
{{- $u := include "todo.kafkaUser" (dict "root" .root "who" .who) | fromYaml -}}
{{- $proto := include "todo.kafkaSecurityProtocol" .root -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "todo.kafkaBootstrap" .root | quote }}
- name: KAFKA_TOPIC_PREFIX
  value: {{ .root.Values.topicPrefix | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $proto | quote }}
{{- if hasPrefix "SASL" $proto }}
- name: KAFKA_SASL_MECHANISM
  value: {{ ternary "SCRAM-SHA-512" .root.Values.kafka.external.saslMechanism .root.Values.kafka.create | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $u.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $u.secret }}
      key: {{ $u.key }}
{{- end }}
- name: KAFKA_TOPIC_PARTITIONS
  value: {{ .root.Values.kafka.topics.partitions | quote }}
- name: KAFKA_TOPIC_REPLICATION_FACTOR
  value: {{ .root.Values.kafka.topics.replicas | quote }}
- name: KAFKA_TOPIC_RETENTION_MS
  value: {{ .root.Values.kafka.topics.retentionMs | int64 | quote }}
- name: KAFKA_TOPIC_MIN_INSYNC_REPLICAS
  value: {{ .root.Values.kafka.topics.minInsyncReplicas | quote }}
{{- end }}

{{/*
A database URL: (dict "root" $ "db" "todo" "var" "DATABASE_URL" "key" "database-url").
With CloudNativePG the URL names the role and database but holds no password:
the password comes from the operator's Secret as PGPASSWORD, which sqlx reads
(libpq's variable) when the URL has none.
*/}}
{{- define "todo.databaseEnv" -}}
{{- $v := .root.Values -}}
{{- if $v.postgres.create }}
- name: {{ .var }}
  value: {{ printf "postgres://%s@%s-rw:5432/%s" $v.postgres.owner $v.postgres.clusterName .db | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-app" $v.postgres.clusterName }}
      key: password
{{- else }}
- name: {{ .var }}
  valueFrom:
    secretKeyRef:
      name: {{ $v.postgres.external.existingSecret }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/* Settings from values: a map of NAME: value; an empty value leaves the setting unset. */}}
{{- define "todo.envMap" -}}
{{- range $k, $val := . }}
{{- if ne (toString $val) "" }}
- name: {{ $k }}
  value: {{ $val | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pub/sub Component of deploy/dapr, as an object. */}}
{{- define "todo.daprPubsub" -}}
{{ .Files.Get "dapr/pubsub.yaml" }}
{{- end }}

{{/* One metadata entry of the pub/sub Component: (dict "root" $ "name" "consumerGroup"). */}}
{{- define "todo.daprPubsubEntry" -}}
{{- range (include "todo.daprPubsub" .root | fromYaml).spec.metadata }}
{{- if eq .name $.name }}{{ .value }}{{ end }}
{{- end }}
{{- end }}

{{/*
How a service moves events: (dict "root" $ "var" "EVENT_TRANSPORT"|"EVENT_SOURCE"),
set to the value transport. In Dapr mode also where its sidecar is.
NB: DAPR_HTTP_PORT is the injected sidecar's HTTP port, 3500 in Dapr 1.14 (no
annotation moves it; the injector sets the same variable unless it is set).
*/}}
{{- define "todo.transportEnv" -}}
- name: {{ .var }}
  value: {{ .root.Values.transport | quote }}
{{- if eq .root.Values.transport "dapr" }}
- name: DAPR_HTTP_PORT
  value: "3500"
- name: DAPR_PUBSUB_NAME
  value: {{ (include "todo.daprPubsub" .root | fromYaml).metadata.name | quote }}
{{- end }}
{{- end }}

{{/* Dapr sidecar annotations: (dict "root" $ "id" "todo-backend" "port" 8080). */}}
{{- define "todo.daprAnnotations" -}}
{{- $d := .root.Values.dapr -}}
dapr.io/enabled: "true"
dapr.io/app-id: {{ .id | quote }}
dapr.io/app-port: {{ .port | quote }}
dapr.io/app-protocol: "http"
dapr.io/config: "todo-dapr"
dapr.io/log-level: {{ $d.logLevel | quote }}
dapr.io/log-as-json: "true"
dapr.io/enable-metrics: "true"
dapr.io/metrics-port: "9090"
dapr.io/sidecar-cpu-request: {{ $d.sidecar.cpuRequest | quote }}
dapr.io/sidecar-cpu-limit: {{ $d.sidecar.cpuLimit | quote }}
dapr.io/sidecar-memory-request: {{ $d.sidecar.memoryRequest | quote }}
dapr.io/sidecar-memory-limit: {{ $d.sidecar.memoryLimit | quote }}
dapr.io/sidecar-seccomp-profile-type: "RuntimeDefault"
{{- end }}

{{/* Liveness on /health, readiness on /ready. */}}
{{- define "todo.probes" -}}
startupProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 2
  failureThreshold: 90
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end }}

{{/* REDIS_URL: the chart's StatefulSet or an external Secret. */}}
{{- define "todo.redisEnv" -}}
{{- if .Values.redis.create }}
- name: REDIS_URL
  value: "redis://todo-redis:6379"
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.urlKey }}
{{- end }}
{{- end }}
