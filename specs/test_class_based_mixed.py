"""A class-based view with an async get() and a sync post().

Claimed (Django docs, Class-based views, "Asynchronous class-based views"): "A class-based view can
define an async get() and a sync post()".

Defining such a class is fine (project/views/view_kinds.py defines ``MixedHandlers`` and imports
cleanly); turning it into a view is not: ``MixedHandlers.as_view()`` raises
``ImproperlyConfigured("MixedHandlers HTTP handlers must either be all sync or all async.")``.
``as_view()`` runs where the URLconf is built, so a URLconf that routes the class fails to import.
Django imports the URLconf to resolve any path, so every request to the site, to any URL, fails,
again and again (a failed import is not cached); and it fails past Django's own error handling,
which needs the URLconf too (to find the 500 handler, or with DEBUG on to name the view on the
technical 500 page): the exception escapes Django's WSGI and ASGI handlers, to be answered by
the server's own 500 (what every server does with an exception that escapes Django:
specs/test_middleware_order.py). (From Django 6.1,
under ASGI, that escaping error's ``__context__`` is an ``ExceptionGroup`` instead of the first
error: ``ASGIHandler.handle`` now serves the request in an ``asyncio.TaskGroup``.)

The forms Django accepts: every handler ``async def`` (sync work inside through
``sync_to_async``), or every handler ``def``, served by Django's WSGI and ASGI handlers alike.
``options()`` and ``http_method_not_allowed()``, which ``View`` itself defines with ``def``, are
exempt: for an async class they hand back a coroutine.

Where the handlers run follows from the view being one async or one sync callable: an async
class's handlers run inside an event loop (ASGI: the loop serving the request, on its thread;
WSGI: a new loop for each request, on another thread than the caller's), a sync class's outside
any loop (ASGI: on another thread than the loop's; WSGI: on the caller's thread).

Why: ``django.views.generic.base.View.view_is_async`` (a class property) collects the handlers
named in ``http_method_names`` except ``options``, and raises unless ``iscoroutinefunction`` gives
one answer for all of them. ``View.as_view()`` reads it to decide whether to mark the view function
with ``markcoroutinefunction``, which is how the handler (``BaseHandler._get_response`` /
``_get_response_async``) later tells an async view from a sync one.
"""

import asyncio
import sys
import threading
import uuid

import pytest
from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from django.views import View

from harness.spec import (
    Claim,
    Statement,
    by_version,
    each_interface,
    handler,
    mixed_handlers,
    serve_once,
)
from project.views.view_kinds import AllAsync, MixedHandlers

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
    question="Can a class-based view have an async get() and a sync post()?",
    topic="views",
    code=("project.views.view_kinds.MixedHandlers",),
    instead=("project.views.view_kinds.AsyncWithSyncWork", "project.views.view_kinds.AllAsync"),
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
@each_interface
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


def serve(interface, method, path):
    """One request through Django's own handler, from this thread with no loop running, as a
    server's thread makes it (serve_once: WSGI called here; ASGI on a new loop run here)."""
    return serve_once(interface, handler(interface), path, method=method)


# Where a handler of each kind runs: (inside an event loop?, on the thread that called Django?)
PLACES = {
    ("wsgi", "async"): (True, False),  # a loop on another thread (async_to_sync's)
    ("wsgi", "sync"): (False, True),  # the caller's (server's) thread
    ("asgi", "async"): (True, True),  # the loop serving the request, which runs on this thread
    ("asgi", "sync"): (False, False),  # another thread (sync_to_async's)
}
WORKING = {  # URL -> (class, {method: handler kind})
    "all-async": ("AllAsync", {"GET": "async", "POST": "async"}),
    "all-sync": ("AllSync", {"GET": "sync", "POST": "sync"}),
    "async-with-sync-work": ("AsyncWithSyncWork", {"GET": "async", "POST": "sync"}),
}


@one_kind
@each_interface
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("url", list(WORKING))
def test_all_async_or_all_sync_classes_work(interface, method, url, evidence):
    hit = serve(interface, method, BASE + url + "/")
    assert hit.status == 200
    body = hit.json()
    view, kinds = WORKING[url]
    assert (body["view"], body["method"], body["handler"]) == (view, method, kinds[method])
    here = threading.get_ident()
    assert (body["in_loop"], body["thread"] == here) == PLACES[(interface, kinds[method])]
    evidence(f"{interface} {method} {url}", handler=kinds[method], status=200)


@one_kind
@pytest.mark.interface("wsgi")
def test_under_wsgi_each_request_gets_a_new_loop():
    # async_to_sync (BaseHandler._get_response) finds no running loop, so it makes one per call.
    first, second = (serve("wsgi", "GET", BASE + "all-async/").json() for _ in range(2))
    assert None not in (first["loop"], second["loop"])
    assert first["loop"] != second["loop"]


@defaults_exempt
def test_views_own_options_and_405_are_plain_defs_that_do_not_count():
    assert not iscoroutinefunction(View.options)
    assert not iscoroutinefunction(View.http_method_not_allowed)
    assert AllAsync.view_is_async is True  # no ImproperlyConfigured: they are not counted
    # For an async class they hand back a coroutine (View.options, http_method_not_allowed).
    view = AllAsync.as_view()
    for request, status in ((RequestFactory().options("/"), 200), (RequestFactory().put("/"), 405)):
        result = view(request)
        assert asyncio.iscoroutine(result)
        assert asyncio.run(result).status_code == status


@defaults_exempt
@each_interface
def test_an_async_class_still_answers_options_and_405(interface):
    options = serve(interface, "OPTIONS", BASE + "all-async/")
    assert (options.status, options.headers["allow"]) == (200, "GET, POST, HEAD, OPTIONS")
    put = serve(interface, "PUT", BASE + "all-async/")
    assert (put.status, put.headers["allow"]) == (405, "GET, POST, HEAD, OPTIONS")
