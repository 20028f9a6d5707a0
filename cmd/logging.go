package main

import (
	"flag"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// maxLogVerbosity is the most verbose logr level (V(n)) that reaches the
// log. client-go logs the bodies of API requests and responses at V(8) and
// above (V(10): whole bodies) through the logger of the request's context,
// which is the manager's: those bodies hold the credentials Secrets the
// manager reads (client secrets, private keys, tls.key) and the tokens it
// writes. Capping the manager's logger at V(7) keeps them out of the log at
// any --zap-log-level.
const maxLogVerbosity = 7

// logLevelUsage replaces controller-runtime's help text of --zap-log-level,
// which does not say what the levels show.
const logLevelUsage = `Log verbosity: info (the default: start-up, leader election, token issue and refresh failures), ` +
	`debug (= 1: also one line per reconcile with its outcome, and the requests of each object), ` +
	`error, panic, or an integer from 1 to 7 for more detail from controller-runtime and client-go ` +
	`(watches, caches, leader election renewals). Levels above 7 log as 7: client-go would log API request ` +
	`and response bodies, which hold Secrets. Tokens and secrets are never logged, at any level.`

// bindLogFlags binds the zap flags to fs, with tokensync's help text.
func bindLogFlags(fs *flag.FlagSet, opts *zap.Options) {
	opts.BindFlags(fs)
	if f := fs.Lookup("zap-log-level"); f != nil {
		f.Usage = logLevelUsage
	}
}

// newLogger returns the manager's logger: zap configured by the flags,
// capped at maxLogVerbosity.
func newLogger(opts *zap.Options) logr.Logger {
	return capVerbosity(zap.New(zap.UseFlagOptions(opts)), maxLogVerbosity)
}

// capVerbosity returns l with every level above max disabled, whatever the
// level l was configured with.
func capVerbosity(l logr.Logger, max int) logr.Logger {
	sink := l.GetSink()
	if sink == nil {
		return l
	}
	// The wrapper adds a stack frame between logr and the sink: tell the
	// sink, so that the caller it logs is still the right one.
	if cd, ok := sink.(logr.CallDepthLogSink); ok {
		sink = cd.WithCallDepth(1)
	}
	return logr.New(cappedSink{sink: sink, max: max})
}

// cappedSink is a logr.LogSink that drops every message above level max.
type cappedSink struct {
	sink logr.LogSink
	max  int
}

var (
	_ logr.LogSink          = cappedSink{}
	_ logr.CallDepthLogSink = cappedSink{}
)

// Init does nothing: the wrapped sink was initialised by its own logger.
func (s cappedSink) Init(logr.RuntimeInfo) {}

func (s cappedSink) Enabled(level int) bool { return level <= s.max && s.sink.Enabled(level) }

func (s cappedSink) Info(level int, msg string, kv ...any) {
	if level <= s.max {
		s.sink.Info(level, msg, kv...)
	}
}

func (s cappedSink) Error(err error, msg string, kv ...any) { s.sink.Error(err, msg, kv...) }

func (s cappedSink) WithValues(kv ...any) logr.LogSink {
	return cappedSink{sink: s.sink.WithValues(kv...), max: s.max}
}

func (s cappedSink) WithName(name string) logr.LogSink {
	return cappedSink{sink: s.sink.WithName(name), max: s.max}
}

func (s cappedSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.sink.(logr.CallDepthLogSink); ok {
		return cappedSink{sink: cd.WithCallDepth(depth), max: s.max}
	}
	return s
}
