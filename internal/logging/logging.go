// Package logging caps what reaches the manager's logs. client-go logs the
// bodies of API requests and responses at verbosity 8 and above (Secrets
// included), through the global klog logger and through the logger a
// request's context carries, which for a reconcile is the manager's. A
// capped logger drops every message above MaxVerbosity, whatever level the
// manager was started with, so that no verbosity prints a Secret.
package logging

import "github.com/go-logr/logr"

// MaxVerbosity is the most verbose level that reaches the logs. tokensync
// itself logs at 0 and 1; client-go logs request URLs at 6 and bodies at 8.
const MaxVerbosity = 5

// Cap returns l, dropping messages more verbose than MaxVerbosity.
func Cap(l logr.Logger) logr.Logger {
	sink := l.GetSink()
	if sink == nil {
		return l
	}
	// The wrapper adds a stack frame between logr and the sink: tell the
	// sink, so that the caller it logs is still the right one.
	if cd, ok := sink.(logr.CallDepthLogSink); ok {
		sink = cd.WithCallDepth(1)
	}
	return logr.New(capped{sink: sink})
}

// capped is a logr.LogSink that drops every message above MaxVerbosity.
type capped struct{ sink logr.LogSink }

var (
	_ logr.LogSink          = capped{}
	_ logr.CallDepthLogSink = capped{}
)

// Init does nothing: the wrapped sink was initialised by its own logger.
func (c capped) Init(logr.RuntimeInfo) {}

func (c capped) Enabled(level int) bool { return level <= MaxVerbosity && c.sink.Enabled(level) }

func (c capped) Info(level int, msg string, kv ...any) {
	if level <= MaxVerbosity {
		c.sink.Info(level, msg, kv...)
	}
}

func (c capped) Error(err error, msg string, kv ...any) { c.sink.Error(err, msg, kv...) }

func (c capped) WithValues(kv ...any) logr.LogSink { return capped{sink: c.sink.WithValues(kv...)} }

func (c capped) WithName(name string) logr.LogSink { return capped{sink: c.sink.WithName(name)} }

func (c capped) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := c.sink.(logr.CallDepthLogSink); ok {
		return capped{sink: cd.WithCallDepth(depth)}
	}
	return c
}
