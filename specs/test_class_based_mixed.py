"""A class-based view with an async get() and a sync post().

Claimed (Django docs, Class-based views, "Asynchronous class-based views"): "A class-based view can
define an async get() and a sync post()".

Defining such a class is fine (project/views/view_kinds.py defines ``MixedHandlers`` and imports
cleanly); turning it into a view is not: ``MixedHandlers.as_view()`` raises
``ImproperlyConfigured("MixedHandlers HTTP handlers must either be all sync or all async.")``. ``as_view()`` runs where the URLconf is built, so a URLconf that
routes the class fails to import. Django imports the URLconf to resolve any path, so every request
to the site, to any URL, fails, again and again (a failed import is not cached); and it fails past
Django's own error handling, which needs the URLconf too (to find the 500 handler, or with DEBUG
on to name the view on the technical 500 page): the exception reaches the server, which answers
the 500 itself (as specs/test_middleware_order.py shows every server does). (From Django 6.1,
under ASGI, that escaping error's ``__context__`` is an ``ExceptionGroup`` instead of the first
error: ``ASGIHandler.handle`` now serves the request in an ``asyncio.TaskGroup``.)

The forms Django accepts: every handler ``async def`` (sync work inside through
``sync_to_async``), or every handler ``def``. ``options()`` and ``http_method_not_allowed()``,
which ``View`` itself defines with ``def``, are exempt: for an async class they hand back a
coroutine.

Where the handlers run follows from the view being one async or one sync callable: an async
class runs on the event loop (ASGI: the server's loop, on the thread that drives it; WSGI: a new
loop on another thread), a sync class off any loop (ASGI: a worker thread; WSGI: the caller's).

Why: ``django.views.generic.base.View.view_is_async`` (a class property) collects the handlers
named in ``http_method_names`` except ``options``, and raises unless ``iscoroutinefunction`` gives
one answer for all of them. ``View.as_view()`` reads it to decide whether to mark the view function
with ``markcoroutinefunction``, which is how the handler (``BaseHandler._get_response`` /
``_get_response_async``) later tells an async view from a sync one.
"""

import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings

from harness.spec import Claim, Statement, by_version, handler, mixed_handlers, serve_once
from project.views.view_kinds import MixedHandlers

