package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/oauth2"
)

// This file owns the token request and response of RFC 6749 sections 4.4
// and 5 (and RFC 8693 section 2), as x/oauth2's internal RetrieveToken
// does, plus what the dialects need and x/oauth2 cannot do: JSON request
// bodies, token fields nested in the response, JSON answers labelled
// text/plain, a description of an unusable 2xx answer that does not quote
// it, and the token-exchange parameters. Error responses come back as
// x/oauth2's typed *oauth2.RetrieveError, success as *oauth2.Token with the
// raw body in its extra fields.

// maxResponseBody is how much of a token response is read, as x/oauth2.
const maxResponseBody = 1 << 20

// Format is how a token request body is encoded.
type Format string

const (
	// FormatForm is application/x-www-form-urlencoded (RFC 6749), the default.
	FormatForm Format = "Form"
	// FormatJSON is an application/json object with the same parameters.
	// A parameter sent once is a string; a repeated one (resource) an array.
	FormatJSON Format = "JSON"
)

// exchange is one token request, sent once per client authentication
// style.
type exchange struct {
	hc      *http.Client
	url     string
	params  url.Values // grant parameters and, in the body, credentials
	headers map[string]string
	format  Format
	fields  ResponseFields
	secrets []string
}

// badResponse is a 2xx answer that is not a usable token response. Its
// description never quotes the body.
type badResponse struct {
	status      int
	description string
}

func (b *badResponse) Error() string { return b.description }

// readError is a failure while reading the response body.
type readError struct {
	status int
	err    error
}

func (r *readError) Error() string { return "reading the response failed: " + r.err.Error() }
func (r *readError) Unwrap() error { return r.err }

// send posts the request with the client credentials in a Basic header
// (basicID set) or in the body (already in params), and returns the token,
// an *oauth2.RetrieveError for an error response, a *badResponse, a
// *readError, or the transport's error.
func (x *exchange) send(ctx context.Context, basicID, basicSecret string, basic bool) (*oauth2.Token, error) {
	body, contentType := x.body()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range x.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", contentType)
	if x.format == FormatJSON {
		req.Header.Set("Accept", "application/json")
	}
	if basic {
		// RFC 6749 section 2.3.1: form-encoded before base64.
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := x.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, &readError{status: resp.StatusCode, err: err}
	}
	return x.decode(resp, raw)
}

// body encodes the parameters as a form or a JSON object.
func (x *exchange) body() ([]byte, string) {
	if x.format == FormatJSON {
		return formToJSON(x.params), "application/json"
	}
	return []byte(x.params.Encode()), "application/x-www-form-urlencoded"
}

// formToJSON encodes form parameters as a JSON object, keys sorted.
func formToJSON(form url.Values) []byte {
	obj := make(map[string]any, len(form))
	for k, vs := range form {
		if len(vs) == 1 && k != "resource" {
			obj[k] = vs[0]
		} else {
			obj[k] = vs
		}
	}
	js, _ := json.Marshal(obj) // strings and string slices only
	return js
}

// tokenJSON is an RFC 6749 section 5.1 or 5.2 JSON body. ExpiresIn must be
// an integer (a JSON number or a numeric string), as x/oauth2 requires.
type tokenJSON struct {
	AccessToken      string      `json:"access_token"`
	TokenType        string      `json:"token_type"`
	RefreshToken     string      `json:"refresh_token"`
	ExpiresIn        json.Number `json:"expires_in"`
	ErrorCode        string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
	ErrorURI         string      `json:"error_uri"`
}

