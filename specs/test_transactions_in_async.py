"""Transactions in async views.

Claimed: "transaction.atomic() works in async views and ATOMIC_REQUESTS = True makes async views
atomic".

- ``with transaction.atomic():`` written in async code raises ``SynchronousOnlyOperation`` ("You
  cannot call this from an async context - use a thread or sync_to_async.") on entry, before any
  SQL: ``Atomic.__enter__`` asks ``connection.get_autocommit()``, which calls the guarded
  ``ensure_connection()``. An async view written that way answers 500, under ASGI and under WSGI
  alike (under WSGI the view runs inside ``async_to_sync``'s event loop, so the guard fires too).
- ``async with transaction.atomic():`` is a ``TypeError``: ``Atomic`` has no ``__aenter__`` /
  ``__aexit__`` (Python 3.11-3.13 say "'Atomic' object does not support the asynchronous context
  manager protocol").
- Getting past the guard with DJANGO_ALLOW_ASYNC_UNSAFE does not make it work either: the block
  opens a transaction on the event loop thread's connection, but ``acreate()`` & co. run their
  query through ``sync_to_async`` on another thread, with another connection, in autocommit. A
  rollback of the block leaves their rows committed.
- What works is what Django documents: put the transactional work in one synchronous function
  decorated with ``atomic`` and await it through ``sync_to_async``. It commits or rolls back as a
  whole, on a worker thread.
- With ``ATOMIC_REQUESTS`` on, Django refuses async views outright: every request to one raises
  ``RuntimeError("You cannot use ATOMIC_REQUESTS with async views.")`` before the view runs
  (HTTP 500), on ASGI and WSGI. Sync views in the same project are wrapped in ``atomic`` as
  documented; ``transaction.non_atomic_requests`` lets an async view through, not atomic.

Why: ``django.db.transaction.Atomic.__enter__`` -> ``BaseDatabaseWrapper.get_autocommit`` ->
``ensure_connection``, decorated by ``django.utils.asyncio.async_unsafe``. Connections are
per thread (``ConnectionHandler.thread_critical = True``), so an atomic block covers only queries
made on its own thread. ``BaseHandler.make_view_atomic``, called by ``_get_response`` (WSGI) and
``_get_response_async`` (ASGI) for every request, raises the RuntimeError when a database has
ATOMIC_REQUESTS and the view is a coroutine function not excused by ``non_atomic_requests``. It
reads ``connections.settings``, a cached property: ``override_settings(DATABASES=...)`` does not
reach it (Django only warns), so the tests switch ATOMIC_REQUESTS on where Django's own
tests/handlers do, in the connection's settings dict.
"""

import re

import pytest
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connections, transaction
from django.test import override_settings

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    each_interface,
    no_async_with,
    NO_ATOMIC_REQUESTS,
    Statement,
    asgi_get,
    handler,
    serve_once,
    server_error_record,
)
from project.library.models import Author, Book
from project.views.transactions import Rollback

