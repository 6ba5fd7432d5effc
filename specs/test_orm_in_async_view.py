"""Seed claim 3: the ORM in an async view.

The quiz's view::

    async def get_user(request):
        user = await User.objects.get(id=1)
        return JsonResponse({'username': user.username})

Claimed: "Django ORM methods like get() are synchronous and must be wrapped with sync_to_async to
be awaited in async views."

What is true: half of it. ``get()`` is synchronous, and called from a thread that runs an event
loop it raises ``SynchronousOnlyOperation`` before any SQL runs, so the quiz's view never reaches
its ``await``. But it need not be wrapped: since Django 4.1 every QuerySet method that runs a query
has an async twin (``aget``, ``acount``, ``acreate``, ...), which all supported versions have.
``aget`` is itself ``sync_to_async(self.get)``: the query still runs on a worker thread.

Why: ``django.utils.asyncio.async_unsafe`` decorates the database wrapper's connection methods
(``BaseDatabaseWrapper.cursor``, ``connect``, ``ensure_connection``, ...). Its guard calls
``asyncio.get_running_loop()`` and raises unless ``os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")`` is
truthy, i.e. set to any non-empty string, "false" and "0" included. With the guard off, ``get()``
runs the query on the event loop's thread and returns a ``User``, which is not awaitable.
"""

import re
import threading

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import SynchronousOnlyOperation

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    SEED,
    Statement,
    asgi_get,
    handler,
    not_awaitable,
    server_error_record,
)

CLAIM = Claim(
    id="orm-get-in-async-view",
    source=SEED,
    claim=(
        "Django ORM methods like get() are synchronous and must be wrapped with sync_to_async "
        "to be awaited in async views."
    ),
    statements=[
        Statement(
            "synchronous",
            "Django ORM methods like get() are synchronous.",
            "holds",
        ),
        Statement(
            "must-wrap",
            "To be awaited in an async view, get() must be wrapped with sync_to_async.",
            "refuted",
            reality=(
                "QuerySet.aget() (Django >= 4.1) awaits the same query with no wrapper; it is "
                "itself sync_to_async(get), so the query still runs on a worker thread. The "
                "quiz's `await User.objects.get(id=1)` fails with SynchronousOnlyOperation "
                "(HTTP 500), or, with DJANGO_ALLOW_ASYNC_UNSAFE set, with TypeError because a "
                "User is not awaitable."
            ),
        ),
    ],
    mechanism=(
        "django.utils.asyncio.async_unsafe guards BaseDatabaseWrapper.cursor() (called by "
        "SQLCompiler.execute_sql); QuerySet.aget() is `await sync_to_async(self.get)(...)` in "
        "django/db/models/query.py."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#queries-the-orm",
    question="Must ORM calls like get() be wrapped in sync_to_async to await them?",
    topic="orm",
    code=("project.views.orm.get_user",),
    instead=("project.views.orm.get_user_aget", "project.views.orm.get_user_sync_to_async"),
)
pytestmark = pytest.mark.django_db(transaction=True)
synchronous = CLAIM.statement("synchronous")
must_wrap = CLAIM.statement("must-wrap")

NOT_AWAITABLE = not_awaitable("User")


@pytest.fixture
def ada():
    return User.objects.create(id=1, username="ada")


@synchronous
async def test_get_raises_before_any_query_where_a_loop_runs(ada, query_threads):
    with pytest.raises(SynchronousOnlyOperation) as raised:
        User.objects.get(id=1)
    assert str(raised.value) == ASYNC_UNSAFE
    # Raised by async_unsafe's wrapper around the connection's cursor(), as SQLCompiler asks for it.
    frames = raised.traceback
    assert frames[-1].frame.code.name == "inner"
    assert frames[-1].path.as_posix().endswith("django/utils/asyncio.py")
    assert frames[-2].frame.code.name == "execute_sql"
    assert "self.connection.cursor()" in str(frames[-2].statement)
    assert query_threads == [threading.get_ident()]  # entered execute_sql, never got a cursor


@synchronous
async def test_quiz_view_answers_500_and_logs_the_guard(ada, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = await asgi_get(handler("asgi"), "/seed/orm/")
    assert hit.status == 500
    assert b"<h1>Server Error (500)</h1>" in hit.body  # django.views.defaults.server_error
    record = server_error_record(caplog, "/seed/orm/")
    assert record.exc_info[0] is SynchronousOnlyOperation
    assert str(record.exc_info[1]) == ASYNC_UNSAFE


@must_wrap
@pytest.mark.parametrize("path", ["/fixed/orm/aget/", "/fixed/orm/sync-to-async/"])
async def test_corrected_forms_query_on_a_worker_thread(ada, path, query_threads):
    hit = await asgi_get(handler("asgi"), path)
    assert (hit.status, hit.json()) == (200, {"username": "ada"})
    # Both run the query off the event loop's thread: aget() is sync_to_async(get).
    assert len(query_threads) == 1
    assert query_threads[0] != threading.get_ident()


@must_wrap
async def test_aget_needs_no_wrapper(ada, query_threads):
    user = await User.objects.aget(id=1)
    wrapped = await sync_to_async(User.objects.get)(id=1)
    assert user == wrapped
    assert user.username == "ada"
    assert threading.get_ident() not in query_threads


@synchronous
@pytest.mark.parametrize("value", ["1", "true", "false", "0"])
async def test_any_non_empty_unsafe_setting_turns_the_guard_off(ada, monkeypatch, value, query_threads):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", value)
    user = User.objects.get(id=1)  # runs on the loop's own thread, blocking it
    assert user.username == "ada"
    assert query_threads == [threading.get_ident()]
    with pytest.raises(TypeError) as raised:
        await User.objects.get(id=1)
    assert str(raised.value) == NOT_AWAITABLE


@synchronous
async def test_empty_unsafe_setting_keeps_the_guard(ada, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "")
    with pytest.raises(SynchronousOnlyOperation, match=f"^{re.escape(ASYNC_UNSAFE)}$"):
        User.objects.get(id=1)


@synchronous
async def test_quiz_view_with_guard_off_fails_on_the_await(ada, monkeypatch, caplog):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    caplog.set_level("ERROR", logger="django.request")
    hit = await asgi_get(handler("asgi"), "/seed/orm/")
    assert hit.status == 500
    record = server_error_record(caplog, "/seed/orm/")
    assert record.exc_info[0] is TypeError
    assert str(record.exc_info[1]) == NOT_AWAITABLE
