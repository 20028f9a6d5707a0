package tokenserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// faultSetup serves a FaultServer in front of a plain Server over TLS.
func faultSetup(t *testing.T, opts Options) (*FaultServer, *httptest.Server) {
	t.Helper()
	if opts.Clients == nil {
		opts.Clients = map[string]string{id: secret}
	}
	if opts.ExpiresIn == 0 {
		opts.ExpiresIn = 3600
	}
	fs := NewFaultServer(New(opts))
	ts := httptest.NewTLSServer(fs)
	t.Cleanup(ts.Close)
	return fs, ts
}

// faultPost sends a client-credentials request and returns the response
// (body read fully, up to 64 MiB) or the transport error.
func faultPost(t *testing.T, client *http.Client, u string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u+"/token", strings.NewReader(creds(grant()).Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp, body, err
}

func wantToken(t *testing.T, resp *http.Response, body []byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	var v map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || v["access_token"] == nil {
		t.Fatalf("want a token, got %d %q", resp.StatusCode, body)
	}
}

func TestFaultStatusHeaderBody(t *testing.T) {
	fs, ts := faultSetup(t, Options{})
	c := ts.Client()

	fs.InjectFaults(1, Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"120"}}, Body: `{"error":"slow_down"}`})
	fs.InjectFaults(1, Fault{Status: http.StatusBadGateway, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"})
	fs.InjectFaults(1, Fault{Body: `{"token_type":"Bearer","expires_in":3600}`})

	resp, body, err := faultPost(t, c, ts.URL)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "120" ||
		resp.Header.Get("Content-Type") != "application/json" || string(body) != `{"error":"slow_down"}` {
		t.Fatalf("429 fault: %v %+v %q", err, resp, body)
	}
	resp, body, err = faultPost(t, c, ts.URL)
	if err != nil || resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "502 Bad Gateway") {
		t.Fatalf("502 fault: %v %+v %q", err, resp, body)
	}
	resp, body, err = faultPost(t, c, ts.URL)
	if err != nil || resp.StatusCode != http.StatusOK || strings.Contains(string(body), "access_token") {
		t.Fatalf("200 fault: %v %+v %q", err, resp, body)
	}
	// The faults are used up: the Server answers.
	resp, body, err = faultPost(t, c, ts.URL)
	wantToken(t, resp, body, err)

	if fs.Requests() != 4 || fs.Faulted() != 3 || fs.Server().Requests() != 1 || len(fs.Server().Issued()) != 1 {
		t.Fatalf("requests %d faulted %d server requests %d issued %d, want 4 3 1 1",
			fs.Requests(), fs.Faulted(), fs.Server().Requests(), len(fs.Server().Issued()))
	}
}

func TestFaultUntilCleared(t *testing.T) {
	fs, ts := faultSetup(t, Options{})
	fs.InjectFaults(-1, Fault{Status: http.StatusInternalServerError, Body: `{"error":"server_error"}`})
	for i := range 5 {
		resp, _, err := faultPost(t, ts.Client(), ts.URL)
		if err != nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("request %d: %v %+v", i, err, resp)
		}
	}
	fs.ClearFaults()
	resp, body, err := faultPost(t, ts.Client(), ts.URL)
	wantToken(t, resp, body, err)
	if fs.Requests() != 6 || fs.Faulted() != 5 {
		t.Fatalf("requests %d faulted %d, want 6 5", fs.Requests(), fs.Faulted())
	}

	// Zero does nothing; ClearFaults also drops counted faults.
	fs.InjectFaults(0, Fault{Status: http.StatusInternalServerError})
	fs.InjectFaults(3, Fault{Status: http.StatusInternalServerError})
	fs.ClearFaults()
	resp, body, err = faultPost(t, ts.Client(), ts.URL)
	wantToken(t, resp, body, err)
}

func TestFaultDelay(t *testing.T) {
	fs, ts := faultSetup(t, Options{})

	// A delay alone passes the request on: slow but working.
	fs.InjectFaults(1, Fault{Delay: 200 * time.Millisecond, Header: http.Header{"X-Slow": {"yes"}}})
	start := time.Now()
	resp, body, err := faultPost(t, ts.Client(), ts.URL)
	wantToken(t, resp, body, err)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("answered after %v, want at least the delay", d)
	}
	if resp.Header.Get("X-Slow") != "yes" {
		t.Fatal("the fault's header was not added to the Server's answer")
	}

	// A client that gives up first gets nothing, and the handler returns
	// at once instead of sleeping out the delay.
	fs.InjectFaults(1, Fault{Delay: time.Minute, Status: http.StatusOK, Body: "late"})
	c := *ts.Client()
	c.Timeout = 200 * time.Millisecond
	_, _, err = faultPost(t, &c, ts.URL)
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a client timeout, got %v", err)
	}
	closed := make(chan struct{})
	go func() { ts.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed handler did not return when the client went away")
	}
	if fs.Requests() != 2 || fs.Faulted() != 2 || fs.Server().Requests() != 1 {
		t.Fatalf("requests %d faulted %d server %d, want 2 2 1", fs.Requests(), fs.Faulted(), fs.Server().Requests())
	}
}

