"""What the spec pins, so the calling shell cannot change the outcome.

Two places need it: this pytest process (``pin_process_env``, called from the root conftest and
again around every test) and every server the harness starts (``server_env``: built from
nothing, not inherited, so ``WEB_CONCURRENCY``, ``GUNICORN_CMD_ARGS``, ``UVICORN_*`` and friends
never reach a server).
"""

import os

from harness import ROOT

# Variables that change Django's, asyncio's, Python's or a server's behaviour, with what the spec
# wants for each: None means "must be unset".
PINNED = {
    # django.utils.asyncio.async_unsafe skips its guard when this is set to any non-empty value.
    "DJANGO_ALLOW_ASYNC_UNSAFE": None,
    # asyncio debug mode changes how slow callbacks and un-awaited coroutines are reported.
    "PYTHONASYNCIODEBUG": None,
    "PYTHONDEVMODE": None,
    # The project's own switches (project/settings.py).
    "SPEC_MIDDLEWARE": None,
    "SPEC_DEBUG": None,
    "SPEC_RUNSERVER": None,
    "SPEC_DB_PATH": None,
    "SPEC_DB": None,
    "SPEC_PG_HOST": None,
    "SPEC_PG_USER": None,
    "SPEC_PG_NAME": None,
    "SPEC_CONN_MAX_AGE": None,
    "SPEC_DB_POOL": None,
    "SPEC_GC": None,
    "SPEC_TOKEN": None,
}

# Copied from the caller into servers: nothing here changes what a server or Django does.
PASSED_THROUGH = ("PATH", "HOME", "TMPDIR", "LD_LIBRARY_PATH", "SYSTEMROOT")


def pin_process_env(environ=os.environ):
    for name, value in PINNED.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value


def server_env(**extra):
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        PYTHONUNBUFFERED="1",
        # Show each warning once per place: the spec reads warnings from server output.
        PYTHONWARNINGS="default",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="project.settings",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env
