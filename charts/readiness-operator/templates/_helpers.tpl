{{- define "readiness.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "readiness.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "readiness.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "readiness.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "readiness.selectorLabels" -}}
app.kubernetes.io/name: {{ include "readiness.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "readiness.labels" -}}
{{ include "readiness.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "readiness.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "readiness.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "readiness.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "readiness.tlsSecret" -}}
{{- default (printf "%s-webhook-tls" (include "readiness.fullname" .)) .Values.webhook.tls.secretName -}}
{{- end -}}

{{- define "readiness.webhookConfigName" -}}
{{- printf "%s.readiness.dev" (include "readiness.fullname" .) -}}
{{- end -}}

{{- define "readiness.excludedNamespaces" -}}
{{- $names := .Values.webhook.excludedNamespaces -}}
{{- if not (has .Release.Namespace $names) -}}{{- $names = append $names .Release.Namespace -}}{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* Kind -> "group plural" of the workload kinds (the same table as readiness.webhook.RESOURCES). */}}
{{- define "readiness.kindTable" -}}
Deployment: {group: apps, version: v1, plural: deployments}
StatefulSet: {group: apps, version: v1, plural: statefulsets}
DaemonSet: {group: apps, version: v1, plural: daemonsets}
ReplicaSet: {group: apps, version: v1, plural: replicasets}
ReplicationController: {group: "", version: v1, plural: replicationcontrollers}
Job: {group: batch, version: v1, plural: jobs}
CronJob: {group: batch, version: v1, plural: cronjobs}
Pod: {group: "", version: v1, plural: pods}
Rollout: {group: argoproj.io, version: v1alpha1, plural: rollouts}
{{- end -}}

{{- define "readiness.mapping" -}}
{{- $items := list -}}
{{- range $key, $value := . -}}{{- $items = append $items (printf "%s=%s" $key $value) -}}{{- end -}}
{{- join "," $items -}}
{{- end -}}
