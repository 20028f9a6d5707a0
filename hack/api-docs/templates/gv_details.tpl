{{- define "gvDetails" -}}
{{- $gv := . -}}

## {{ $gv.GroupVersionString }}

{{ $gv.Doc }}

{{- if $gv.Kinds  }}

### Resource types
{{- range $gv.SortedKinds }}
{{- $t := $gv.TypeForKind . }}
{{- if $t }}
- {{ markdownRenderTypeLink $t }}
{{- end }}
{{- end }}
{{ end }}

{{ range $gv.SortedTypes }}
{{ template "type" . }}
{{ end }}

{{- end -}}
