{{/* Names and labels shared by every object of the release. */}}
{{- define "gatecore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatecore.fullname" -}}
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

{{- define "gatecore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatecore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatecore.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gatecore.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gatecore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatecore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gatecore.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The config file: the user's `config` plus what the chart owns. The store and Redis URLs are
${ENV} references (they carry passwords), filled from Secrets by the Deployment's env.
*/}}
{{- define "gatecore.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $_ := set $config "store" (mergeOverwrite (dict "url" "${GATECORE_STORE_URL}") (get $config "store" | default dict)) }}
{{- $_ := set $config "ledger" (mergeOverwrite (dict "spool_dir" "/var/lib/gatecore/ledger-spool") (get $config "ledger" | default dict)) }}
{{- if .Values.redis.enabled }}
{{- $_ := set $config "redis" (mergeOverwrite (dict "url" "${GATECORE_REDIS_URL}" "key_prefix" .Values.redis.keyPrefix "timeout_s" .Values.redis.timeoutS) (get $config "redis" | default dict)) }}
{{- end }}
{{- toYaml $config }}
{{- end }}
