package oauth

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzTransport answers every request with one canned response, without a
// network, so the fuzzer runs the whole client quickly.
type fuzzTransport struct {
	status      int
	contentType string
	body        []byte
}

func (f *fuzzTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode: f.status,
		Header:     http.Header{"Content-Type": {f.contentType}},
		Body:       io.NopCloser(bytes.NewReader(f.body)),
		Request:    req,
	}, nil
}

const testSubjectToken = "subj-Token_Value-7"

// FuzzTokenResponse feeds arbitrary token responses to the client, with and
// without responseFields. It must never panic, never accept a response
// without an access token, and never put the client secret in an error.
func FuzzTokenResponse(f *testing.F) {
	for _, seed := range []struct {
		status int
		ct     string
		body   string
	}{
		{200, "application/json", `{"access_token":"abc","token_type":"bearer","expires_in":3600}`},
		{200, "application/json", `{"access_token":"abc","expires_in":"3600","scope":["a","b"]}`},
		{200, "application/json", `{"data":{"access_token":"abc","expires_in":"60"}}`},
		{200, "application/json", `{"access_token":"","token_type":"Bearer"}`},
		{200, "application/json", `{"access_token":123}`},
		{200, "application/json", `{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE5OTk5OTk5OTl9.c2ln"}`},
		{200, "application/json", `[]`},
		{200, "application/json", `null`},
		{200, "text/plain", `{"access_token":"abc"}`},
		{200, "application/x-www-form-urlencoded", `access_token=abc&expires_in=10`},
		{200, "text/html", `<html>`},
		{400, "application/json", `{"error":"invalid_client","error_description":"bad s3cret-Value_42"}`},
		{400, "application/json", `{"error":"invalid_target","error_description":"subj-Token_Value-7 cannot reach it"}`},
		{401, "application/json", `{"error":"access_denied"}`},
		{503, "text/html", `down`},
		{200, "application/json", `{"data":{"data":{"access_token":{"x":1}}}}`},
		{200, "application/json", `{"access_token":"abc","expires_in":1000000000000}`},
		{200, "application/json", `{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NzIzNjY0MDAuNX0.c2ln"}`},
	} {
		f.Add(seed.status, seed.ct, []byte(seed.body), false)
		f.Add(seed.status, seed.ct, []byte(seed.body), true)
	}
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte, nested bool) {
		if status < 100 || status > 599 {
			status = 200
		}
		c := &Client{HTTPClient: &http.Client{Transport: &fuzzTransport{status: status, contentType: contentType, body: body}}, Now: func() time.Time { return fixedNow }}
		req := Request{TokenURL: "https://auth.example.com/token", AuthMethod: AuthMethodPost, ClientID: testID, ClientSecret: testSecret}
		if nested {
			req.ResponseFields = ResponseFields{AccessToken: "data.access_token", ExpiresIn: "data.expires_in", RefreshToken: "data.refresh_token"}
			// And a token exchange, whose subject token is a secret too.
			req.SubjectToken = testSubjectToken
		}
		tok, err := c.Token(context.Background(), req)
		if err != nil {
			if tok != nil {
				t.Fatal("a token and an error")
			}
			if _, ok := AsError(err); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			if strings.Contains(err.Error(), testSecret) || (nested && strings.Contains(err.Error(), testSubjectToken)) {
				t.Fatalf("the client secret or subject token is in %q", err.Error())
			}
			return
		}
		if tok.AccessToken == "" {
			t.Fatalf("accepted a response without an access token: %d %q %q", status, contentType, body)
		}
		if status < 200 || status > 299 {
			t.Fatalf("accepted a %d response", status)
		}
		if tok.ExpiresIn < 0 || tok.RefreshExpiresIn < 0 {
			t.Fatalf("negative lifetime %s / %s", tok.ExpiresIn, tok.RefreshExpiresIn)
		}
		if tok.ExpiresIn > MaxLifetime || tok.RefreshExpiresIn > MaxLifetime {
			t.Fatalf("lifetime above MaxLifetime: %s / %s", tok.ExpiresIn, tok.RefreshExpiresIn)
		}
		if tok.ExpiresAt.IsZero() != (tok.ExpiresIn == 0) || (!tok.ExpiresAt.IsZero() && (!tok.ExpiresAt.After(tok.ReceivedAt) || tok.ExpiresAt.Sub(tok.ReceivedAt) > MaxLifetime)) {
			t.Fatalf("ExpiresAt %s with ExpiresIn %s received at %s", tok.ExpiresAt, tok.ExpiresIn, tok.ReceivedAt)
		}
	})
}
