"""Minimal Django settings for a Django OAuth Toolkit token endpoint used by
tokensync's end-to-end tests. Configured from the environment by dot.py."""
import os
import secrets

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = os.environ.get("DOT_SECRET_KEY") or secrets.token_urlsafe(32)
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
]
MIDDLEWARE = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DOT_DB", os.path.join(BASE_DIR, "dot.sqlite3")),
        "OPTIONS": {"timeout": 20},
    }
}

OAUTH2_PROVIDER = {
    "SCOPES": {
        "read": "Read access",
        "write": "Write access",
        "admin": "Administrative access",
    },
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("DOT_ACCESS_TOKEN_EXPIRE_SECONDS", "36000")),
}
if os.environ.get("DOT_JSON_BACKEND") == "1":
    # Accept application/json token requests as well as form bodies.
    OAUTH2_PROVIDER["OAUTH2_BACKEND_CLASS"] = "oauth2_provider.oauth2_backends.JSONOAuthLibCore"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    # Request lines only: method, path, status. Never bodies or headers.
    "loggers": {"django.server": {"handlers": ["stderr"], "level": "INFO"}},
}
