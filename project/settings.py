"""Settings for the project under test.

The spec starts servers from these settings too, so everything that varies between runs comes
from environment variables the harness sets explicitly (see ``harness/env.py``):

- ``SPEC_MIDDLEWARE``: name of a middleware stack in ``project.middleware.STACKS`` (default
  ``"none"``: an empty stack, so no middleware changes which thread a view runs on).
- ``SPEC_DB_PATH``: the SQLite file servers share. A file, not ``:memory:``, so that several
  processes and threads see one database.
- ``SPEC_DEBUG``: ``"1"`` turns DEBUG on (Django logs middleware adaptation only then).
- ``SPEC_RUNSERVER``: ``"daphne"`` puts daphne first in INSTALLED_APPS, Django's documented way to
  make ``runserver`` serve ASGI.
"""

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
    "project.library",
]
if os.environ.get("SPEC_RUNSERVER") == "daphne":
    INSTALLED_APPS.insert(0, "daphne")

MIDDLEWARE = STACKS[os.environ.get("SPEC_MIDDLEWARE", "none")]

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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
