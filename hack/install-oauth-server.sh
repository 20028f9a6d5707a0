#!/usr/bin/env bash
# Installs the real OAuth 2.0 server the e2e suite talks to: Debian's Django
# OAuth Toolkit, run by Debian's own python3 (/usr/bin/python3; a python3
# earlier on PATH may be another interpreter that cannot see Debian's
# packages). A no-op when it is already installed.
set -euo pipefail

PYTHON=${DOT_PYTHON:-/usr/bin/python3}
if "$PYTHON" -c 'import django, oauth2_provider' 2>/dev/null; then
	exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
	sudo="sudo"
fi
echo "install-oauth-server: installing python3-django-oauth-toolkit with apt" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends python3-django-oauth-toolkit >&2
"$PYTHON" -c 'import django, oauth2_provider; print("install-oauth-server: Django", django.get_version(), "/ django-oauth-toolkit", oauth2_provider.__version__)' >&2
