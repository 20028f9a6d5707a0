#!/usr/bin/env bash
# Installs promtool, which checks and unit-tests the alerting rules of
# config/monitoring (make verify-monitoring). It comes from Debian's
# prometheus package (2.42 on bookworm); the server it also installs is not
# started (no init system here, and nothing enables it).
#
# Idempotent: a fast no-op when promtool is on PATH. Otherwise apt-get update
# + install, through sudo unless run as root. Prints promtool's path.
set -euo pipefail

PACKAGE=prometheus

log() { echo "install-promtool: $*" >&2; }

if command -v promtool >/dev/null; then
	command -v promtool
	exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null; then
		log "not root and no sudo: run 'apt-get install $PACKAGE' as root"
		exit 1
	fi
	sudo=(sudo)
fi
if ! command -v apt-get >/dev/null; then
	log "no apt-get: install promtool (https://prometheus.io/download/) by hand"
	exit 1
fi

log "installing $PACKAGE (for promtool) with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$PACKAGE" >&2
command -v promtool
