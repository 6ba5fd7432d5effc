"""Views for the ``thread-local-in-async`` claim (specs/test_thread_local_in_async.py), mounted
at /thread-locals/.

``threading.local`` as people use it for per-request data (a current user, a tenant), set in one
place and read in another, and ``contextvars``, what async code uses instead:

- ``async-set/?value=V``: the async view reads ``LOCAL.value`` on its own thread (what an
  earlier request may have left there), then sets it to V.
- ``sync-set/?value=V``: the async view makes two ``sync_to_async`` calls: the first reads
  ``LOCAL.value`` (what an earlier request's sync code may have left on that thread) and sets it
  to V, the second reads it again. Each reports ``where()``.
- ``local-to-sync/?value=V``: the async view sets ``LOCAL.value`` to V, and a ``sync_to_async``
  call reads it.
- ``contextvar/``: the view sets ``VAR`` to "view", a ``sync_to_async`` call reads it and sets it
  to "sync", and the view reads it after the await. Then one ``sync_to_async`` call sets
  ``TOKEN_VAR`` and returns the token, and a second one resets it with that token; the answer
  carries what that raised (type and message) and ``TOKEN_VAR``'s value in the view after it.
"""

import contextvars
import threading

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.urls import path

from project.evidence import where

LOCAL = threading.local()
VAR = contextvars.ContextVar("thread_locals_var", default="unset")
TOKEN_VAR = contextvars.ContextVar("thread_locals_token_var", default="unset")


def _swap(value):
    before = getattr(LOCAL, "value", None)
    LOCAL.value = value
    return {"before": before, **where()}


def _read():
    return {"value": getattr(LOCAL, "value", None), **where()}


async def async_set(request):
    return JsonResponse(_swap(request.GET["value"]))


async def sync_set(request):
    first = await sync_to_async(_swap)(request.GET["value"])
    second = await sync_to_async(_read)()
    return JsonResponse({"first": first, "second": second, "view": where()})


async def local_to_sync(request):
    LOCAL.value = request.GET["value"]
    return JsonResponse({"view": where(), "sync": await sync_to_async(_read)()})


def _sync_sees_and_sets():
    seen = VAR.get()
    VAR.set("sync")
    return seen


async def contextvar(request):
    VAR.set("view")
    seen_in_sync = await sync_to_async(_sync_sees_and_sets)()
    seen_after = VAR.get()
    token = await sync_to_async(TOKEN_VAR.set)("set in a sync_to_async call")
    try:
        await sync_to_async(TOKEN_VAR.reset)(token)
        raised = None
    except Exception as exc:
        raised = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc),
                  "token": repr(token)}  # fmt: skip
    return JsonResponse({
        "seen_in_sync": seen_in_sync, "seen_after": seen_after, "reset": raised,
        "token_var_after": TOKEN_VAR.get(),
    })  # fmt: skip


urlpatterns = [
    path("async-set/", async_set),
    path("sync-set/", sync_set),
    path("local-to-sync/", local_to_sync),
    path("contextvar/", contextvar),
]
