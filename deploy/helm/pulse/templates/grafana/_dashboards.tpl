{{- /*
pulse.dashboardFiles: the chart paths of the dashboards Grafana gets, as a JSON list: every
files/dashboards/*.json, and the logs dashboard of the chosen logs backend from
files/dashboards/<logs.backend>/ (one definition, generated per backend by dashboards/).
*/ -}}
{{- define "pulse.dashboardFiles" -}}
{{- /* dig: a values file written before logs.backend existed means Loki, the chart's default. */ -}}
{{- $backend := dig "logs" "backend" "loki" .Values.AsMap }}
{{- $files := list }}
{{- range $path, $_ := .Files.Glob "files/dashboards/*.json" }}
{{- $files = append $files $path }}
{{- end }}
{{- $variant := .Files.Glob (printf "files/dashboards/%s/*.json" $backend) }}
{{- if not $variant }}
{{- fail (printf "logs.backend=%s: the chart has no dashboards in files/dashboards/%s/ (run make chart-sync)" $backend $backend) }}
{{- end }}
{{- range $path, $_ := $variant }}
{{- $files = append $files $path }}
{{- end }}
{{- toJson $files }}
{{- end }}