// decode reads a response as x/oauth2 does: a form body for
// application/x-www-form-urlencoded and for text/plain (unless it is a JSON
// object, as some endpoints label it), JSON otherwise. With ResponseFields,
// the fields of a 2xx JSON object are first lifted to the top.
func (x *exchange) decode(resp *http.Response, body []byte) (*oauth2.Token, error) {
	status := resp.StatusCode
	failed := status < 200 || status > 299
	re := &oauth2.RetrieveError{Response: resp, Body: body}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if !failed && !x.fields.isZero() && len(body) < maxResponseBody {
		if flat, missing, ok := liftFields(body, x.fields); ok {
			tok, err := decodeJSON(re, status, flat, ct, body)
			if br, ok := err.(*badResponse); ok && missing != "" {
				br.description = fmt.Sprintf("response has no value at %q (responseFields); %s", clean(missing, 256), br.description)
			}
			return tok, err
		}
	}
	jsonAsText := mt == "text/plain" && json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))
	if (mt == "application/x-www-form-urlencoded" || mt == "text/plain") && !jsonAsText {
		return decodeForm(re, status, ct, body)
	}
	return decodeJSON(re, status, body, ct, body)
}

// decodeForm reads a form-encoded response.
func decodeForm(re *oauth2.RetrieveError, status int, ct string, body []byte) (*oauth2.Token, error) {
	failed := status < 200 || status > 299
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		if failed {
			return nil, re
		}
		return nil, &badResponse{status: status, description: "form-encoded response cannot be parsed (" + shape(ct, body, int64(len(body))) + ")"}
	}
	re.ErrorCode, re.ErrorDescription, re.ErrorURI = vals.Get("error"), vals.Get("error_description"), vals.Get("error_uri")
	if failed || re.ErrorCode != "" {
		return nil, re
	}
	tok := (&oauth2.Token{AccessToken: vals.Get("access_token"), TokenType: vals.Get("token_type"), RefreshToken: vals.Get("refresh_token")}).WithExtra(vals)
	if tok.AccessToken == "" {
		return nil, &badResponse{status: status, description: missingToken(ct, body)}
	}
	return tok, nil
}

// decodeJSON reads the JSON object parse; ct and orig, the response as
// received, are what messages describe.
func decodeJSON(re *oauth2.RetrieveError, status int, parse []byte, ct string, orig []byte) (*oauth2.Token, error) {
	failed := status < 200 || status > 299
	var tj tokenJSON
	if err := json.Unmarshal(parse, &tj); err != nil {
		if failed {
			return nil, re
		}
		return nil, &badResponse{status: status, description: describeBadJSON(ct, parse, int64(len(orig)))}
	}
	re.ErrorCode, re.ErrorDescription, re.ErrorURI = tj.ErrorCode, tj.ErrorDescription, tj.ErrorURI
	if failed || re.ErrorCode != "" {
		return nil, re
	}
	if tj.ExpiresIn != "" {
		if _, err := strconv.ParseInt(string(tj.ExpiresIn), 10, 64); err != nil && !isHugeInteger(string(tj.ExpiresIn)) {
			return nil, &badResponse{status: status, description: describeBadJSON(ct, parse, int64(len(orig)))}
		}
	}
	raw := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(parse))
	dec.UseNumber()
	_ = dec.Decode(&raw) // it decoded into tokenJSON: an object
	tok := (&oauth2.Token{AccessToken: tj.AccessToken, TokenType: tj.TokenType, RefreshToken: tj.RefreshToken}).WithExtra(raw)
	if tok.AccessToken == "" {
		return nil, &badResponse{status: status, description: missingToken(ct, orig)}
	}
	return tok, nil
}

// isHugeInteger reports whether s is an integer too large for int64 (which
// x/oauth2 caps rather than refuses).
func isHugeInteger(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
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

// missingToken explains a 2xx answer without access_token.
func missingToken(contentType string, body []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	n := int64(len(body))
	if mt == "application/x-www-form-urlencoded" && json.Valid(body) {
		return fmt.Sprintf("response has no access_token: the body is JSON but its content-type is %s, so it was read as form-encoded; the endpoint must send application/json (%d bytes)", mt, n)
	}
	if mt == "text/plain" && json.Valid(body) {
		return fmt.Sprintf("response has no access_token: the body is JSON labelled %s; the endpoint must send application/json (%d bytes)", mt, n)
	}
	return "response has no access_token (" + shape(contentType, body, n) + ")"
}
