"""Settings for the project under test.

The spec starts servers from these settings too, so everything that varies between runs comes
from environment variables the harness sets explicitly (see ``harness/env.py``):

- ``SPEC_MIDDLEWARE``: name of a middleware stack in ``project.middleware.STACKS`` (default
  ``"none"``: an empty stack, so no middleware changes which thread a view runs on).
- ``SPEC_DB_PATH``: the SQLite file servers share. A file, not ``:memory:``, so that several
  processes and threads see one database.
- ``SPEC_DB``: ``"postgresql"`` uses PostgreSQL instead (harness/postgres.py), reached through
  ``SPEC_PG_HOST`` (the cluster's socket folder), ``SPEC_PG_USER`` and ``SPEC_PG_NAME``.
- ``SPEC_CONN_MAX_AGE``: the default database's CONN_MAX_AGE (default 0, Django's).
- ``SPEC_GC``: ``"off"`` turns Python's automatic garbage collection off in the server, so that
  what only a collection would free stays visible until a test asks for one.
- ``SPEC_DB_POOL``: JSON for PostgreSQL's ``OPTIONS["pool"]`` (Django >= 5.1), e.g.
  ``{"min_size": 0, "max_size": 4}``.
- ``SPEC_DEBUG``: ``"1"`` turns DEBUG on (Django logs middleware adaptation only then).
- ``SPEC_RUNSERVER``: ``"daphne"`` puts daphne first in INSTALLED_APPS, Django's documented way to
  make ``runserver`` serve ASGI.
"""

import gc
import json
import os
import tempfile
from pathlib import Path

from project.middleware import STACKS

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-async-spec-not-secret"
DEBUG = os.environ.get("SPEC_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    # Claims request-user-in-async-view, session-async-api, decorators-on-async-views: the
    # session table (SessionStore of django.contrib.sessions.backends.db, Django's default).
    "django.contrib.sessions",
    "project.library",
]
if os.environ.get("SPEC_RUNSERVER") == "daphne":
    INSTALLED_APPS.insert(0, "daphne")

MIDDLEWARE = STACKS[os.environ.get("SPEC_MIDDLEWARE", "none")]

# Claim template-lazy-queryset: Django's template engine on project/templates/; its context
# processor records the thread and loop of each rendering.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "project" / "templates"],
        "OPTIONS": {"context_processors": ["project.views.template_lazy_queryset.here"]},
    }
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"  # read by daphne's runserver

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "SPEC_DB_PATH", str(Path(tempfile.gettempdir()) / "django-async-spec.sqlite3")
        ),
        "TEST": {
            # A file per test process: tox environments running in parallel never share one.
            "NAME": str(
                Path(tempfile.gettempdir()) / f"django-async-spec-test-{os.getpid()}.sqlite3"
            ),
        },
    }
}

if os.environ.get("SPEC_DB") == "postgresql":
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["SPEC_PG_HOST"],
        "USER": os.environ["SPEC_PG_USER"],
        "NAME": os.environ["SPEC_PG_NAME"],
    }
    if os.environ.get("SPEC_DB_POOL"):
        DATABASES["default"]["OPTIONS"] = {"pool": json.loads(os.environ["SPEC_DB_POOL"])}
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("SPEC_CONN_MAX_AGE", "0"))

if os.environ.get("SPEC_GC") == "off":
    gc.disable()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
