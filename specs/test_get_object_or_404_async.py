"""get_object_or_404 in an async view.

The views (project/views/get_object_or_404_async.py)::

    async def book_sync(request, title):
        book = get_object_or_404(Book, title=title)
        ...

    async def book_wrapped(request, title):
        book = await sync_to_async(get_object_or_404)(Book, title=title)
        ...

Claimed (the title of freelawproject/courtlistener pull request 2924, July 2023, on Django 4.2):
"Wrap get_object_or_404 with sync_to_async". In Django's own pull request that then added the
async shortcuts (django/django#17096, ticket #34714), the first draft did exactly that
(``return await sync_to_async(get_list_or_404)(klass, *args, **kwargs)``) and the reviewer
answered: "`QuerySet.aget()` and `afilter()` are already implemented. We should provide an async
variants not only wrappers on existing functions."

What is true: ``get_object_or_404`` is synchronous: called as is in an async view it raises
``SynchronousOnlyOperation`` before any query, so even a missing object gives a 500, not a 404
(under WSGI too: the async view runs in async_to_sync's event loop). Wrapped with
``sync_to_async`` it works: the object, or ``Http404`` and a 404. But the wrapper is needed only
before Django 5.0: since 5.0.0 ``django.shortcuts`` has ``aget_object_or_404`` and
``aget_list_or_404`` (4.2 has neither, checked on 4.2.30), and their ``Http404`` gives a 404
response like the synchronous shortcut's.

Why: ``django.shortcuts.get_object_or_404`` calls ``QuerySet.get()``, whose
``SQLCompiler.execute_sql`` asks ``BaseDatabaseWrapper.cursor()``, guarded by
``django.utils.asyncio.async_unsafe``; the guard's exception is not ``DoesNotExist``, so the
shortcut's ``except queryset.model.DoesNotExist`` never sees it.
``django.shortcuts.aget_object_or_404`` awaits ``QuerySet.aget()`` (``sync_to_async(get)``) and
``aget_list_or_404`` iterates ``filter()`` with ``async for``; ``Http404`` becomes a 404 in
``django.core.handlers.exception.response_for_exception``.
"""

import asyncio
import html
import threading

import django
import django.shortcuts
import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.http import Http404

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    ServerConfig,
    Statement,
    When,
    assert_view_outcome,
    cannot_import,
    each_interface,
    each_proves,
    get,
    get_with_output,
    handler,
    no_match,
    requires_django,
    serve_once,
    serving,
)
from project.library.models import Author, Book
from project.views import get_object_or_404_async as views

