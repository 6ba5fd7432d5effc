"""The DJANGO_ALLOW_ASYNC_UNSAFE environment variable.

Claimed: "Setting DJANGO_ALLOW_ASYNC_UNSAFE disables the async-safety check; setting it to
"false" turns it back on".

Any non-empty value turns the check off: "1" and "true", but also "false", "0", "no". The check is
on only while the variable is unset or set to the empty string. It is read at every guarded call,
not once at start-up, so changing ``os.environ`` in a running process takes effect at the next
call, both ways. A server started with DJANGO_ALLOW_ASYNC_UNSAFE=false runs with the check off,
under every server in the spec.

With the check off, the classic mistake ``await Model.objects.get(...)`` no longer fails with
SynchronousOnlyOperation: ``get()`` runs its query on the event loop's thread, then the ``await``
fails with a ``TypeError`` (Python 3.11-3.13: "object Author can't be used in 'await'
expression").
(specs/test_orm_in_async_view.py pins the same for the quiz's ``User`` view, in process.)

Why: ``django.utils.asyncio.async_unsafe`` wraps the database wrapper's connection methods; its
``inner`` calls ``asyncio.get_running_loop()`` and, when a loop runs in this thread, raises
``SynchronousOnlyOperation`` unless ``os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")`` is truthy. The
value is never parsed: a non-empty string is truthy. Django's docs say as much ("setting the
DJANGO_ALLOW_ASYNC_UNSAFE environment variable to any value"). Same on every Django version in
tox.ini (4.2 to 6.1).
"""


from dataclasses import replace

import pytest
from django.core.exceptions import SynchronousOnlyOperation

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    SERVERS,
    ServerConfig,
    ServerRequest,
    Statement,
    get,
    not_awaitable,
    serving,
)
from project.library.models import Author

