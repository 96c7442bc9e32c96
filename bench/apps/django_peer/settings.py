"""Django settings of the peer (bench only): no sessions, no admin, no templates."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

_db = urlsplit(os.environ["BENCH_DATABASE_URL"])

SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["anymail", "bench.apps.django_peer"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "bench.apps.django_peer.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": unquote(_db.username or ""),
        "PASSWORD": unquote(_db.password or ""),
        "HOST": unquote(_db.hostname or ""),
        "PORT": str(_db.port or ""),
        "CONN_MAX_AGE": None,  # one persistent connection per worker, as deployed
    }
}
# the Postmark source's "user:password" (anymail checks it as basic auth)
ANYMAIL = {"WEBHOOK_SECRET": os.environ["BENCH_BASIC_AUTH"]}
LOGGING = {"version": 1, "disable_existing_loggers": False}
