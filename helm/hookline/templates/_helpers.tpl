{{/*
Names
*/}}
{{- define "hookline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hookline.fullname" -}}
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

{{- define "hookline.workerName" -}}
{{- printf "%s-worker" (include "hookline.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hookline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. Selector labels carry the component (gateway, worker, migrate) so the Services, PDBs and
ServiceMonitors of one component never select the other's pods.
*/}}
{{- define "hookline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hookline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "hookline.labels" -}}
helm.sh/chart: {{ include "hookline.chart" .root }}
{{ include "hookline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: hookline
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "hookline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hookline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hookline.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Database and secrets
*/}}
{{- define "hookline.embeddedDatabase" -}}
{{- if .Values.database.embedded.enabled }}true{{ end }}
{{- end }}

{{- define "hookline.databaseSecretName" -}}
{{- default (include "hookline.fullname" .) .Values.database.existingSecret }}
{{- end }}

{{- define "hookline.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "hookline.adminSecretName" -}}
{{- default (include "hookline.fullname" .) .Values.admin.existingSecret }}
{{- end }}

{{- define "hookline.adminSecretKey" -}}
{{- if .Values.admin.existingSecret }}{{ .Values.admin.existingSecretKey }}{{ else }}admin-token{{ end }}
{{- end }}

{{- define "hookline.hasAdminToken" -}}
{{- if or .Values.admin.token .Values.admin.existingSecret }}true{{ end }}
{{- end }}

{{/* true when the chart renders its own Secret (database URL and/or admin token) */}}
{{- define "hookline.createSecret" -}}
{{- if or (and .Values.database.url (not .Values.database.existingSecret)) (and .Values.admin.token (not .Values.admin.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "hookline.envSecretName" -}}
{{- printf "%s-env" (include "hookline.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hookline.configMapName" -}}
{{- default (include "hookline.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{- define "hookline.gatewayKind" -}}
{{- if .Values.spool.persistence.enabled }}StatefulSet{{ else }}Deployment{{ end }}
{{- end }}

{{/*
Refuse configurations that would silently lose data or never work.
*/}}
{{- define "hookline.validate" -}}
{{- $external := or .Values.database.url .Values.database.existingSecret }}
{{- if and (not $external) (not .Values.database.embedded.enabled) }}
{{- fail "hookline: no database. Set database.existingSecret (a Secret with the PostgreSQL URL) or database.url for an external PostgreSQL; for a single-pod trial only, set database.embedded.enabled=true" }}
{{- end }}
{{- if and $external .Values.database.embedded.enabled }}
{{- fail "hookline: database.embedded.enabled conflicts with database.url/existingSecret; choose one" }}
{{- end }}
{{- if include "hookline.embeddedDatabase" . }}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled .Values.worker.enabled }}
{{- fail "hookline: the embedded PostgreSQL lives inside one pod; switch to an external one (database.embedded.enabled=false plus database.existingSecret or database.url) before raising replicaCount or enabling autoscaling or worker" }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.requestRate.enabled) }}
{{- fail "hookline: autoscaling.enabled needs targetCPUUtilizationPercentage > 0 or requestRate.enabled" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "hookline: autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/*
Pod pieces shared by the gateway, the worker and the migration Job.
*/}}
{{- define "hookline.podAnnotations" -}}
{{- if not .Values.existingConfigMap }}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/* environment common to `serve` and `worker`; dict: root, component */}}
{{- define "hookline.env" -}}
{{- $root := .root -}}
- name: HOOKLINE_CONFIG
  value: /etc/hookline/hookline.toml
- name: HOOKLINE_HOST
  value: "0.0.0.0"
{{- with $root.Values.server }}
- name: HOOKLINE_SERVER_HEADER_READ_TIMEOUT_SECONDS
  value: {{ .headerReadTimeoutSeconds | quote }}
- name: HOOKLINE_SERVER_KEEP_ALIVE_TIMEOUT_SECONDS
  value: {{ .keepAliveTimeoutSeconds | quote }}
- name: HOOKLINE_SERVER_BODY_READ_TIMEOUT_SECONDS
  value: {{ .bodyReadTimeoutSeconds | quote }}
{{- end }}
- name: HOOKLINE_DATA_DIR
  value: {{ $root.Values.dataDir | quote }}
{{- if not (include "hookline.embeddedDatabase" $root) }}
- name: HOOKLINE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "hookline.databaseSecretName" $root }}
      key: {{ include "hookline.databaseSecretKey" $root }}
{{- end }}
{{- range $name, $ref := $root.Values.secrets.keyRefs }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- with $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_SERVICE_NAME
  {{- if eq $.component "worker" }}
  value: {{ printf "%s-worker" (default (include "hookline.fullname" $root) $root.Values.otel.serviceName) | quote }}
  {{- else }}
  value: {{ default (include "hookline.fullname" $root) $root.Values.otel.serviceName | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "hookline.envFrom" -}}
{{- if .Values.secrets.env }}
- secretRef:
    name: {{ include "hookline.envSecretName" . }}
{{- end }}
{{- with .Values.secrets.existingSecret }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* graceful drain: Service endpoints stop routing before SIGTERM arrives */}}
{{- define "hookline.lifecycle" -}}
{{- if gt (int .Values.preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    {{- if semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version }}
    sleep:
      seconds: {{ int .Values.preStopSleepSeconds }}
    {{- else }}
    exec:
      command: ["sleep", "{{ int .Values.preStopSleepSeconds }}"]
    {{- end }}
{{- end }}
{{- end }}

{{- define "hookline.podCommon" -}}
serviceAccountName: {{ include "hookline.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/*
The gateway pod template, shared by the Deployment and the StatefulSet.
*/}}
{{- define "hookline.gatewayPodTemplate" -}}
{{- $ctx := dict "root" . "component" "gateway" -}}
metadata:
  annotations:
    {{- include "hookline.podAnnotations" . | trim | nindent 4 }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "hookline.labels" $ctx | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- include "hookline.podCommon" . | nindent 2 }}
  terminationGracePeriodSeconds: {{ int .Values.terminationGracePeriodSeconds }}
  {{- if and (include "hookline.embeddedDatabase" .) .Values.migrations.enabled }}
  initContainers:
    - name: migrate
      image: {{ include "hookline.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["hookline"]
      args: ["migrate"]
      env:
        - name: HOOKLINE_DATA_DIR
          value: {{ .Values.dataDir | quote }}
      resources:
        {{- toYaml .Values.migrations.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: {{ .Values.dataDir }}
        - name: tmp
          mountPath: /tmp
  {{- end }}
  containers:
    - name: hookline
      image: {{ include "hookline.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["hookline"]
      args: ["serve"]
      ports:
        - name: http
          containerPort: 8000
          protocol: TCP
      env:
        {{- include "hookline.env" $ctx | nindent 8 }}
        - name: HOOKLINE_PORT
          value: "8000"
        {{- if .Values.worker.enabled }}
        - name: HOOKLINE_SERVER_WORKERS
          value: "false"
        {{- end }}
        {{- if include "hookline.hasAdminToken" . }}
        - name: HOOKLINE_ADMIN_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "hookline.adminSecretName" . }}
              key: {{ include "hookline.adminSecretKey" . }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with (include "hookline.envFrom" .) }}
      envFrom:
        {{- . | trim | nindent 8 }}
      {{- end }}
      {{- if .Values.probes.startup.enabled }}
      startupProbe:
        httpGet:
          path: {{ .Values.probes.startup.path }}
          port: http
        periodSeconds: {{ .Values.probes.startup.periodSeconds }}
        failureThreshold: {{ .Values.probes.startup.failureThreshold }}
        timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
      {{- end }}
      livenessProbe:
        httpGet:
          path: {{ .Values.probes.liveness.path }}
          port: http
        periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
        failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
        timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
      readinessProbe:
        httpGet:
          path: {{ .Values.probes.readiness.path }}
          port: http
        periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
        failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
        timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
      {{- include "hookline.lifecycle" . | trim | nindent 6 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/hookline
          readOnly: true
        - name: data
          mountPath: {{ .Values.dataDir }}
        - name: tmp
          mountPath: /tmp
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "hookline.configMapName" . }}
        items:
          - key: hookline.toml
            path: hookline.toml
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- if .Values.spool.persistence.enabled }}
    {{- else if include "hookline.embeddedDatabase" . }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ include "hookline.fullname" . }}-data
    {{- else }}
    - name: data
      emptyDir:
        sizeLimit: {{ .Values.spool.emptyDirSizeLimit }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* PodDisruptionBudget spec; dict: root, component, pdb (values) */}}
{{- define "hookline.pdbSpec" -}}
{{- if and (hasKey .pdb "minAvailable") (not (kindIs "invalid" .pdb.minAvailable)) }}
minAvailable: {{ .pdb.minAvailable }}
{{- else }}
maxUnavailable: {{ .pdb.maxUnavailable }}
{{- end }}
selector:
  matchLabels:
    {{- include "hookline.selectorLabels" (dict "root" .root "component" .component) | nindent 4 }}
{{- end }}

{{/* NetworkPolicy egress: DNS plus networkPolicy.egressTo */}}
{{- define "hookline.egressRules" -}}
egress:
  # DNS
  - ports:
      - port: 53
        protocol: UDP
      - port: 53
        protocol: TCP
  {{- with .Values.networkPolicy.egressTo }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
checkov findings that do not apply to a Hookline workload, each with its reason (checkov reads
checkov.io/skipN annotations on the workload). Everything else checkov checks passes.
*/}}
{{- define "hookline.checkovSkips" -}}
checkov.io/skip1: "CKV_K8S_11=No CPU limit on purpose: CFS throttling stalls the single event loop and adds tail latency; the CPU request drives scheduling and the HPA"
checkov.io/skip2: "CKV_K8S_15=IfNotPresent: tags are immutable release versions (appVersion) and locally loaded images must work; set image.digest to pin"
checkov.io/skip3: "CKV_K8S_35=Hookline reads its secrets from environment variables (HOOKLINE_*, *_env) filled only from Secret objects, never inlined"
{{- if not .Values.image.digest }}
checkov.io/skip4: "CKV_K8S_43=Pinning by digest is opt-in (image.digest): the default is the tag make image builds, whose digest differs per build"
{{- end }}
{{- end }}
