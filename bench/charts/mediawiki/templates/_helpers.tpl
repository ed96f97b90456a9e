{{- define "mw.labels" -}}
app.kubernetes.io/component: {{ .Values.namespace }}
app.kubernetes.io/instance: {{ .Values.release }}
app.kubernetes.io/managed-by: helm
app.kubernetes.io/name: mediawiki
app.kubernetes.io/part-of: wikifarm
{{- end -}}
{{- define "mw.prefix" -}}mediawiki-{{ .Values.release }}{{- end -}}