CLAIM = Claim(
    id="get-object-or-404-async",
    source="freelawproject/courtlistener pull request 2924 (title)",
    url="https://github.com/freelawproject/courtlistener/pull/2924",
    claim="Wrap get_object_or_404 with sync_to_async",
    question=(
        "In an async view, must get_object_or_404 be wrapped with sync_to_async, for want of an "
        "async version?"
    ),
    topic="views",
    code=(
        "project.views.get_object_or_404_async.book_sync",
        "project.views.get_object_or_404_async.book_wrapped",
    ),
    instead=(
        "project.views.get_object_or_404_async.book_async_shortcut",
        "project.views.get_object_or_404_async.books_async_list",
    ),
    statements=[
        Statement(
            "unwrapped-raises",
            "Called as is in an async view, get_object_or_404 raises SynchronousOnlyOperation "
            "(HTTP 500), for a missing object too, under ASGI and WSGI.",
            "holds",
        ),
        Statement(
            "wrapped-works",
            "Wrapped with sync_to_async, get_object_or_404 works in an async view: the object, "
            "or Http404 and a 404 response, the query run outside the event loop.",
            "holds",
        ),
        Statement(
            "no-async-version",
            "django.shortcuts has no async version of get_object_or_404, so wrapping is the "
            "way.",
            "holds",
            when=[When("refuted", django=">=5.0", why="aget_object_or_404 added in 5.0")],
            reality=(
                "Since Django 5.0.0, django.shortcuts has aget_object_or_404() and "
                "aget_list_or_404(), coroutine functions that await QuerySet.aget() and iterate "
                "filter() with async for (ticket #34714); 4.2 has neither."
            ),
        ),
        Statement(
            "async-shortcut-404",
            "await aget_object_or_404() gives the object, and for a missing one raises Http404 "
            "(\"No Book matches the given query.\"), which Django answers with a 404; "
            "aget_list_or_404() likewise for an empty list.",
            "holds",
            claimed=False,
            when=[When("refuted", django="<5.0", why="no such function before 5.0")],
            reality=(
                "Before Django 5.0 there is none: `from django.shortcuts import "
                "aget_object_or_404` raises ImportError (HTTP 500 from the view)."
            ),
        ),
    ],
    mechanism=(
        "django.shortcuts.get_object_or_404 -> QuerySet.get() -> SQLCompiler.execute_sql -> "
        "BaseDatabaseWrapper.cursor(), guarded by django.utils.asyncio.async_unsafe; "
        "django.shortcuts.aget_object_or_404 -> await QuerySet.aget() (sync_to_async(get)), "
        "aget_list_or_404 -> async for over filter() (Django >= 5.0); Http404 -> 404 in "
        "django.core.handlers.exception.response_for_exception."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/http/shortcuts/#aget-object-or-404",
)
pytestmark = pytest.mark.django_db(transaction=True)
unwrapped_raises = CLAIM.statement("unwrapped-raises")
wrapped_works = CLAIM.statement("wrapped-works")
no_async_version = CLAIM.statement("no-async-version")
async_shortcut_404 = CLAIM.statement("async-shortcut-404")

BASE = "/get-object-or-404-async/"
PRESENT, MISSING = views.TITLES[0], "Daniel-Deronda-1876"
NO_BOOK = no_match("Book")


NO_ASYNC_SHORTCUT = cannot_import("aget_object_or_404", django.shortcuts)


@pytest.fixture
def books():
    writer = Author.objects.create(name=views.AUTHOR)
    for title in views.TITLES:
        Book.objects.create(title=title, author=writer)


def not_found(hit, caplog, path):
    """A 404 from the view's Http404 (DEBUG on: the technical 404 page names its message), logged
    as Django logs any 404."""
    assert hit.status == 404
    body = html.unescape(hit.body.decode())
    assert NO_BOOK in body and "Page not found" in body
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert (record.levelname, record.getMessage()) == ("WARNING", f"Not Found: {path}")


# --- get_object_or_404 as is ----------------------------------------------------------------------


@unwrapped_raises
@each_interface
@pytest.mark.parametrize("title", [PRESENT, MISSING], ids=["present", "missing"])
def test_unwrapped_answers_500(books, interface, title, caplog, query_threads, evidence):
    before = len(query_threads)
    views.RAN.clear()
    hit = assert_view_outcome(interface, f"{BASE}sync/{title}/", 500, None, caplog,
                              error=(SynchronousOnlyOperation, ASYNC_UNSAFE))  # fmt: skip
    # Attempted once on the view's thread, stopped at the cursor. (On 4.2, Django's error report
    # for the 500, ExceptionReporter.get_traceback_text, then queries on other threads.)
    [view] = views.RAN
    assert view["loop"] is not None
    # The view's loop: serve_once's, on this thread, under ASGI; async_to_sync's, on a thread of
    # its own, under WSGI.
    assert (view["thread"] == threading.get_ident()) is (interface == "asgi")
    attempt = query_threads[before]
    assert attempt == view["thread"]
    assert query_threads[before:].count(attempt) == 1
    evidence(f"in process ({interface}) {title}", status=hit.status)


@unwrapped_raises
async def test_unwrapped_raises_before_any_query(books, query_threads):
    from django.shortcuts import get_object_or_404

    with pytest.raises(SynchronousOnlyOperation) as raised:
        get_object_or_404(Book, title=MISSING)
    assert str(raised.value) == ASYNC_UNSAFE
    frames = raised.traceback
    assert frames[-1].path.as_posix().endswith("django/utils/asyncio.py")
    assert frames[-2].frame.code.name == "execute_sql"
    assert "self.connection.cursor()" in str(frames[-2].statement)
    assert [f.frame.code.name for f in frames].count("get_object_or_404") == 1
    assert query_threads == [threading.get_ident()]


# --- wrapped ------------------------------------------------------------------------------------


@wrapped_works
@each_interface
def test_wrapped_gives_the_object(books, interface, caplog, query_threads):
    caplog.set_level("WARNING", logger="django.request")
    hit = serve_once(interface, handler(interface), f"{BASE}wrapped/{PRESENT}/")
    assert hit.status == 200
    assert hit.json() == {"title": PRESENT}
    assert [r for r in caplog.records if r.name == "django.request"] == []
    # Off the loop: a worker thread under ASGI, the request's own thread under WSGI.
    [thread] = query_threads
    assert (thread == threading.get_ident()) is (interface == "wsgi")


@wrapped_works
@each_interface
def test_wrapped_gives_404_for_a_missing_object(books, interface, settings, caplog):
    settings.DEBUG = True
    caplog.set_level("WARNING", logger="django.request")
    path = f"{BASE}wrapped/{MISSING}/"
    not_found(serve_once(interface, handler(interface), path), caplog, path)


# --- is there an async version? -----------------------------------------------------------------


@no_async_version
def test_django_shortcuts_async_versions():
    from django import shortcuts

    expected = CLAIM.expected("no-async-version", interface="asgi")
    found = {name: asyncio.iscoroutinefunction(getattr(shortcuts, name, None))
             for name in ("aget_object_or_404", "aget_list_or_404")}  # fmt: skip
    assert found == dict.fromkeys(found, expected == "refuted")


@async_shortcut_404
@requires_django(since="5.0")
async def test_aget_object_or_404(books, query_threads):
    from django.shortcuts import aget_list_or_404, aget_object_or_404

    assert (await aget_object_or_404(Book, title=PRESENT)).title == PRESENT
    with pytest.raises(Http404) as raised:
        await aget_object_or_404(Book, title=MISSING)
    assert str(raised.value) == NO_BOOK
    listed = await aget_list_or_404(Book.objects.order_by("title"), author__name=views.AUTHOR)
    assert [b.title for b in listed] == views.TITLES
    with pytest.raises(Http404) as raised:
        await aget_list_or_404(Book, author__name="nobody")
    assert str(raised.value) == NO_BOOK
    # Every query on a worker thread, none on this loop's.
    assert len(query_threads) == 4 and threading.get_ident() not in query_threads


ASYNC_SHORTCUT_CASES = {
    "present": (f"async-shortcut/{PRESENT}/", {"title": PRESENT}),
    "missing": (f"async-shortcut/{MISSING}/", None),
    "list": (f"async-list/{views.AUTHOR}/", {"titles": views.TITLES}),
    "empty-list": ("async-list/nobody/", None),
}


@async_shortcut_404
@each_interface
@pytest.mark.parametrize("case", ASYNC_SHORTCUT_CASES)
def test_async_shortcut_views(books, interface, case, settings, caplog, evidence):
    settings.DEBUG = True
    caplog.set_level("WARNING", logger="django.request")
    where, body = ASYNC_SHORTCUT_CASES[case]
    path = BASE + where
    hit = serve_once(interface, handler(interface), path)
    if CLAIM.expected("async-shortcut-404", interface=interface) == "refuted":
        assert hit.status == 500
        [record] = [r for r in caplog.records if r.name == "django.request"]
        assert record.exc_info[0] is ImportError
        name = "aget_list_or_404" if "list" in case else "aget_object_or_404"
        assert str(record.exc_info[1]) == cannot_import(name, django.shortcuts)
    elif body is None:
        not_found(hit, caplog, path)
    else:
        assert hit.status == 200
        assert hit.json() == body
    evidence(f"in process ({interface}) {case}", status=hit.status)


# --- on a server ---------------------------------------------------------------------------------

SERVED = {"sync": unwrapped_raises, "async-shortcut": async_shortcut_404}


# DEBUG on: the technical pages name the exception or the Http404's message.
@serving("uvicorn", config=ServerConfig(debug=True))
@each_proves("form", SERVED)
def test_served_missing_object(server, form, evidence):
    assert get(server.url, BASE + "seed/").json() == {"books": 2}
    hit, output = get_with_output(server, f"{BASE}{form}/{MISSING}/")
    body = html.unescape(hit.body.decode())
    if form == "sync":
        assert hit.status == 500
        assert ASYNC_UNSAFE in body and f"SynchronousOnlyOperation: {ASYNC_UNSAFE}" in output
    elif CLAIM.expected("async-shortcut-404", server) == "holds":
        assert hit.status == 404 and NO_BOOK in body
    else:
        assert hit.status == 500 and f"ImportError: {NO_ASYNC_SHORTCUT}" in output
    evidence(f"{server.name} {form} missing", status=hit.status)