CLAIM = Claim(
    id="atomic-in-async",
    source="Django docs, Asynchronous support (Async safety) and Database transactions",
    claim=(
        "transaction.atomic() works in async views and ATOMIC_REQUESTS = True makes async views "
        "atomic"
    ),
    statements=[
        Statement(
            "atomic-works",
            "transaction.atomic() works in async views.",
            "refuted",
            reality=(
                "`with transaction.atomic():` in async code raises SynchronousOnlyOperation on "
                "entry, before any SQL (HTTP 500 from an async view, ASGI and WSGI alike); "
                "`async with` raises TypeError (on Python 3.11-3.13: 'Atomic' object does not "
                "support the asynchronous context manager protocol). With DJANGO_ALLOW_ASYNC_UNSAFE set the block opens, "
                "but only on its own thread's connection: acreate() & co. run on another thread "
                "in autocommit, and their rows survive the block's rollback."
            ),
        ),
        Statement(
            "atomic-function-via-sync-to-async",
            "A sync function decorated with atomic, awaited through sync_to_async in an async "
            "view, commits or rolls back as a whole, on a worker thread.",
            "holds",
            claimed=False,
        ),
        Statement(
            "atomic-requests",
            "ATOMIC_REQUESTS = True makes async views atomic.",
            "refuted",
            reality=(
                "Every request to an async view fails with RuntimeError: You cannot use "
                "ATOMIC_REQUESTS with async views, before the view runs (HTTP 500), under ASGI "
                "and WSGI. Django reads it from connections.settings, cached: "
                "override_settings(DATABASES=...) does not switch it on (Django only warns)."
            ),
        ),
        Statement(
            "atomic-requests-sync-views",
            "ATOMIC_REQUESTS = True makes sync views atomic: a failing sync view's writes are "
            "rolled back.",
            "holds",
            claimed=False,
        ),
        Statement(
            "non-atomic-requests",
            "With ATOMIC_REQUESTS = True, an async view decorated with "
            "transaction.non_atomic_requests runs.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.db.transaction.Atomic.__enter__ calls BaseDatabaseWrapper.get_autocommit -> "
        "ensure_connection, guarded by django.utils.asyncio.async_unsafe; Atomic defines no "
        "__aenter__; django.core.handlers.base.BaseHandler.make_view_atomic raises for coroutine "
        "views when a database has ATOMIC_REQUESTS."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#queries-the-orm",
    question="Do transaction.atomic() and ATOMIC_REQUESTS work with async views?",
    topic="orm",
    code=("project.views.transactions.atomic_block", "project.views.transactions.add_author_async"),
    instead=(
        "project.views.transactions.atomic_via_sync_to_async",
        "project.views.transactions.add_author_with_books",
        "project.views.transactions.add_author_async_exempt",
    ),
)
pytestmark = pytest.mark.django_db(transaction=True)
atomic_works = CLAIM.statement("atomic-works")
atomic_function = CLAIM.statement("atomic-function-via-sync-to-async")
atomic_requests_async = CLAIM.statement("atomic-requests")
atomic_requests_sync = CLAIM.statement("atomic-requests-sync-views")
non_atomic_requests = CLAIM.statement("non-atomic-requests")




@pytest.fixture
def atomic_requests(monkeypatch):
    """ATOMIC_REQUESTS = True for the default database, where make_view_atomic reads it."""
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)


@pytest.fixture
def request_errors(caplog):
    """The exceptions Django logged as 'Internal Server Error: <path>' (what became a 500)."""
    caplog.set_level("ERROR", logger="django.request")

    def errors(path):
        record = server_error_record(caplog, path)
        return [(record.exc_info[0], str(record.exc_info[1]))]

    return errors


def names():
    return sorted(Author.objects.values_list("name", flat=True))


# --- transaction.atomic() in async code -------------------------------------------------------


@atomic_works
async def test_atomic_block_raises_on_entry_where_a_loop_runs():
    with pytest.raises(SynchronousOnlyOperation) as raised:
        with transaction.atomic():
            pytest.fail("the block's body ran")
    assert str(raised.value) == ASYNC_UNSAFE
    # Atomic.__enter__ asks for the autocommit state, which needs a connection: the guard is on
    # ensure_connection(). (Django's test framework wraps ensure_connection in a frame of its own
    # in django/test/testcases.py; that one is left out.)
    frames = [f for f in raised.traceback if "django/test/" not in f.path.as_posix()]
    assert [f.frame.code.name for f in frames[-3:]] == ["__enter__", "get_autocommit", "inner"]
    assert frames[-1].path.as_posix().endswith("django/utils/asyncio.py")
    assert frames[-3].path.as_posix().endswith("django/db/transaction.py")


@atomic_works
async def test_async_with_is_not_supported():
    with pytest.raises(TypeError) as raised:
        async with transaction.atomic():
            pytest.fail("the block's body ran")
    assert str(raised.value) == no_async_with("Atomic")
    assert not hasattr(transaction.Atomic, "__aenter__")
    assert not hasattr(transaction.Atomic, "__aexit__")


@atomic_works
@each_interface
def test_async_view_with_atomic_block_answers_500(interface, request_errors, evidence):
    path = "/transactions/atomic-block/"
    hit = serve_once(interface, handler(interface), path, "name=claimed")
    assert hit.status == 500
    assert request_errors(path) == [(SynchronousOnlyOperation, ASYNC_UNSAFE)]
    assert names() == []
    evidence(f"{interface} atomic block in async view", status=hit.status,
             raised="SynchronousOnlyOperation")  # fmt: skip


@atomic_works
async def test_guard_off_the_block_does_not_cover_async_queries(monkeypatch):
    # DJANGO_ALLOW_ASYNC_UNSAFE lets the block open, on this thread's connection. acreate() runs
    # its INSERT through sync_to_async on another thread, another connection, in autocommit.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with pytest.raises(Rollback):
        with transaction.atomic():
            await Author.objects.acreate(name="awaited in the block")
            Author.objects.create(name="called in the block")
            raise Rollback
    assert names() == ["awaited in the block"]


# --- the documented form: a sync function under atomic, through sync_to_async -----------------


@atomic_function
@each_interface
@pytest.mark.parametrize(
    "fail, status, kept", [("0", 200, ["ada"]), ("1", 409, [])], ids=["commit", "rollback"]
)
def test_atomic_sync_function_through_sync_to_async(interface, fail, status, kept):
    hit = serve_once(
        interface, handler(interface), "/transactions/atomic-via-sync-to-async/",
        f"name=ada&fail={fail}",
    )  # fmt: skip
    assert hit.status == status
    seen = hit.json()
    assert seen["in_atomic_block"] is True
    # The transaction ran off the view's thread (the one with the event loop).
    assert seen["thread"] != seen["view_thread"]
    assert names() == kept
    assert Book.objects.count() == (2 if kept else 0)


# --- ATOMIC_REQUESTS ------------------------------------------------------------------------


@atomic_requests_async
@each_interface
def test_atomic_requests_refuses_async_views(interface, atomic_requests, request_errors,
                                             evidence):  # fmt: skip
    path = "/transactions/add-author-async/"
    app = handler(interface)  # builds fine: views are checked per request, not at start-up
    hit = serve_once(interface, app, path, "name=async")
    assert hit.status == 500
    assert request_errors(path) == [(RuntimeError, NO_ATOMIC_REQUESTS)]
    evidence(f"{interface} ATOMIC_REQUESTS async view", status=hit.status, raised="RuntimeError")
    assert names() == []  # the view never ran
    # The same handler keeps serving sync views, inside a transaction.
    hit = serve_once(interface, app, "/transactions/add-author/", "name=sync")
    assert (hit.status, hit.json()) == (200, {"in_atomic_block": True})
    assert names() == ["sync"]


@atomic_requests_sync
@each_interface
@pytest.mark.parametrize("atomic, kept", [(True, []), (False, ["sync"])], ids=["on", "off"])
def test_atomic_requests_rolls_back_a_failing_sync_view(interface, atomic, kept, monkeypatch,
                                                        request_errors):  # fmt: skip
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", atomic)
    path = "/transactions/add-author/"
    hit = serve_once(interface, handler(interface), path, "name=sync&fail=1")
    assert hit.status == 500
    assert request_errors(path) == [(Rollback, "the view failed after writing")]
    assert names() == kept


@non_atomic_requests
@each_interface
def test_non_atomic_requests_lets_an_async_view_through(interface, atomic_requests):
    hit = serve_once(
        interface, handler(interface), "/transactions/add-author-async-exempt/", "name=exempt"
    )
    assert (hit.status, hit.json()) == (200, {"written": True})
    assert names() == ["exempt"]


@atomic_requests_async
@pytest.mark.interface("asgi")
async def test_override_settings_does_not_switch_atomic_requests_on():
    databases = {"default": {**settings.DATABASES["default"], "ATOMIC_REQUESTS": True}}
    message = "Overriding setting DATABASES can lead to unexpected behavior."
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$"), override_settings(DATABASES=databases):
        hit = await asgi_get(handler("asgi"), "/transactions/add-author-async/", "name=async")
    assert connections.settings["default"]["ATOMIC_REQUESTS"] is False
    assert (hit.status, hit.json()) == (200, {"written": True})


@atomic_works
def test_sync_code_outside_a_loop_is_not_guarded():
    # Control for the first test: the same block, in a thread with no event loop, just works.
    with transaction.atomic():
        Author.objects.create(name="sync")
        assert connections["default"].in_atomic_block
    assert names() == ["sync"]
