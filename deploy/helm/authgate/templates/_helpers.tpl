{{/* Name of the chart, or nameOverride. */}}
{{- define "authgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: fullnameOverride, or release-name (release alone when it already holds the name). */}}
{{- define "authgate.fullname" -}}
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

{{/* Labels that select the pods: never change them on upgrade. */}}
{{- define "authgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "authgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "authgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "authgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "authgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the pods load with envFrom: the existing one, the chart's, or none (""). */}}
{{- define "authgate.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else if .Values.secretEnv -}}
{{- include "authgate.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap of OPA's policies: the existing one, or the chart's. */}}
{{- define "authgate.policiesName" -}}
{{- if .Values.opa.existingConfigMap -}}
{{- .Values.opa.existingConfigMap -}}
{{- else -}}
{{- printf "%s-policies" (include "authgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Environment variables the chart sets, before env (which wins). */}}
{{- define "authgate.env" -}}
{{- $env := dict
  "LISTEN_ADDR" (printf ":%d" (int .Values.ports.traffic))
  "ADMIN_ADDR" (printf ":%d" (int .Values.ports.admin))
  "METRICS_ADDR" (printf ":%d" (int .Values.ports.metrics))
  "OPA_AUTHZ_URL" (printf "http://127.0.0.1:%d/v1/data/%s" (int .Values.opa.port) (trimPrefix "/" .Values.opa.decision))
-}}
{{- if .Values.redis.url -}}
{{- $_ := set $env "REDIS_URL" .Values.redis.url -}}
{{- end -}}
{{- range $k, $v := .Values.env -}}
{{- $_ := set $env $k $v -}}
{{- end -}}
{{- $list := list -}}
{{- range $k := keys $env | sortAlpha -}}
{{- $list = append $list (dict "name" $k "value" (get $env $k)) -}}
{{- end -}}
{{- toYaml $list -}}
{{- end -}}

{{/* topologySpreadConstraints, each given the pods' labels when it has no labelSelector. */}}
{{- define "authgate.topologySpread" -}}
{{- $list := list -}}
{{- $selector := dict "matchLabels" (include "authgate.selectorLabels" . | fromYaml) -}}
{{- range .Values.topologySpreadConstraints -}}
{{- if hasKey . "labelSelector" -}}
{{- $list = append $list . -}}
{{- else -}}
{{- $list = append $list (merge (dict "labelSelector" $selector) .) -}}
{{- end -}}
{{- end -}}
{{- toYaml $list -}}
{{- end -}}
