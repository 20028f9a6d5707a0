package tokenserver

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// params are the parameters of a request body.
type params struct {
	values    url.Values // never nil
	mediaType string     // of the Content-Type, lower case
	json      bool       // parsed as JSON
	jsonErr   bool       // JSON that is not an object of strings and string arrays
}

// parseParams reads a form body, or a JSON body when AcceptJSON is set.
// Other bodies have no parameters; checkBody refuses them.
func (s *Server) parseParams(contentType string, body []byte) params {
	p := params{values: url.Values{}, mediaType: mediaType(contentType)}
	switch {
	case p.mediaType == formType:
		if v, err := url.ParseQuery(string(body)); err == nil {
			p.values = v
		}
	case p.mediaType == jsonType && s.opts.AcceptJSON:
		p.json = true
		v, ok := parseJSONParams(body)
		if ok {
			p.values = v
		}
		p.jsonErr = !ok
	}
	return p
}

// checkBody refuses bodies of a type the server does not take.
func (s *Server) checkBody(r *http.Request, p params) *reqError {
	switch {
	case p.mediaType == formType && !s.opts.RequireJSON:
		return nil
	case p.json && p.jsonErr:
		return badRequest("invalid_request", "the JSON body must be an object whose values are strings or arrays of strings")
	case p.json:
		return nil
	case s.opts.RequireJSON:
		return badRequest("invalid_request", "the body must be application/json")
	case s.opts.AcceptJSON:
		return badRequest("invalid_request", "the body must be application/x-www-form-urlencoded or application/json")
	default:
		return badRequest("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
}

// mediaType is the lower-case media type of a Content-Type, without
// parameters.
func mediaType(contentType string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// parseJSONParams decodes a JSON object whose values are strings or arrays
// of strings; an array is a repeated parameter.
func parseJSONParams(body []byte) (url.Values, bool) {
	var obj map[string]json.RawMessage
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) || json.Unmarshal(body, &obj) != nil {
		return nil, false
	}
	out := url.Values{}
	for k, raw := range obj {
		if str, ok := jsonString(raw); ok {
			out[k] = []string{str}
			continue
		}
		var arr []json.RawMessage
		if !bytes.HasPrefix(raw, []byte("[")) || json.Unmarshal(raw, &arr) != nil {
			return nil, false
		}
		vs := make([]string, 0, len(arr))
		for _, el := range arr {
			str, ok := jsonString(el)
			if !ok {
				return nil, false
			}
			vs = append(vs, str)
		}
		out[k] = vs
	}
	return out, true
}

// jsonString decodes raw if it is a JSON string (not null).
func jsonString(raw json.RawMessage) (string, bool) {
	var str string
	if !bytes.HasPrefix(raw, []byte(`"`)) || json.Unmarshal(raw, &str) != nil {
		return "", false
	}
	return str, true
}
