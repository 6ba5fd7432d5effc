"""Middleware for the two claims of the Django docs' "Asynchronous support" section.

Claim ``sync-middleware-in-async-stack`` (specs/test_sync_middleware_in_async_stack.py):

- ``SyncTrail``: a plain synchronous middleware, no capability flags, as most third-party
  middleware is written. It notes where its before/after halves ran in the request's *trail*
  (``request.trail``, which the probe views of project/views/middleware_probe.py add to) and
  returns the trail in the ``X-Trail`` response header.
- ``AsyncOnlyTrail``: the async-only class form the docs give, for the other adaptation message.
- ``DebugRequestLogToStderr``: does what a ``LOGGING`` setting with ``"django.request": {"level":
  "DEBUG", ...}`` would do, for a server started from this project's settings (which keep
  Django's default LOGGING): when Django builds it, it sends the ``django.request`` logger's DEBUG
  records to stderr, then takes itself out of the stack with ``MiddlewareNotUsed``. Django builds
  the stack from the last MIDDLEWARE entry to the first, so listed *last* it is in place before any
  other middleware is adapted. It changes the logging of the process that builds it: for servers
  only, never for a handler built inside the test process.

Claim ``middleware-capability-flags`` (specs/test_middleware_capabilities.py): one middleware per
case of ``sync_capable`` / ``async_capable``, ``sync_and_async_middleware`` and
``MiddlewareNotUsed``, each named for what it declares.
"""

import json
import logging
import sys

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import MiddlewareNotUsed
from django.utils.decorators import sync_and_async_middleware

from project.evidence import where

TRAIL_HEADER = "X-Trail"


def note(request, label):
    if not hasattr(request, "trail"):
        request.trail = []
    request.trail.append({"at": label, **where()})


def trail(hit):
    """The trail a response carries (``hit``: anything with ``headers`` and ``body``): the
    middleware's header if it ran, else the probe view's own record."""
    header = hit.headers.get(TRAIL_HEADER.lower())
    return json.loads(header) if header else json.loads(hit.body)["trail"]


def with_trail(request, response):
    response[TRAIL_HEADER] = json.dumps(request.trail)
    return response


# --- claim: sync-middleware-in-async-stack --------------------------------------------------


class SyncTrail:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        note(request, "SyncTrail before")
        response = self.get_response(request)
        note(request, "SyncTrail after")
        return with_trail(request, response)


class AsyncOnlyTrail:
    """The docs' async-only class: the flags, and markcoroutinefunction for the instance."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        note(request, "AsyncOnlyTrail before")
        response = await self.get_response(request)
        note(request, "AsyncOnlyTrail after")
        return with_trail(request, response)


class DebugRequestLogToStderr:
    sync_capable = True
    async_capable = True  # no adaptation of its own: nothing to log for it
    PREFIX = "[spec log] "
    FORMAT = PREFIX + "%(name)s %(levelname)s %(message)s"
    REASON = "django.request DEBUG records now go to stderr"

    @classmethod
    def lines(cls, output):
        """What it made a server print: "django.request DEBUG <message>", one per record."""
        return [line.split(cls.PREFIX, 1)[1] for line in output.splitlines() if cls.PREFIX in line]

    def __init__(self, get_response):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(self.FORMAT))
        request_logger = logging.getLogger("django.request")
        request_logger.setLevel(logging.DEBUG)
        request_logger.addHandler(handler)
        raise MiddlewareNotUsed(self.REASON)


# --- claim: middleware-capability-flags -----------------------------------------------------


class NeitherCapable:
    sync_capable = False
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


@sync_and_async_middleware
class HybridAsyncCall:
    """Declared hybrid, but its __call__ is a coroutine function whatever it is given."""

    def __init__(self, get_response):
        self.get_response = get_response

    async def __call__(self, request):
        note(request, "HybridAsyncCall before")
        response = await self.get_response(request)
        note(request, "HybridAsyncCall after")
        return with_trail(request, response)


@sync_and_async_middleware
def hybrid_async_function(get_response):
    """The same mistake as a factory function: it always returns a coroutine function."""

    async def middleware(request):
        note(request, "hybrid_async_function before")
        response = await get_response(request)
        note(request, "hybrid_async_function after")
        return with_trail(request, response)

    return middleware


@sync_and_async_middleware
def documented_hybrid(get_response):
    """The docs' example: pick a sync or an async callable by what get_response is."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            note(request, "documented_hybrid async")
            response = await get_response(request)
            return with_trail(request, response)

    else:

        def middleware(request):
            note(request, "documented_hybrid sync")
            response = get_response(request)
            return with_trail(request, response)

    return middleware


class NotUsedQuietly:
    def __init__(self, get_response):
        raise MiddlewareNotUsed


class NotUsedWithReason:
    def __init__(self, get_response):
        raise MiddlewareNotUsed("not needed in this deployment")