func TestFaultReset(t *testing.T) {
	for _, tlsOn := range []bool{true, false} {
		name := "tls"
		if !tlsOn {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			fs := NewFaultServer(New(Options{Clients: map[string]string{id: secret}, ExpiresIn: 60}))
			var ts *httptest.Server
			if tlsOn {
				ts = httptest.NewTLSServer(fs)
			} else {
				ts = httptest.NewServer(fs)
			}
			defer ts.Close()
			fs.InjectFaults(1, Fault{Reset: true})
			resp, _, err := faultPost(t, ts.Client(), ts.URL)
			if err == nil {
				t.Fatalf("want a transport error, got %d", resp.StatusCode)
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Fatalf("want a *url.Error, got %T %v", err, err)
			}
			// The next request (on a new connection) works.
			resp, body, err := faultPost(t, ts.Client(), ts.URL)
			wantToken(t, resp, body, err)
			if fs.Requests() != 2 || fs.Faulted() != 1 {
				t.Fatalf("requests %d faulted %d, want 2 1", fs.Requests(), fs.Faulted())
			}
		})
	}
}

func TestFaultHugeBody(t *testing.T) {
	const size = 10 << 20
	unit := `{"access_token":"not really","padding":"` // JSON-looking, never valid
	fs, ts := faultSetup(t, Options{})
	fs.InjectFaults(1, Fault{Status: http.StatusOK, Body: unit, BodySize: size})

	resp, body, err := faultPost(t, ts.Client(), ts.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v %+v", err, resp)
	}
	if len(body) != size || resp.ContentLength != size {
		t.Fatalf("body %d bytes, Content-Length %d, want %d", len(body), resp.ContentLength, size)
	}
	for i := 0; i < len(body); i += len(unit) {
		end := min(i+len(unit), len(body))
		if string(body[i:end]) != unit[:end-i] {
			t.Fatalf("body at %d is %q, want the body repeated", i, body[i:end])
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the sniffed text/plain", ct)
	}

	// Empty Body pads with spaces.
	fs.InjectFaults(1, Fault{BodySize: 100, Header: http.Header{"Content-Type": {"application/json"}}})
	resp, body, err = faultPost(t, ts.Client(), ts.URL)
	if err != nil || string(body) != strings.Repeat(" ", 100) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%v %q %v", err, body, resp.Header)
	}
}

// discardWriter is a ResponseWriter that counts and drops what it gets.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func TestFaultHugeBodyIsStreamed(t *testing.T) {
	const size = 64 << 20
	fs := NewFaultServer(New(Options{}))
	fs.InjectFaults(1, Fault{Body: `{"x":"0123456789"}`, BodySize: size})
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fs.ServeHTTP(w, r)
	runtime.ReadMemStats(&after)
	if w.n != size || w.status != http.StatusOK {
		t.Fatalf("wrote %d bytes with status %d, want %d and 200", w.n, w.status, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("allocated %d bytes to send %d: the body is not streamed", alloc, size)
	}
}

func TestFaultHugeBodyStopsWhenClientGoes(t *testing.T) {
	fs, ts := faultSetup(t, Options{})
	fs.InjectFaults(1, Fault{Body: "garbage ", BodySize: 1 << 30}) // 1 GiB
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(creds(grant()).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Read at most 1 MiB, as an OAuth client does, then go.
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if n != 1<<20 {
		t.Fatalf("read %d bytes", n)
	}
	closed := make(chan struct{})
	go func() { ts.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler kept writing after the client went away")
	}
}

func TestFaultSkipsDiscovery(t *testing.T) {
	fs, ts := faultSetup(t, Options{Discovery: "openid"})
	fs.InjectFaults(1, Fault{Status: http.StatusServiceUnavailable})
	resp, err := ts.Client().Get(ts.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("token_endpoint")) {
		t.Fatalf("discovery got %d %q", resp.StatusCode, b)
	}
	if fs.Requests() != 0 || fs.Faulted() != 0 {
		t.Fatalf("a discovery request was counted or faulted")
	}
	resp, _, err = faultPost(t, ts.Client(), ts.URL)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the token request did not get the fault: %v %+v", err, resp)
	}
}

func TestFaultRequestContextCancel(t *testing.T) {
	// Directly: a canceled request context ends the delay.
	fs := NewFaultServer(New(Options{}))
	fs.InjectFaults(1, Fault{Delay: time.Hour, Status: http.StatusOK, Body: "late"})
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodPost, "/token", nil).WithContext(ctx)
	w := &discardWriter{h: http.Header{}}
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		fs.ServeHTTP(w, r)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case p := <-done:
		// Aborted, not returned: a returning handler gets an empty 200
		// sent for it, which a client still on the connection would read.
		if p != http.ErrAbortHandler {
			t.Fatalf("the handler ended with %v, want the abort panic", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delay ignored the canceled context")
	}
	if w.status != 0 || w.n != 0 {
		t.Fatalf("an answer was written after cancel: %d, %d bytes", w.status, w.n)
	}
}
