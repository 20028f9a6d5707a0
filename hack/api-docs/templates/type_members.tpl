{{- define "type_members" -}}
{{- $field := . -}}
{{- if eq $field.Name "metadata" -}}
Refer to the Kubernetes API documentation for the fields of `metadata`.
{{- else -}}
{{ template "cellDoc" $field.Doc }}
{{- end -}}
{{- end -}}

{{- /*
  cellDoc renders a doc comment inside a table cell, which must be one line:
  the comment's lines are joined, paragraph breaks are kept as <br />, and
  what Markdown would read as HTML (<), a cell border (|) or, in some site
  generators, a template ({ }) is escaped.
*/ -}}
{{- define "cellDoc" -}}
{{ . | trim | replace "<" "&lt;" | replace "\n\n" "<br /><br />" | replace "\n" " " | replace "|" "\\|" | replace "{" "\\{" | replace "}" "\\}" }}
{{- end -}}
