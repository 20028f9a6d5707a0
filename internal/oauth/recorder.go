package oauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
)

// maxRecordedBody matches the 1 MiB x/oauth2 reads of a token response.
const maxRecordedBody = 1 << 20

// recorder is a RoundTripper that remembers the status, content type and
// (up to 1 MiB of) the body of the last response, so that a 2xx answer
// x/oauth2 cannot use can be described precisely. The body is used only to
// describe its shape; it never reaches a message.
type recorder struct {
	base    http.RoundTripper
	secrets []string // scrubbed from server text (see secretsOf)

	mu   sync.Mutex
	resp *recordedResponse
}

type recordedResponse struct {
	status      int
	contentType string

	mu   sync.Mutex
	body bytes.Buffer
	n    int64 // bytes read by x/oauth2
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || resp == nil {
		return resp, err
	}
	rr := &recordedResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	resp.Body = &teeBody{ReadCloser: resp.Body, rr: rr}
	r.mu.Lock()
	r.resp = rr
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.resp = nil
	r.mu.Unlock()
}

// last returns the last response, or an empty one when none arrived.
func (r *recorder) last() *recordedResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resp == nil {
		return &recordedResponse{}
	}
	return r.resp
}

func (r *recorder) status() int { return r.last().status }

type teeBody struct {
	io.ReadCloser
	rr *recordedResponse
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.rr.mu.Lock()
	t.rr.n += int64(n)
	if room := maxRecordedBody - t.rr.body.Len(); room > 0 {
		t.rr.body.Write(p[:min(n, room)])
	}
	t.rr.mu.Unlock()
	return n, err
}

func (rr *recordedResponse) snapshot() ([]byte, int64) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return bytes.Clone(rr.body.Bytes()), rr.n
}

func (rr *recordedResponse) summary() string {
	body, n := rr.snapshot()
	return shape(rr.contentType, body, n)
}

// jsonAsText reads a 2xx JSON answer that x/oauth2 took for a form because
// it was labelled text/plain. ok is false when it is not one.
func (rr *recordedResponse) jsonAsText(secrets []string) (*oauth2.Token, *Error, bool) {
	mt, _, _ := mime.ParseMediaType(rr.contentType)
	if mt != "text/plain" || rr.status < 200 || rr.status > 299 {
		return nil, nil, false
	}
	body, _ := rr.snapshot()
	var raw map[string]any
	if json.Unmarshal(body, &raw) != nil {
		return nil, nil, false
	}
	if code, desc, ok := jsonErrorFields(body); ok {
		return nil, &Error{Kind: KindRejected, StatusCode: rr.status, Code: serverText(code, 64, secrets), Description: serverText(desc, maxDescription, secrets)}, true
	}
	at, _ := raw["access_token"].(string)
	if at == "" {
		return nil, nil, false
	}
	tt, _ := raw["token_type"].(string)
	return (&oauth2.Token{AccessToken: at, TokenType: tt}).WithExtra(raw), nil, true
}

// jsonErrorFields reads an RFC 6749 section 5.2 error from a JSON body.
func jsonErrorFields(body []byte) (code, desc string, ok bool) {
	var e struct {
		Error            *string `json:"error"`
		ErrorDescription any     `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == nil || *e.Error == "" {
		return "", "", false
	}
	desc, _ = e.ErrorDescription.(string)
	return *e.Error, desc, true
}

// describeMissingToken explains a 2xx answer without access_token.
func (rr *recordedResponse) describeMissingToken() string {
	body, n := rr.snapshot()
	mt, _, _ := mime.ParseMediaType(rr.contentType)
	if (mt == "text/plain" || mt == "application/x-www-form-urlencoded") && json.Valid(body) {
		return fmt.Sprintf("response has no access_token: the body is JSON but its content-type is %s, so it was read as form-encoded; the endpoint must send application/json (%d bytes)", mt, n)
	}
	return "response has no access_token (" + shape(rr.contentType, body, n) + ")"
}

// describeBadJSON explains a 2xx answer x/oauth2 could not decode.
func (rr *recordedResponse) describeBadJSON() string {
	body, n := rr.snapshot()
	if !json.Valid(body) {
		return "response is not a token response: " + shape(rr.contentType, body, n)
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

// shape describes a body by type and size only.
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
	case n >= maxRecordedBody:
		return fmt.Sprintf("non-JSON body (content-type %s, cut at %d bytes: token responses are read up to 1 MiB)", mt, n)
	default:
		return fmt.Sprintf("non-JSON body (content-type %s, %d bytes)", mt, n)
	}
}

// describeBody describes an error response body that carried no RFC 6749
// error code.
func describeBody(contentType string, body []byte, n int) string {
	return shape(contentType, body, int64(n))
}
