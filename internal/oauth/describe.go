package oauth

import (
	"encoding/json"
	"fmt"
	"mime"
)

// The functions here describe a response body by its type, size and shape
// for messages: they never quote it, since it may hold a token.

// describeBadJSON explains a 2xx answer that does not decode as an RFC 6749
// section 5.1 JSON object; n is the size of the body received.
func describeBadJSON(contentType string, body []byte, n int64) string {
	if !json.Valid(body) {
		return "response is not a token response: " + shape(contentType, body, n)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return fmt.Sprintf("response is not a JSON object (%d bytes)", n)
	}
	for _, f := range []string{"access_token", "token_type", "refresh_token", "error", "error_description", "error_uri"} {
		if v, ok := fields[f]; ok && !isJSONStringOrNull(v) {
			return fmt.Sprintf("response field %s is not a string", f)
		}
	}
	if v, ok := fields["expires_in"]; ok {
		return fmt.Sprintf("response field expires_in is not an integer (%s)", jsonKind(v))
	}
	return fmt.Sprintf("response JSON does not match RFC 6749 section 5.1 (%d bytes)", n)
}

func isJSONStringOrNull(v json.RawMessage) bool {
	var s *string
	return json.Unmarshal(v, &s) == nil
}

// jsonKind names the kind of a JSON value, never the value itself.
func jsonKind(v json.RawMessage) string {
	var x any
	_ = json.Unmarshal(v, &x)
	switch x := x.(type) {
	case float64:
		return "a non-integer or out-of-range number"
	case string:
		if x == "" {
			return "an empty string"
		}
		return "a non-numeric or non-integer string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "unreadable"
}

// shape describes a body by type and size only; n is the size received.
func shape(contentType string, body []byte, n int64) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt == "" {
		mt = "none"
	}
	switch {
	case n == 0:
		return "empty body"
	case json.Valid(body):
		return fmt.Sprintf("JSON body without an OAuth error code (content-type %s, %d bytes)", mt, n)
	case n >= maxResponseBody:
		return fmt.Sprintf("non-JSON body (content-type %s, cut at %d bytes: token responses are read up to 1 MiB)", mt, n)
	default:
		return fmt.Sprintf("non-JSON body (content-type %s, %d bytes)", mt, n)
	}
}
