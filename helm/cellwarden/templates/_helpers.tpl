{{- define "cellwarden.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end }}
{{- end }}

{{- define "cellwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cellwarden.labels" -}}
{{ include "cellwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "cellwarden.serviceAccountName" -}}
{{- default (include "cellwarden.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- /* The Secret holding the receivers' bearer token (key `token`). */}}
{{- define "cellwarden.receiverTokenSecret" -}}
{{- default (printf "%s-receiver-token" (include "cellwarden.fullname" .)) .Values.receiverToken.existingSecret }}
{{- end }}

{{- /* Where the token is mounted in the pod; the config's receivers.bearer_token_file points here. */}}
{{- define "cellwarden.receiverTokenDir" -}}
/var/run/secrets/cellwarden/receivers
{{- end }}

{{- /* Settings that cannot work together fail the render, before anything is installed. */}}
{{- define "cellwarden.checks" -}}
{{- if and (not .Values.receiverToken.enabled) (eq (toString .Values.config.mode) "act") (not .Values.config.insecure_receivers) }}
{{- fail "config.mode is act and receiverToken.enabled is false: anyone who reaches the receivers could open incidents that act. Keep receiverToken.enabled, or set config.insecure_receivers: true to accept that." }}
{{- end }}
{{- if ge (int (default 20 .Values.config.shutdown_grace_secs)) (int .Values.terminationGracePeriodSeconds) }}
{{- fail "config.shutdown_grace_secs must be lower than terminationGracePeriodSeconds (the kubelet kills the pod then)." }}
{{- end }}
{{- end }}