CLAIM = Claim(
    id="class-based-mixed-handlers",
    source="Django docs, Class-based views (Asynchronous class-based views)",
    url=(
        "https://docs.djangoproject.com/en/5.2/topics/class-based-views/"
        "#asynchronous-class-based-views"
    ),
    claim="A class-based view can define an async get() and a sync post()",
    statements=[
        Statement(
            "mixed-handlers",
            "A class-based view can define an async get() and a sync post().",
            "refuted",
            reality=(
                "The class can be defined, but View.as_view() raises ImproperlyConfigured('<class> "
                "HTTP handlers must either be all sync or all async.'), so a URLconf routing it "
                "fails to import: every request to any URL of the site raises it, past Django's "
                "500 handling (which needs the URLconf too), DEBUG on or off, under WSGI and ASGI."
            ),
        ),
        Statement(
            "one-kind-works",
            "A class-based view whose handlers are all async (sync work inside through "
            "sync_to_async) or all sync works, under WSGI and ASGI.",
            "holds",
            claimed=False,
        ),
        Statement(
            "view-defaults-exempt",
            "View's own options() and http_method_not_allowed(), plain defs, do not count as "
            "mixing: an all-async class still answers OPTIONS and 405.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.views.generic.base.View.view_is_async (classproperty; handlers in "
        "http_method_names except 'options' must agree on iscoroutinefunction), read by "
        "View.as_view() to markcoroutinefunction the view; URLResolver.urlconf_module imports the "
        "URLconf for resolve() and again for resolve_error_handler() / debug's get_caller()."
    ),
    docs=(
        "https://docs.djangoproject.com/en/5.2/topics/class-based-views/"
        "#asynchronous-class-based-views"
    ),
)
mixed = CLAIM.statement("mixed-handlers")
one_kind = CLAIM.statement("one-kind-works")
defaults_exempt = CLAIM.statement("view-defaults-exempt")

MIXED = mixed_handlers("MixedHandlers")
BASE = "/view-kinds/class-based/"


@mixed
def test_defining_the_class_is_fine_as_view_raises():
    assert MixedHandlers.__module__ == "project.views.view_kinds"  # imported without error
    with pytest.raises(ImproperlyConfigured) as raised:
        MixedHandlers.as_view()
    assert str(raised.value) == MIXED
    # Raised inside as_view(), by the view_is_async class property it reads.
    assert [entry.frame.code.name for entry in raised.traceback[-3:]] == [
        "as_view", "__get__", "view_is_async",
    ]  # fmt: skip
    assert raised.traceback[-1].path.as_posix().endswith("django/views/generic/base.py")


@mixed
def test_the_check_is_a_class_property():
    with pytest.raises(ImproperlyConfigured, match=f"^{MIXED}$"):
        MixedHandlers.view_is_async  # noqa: B018 (reading it is what raises)


@pytest.fixture
def urlconf_routing_the_mixed_class(tmp_path, monkeypatch):
    """A URLconf, importable by name, that routes a harmless view and the mixed class."""
    name = f"spec_mixed_urls_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from django.urls import path\n"
        "from project.views import health, view_kinds\n"
        "urlpatterns = [\n"
        "    path('ping/', health.ping),\n"
        "    path('mixed/', view_kinds.MixedHandlers.as_view()),\n"
        "]\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    yield name
    sys.modules.pop(name, None)


@mixed
def test_a_urlconf_routing_it_fails_to_import(urlconf_routing_the_mixed_class):
    with pytest.raises(ImproperlyConfigured, match=f"^{MIXED}$"):
        __import__(urlconf_routing_the_mixed_class)


SITE_PATHS = ("/ping/", "/ping/", "/mixed/")  # the harmless view too, and again on retry
interfaces = pytest.mark.parametrize("interface", ["wsgi", "asgi"])


# What Django does with the first error needs the URLconf once more, and fails the same way there:
# with DEBUG off, to find the 500 handler (URLResolver.resolve_error_handler); with DEBUG on, for
# the technical 500 page, which resolves the request to name the view (ExceptionReporter's
# get_caller). So the error escapes Django's handler and the server answers 500 by itself.
SECOND_FAILURE = {False: "resolve_error_handler", True: "get_caller"}
# The escaping error's __context__: the first failure (resolving the request); except under ASGI
# from Django 6.1, whose ASGIHandler.handle serves the request in an asyncio.TaskGroup and
# re-raises the group's one exception inside `except BaseExceptionGroup`, so the group replaces it.
CONTEXT = {
    "wsgi": by_version({"4.2": ImproperlyConfigured}),
    "asgi": by_version({"4.2": ImproperlyConfigured, "6.1": ExceptionGroup}),
}


@mixed
@interfaces
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_every_url_of_such_a_site_fails_past_django(
    interface, debug, urlconf_routing_the_mixed_class
):
    app = handler(interface)
    with override_settings(ROOT_URLCONF=urlconf_routing_the_mixed_class, DEBUG=debug):
        for path in SITE_PATHS:
            with pytest.raises(ImproperlyConfigured) as raised:
                serve_once(interface, app, path)
            assert str(raised.value) == MIXED
            context = raised.value.__context__
            assert type(context) is CONTEXT[interface]
            if isinstance(context, ExceptionGroup):
                assert context.exceptions == (raised.value,)
            else:
                assert str(context) == MIXED
            functions = [entry.frame.code.name for entry in raised.traceback]
            assert SECOND_FAILURE[debug] in functions
            assert functions[-1] == "view_is_async"


# Where a handler of each kind runs: (inside an event loop?, on the thread that called Django?)
PLACES = {
    ("wsgi", "async"): (True, False),  # a new loop on a one-off thread
    ("wsgi", "sync"): (False, True),  # the caller's (server's) thread
    ("asgi", "async"): (True, True),  # the loop that drives the handler
    ("asgi", "sync"): (False, False),  # a worker thread, via sync_to_async
}
WORKING = {  # URL -> (class, {method: handler kind})
    "all-async": ("AllAsync", {"GET": "async", "POST": "async"}),
    "all-sync": ("AllSync", {"GET": "sync", "POST": "sync"}),
    "async-with-sync-work": ("AsyncWithSyncWork", {"GET": "async", "POST": "sync"}),
}


async def request(interface, method, path):
    """WSGI path: Django's Client (BaseHandler.get_response), called from this thread with no
    running loop, as a server's thread calls it. ASGI path: AsyncClient, on this test's loop."""
    if interface == "wsgi":
        return await in_a_plain_thread(getattr(Client(), method.lower()), path)
    return await getattr(AsyncClient(), method.lower())(path)


async def in_a_plain_thread(call, *args):
    # Client must not run where a loop is running (as under a WSGI server): run it on a thread
    # of its own, and report that thread as "the caller".
    def run():
        response = call(*args)
        response.caller = threading.get_ident()
        return response

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=10)


@one_kind
@interfaces
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("url", list(WORKING))
async def test_all_async_or_all_sync_classes_work(interface, method, url, evidence):
    response = await request(interface, method, BASE + url + "/")
    assert response.status_code == 200
    body = response.json()
    view, kinds = WORKING[url]
    assert (body["view"], body["method"], body["handler"]) == (view, method, kinds[method])
    caller = getattr(response, "caller", threading.get_ident())
    assert (body["in_loop"], body["thread"] == caller) == PLACES[(interface, kinds[method])]
    evidence(f"{interface} {method} {url}", handler=kinds[method], status=200)


@defaults_exempt
@interfaces
async def test_an_async_class_still_answers_options_and_405(interface):
    # View.options and View.http_method_not_allowed are plain defs, exempt from the check.
    options = await request(interface, "OPTIONS", BASE + "all-async/")
    assert (options.status_code, options.headers["Allow"]) == (200, "GET, POST, HEAD, OPTIONS")
    put = await request(interface, "PUT", BASE + "all-async/")
    assert (put.status_code, put.headers["Allow"]) == (405, "GET, POST, HEAD, OPTIONS")