CLAIM = Claim(
    id="django-allow-async-unsafe",
    source="Django docs, Asynchronous support (Async safety)",
    url="https://docs.djangoproject.com/en/5.2/topics/async/#async-safety",
    claim=(
        'Setting DJANGO_ALLOW_ASYNC_UNSAFE disables the async-safety check; setting it to "false" '
        "turns it back on"
    ),
    statements=[
        Statement(
            "setting-disables",
            "Setting DJANGO_ALLOW_ASYNC_UNSAFE disables the async-safety check.",
            "holds",
        ),
        Statement(
            "false-turns-it-on",
            'Setting DJANGO_ALLOW_ASYNC_UNSAFE to "false" turns the check back on.',
            "refuted",
            reality=(
                'Any non-empty value disables the check, "false", "0" and "no" included, whether '
                "set when a server starts or in os.environ at run time; only unset or empty keeps "
                "it on. With it off, `await Author.objects.get(...)` runs the query on the loop's "
                "thread and fails with TypeError (on Python 3.11-3.13: object Author can't be used "
                "in 'await' expression)."
            ),
        ),
        Statement(
            "unsetting-turns-it-on",
            "Unsetting DJANGO_ALLOW_ASYNC_UNSAFE, or setting it to the empty string, turns the "
            "check back on, at the next guarded call.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.utils.asyncio.async_unsafe: inner() raises SynchronousOnlyOperation when "
        "asyncio.get_running_loop() succeeds and not os.environ.get('DJANGO_ALLOW_ASYNC_UNSAFE'), "
        "read at every guarded call; it guards "
        "BaseDatabaseWrapper.connect/ensure_connection/cursor/commit/rollback/close/..."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-safety",
    question=(
        'Does setting DJANGO_ALLOW_ASYNC_UNSAFE to "false" turn the async-safety check back on?'
    ),
    topic="settings",
    code=("project.views.transactions.unsafe_set", "project.views.transactions.unsafe_probe"),
    instead=(),
)
pytestmark = pytest.mark.django_db(transaction=True)
setting_disables = CLAIM.statement("setting-disables")
false_turns_it_on = CLAIM.statement("false-turns-it-on")
unsetting_turns_it_on = CLAIM.statement("unsetting-turns-it-on")

UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
NOT_AWAITABLE = not_awaitable("Author")
UNSET = None

# The value of DJANGO_ALLOW_ASYNC_UNSAFE -> is the check still on?
GUARD_ON_FOR = {UNSET: True, "": True, "1": False, "true": False, "false": False, "0": False,
                "no": False, "False": False}  # fmt: skip


def set_unsafe(monkeypatch, value):
    if value is UNSET:
        monkeypatch.delenv(UNSAFE, raising=False)
    else:
        monkeypatch.setenv(UNSAFE, value)


def check_is_on():
    """Make a sync ORM call on this thread (which runs an event loop): does the guard stop it?"""
    try:
        count = Author.objects.count()
    except SynchronousOnlyOperation as error:
        assert str(error) == ASYNC_UNSAFE
        return True
    assert count == 0
    return False


@setting_disables
@pytest.mark.parametrize("value", list(GUARD_ON_FOR), ids=repr)
async def test_which_values_turn_the_check_off(value, monkeypatch):
    set_unsafe(monkeypatch, value)
    assert check_is_on() is GUARD_ON_FOR[value]


@unsetting_turns_it_on
async def test_the_setting_is_read_at_every_call(monkeypatch, evidence):
    # One process, one event loop, Django set up long ago: only the variable changes.
    seen = []
    for value in [UNSET, "false", "", "no", UNSET, "true"]:
        set_unsafe(monkeypatch, value)
        seen.append((value, "on" if check_is_on() else "off"))
    assert seen == [(UNSET, "on"), ("false", "off"), ("", "on"), ("no", "off"), (UNSET, "on"),
                    ("true", "off")]  # fmt: skip
    evidence("in process, set in turn", check=" > ".join(f"{v!r}:{state}" for v, state in seen))


# --- through real servers -------------------------------------------------------------------


# Servers of their own (no other test asks for this config): each test changes the variable
# inside the process, so no other test may share them.
UNSAFE_FROM_START = ServerConfig(env=((UNSAFE, "false"),))
# The guard reads the environment, not the database: every server on SQLite, and one of each
# interface on PostgreSQL, where the unguarded query really reaches another backend.
ON_POSTGRESQL_TOO = [
    *SERVERS,
    *(ServerRequest(name, replace(UNSAFE_FROM_START, db="postgresql"), database_axis=True)
      for name in ("uvicorn", "gunicorn-gthread")),
]  # fmt: skip


def answer(server, path, params=None):
    hit = get(server.url, path, params)
    assert hit.status == 200, f"{hit.status} {hit.body[:300]!r}\n{server.output()[-3000:]}"
    return hit.json()


def probe(server):
    """What ``await Author.objects.get(...)`` raised in the server, and the variable it saw."""
    found = answer(server, "/transactions/unsafe/probe/")
    return found[UNSAFE], found["raised"], found["message"]


# What the probe's `await Author.objects.get(...)` raises with the check on, and with it off.
GUARDED = ("SynchronousOnlyOperation", ASYNC_UNSAFE)
UNGUARDED = ("TypeError", NOT_AWAITABLE)


@false_turns_it_on
@serving(*ON_POSTGRESQL_TOO, config=UNSAFE_FROM_START)
def test_server_started_with_false_runs_unguarded_until_it_changes(server, evidence):
    seen = [probe(server)]
    # Then the variable changes inside the running process (os.environ, as the docs advise).
    for change in [{"value": ""}, {"value": "false"}, {}]:
        assert answer(server, "/transactions/unsafe/set/", change) == {
            UNSAFE: change.get("value")
        }
        seen.append(probe(server))
    assert seen == [("false", *UNGUARDED), ("", *GUARDED), ("false", *UNGUARDED),
                    (None, *GUARDED)], server.output()[-3000:]  # fmt: skip
    at_start, set_empty, set_false, unset = (raised for _, raised, _ in seen)
    evidence(f"{server.name} started with {UNSAFE}=false", at_start=at_start,
             set_empty=set_empty, set_false=set_false, unset=unset)  # fmt: skip
