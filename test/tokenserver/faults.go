package tokenserver

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is a way for the token endpoint to misbehave, for one request. The
// fields combine: Delay comes first, then either Reset or a response made
// of Status, Header and Body (or BodySize bytes of it).
type Fault struct {
	// Delay is how long to wait (real time) before answering. When the
	// request's context ends first (the client gave up), nothing is sent:
	// the response is aborted.
	Delay time.Duration
	// Reset hijacks the connection and closes it without answering (an
	// abrupt TCP close: RST where the platform allows SO_LINGER 0). Over
	// HTTP/2, where a handler cannot hijack, the stream is aborted.
	Reset bool
	// Status is the response status; 200 when zero and a Body or BodySize
	// is set.
	Status int
	// Header is added to the response. Without a Content-Type, one is
	// chosen as FailNext does: application/json for a JSON Body, else the
	// sniffed type of the body sent.
	Header http.Header
	// Body is the response body.
	Body string
	// BodySize, when positive, makes the body exactly this many bytes:
	// Body repeated and cut at BodySize (spaces when Body is empty),
	// streamed in small chunks with a Content-Length, so that a 10 MiB
	// answer costs no 10 MiB of memory. Writing stops when the client goes.
	BodySize int
}

// passThrough reports whether f only delays: the request then goes on to
// the Server (a slow but working endpoint).
func (f Fault) passThrough() bool {
	return !f.Reset && f.Status == 0 && f.Body == "" && f.BodySize <= 0
}

// faultEntry is n uses of a fault; n < 0 means until ClearFaults.
type faultEntry struct {
	f Fault
	n int
}

// FaultServer is an http.Handler in front of a Server that injects faults
// (delays, connection resets, error statuses, odd or huge bodies) into the
// token requests it passes on. Requests with no fault pending go to the
// Server unchanged. Discovery requests (when Options.Discovery is set) are
// neither faulted nor counted here.
//
// A faulted request does not reach the Server: the Server's Requests and
// LastRequest do not see it. FaultServer.Requests counts every token
// request that reached the FaultServer, faulted or not.
type FaultServer struct {
	s *Server

	mu       sync.Mutex
	pending  []faultEntry
	requests int
	faulted  int
}

// NewFaultServer returns a FaultServer in front of s, with no fault pending.
func NewFaultServer(s *Server) *FaultServer {
	return &FaultServer{s: s}
}

// Server is the Server behind f.
func (f *FaultServer) Server() *Server { return f.s }

// InjectFaults makes the next n token requests get fault, after the faults
// already pending. A negative n applies it to every token request until
// ClearFaults (faults injected after it are then never reached); zero does
// nothing.
func (f *FaultServer) InjectFaults(n int, fault Fault) {
	if n == 0 {
		return
	}
	if n < 0 {
		n = -1
	}
	fault.Header = fault.Header.Clone()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, faultEntry{f: fault, n: n})
}

// ClearFaults drops every pending fault: the requests to come reach the
// Server. A request already being faulted (for example sleeping out a
// Delay) is not affected.
func (f *FaultServer) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = nil
}

// Requests is the number of token requests that reached the FaultServer,
// faulted or passed on.
func (f *FaultServer) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// Faulted is the number of token requests that got a fault.
func (f *FaultServer) Faulted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faulted
}

// next counts a token request and takes the fault it gets, if any.
func (f *FaultServer) next() (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if len(f.pending) == 0 {
		return Fault{}, false
	}
	e := &f.pending[0]
	fault := e.f
	if e.n > 0 {
		e.n--
		if e.n == 0 {
			f.pending = f.pending[1:]
		}
	}
	f.faulted++
	fault.Header = fault.Header.Clone()
	return fault, true
}

// ServeHTTP applies the next pending fault to a token request, or passes
// the request on to the Server.
func (f *FaultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.s.isDiscoveryPath(r.URL.Path) {
		f.s.ServeHTTP(w, r)
		return
	}
	fault, ok := f.next()
	if !ok {
		f.s.ServeHTTP(w, r)
		return
	}
	// Read the request first, as a real endpoint would (a client is not cut
	// off while still sending) and because net/http only watches for the
	// client going away, and cancels r.Context(), once the body is read.
	// What was read is handed on to the Server for a pass-through.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		// Abort: returning would have net/http send an empty 200.
		panic(http.ErrAbortHandler)
	}
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			// Nothing is sent: abort the response rather than return,
			// which would have net/http answer 200 with an empty body to
			// a client that is still there (the context also ends when
			// the connection does, and a client's next request on it can
			// see that answer).
			panic(http.ErrAbortHandler)
		}
	}
	if fault.Reset {
		resetConnection(w)
		return
	}
	if fault.passThrough() {
		for k, vs := range fault.Header {
			w.Header()[k] = vs
		}
		f.s.ServeHTTP(w, r)
		return
	}
	fault.write(w)
}

// resetConnection closes the connection under w without answering.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: the server resets the stream
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		// Close the TCP connection under TLS, with no close_notify alert:
		// the client sees the connection die, not a clean TLS close.
		conn = tc.NetConn()
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // RST rather than FIN
	}
	_ = conn.Close()
}

// write sends a response fault.
func (fault Fault) write(w http.ResponseWriter) {
	for k, vs := range fault.Header {
		w.Header()[k] = vs
	}
	size := len(fault.Body)
	if fault.BodySize > 0 {
		size = fault.BodySize
	}
	if w.Header().Get("Content-Type") == "" && size > 0 {
		if json.Valid([]byte(fault.Body)) {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", http.DetectContentType(fault.prefix(512)))
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(size))
	status := fault.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if fault.BodySize <= 0 {
		_, _ = io.WriteString(w, fault.Body)
		return
	}
	chunk := fault.chunk(32 << 10)
	for left := fault.BodySize; left > 0; {
		n := min(left, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return // the client went away
		}
		left -= n
	}
}

// unit is what the body repeats.
func (fault Fault) unit() string {
	if fault.Body == "" {
		return " "
	}
	return fault.Body
}

// chunk is the unit repeated a whole number of times, about size bytes,
// so that consecutive chunks continue the repetition seamlessly.
func (fault Fault) chunk(size int) []byte {
	u := fault.unit()
	reps := max(1, (size+len(u)-1)/len(u))
	return []byte(strings.Repeat(u, reps))
}

// prefix is the first n bytes (at most) of the body sent.
func (fault Fault) prefix(n int) []byte {
	if fault.BodySize <= 0 {
		return []byte(fault.Body[:min(n, len(fault.Body))])
	}
	c := fault.chunk(n)
	return c[:min(n, len(c), fault.BodySize)]
}
