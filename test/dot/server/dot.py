#!/usr/bin/python3
"""Runs and manages the Django OAuth Toolkit test server.

  dot.py migrate
  dot.py create-app --client-id ID [--client-secret SECRET] [--scopes read write ...]
  dot.py rotate-secret --client-id ID [--client-secret NEW]
  dot.py count-tokens --client-id ID
  dot.py serve --addr 127.0.0.1:PORT

Run it with Debian's interpreter, /usr/bin/python3, which sees the
python3-django-oauth-toolkit package (hack/install-oauth-server.sh).
Without --client-secret the secret is read from stdin, minus one trailing
newline: a secret on the command line shows in process listings. Secrets
may contain any characters (':', '/', '+', spaces, ...); they are stored as
given (DOT 1.7 stores client secrets in plain text) and never printed.
Configuration comes from the environment: see settings.py.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from oauth2_provider.models import get_application_model  # noqa: E402

import extras  # noqa: E402


def read_secret(args):
    secret = args.client_secret
    if secret is None:
        secret = sys.stdin.read()
        if secret.endswith("\n"):
            secret = secret[:-1]
    if not secret:
        sys.exit("dot.py: empty client secret")
    return secret


def parse_scopes(values):
    scopes = [s for v in values or [] for s in v.split()]
    unknown = [s for s in scopes if s not in settings.OAUTH2_PROVIDER["SCOPES"]]
    if unknown:
        sys.exit("dot.py: unknown scopes %s (known: %s)" % (unknown, " ".join(settings.OAUTH2_PROVIDER["SCOPES"])))
    return scopes


def migrate(args):
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as c:
        # Lets the server read while a management command writes.
        c.execute("PRAGMA journal_mode=WAL")
    extras.create_table()


def create_app(args):
    Application = get_application_model()
    secret = read_secret(args)
    scopes = parse_scopes(args.scopes)
    with transaction.atomic():
        if Application.objects.filter(client_id=args.client_id).exists():
            sys.exit("dot.py: application %r exists" % args.client_id)
        Application.objects.create(
            name=args.name or args.client_id,
            client_id=args.client_id,
            client_secret=secret,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        )
        extras.set_app_scopes(args.client_id, scopes)


def rotate_secret(args):
    Application = get_application_model()
    secret = read_secret(args)
    if Application.objects.filter(client_id=args.client_id).update(client_secret=secret) != 1:
        sys.exit("dot.py: no application %r" % args.client_id)


def count_tokens(args):
    # The access tokens the server issued to a client: what a test counts
    # to check how many token requests succeeded, at the server. Prints
    # the number only, never a token.
    from oauth2_provider.models import get_access_token_model

    print(get_access_token_model().objects.filter(application__client_id=args.client_id).count())


def serve(args):
    # Django's development server, threaded (one thread per connection), no
    # autoreloader. Requests are logged to stderr by settings.LOGGING.
    from django.core.servers import basehttp

    # Headers and body go out in separate writes: without TCP_NODELAY a
    # kept-alive connection waits ~40 ms per response for a delayed ACK.
    basehttp.WSGIRequestHandler.disable_nagle_algorithm = True
    call_command("runserver", args.addr, use_reloader=False, use_threading=True, use_ipv6=False)


def main():
    p = argparse.ArgumentParser(prog="dot.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate", help="create or update the database").set_defaults(func=migrate)
    sp = sub.add_parser("create-app", help="register a confidential client-credentials client")
    sp.add_argument("--client-id", required=True)
    sp.add_argument("--client-secret", help="default: read from stdin")
    sp.add_argument("--name", help="display name, default the client id")
    sp.add_argument("--scopes", nargs="+", metavar="SCOPE", help="restrict the client to these scopes")
    sp.set_defaults(func=create_app)
    sp = sub.add_parser("rotate-secret", help="replace a client's secret")
    sp.add_argument("--client-id", required=True)
    sp.add_argument("--client-secret", help="default: read from stdin")
    sp.set_defaults(func=rotate_secret)
    sp = sub.add_parser("count-tokens", help="print how many access tokens a client was issued")
    sp.add_argument("--client-id", required=True)
    sp.set_defaults(func=count_tokens)
    sp = sub.add_parser("serve", help="serve HTTP until killed")
    sp.add_argument("--addr", required=True, help="host:port, e.g. 127.0.0.1:8000")
    sp.set_defaults(func=serve)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
