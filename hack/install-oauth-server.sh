#!/usr/bin/env bash
# Installs the real OAuth 2.0 server the e2e suite talks to (test/dot): Debian's
# Django OAuth Toolkit (python3-django-oauth-toolkit, 1.7 on bookworm, with
# Django 3.2), run by Debian's own python3. Always /usr/bin/python3: a python3
# earlier on PATH (pyenv, a venv) may be another interpreter that cannot see
# Debian's packages. DOT_PYTHON overrides the interpreter, as it does for
# test/dot.
#
# Idempotent: a fast no-op when the interpreter already imports the toolkit.
# Otherwise apt-get update + install, through sudo unless run as root.
set -euo pipefail

PYTHON=${DOT_PYTHON:-/usr/bin/python3}
PACKAGE=python3-django-oauth-toolkit

log() { echo "install-oauth-server: $*" >&2; }

if "$PYTHON" -I -c 'import django, oauth2_provider' 2>/dev/null; then
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
	log "no apt-get: install Django OAuth Toolkit for $PYTHON by hand"
	exit 1
fi

log "installing $PACKAGE with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$PACKAGE" >&2

if ! "$PYTHON" -I -c 'import django, oauth2_provider' 2>/dev/null; then
	log "$PACKAGE is installed but $PYTHON cannot import it (set DOT_PYTHON to Debian's python3)"
	exit 1
fi
"$PYTHON" -I -c 'import django, oauth2_provider; print("install-oauth-server: Django", django.get_version(), "/ django-oauth-toolkit", oauth2_provider.__version__)' >&2
