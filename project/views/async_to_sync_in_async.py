"""Views for the ``async-to-sync-in-async`` claim (specs/test_async_to_sync_in_async.py), mounted at
/async-to-sync-in-async/.

The claim's forms, as people write them: an async view that calls
``async_to_sync(fetch_greeting)()`` itself (``direct``), or through a plain ``def`` helper it
calls (``through-sync``: event loop -> async -> sync -> async_to_sync). Beside them, the forms that
work: awaiting the coroutine function directly (``await``), and running the sync helper through
``sync_to_async`` (``sync-to-async``), off the event loop's thread.

``report/<form>/`` runs the same call, catches what it raises and answers it as JSON (type,
message, the function and file that raised it), so a test can read the exception exactly from any
server.
"""

import traceback

from asgiref.sync import async_to_sync, sync_to_async
from django.http import JsonResponse
from django.urls import path

from project.evidence import where

# Where each ``fetch_greeting`` body ran, in this process (the in-process tests read it).
RAN = []


async def fetch_greeting(label):
    """The coroutine function the views want the result of."""
    ran = where()
    RAN.append(label)
    return {"greeting": "hello", "ran": ran}


def fetch_greeting_sync(label):
    """A plain def that calls the coroutine function through async_to_sync."""
    return async_to_sync(fetch_greeting)(label)


# --- the claim, as people write it -------------------------------------------------------------


async def direct(request):
    result = async_to_sync(fetch_greeting)(request.path)
    return JsonResponse({**result, "view": where()})


async def through_sync(request):
    result = fetch_greeting_sync(request.path)
    return JsonResponse({**result, "view": where()})


# --- what works instead ------------------------------------------------------------------------


async def awaited(request):
    result = await fetch_greeting(request.path)
    return JsonResponse({**result, "view": where()})


async def through_sync_to_async(request):
    helper = {}

    def helper_call(label):
        helper["where"] = where()
        return fetch_greeting_sync(label)

    result = await sync_to_async(helper_call)(request.path)
    return JsonResponse({**result, "view": where(), "helper": helper["where"]})


CLAIMED = {"direct": direct, "through-sync": through_sync}
FIXED = {"await": awaited, "sync-to-async": through_sync_to_async}


def report(view):
    """``view``, answering what it raises as JSON (200) instead of a 500."""

    async def reported(request):
        try:
            return await view(request)
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            return JsonResponse({
                "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "message": str(exc),
                "raised_in": last.name,
                "raised_file": last.filename,
                "ran": request.path in RAN,
                "view": where(),
            })  # fmt: skip

    return reported


urlpatterns = [
    *(path(f"{form}/", view) for form, view in {**CLAIMED, **FIXED}.items()),
    *(path(f"report/{form}/", report(view)) for form, view in CLAIMED.items()),
]
