"""Seed claim 4: middleware order.

``SyncMiddleware`` and ``AsyncMiddleware`` are the quiz's classes, verbatim. Note what the quiz's
``AsyncMiddleware`` does not say: it sets neither ``async_capable`` nor ``sync_capable``, so
Django takes the defaults (``sync_capable = True``, ``async_capable = False``) and treats it as a
*synchronous* middleware whose ``__call__`` happens to return a coroutine.

``DocumentedAsyncMiddleware`` is the form Django's middleware docs ("Asynchronous support")
give for an async-only class: the capability flags, and ``markcoroutinefunction`` so that
``asgiref.sync.iscoroutinefunction`` recognises the instance as async.

``STACKS`` names the stacks the spec serves; ``SPEC_MIDDLEWARE`` picks one (project/settings.py).
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

# --- the quiz's snippet, verbatim -----------------------------------------------------------
class SyncMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        print('SyncMiddleware init')

    def __call__(self, request):
        print('SyncMiddleware before')
        response = self.get_response(request)
        print('SyncMiddleware after')
        return response

class AsyncMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        print('AsyncMiddleware init')

    async def __call__(self, request):
        print('AsyncMiddleware before')
        response = await self.get_response(request)
        print('AsyncMiddleware after')
        return response
# ---------------------------------------------------------------------------------------------


class DocumentedAsyncMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)
        print("DocumentedAsyncMiddleware init")

    async def __call__(self, request):
        print("DocumentedAsyncMiddleware before")
        response = await self.get_response(request)
        print("DocumentedAsyncMiddleware after")
        return response


_SYNC = "project.middleware.SyncMiddleware"
_ASYNC = "project.middleware.AsyncMiddleware"
_DOCUMENTED = "project.middleware.DocumentedAsyncMiddleware"

STACKS = {
    # No middleware: nothing adapts the handler, so a view runs where the server puts it.
    "none": [],
    "seed": [_SYNC, _ASYNC],
    "seed-reversed": [_ASYNC, _SYNC],
    "documented": [_SYNC, _DOCUMENTED],
    "documented-reversed": [_DOCUMENTED, _SYNC],
    # One plain synchronous middleware (the benchmark's adaptation-cost figure).
    "bench-one-sync": ["project.middleware_bench.PassThroughMiddleware"],
}


# Claims sync-middleware-in-async-stack and middleware-capability-flags (classes in
# project/middleware_catalogue.py).
_CATALOGUE = "project.middleware_catalogue."
STACKS.update({
    "catalogue-sync": [_CATALOGUE + "SyncTrail"],
    # DebugRequestLogToStderr last: built first, so django.request DEBUG records reach stderr
    # before any other middleware is adapted.
    "catalogue-sync-logged": [_CATALOGUE + "SyncTrail", _CATALOGUE + "DebugRequestLogToStderr"],
    "catalogue-hybrid-async-call": [_CATALOGUE + "HybridAsyncCall"],
    "catalogue-capabilities": [
        _CATALOGUE + "documented_hybrid",
        _CATALOGUE + "NotUsedWithReason",
        _CATALOGUE + "NotUsedQuietly",
        _CATALOGUE + "DebugRequestLogToStderr",
    ],
})


# Claim view-returns-coroutine (specs/test_view_returns_coroutine.py): a process_exception() that
# hands Django a coroutine, in each kind of middleware. BaseHandler.load_middleware adapts every
# process_exception to sync (adapt_method_mode(False, ...)): a def is called as it is, an async
# def through async_to_sync, which awaits it and returns what it returned. ``SEEN`` lists the
# messages of the exceptions process_exception() was called with, ``HANDLED`` those whose
# coroutine body ran.
class SyncProcessExceptionReturnsCoroutine:
    """A synchronous middleware (no capability flags: Django's defaults) whose def
    process_exception() returns a coroutine."""

    SEEN = []
    HANDLED = []

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        self.SEEN.append(str(exception))
        return self.handled(request, exception)

    async def handled(self, request, exception):
        from django.http import HttpResponse

        self.HANDLED.append(str(exception))
        return HttpResponse(f"handled: {exception}")


class AsyncProcessExceptionReturnsCoroutine:
    """An async-only middleware (Django's documented form) whose async def process_exception()
    returns a coroutine without awaiting it."""

    async_capable = True
    sync_capable = False
    SEEN = []
    HANDLED = []

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        return await self.get_response(request)

    async def process_exception(self, request, exception):
        self.SEEN.append(str(exception))
        return self.handled(request, exception)

    async def handled(self, request, exception):
        from django.http import HttpResponse

        self.HANDLED.append(str(exception))
        return HttpResponse(f"handled: {exception}")


STACKS.update({
    "process-exception-coroutine-sync": ["project.middleware.SyncProcessExceptionReturnsCoroutine"],
    "process-exception-coroutine-async": [
        "project.middleware.AsyncProcessExceptionReturnsCoroutine"
    ],
})


# Claims request-user-in-async-view, session-async-api and decorators-on-async-views
# (specs/test_request_user_in_async_view.py, test_session_async_api.py,
# test_decorators_on_async_views.py): Django's own session and authentication middleware, in the
# order Django's startproject template lists them.
STACKS.update({
    "auth": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
})
