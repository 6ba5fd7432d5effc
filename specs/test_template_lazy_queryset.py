"""An unevaluated QuerySet passed to a template from an async view.

The view (project/views/template_lazy_queryset.py)::

    async def books(request):
        books = Book.objects.filter(author__name=AUTHOR).order_by("title")
        return render(request, "template_lazy_queryset/books.html", {"books": books})

with ``django.shortcuts.render`` and ``books.html`` =
``{% for book in books %}{{ book.title }};{% endfor %}``.

Claimed (an answer on lune.dev to "Is Django Template Iteration Asynchronous by Default?"):
"When you pass a queryset to a template and iterate over it with a {% for %} loop, Django will
execute the query synchronously at that point, which can block the event loop in an asynchronous
context." A Django Forum answer says the first half
(https://forum.djangoproject.com/t/async-context-processors/27935/2): "You are correct, the entire
rendering process is sync.", as Django's async plan did (DEP 0009, Templating,
https://github.com/django/deps/blob/main/accepted/0009-async.rst): "Templating is currently
entirely synchronous, and the plan is to leave it this way for the near future."

What is true: the first half. ``render()`` renders then and there, in the view's own thread, which
runs the event loop; the ``{% for %}`` asks the QuerySet for its length and that evaluates it. But
the query never runs there, so it cannot block the loop: Django's guard stops it before any SQL,
with ``SynchronousOnlyOperation: You cannot call this from an async context - use a thread or
sync_to_async.``, and the view answers 500. The same under WSGI, where asgiref's
``async_to_sync`` runs the async view in an event loop of its own (on another thread). A lazy
related manager (``{% for book in author.books.all %}``) is evaluated the same way.

What works: evaluate the QuerySet in the view first (``[b async for b in qs]`` or
``await sync_to_async(list)(qs)``: the query runs on a worker thread, the template then iterates
a list); or render in a thread (``await sync_to_async(render)(...)``); or return an unrendered
``TemplateResponse``: Django's handler renders it after the view, off the loop.

Why: ``django.shortcuts.render`` calls ``loader.render_to_string`` synchronously;
``django.template.defaulttags.ForNode.render`` calls ``len(values)`` -> ``QuerySet.__len__`` ->
``QuerySet._fetch_all`` -> ``SQLCompiler.execute_sql`` -> ``BaseDatabaseWrapper.cursor()``,
guarded by ``django.utils.asyncio.async_unsafe``. A ``TemplateResponse`` is rendered by
``django.core.handlers.base.BaseHandler._get_response_async`` with
``sync_to_async(response.render, thread_sensitive=True)`` (and by ``_get_response`` in the
request's thread under WSGI).
"""

import asyncio
import html
import threading

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.test import RequestFactory

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    ServerConfig,
    Statement,
    assert_view_outcome,
    each_interface,
    each_proves,
    get,
    get_with_output,
    handler,
    serve_once,
    server_error_record,
    serving,
)
from project.library.models import Author, Book
from project.views import template_lazy_queryset as views

