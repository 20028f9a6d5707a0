"""Small additions to the stock toolkit for the test server.

AppScopes: the toolkit's SettingsScopes, except that an application
registered with "dot.py create-app --scopes ..." may only request (and by
default gets) those scopes. DOT 1.7's Application model has no scopes
field, so the restriction lives in a side table of the same database.

RedactQueryFilter: removes query strings from the request log, so that a
token or secret sent in a URL (e.g. GET /o/introspect/?token=...) is never
printed.
"""
import logging
import re

from django.db import DatabaseError, connection
from oauth2_provider.scopes import SettingsScopes

TABLE = "dot_app_scopes"


def create_table():
    with connection.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS %s (client_id TEXT PRIMARY KEY, scopes TEXT NOT NULL)" % TABLE)


def set_app_scopes(client_id, scopes):
    with connection.cursor() as c:
        if scopes:
            c.execute(
                "INSERT OR REPLACE INTO %s (client_id, scopes) VALUES (%%s, %%s)" % TABLE,
                [client_id, " ".join(scopes)],
            )
        else:
            c.execute("DELETE FROM %s WHERE client_id = %%s" % TABLE, [client_id])


def app_scopes(application):
    """The scopes an application is restricted to, or None."""
    if application is None:
        return None
    try:
        with connection.cursor() as c:
            c.execute("SELECT scopes FROM %s WHERE client_id = %%s" % TABLE, [application.client_id])
            row = c.fetchone()
    except DatabaseError:
        return None
    return row[0].split() if row else None


class AppScopes(SettingsScopes):
    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        restricted = app_scopes(application)
        if restricted is None:
            return super().get_available_scopes(application, request, *args, **kwargs)
        return restricted

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        restricted = app_scopes(application)
        if restricted is None:
            return super().get_default_scopes(application, request, *args, **kwargs)
        return restricted


_QUERY = re.compile(r"\?[^\s'\"]*")


class RedactQueryFilter(logging.Filter):
    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("?REDACTED", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = _QUERY.sub("?REDACTED", record.msg)
        return True
