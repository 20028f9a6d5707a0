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
	if l.GetSink() == nil {
		return l
	}
	return logr.New(&capped{LogSink: l.GetSink()})
}

type capped struct{ logr.LogSink }

func (c *capped) Enabled(level int) bool { return level <= MaxVerbosity && c.LogSink.Enabled(level) }

func (c *capped) Info(level int, msg string, kv ...any) {
	if level <= MaxVerbosity {
		c.LogSink.Info(level, msg, kv...)
	}
}

func (c *capped) WithValues(kv ...any) logr.LogSink {
	return &capped{LogSink: c.LogSink.WithValues(kv...)}
}

func (c *capped) WithName(name string) logr.LogSink {
	return &capped{LogSink: c.LogSink.WithName(name)}
}

// WithCallDepth keeps call-site reporting right through the wrapper.
func (c *capped) WithCallDepth(depth int) logr.LogSink {
	if d, ok := c.LogSink.(logr.CallDepthLogSink); ok {
		return &capped{LogSink: d.WithCallDepth(depth + 1)}
	}
	return c
}

// Init passes the call depth of the wrapper on.
func (c *capped) Init(info logr.RuntimeInfo) {
	info.CallDepth++
	c.LogSink.Init(info)
}