CLAIM = Claim(
    id="template-lazy-queryset",
    source="lune.dev, answer to \"Is Django Template Iteration Asynchronous by Default?\"",
    url="https://lune.dev/questions/9076/is-django-template-iteration-asynchronous-by-default",
    claim=(
        "When you pass a queryset to a template and iterate over it with a {% for %} loop, "
        "Django will execute the query synchronously at that point, which can block the event "
        "loop in an asynchronous context."
    ),
    question=(
        "In an async view, does a QuerySet passed to render() run its query when the template's "
        "{% for %} reaches it, blocking the event loop?"
    ),
    topic="views",
    code=("project.views.template_lazy_queryset.books",),
    instead=(
        "project.views.template_lazy_queryset.books_async_for",
        "project.views.template_lazy_queryset.books_listed_in_thread",
        "project.views.template_lazy_queryset.books_render_in_thread",
        "project.views.template_lazy_queryset.books_template_response",
    ),
    statements=[
        Statement(
            "evaluated-at-for",
            "A QuerySet passed to render() from an async view is evaluated when the template's "
            "{% for %} loop reaches it, synchronously, on the thread that runs the view's event "
            "loop.",
            "holds",
        ),
        Statement(
            "blocks-loop",
            "The query then runs there, blocking the event loop.",
            "refuted",
            reality=(
                "No query runs on the loop: django.utils.asyncio.async_unsafe stops it at "
                "connection.cursor() "
                "with SynchronousOnlyOperation (\"You cannot call this from an async context - "
                "use a thread or sync_to_async.\") and the view answers 500, under ASGI and under "
                "WSGI (where async_to_sync runs the view in an event loop of its own)."
            ),
        ),
        Statement(
            "related-manager",
            "A lazy related manager ({% for book in author.books.all %}) is evaluated the same "
            "way and raises SynchronousOnlyOperation too.",
            "holds",
            claimed=False,
        ),
        Statement(
            "evaluate-first",
            "Evaluated in the view first ([b async for b in qs] or await "
            "sync_to_async(list)(qs)), the same template renders: the query runs off the event "
            "loop's thread (a worker thread under ASGI, the request's thread under WSGI), the "
            "template iterates a list.",
            "holds",
            claimed=False,
        ),
        Statement(
            "render-in-thread",
            "await sync_to_async(render)(...) renders the lazy QuerySet, evaluating it on a "
            "thread without an event loop.",
            "holds",
            claimed=False,
        ),
        Statement(
            "template-response",
            "An unrendered TemplateResponse with the lazy QuerySet works: Django's handler "
            "renders it after the view returns, on a thread without an event loop.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.shortcuts.render -> loader.render_to_string, synchronous; "
        "django.template.defaulttags.ForNode.render -> len(values) -> QuerySet.__len__ -> "
        "QuerySet._fetch_all -> SQLCompiler.execute_sql -> BaseDatabaseWrapper.cursor(), "
        "guarded by django.utils.asyncio.async_unsafe; a TemplateResponse is rendered by "
        "django.core.handlers.base.BaseHandler._get_response_async through "
        "sync_to_async(response.render, thread_sensitive=True), by _get_response in the "
        "request's thread under WSGI."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-safety",
)
pytestmark = pytest.mark.django_db(transaction=True)
evaluated_at_for = CLAIM.statement("evaluated-at-for")
blocks_loop = CLAIM.statement("blocks-loop")
related_manager = CLAIM.statement("related-manager")
evaluate_first = CLAIM.statement("evaluate-first")
render_in_thread = CLAIM.statement("render-in-thread")
template_response = CLAIM.statement("template-response")

BASE = "/template-lazy-queryset/"
RENDERED_BOOKS = b"Emma;Persuasion;\n"


@pytest.fixture
def books():
    writer = Author.objects.create(name=views.AUTHOR)
    for title in views.TITLES:
        Book.objects.create(title=title, author=writer)
    views.RENDERED.clear()


def assert_stopped_at_the_cursor_inside_the_for(raised):
    """The traceback: ForNode.render took len() of the QuerySet, which tried to query, and the
    guard around the connection's cursor() raised before any SQL was sent. ``raised``: what
    pytest.raises caught, or an ``ExceptionInfo`` of what Django logged (logged_exception)."""
    assert str(raised.value) == ASYNC_UNSAFE
    frames = raised.traceback
    assert frames[-1].frame.code.name == "inner"
    assert frames[-1].path.as_posix().endswith("django/utils/asyncio.py")
    assert frames[-2].frame.code.name == "execute_sql"
    assert "self.connection.cursor()" in str(frames[-2].statement)
    names = [(entry.path.as_posix().rsplit("/", 2)[-2:], entry.frame.code.name) for entry in frames]
    for_at = names.index((["template", "defaulttags.py"], "render"))
    assert names[for_at + 1] == (["models", "query.py"], "__len__")


def logged_exception(caplog, path):
    """The exception behind the 500 Django logged for ``path``, with its traceback, as pytest's
    ExceptionInfo."""
    return pytest.ExceptionInfo.from_exc_info(server_error_record(caplog, path).exc_info)


# --- where the template evaluates it -------------------------------------------------------------


@evaluated_at_for
async def test_the_for_loop_evaluates_it_on_the_loop_thread(books, query_threads):
    with pytest.raises(SynchronousOnlyOperation) as raised:
        await views.books(RequestFactory().get(BASE + "books/"))
    assert_stopped_at_the_cursor_inside_the_for(raised)
    # Rendered, and the query attempted, right here: the thread that runs this event loop.
    [rendered] = views.RENDERED
    assert (rendered["thread"], rendered["loop"]) == (
        threading.get_ident(), id(asyncio.get_running_loop())
    )
    assert query_threads == [threading.get_ident()]


# --- what the view answers ------------------------------------------------------------------------


@blocks_loop
@each_interface
def test_the_view_answers_500_before_any_query(books, interface, caplog, query_threads, evidence):
    hit = assert_view_outcome(
        interface, BASE + "books/", 500, None, caplog, error=(SynchronousOnlyOperation, ASYNC_UNSAFE)
    )
    # No query ran: the guard stopped it at cursor(), inside the {% for %}'s len().
    assert_stopped_at_the_cursor_inside_the_for(logged_exception(caplog, BASE + "books/"))
    [rendered] = views.RENDERED
    assert rendered["loop"] is not None  # rendered inside an event loop, under WSGI too
    # One attempt, on the loop's thread. (On 4.2 and 5.0, and with DEBUG on, Django's error
    # report for the 500 then reprs the view's locals, the QuerySet included, on other threads:
    # ExceptionReporter, built by AdminEmailHandler even with no ADMINS before 5.1.)
    assert query_threads[0] == rendered["thread"] and query_threads.count(rendered["thread"]) == 1
    # Under WSGI the loop is async_to_sync's, on a thread of its own, not the request's.
    assert (rendered["thread"] == threading.get_ident()) is (interface == "asgi")
    evidence(f"in process ({interface}) books", status=hit.status, error="SynchronousOnlyOperation")


@related_manager
@each_interface
def test_a_lazy_related_manager_raises_the_same(books, interface, caplog, query_threads):
    assert_view_outcome(
        interface, BASE + "author/", 500, None, caplog, error=(SynchronousOnlyOperation, ASYNC_UNSAFE)
    )
    assert_stopped_at_the_cursor_inside_the_for(logged_exception(caplog, BASE + "author/"))
    [rendered] = views.RENDERED
    assert rendered["loop"] is not None
    # aget() ran on a worker thread; author.books.all, evaluated by the {% for %}, in the loop's.
    assert query_threads[1] == rendered["thread"] != query_threads[0]
    assert query_threads.count(rendered["thread"]) == 1


@related_manager
async def test_the_related_manager_fails_inside_the_for(books):
    with pytest.raises(SynchronousOnlyOperation) as raised:
        await views.author(RequestFactory().get(BASE + "author/"))
    assert_stopped_at_the_cursor_inside_the_for(raised)


# --- what works instead ---------------------------------------------------------------------------

INSTEAD = {
    "async-for": evaluate_first,
    "listed-in-thread": evaluate_first,
    "render-in-thread": render_in_thread,
    "template-response": template_response,
}


@each_interface
@each_proves("form", INSTEAD)
def test_what_works_instead(books, interface, form, caplog, query_threads, evidence):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve_once(interface, handler(interface), f"{BASE}{form}/")
    assert (hit.status, hit.body) == (200, RENDERED_BOOKS)
    assert [r for r in caplog.records if r.name == "django.request"] == []
    [rendered] = views.RENDERED
    [query_thread] = query_threads
    if INSTEAD[form] is evaluate_first:
        # The template ran in the loop and found a list: no query there.
        assert rendered["loop"] is not None and query_thread != rendered["thread"]
        assert (query_thread == threading.get_ident()) is (interface == "wsgi")
    else:
        # Rendered (and queried) on a thread without a loop: a worker thread under ASGI, the
        # request's own thread under WSGI (async_to_sync's CurrentThreadExecutor / the handler).
        assert rendered["loop"] is None and query_thread == rendered["thread"]
        assert (rendered["thread"] == threading.get_ident()) is (interface == "wsgi")
    evidence(f"in process ({interface}) {form}", status=hit.status)


# --- on a server ----------------------------------------------------------------------------------

SERVED = {
    "books": blocks_loop,
    "author": related_manager,
    "async-for": evaluate_first,
    "template-response": template_response,
}


# DEBUG on: the technical 500 page and the server's output carry the exception.
@serving("uvicorn", config=ServerConfig(debug=True))
@each_proves("form", SERVED)
def test_served(server, form, evidence):
    assert get(server.url, BASE + "seed/").json() == {"books": 2}
    hit, output = get_with_output(server, f"{BASE}{form}/")
    if SERVED[form] in (blocks_loop, related_manager):
        assert hit.status == 500
        assert ASYNC_UNSAFE in html.unescape(hit.body.decode())
        assert f"SynchronousOnlyOperation: {ASYNC_UNSAFE}" in output
    else:
        assert (hit.status, hit.body) == (200, RENDERED_BOOKS)
    evidence(f"{server.name} {form}", status=hit.status)
