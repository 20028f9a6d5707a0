package oauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Format is how a token request body is encoded.
type Format string

const (
	// FormatForm is application/x-www-form-urlencoded (RFC 6749), the default.
	FormatForm Format = "Form"
	// FormatJSON is an application/json object with the same parameters.
	// A parameter sent once is a string; a repeated one (resource) an array.
	FormatJSON Format = "JSON"
)

// ResponseFields are dot-separated paths (object keys from the top of the
// JSON body) of the token fields in a non-standard response, such as
// data.access_token. An empty path means the RFC 6749 name at the top.
type ResponseFields struct {
	AccessToken      string
	TokenType        string
	ExpiresIn        string
	RefreshToken     string
	RefreshExpiresIn string
	Scope            string
	IDToken          string
}

func (f ResponseFields) isZero() bool { return f == ResponseFields{} }

// paths pairs each configured path with the RFC 6749 name it stands for.
func (f ResponseFields) paths() [][2]string {
	var out [][2]string
	for _, p := range [][2]string{
		{"access_token", f.AccessToken},
		{"token_type", f.TokenType},
		{"expires_in", f.ExpiresIn},
		{"refresh_token", f.RefreshToken},
		{"refresh_expires_in", f.RefreshExpiresIn},
		{"scope", f.Scope},
		{"id_token", f.IDToken},
	} {
		if p[1] != "" {
			out = append(out, p)
		}
	}
	return out
}

// dialect is a RoundTripper between x/oauth2 and the network that adapts
// the standard form request and JSON response to what an endpoint speaks:
// it adds configured headers, re-encodes the form as JSON, and lifts token
// fields out of nested response objects. x/oauth2 keeps doing the protocol.
type dialect struct {
	base    http.RoundTripper
	headers map[string]string
	format  Format
	fields  ResponseFields
	limiter *HostLimiter

	// missing records a configured response path that was absent from the
	// last 2xx answer, to explain a missing access token.
	missing string
}

func (d *dialect) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := d.limiter.wait(req.Context(), req.URL.Host); err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	if d.format == FormatJSON && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("encoding the request as JSON: %w", err)
		}
		js := formToJSON(form)
		req.Body = io.NopCloser(bytes.NewReader(js))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(js)), nil }
		req.ContentLength = int64(len(js))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
	}
	resp, err := d.base.RoundTrip(req)
	if err != nil || resp == nil || d.fields.isZero() || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRecordedBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(body) <= maxRecordedBody {
		if flat, missing, ok := liftFields(body, d.fields); ok {
			body = flat
			d.missing = missing
			resp.Header.Set("Content-Type", "application/json")
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
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

// liftFields copies the values at the configured paths to the top-level RFC
// 6749 names of a JSON object body. ok is false when the body is not a JSON
// object (x/oauth2 then reports it as it is). missing names the first
// configured path with no value, "" when all were found.
func liftFields(body []byte, fields ResponseFields) (out []byte, missing string, ok bool) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, "", false
	}
	flat := make(map[string]any, len(obj)+7)
	for k, v := range obj {
		flat[k] = v
	}
	for _, p := range fields.paths() {
		v, found := lookup(obj, p[1])
		if !found {
			delete(flat, p[0])
			if missing == "" {
				missing = p[1]
			}
			continue
		}
		flat[p[0]] = v
	}
	// x/oauth2 wants expires_in as a number; a numeric string found at a
	// path is converted, anything else dropped (then it is as if absent).
	if v, ok := flat["expires_in"]; ok {
		switch x := v.(type) {
		case json.Number:
		case string:
			if _, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				flat["expires_in"] = json.Number(strings.TrimSpace(x))
			} else {
				delete(flat, "expires_in")
			}
		default:
			delete(flat, "expires_in")
		}
	}
	out, err := json.Marshal(flat)
	if err != nil {
		return nil, "", false
	}
	return out, missing, true
}

// lookup follows a dot-separated path of object keys. Only string, number
// and boolean leaves count as found.
func lookup(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	switch cur.(type) {
	case string, json.Number, bool:
		return cur, true
	}
	return nil, false
}
