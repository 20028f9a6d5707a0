#!/usr/bin/python3
"""Runs the Django OAuth Toolkit test server.

  dot.py migrate
  dot.py create-app --client-id ID            (secret on stdin)
  dot.py rotate-secret --client-id ID         (new secret on stdin)
  dot.py serve --addr 127.0.0.1:PORT

Secrets are read from stdin so they never appear in a process listing.
Configuration comes from the environment (see settings.py).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate")
    for name in ("create-app", "rotate-secret"):
        sp = sub.add_parser(name)
        sp.add_argument("--client-id", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--addr", required=True)
    args = p.parse_args()

    if args.cmd == "migrate":
        call_command("migrate", verbosity=0, interactive=False)
    elif args.cmd == "create-app":
        from oauth2_provider.models import Application

        Application.objects.create(
            name=args.client_id,
            client_id=args.client_id,
            client_secret=sys.stdin.read(),
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        )
    elif args.cmd == "rotate-secret":
        from oauth2_provider.models import Application

        n = Application.objects.filter(client_id=args.client_id).update(client_secret=sys.stdin.read())
        if n != 1:
            sys.exit("no application %r" % args.client_id)
    elif args.cmd == "serve":
        call_command("runserver", args.addr, use_reloader=False, use_threading=True)


if __name__ == "__main__":
    main()
