"""Views for three claims about kinds of view (mounted at /view-kinds/).

- ``async-view-under-wsgi`` (specs/test_async_view_under_wsgi.py): an async view whose awaits
  call the harness's meeting point either together (``asyncio.gather``) or one after another, and
  that reports on which loop and thread it ran, and where ``sync_to_async`` sends sync code.
- ``view-returns-coroutine`` (specs/test_view_returns_coroutine.py): views that hand Django a
  coroutine in each way people write it, beside the forms Django does await; views that raise,
  and a response whose render() raises, for a middleware whose process_exception() hands back a
  coroutine.
- ``class-based-mixed-handlers`` (specs/test_class_based_mixed.py): ``MixedHandlers``, the claim's
  class (async ``get``, sync ``post``), and the forms that work. ``MixedHandlers`` is deliberately
  NOT in ``urlpatterns``: its ``as_view()`` raises, and this module's URLconf is part of the site's.
"""

import asyncio
import itertools
import os
import threading
import weakref

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views import View

from project.evidence import ameet, where

# --- async-view-under-wsgi -------------------------------------------------------------------

# Event loops get a serial number the first time a view sees them (per process), so a test can
# tell "the same loop again" from "a new loop" even after a dead loop's id() has been reused.
_LOOP_SERIALS = weakref.WeakKeyDictionary()
_NEXT_SERIAL = itertools.count(1)
_SERIALS_LOCK = threading.Lock()


def _loop_serial():
    loop = asyncio.get_running_loop()
    with _SERIALS_LOCK:
        if loop not in _LOOP_SERIALS:
            _LOOP_SERIALS[loop] = next(_NEXT_SERIAL)
        return _LOOP_SERIALS[loop]


async def _meet(port, group, n):
    return await ameet(port, group, n), threading.get_ident()


async def _meetings(request, together):
    """``?meet=PORT&group=G&n=N``: N awaits in one view, each waiting at the meeting point for all
    N of them (none without ``meet``)."""
    k = int(request.GET.get("n", 0))
    port, group = int(request.GET.get("meet", 0)), request.GET.get("group", "-")
    calls = [_meet(port, group, k) for _ in range(k)]
    if together:
        results = await asyncio.gather(*calls)
    else:
        results = [await call for call in calls]
    view_thread = where()
    return JsonResponse({
        "meetings": [answer for answer, _ in results],
        "await_threads": sorted({thread for _, thread in results}),
        "view_thread": view_thread,
        # Where a thread-sensitive sync_to_async sends sync code from inside this view.
        "sync_thread": await sync_to_async(where)(),
        "loop": _loop_serial(),
        "pid": os.getpid(),
    })  # fmt: skip


async def gathered_awaits(request):
    return await _meetings(request, together=True)


async def awaits_one_by_one(request):
    return await _meetings(request, together=False)


# --- view-returns-coroutine ------------------------------------------------------------------

# Paths of the requests whose ``greeting`` coroutine actually ran (in-process tests read it).
GREETED = []


async def greeting(request):
    GREETED.append(request.path)
    return JsonResponse({"greeting": "hello"})


# The claim, written the two ways people write it: a coroutine is returned, not awaited.
async def async_returns_coroutine(request):
    return greeting(request)


def sync_returns_coroutine(request):
    return greeting(request)


# What Django does await: a view it recognises as async, whose call returns the coroutine.
async def async_awaits(request):
    return await greeting(request)


def marked_returns_coroutine(request):
    return greeting(request)


markcoroutinefunction(marked_returns_coroutine)


class DeferredResponse(HttpResponse):
    """A response with a ``render()`` (like TemplateResponse) that hands back a coroutine: the
    one road to the "Response is still a coroutine." guard of _get_response_async."""

    def render(self):
        return greeting(self.request)


def deferred_render(request):
    response = DeferredResponse()
    response.request = request
    return response


# For a process_exception() that hands back a coroutine (the middleware in project/middleware.py):
# a view that raises, of each kind, and a response whose render() raises (as a TemplateResponse
# whose template fails does), which Django hands to process_exception() too.
def view_raises(request):
    raise ValueError("the view failed")


async def async_view_raises(request):
    raise ValueError("the view failed")


class RaisingRender(HttpResponse):
    def render(self):
        raise ValueError("render() failed")


def render_raises(request):
    return RaisingRender()


# --- class-based-mixed-handlers --------------------------------------------------------------


def _handled(view, request, kind):
    try:
        asyncio.get_running_loop()
        loop = _loop_serial()
    except RuntimeError:
        loop = None
    return JsonResponse({
        "view": type(view).__name__, "method": request.method, "handler": kind,
        "in_loop": loop is not None, "loop": loop, "thread": threading.get_ident(),
    })  # fmt: skip


class MixedHandlers(View):
    """The claim's class: async get(), sync post(). Not routed (see the module docstring)."""

    async def get(self, request):
        return _handled(self, request, "async")

    def post(self, request):
        return _handled(self, request, "sync")


class AllAsync(View):
    async def get(self, request):
        return _handled(self, request, "async")

    async def post(self, request):
        return _handled(self, request, "async")


class AllSync(View):
    def get(self, request):
        return _handled(self, request, "sync")

    def post(self, request):
        return _handled(self, request, "sync")


class AsyncWithSyncWork(View):
    """The corrected form: every handler async; sync work goes through sync_to_async."""

    async def get(self, request):
        return _handled(self, request, "async")

    async def post(self, request):
        return await sync_to_async(self.sync_post)(request)

    def sync_post(self, request):
        return _handled(self, request, "sync")


urlpatterns = [
    path("under-wsgi/gathered/", gathered_awaits),
    path("under-wsgi/one-by-one/", awaits_one_by_one),
    path("coroutine/async-returns-coroutine/", async_returns_coroutine),
    path("coroutine/sync-returns-coroutine/", sync_returns_coroutine),
    path("coroutine/async-awaits/", async_awaits),
    path("coroutine/marked-returns-coroutine/", marked_returns_coroutine),
    path("coroutine/deferred-render/", deferred_render),
    path("coroutine/view-raises/", view_raises),
    path("coroutine/async-view-raises/", async_view_raises),
    path("coroutine/render-raises/", render_raises),
    path("class-based/all-async/", AllAsync.as_view()),
    path("class-based/all-sync/", AllSync.as_view()),
    path("class-based/async-with-sync-work/", AsyncWithSyncWork.as_view()),
]
