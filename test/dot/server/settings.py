"""Minimal Django settings for the Django OAuth Toolkit server used by
tokensync's end-to-end tests. Configured from the environment:

  DOT_DB                            sqlite database file (required in practice)
  DOT_SECRET_KEY                    Django SECRET_KEY; random when unset
  DOT_ACCESS_TOKEN_EXPIRE_SECONDS   token lifetime, default 36000 (DOT's own)
  DOT_DEFAULT_SCOPES                scopes granted when a client asks for none,
                                    default "read write admin"
  DOT_JSON_BACKEND=1                token endpoint parses application/json
                                    bodies (and then only those)
"""
import os
import secrets

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = os.environ.get("DOT_SECRET_KEY") or secrets.token_urlsafe(32)
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
]
# CommonMiddleware sets Content-Length, which lets runserver keep
# connections alive (as a production deployment would); without it every
# response carries "Connection: close".
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DOT_DB", os.path.join(BASE_DIR, "dot.sqlite3")),
        # The server and the management commands share the file.
        "OPTIONS": {"timeout": 20},
    }
}

SCOPES = {
    "read": "Read access",
    "write": "Write access",
    "admin": "Administrative access",
    "introspection": "Introspect tokens (RFC 7662) at /o/introspect/",
}
OAUTH2_PROVIDER = {
    "SCOPES": SCOPES,
    "DEFAULT_SCOPES": os.environ.get("DOT_DEFAULT_SCOPES", "read write admin").split(),
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("DOT_ACCESS_TOKEN_EXPIRE_SECONDS") or "36000"),
    # Settings scopes, narrowed per application by "dot.py create-app --scopes".
    "SCOPES_BACKEND_CLASS": "extras.AppScopes",
}
if os.environ.get("DOT_JSON_BACKEND") == "1":
    # JSONOAuthLibCore (in DOT since 1.0) parses the request body as JSON
    # only: a form-encoded token request then has no grant_type and is
    # answered 400 {"error": "unsupported_grant_type"}.
    OAUTH2_PROVIDER["OAUTH2_BACKEND_CLASS"] = "oauth2_provider.oauth2_backends.JSONOAuthLibCore"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "extras.RedactQueryFilter"}},
    "formatters": {"server": {"format": "dot: [%(asctime)s] %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "server",
            "filters": ["redact"],
        }
    },
    "loggers": {
        # Request lines only: method, path (query string redacted), status,
        # size. Never bodies or headers, so never credentials.
        "django.server": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # The toolkit logs failed client authentication, with the secret the
        # client sent, at DEBUG: keep it at WARNING whatever the root logger.
        "oauth2_provider": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "oauthlib": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
