package main

import (
	"flag"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tokensync/tokensync/internal/logging"
)

// logLevelUsage replaces controller-runtime's help text of --zap-log-level,
// which does not say what the levels show.
const logLevelUsage = `Log verbosity: info (the default: start-up, leader election, token issue and refresh failures), ` +
	`debug (= 1: also one line per reconcile with its outcome, and the requests of each object), ` +
	`error, panic, or an integer from 1 to 5 for more detail from controller-runtime and client-go ` +
	`(watches, caches, leader election renewals). Levels above 5 log as 5: client-go would log API request ` +
	`headers and bodies, which hold Secrets. Tokens and secrets are never logged, at any level.`

// bindLogFlags binds the zap flags to fs, with tokensync's help text.
func bindLogFlags(fs *flag.FlagSet, opts *zap.Options) {
	opts.BindFlags(fs)
	if f := fs.Lookup("zap-log-level"); f != nil {
		f.Usage = logLevelUsage
	}
}

// newLogger returns the manager's logger: zap configured by the flags,
// capped at logging.MaxVerbosity.
func newLogger(opts *zap.Options) logr.Logger {
	return logging.Cap(zap.New(zap.UseFlagOptions(opts)))
}
