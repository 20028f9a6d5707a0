{{- define "type" -}}
{{- $type := . -}}
{{- if markdownShouldRenderType $type -}}

### {{ $type.Name }}

{{ if $type.IsAlias }}_Underlying type:_ _{{ markdownRenderTypeLink $type.UnderlyingType }}_{{ end }}

{{ $type.Doc | replace "<" "&lt;" }}

{{ if $type.Validation -}}
_Validation:_
{{- range $type.Validation }}
- {{ . }}
{{- end }}
{{- end }}
{{- with index $type.Markers "kubebuilder:validation:XValidation" }}

_Rules (CEL) on the whole {{ $type.Name }}:_
{{- range . }}
- {{ template "celRule" . }}
{{- end }}
{{- end }}

{{ if $type.References -}}
_Appears in:_
{{- range $type.SortedReferences }}
- {{ markdownRenderTypeLink . }}
{{- end }}
{{- end }}

{{ if $type.Members -}}
| Field | Description | Default | Validation |
| --- | --- | --- | --- |
{{ if $type.GVK -}}
| `apiVersion` _string_ | `{{ $type.GVK.Group }}/{{ $type.GVK.Version }}` | | |
| `kind` _string_ | `{{ $type.GVK.Kind }}` | | |
{{ end -}}

{{ range $type.Members -}}
| `{{ .Name }}` _{{ markdownRenderType .Type }}_{{ if has "Required: {}" .Validation }} **required**{{ end }} | {{ template "type_members" . }} | {{ markdownRenderDefault .Default }} | {{ template "fieldValidation" . }} |
{{ end -}}

{{- $hasFieldRules := false -}}
{{- range $type.Members -}}
{{- if or (and (index .Markers "kubebuilder:validation:XValidation") (not (deepEqual (index .Markers "kubebuilder:validation:XValidation") (index .Type.Markers "kubebuilder:validation:XValidation")))) (index .Markers "kubebuilder:validation:items:XValidation") -}}
{{- $hasFieldRules = true -}}
{{- end -}}
{{- end -}}
{{- if $hasFieldRules }}
_Rules (CEL) on fields:_
{{- range $type.Members -}}
{{- $field := . -}}
{{- if (and (index $field.Markers "kubebuilder:validation:XValidation") (not (deepEqual (index $field.Markers "kubebuilder:validation:XValidation") (index $field.Type.Markers "kubebuilder:validation:XValidation")))) -}}
{{- range index $field.Markers "kubebuilder:validation:XValidation" }}
- `{{ $field.Name }}`: {{ template "celRule" . }}
{{- end -}}
{{- end -}}
{{- range index $field.Markers "kubebuilder:validation:items:XValidation" }}
- each item of `{{ $field.Name }}`: {{ template "celRule" . }}
{{- end -}}
{{- end }}
{{ end -}}

{{ end -}}

{{ if $type.EnumValues -}}
| Value | Description |
| --- | --- |
{{ range $type.EnumValues -}}
| `{{ .Name }}` | {{ template "cellDoc" .Doc }} |
{{ end -}}
{{ end -}}

{{- end -}}
{{- end -}}

{{- /*
  A field's "own" CEL rules: crd-ref-docs copies a struct type's markers onto
  the fields of that type; those rules are listed once, with the type, rather
  than again on every field that uses it.
*/ -}}

{{- define "celRule" -}}
`{{ .Rule }}`{{ with .Message }}: "{{ . }}"{{ end }}{{ with .MessageExpression }} (message expression: `{{ . }}`){{ end }}{{ with .Reason }} (reason: {{ . }}){{ end }}{{ with .FieldPath }} (field path: `{{ . }}`){{ end }}
{{- end -}}

{{- define "fieldValidation" -}}
{{- $f := . -}}
{{- range $f.Validation -}}
{{- if not (or (eq . "Optional: {}") (eq . "Required: {}") (hasPrefix "XValidation" .) (hasPrefix "items:XValidation" .)) -}}
{{ . | replace "|" "\\|" }} <br />
{{- end -}}
{{- end -}}
{{- with index $f.Markers "listType" }}List type: {{ index . 0 }} <br />{{ end -}}
{{- with index $f.Markers "listMapKey" }}List map keys: {{ join ", " . }} <br />{{ end -}}
{{- with index $f.Markers "mapType" }}Map type: {{ index . 0 }} <br />{{ end -}}
{{- if (and (index $f.Markers "kubebuilder:validation:XValidation") (not (deepEqual (index $f.Markers "kubebuilder:validation:XValidation") (index $f.Type.Markers "kubebuilder:validation:XValidation")))) }}CEL rules: see below <br />{{ end -}}
{{- if index $f.Markers "kubebuilder:validation:items:XValidation" }}CEL rules on items: see below <br />{{ end -}}
{{- end -}}
