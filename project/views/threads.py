"""Where Django runs sync code: the views of the thread claims.

Mounted at ``/threads/`` (project/urls.py mounts every view module with ``urlpatterns``).
Every view answers with JSON saying where each part of it ran (``project.evidence.where()``: the
thread's ident and name, its event loop), plus the process's main thread, so a test can tell
"the main thread", "the event loop's thread" and "a thread of its own" apart:

- ``sync/``: a plain sync view (claims sync-views-under-asgi and async-client-faithful). It also
  reports the thread of the event loop that serves it, found by running a coroutine there with
  ``async_to_sync`` (from a sync_to_async thread, asgiref runs it on the calling loop).
- ``sensitive/``: an async view making thread-sensitive ``sync_to_async`` calls, one of them
  nested (sync_to_async -> async_to_sync -> sync_to_async), and one with
  ``thread_sensitive=False`` (claim thread-sensitive-sync-to-async).
- ``nested-asyncio-run/?meet=PORT``: a sync view that starts ``asyncio.run()`` and makes a
  thread-sensitive call inside it: the call pattern of asgiref issue 323. Where the call
  deadlocks, the view still answers: it waits for the call only until nothing in the test can make
  progress any more (the meeting point's ``quiet``), then reports ``deadlocked``.
- ``until-disconnect/?announce=PORT&label=L``: an async view that holds until nothing can make
  progress any more, then completes, and tells the meeting point (group L) ``inside``, then
  ``completed`` or ``cancelled`` (when the client went away).

``?meet=PORT&group=G&n=N`` makes the sync part block on the harness's meeting point
(project/evidence.py), so a test can prove that requests were inside at the same time.
"""

import asyncio
import threading

from asgiref.sync import async_to_sync, sync_to_async
from django.http import JsonResponse
from django.urls import path

from project.evidence import aquiet, meet, meeting_args, stamped, tell, where


def _meet_if_asked(request):
    return meet(*meeting_args(request)) if "meet" in request.GET else None


async def _where_async():
    return where()


def sync_view(request):
    return JsonResponse({
        **where(),
        "main": threading.main_thread().ident,
        "loop_thread": async_to_sync(_where_async)()["thread"],
        "meeting": _meet_if_asked(request),
    })  # fmt: skip


def _meet_where(request):
    return {**where(), "meeting": _meet_if_asked(request)}


def _nested():
    # sync_to_async -> async_to_sync -> sync_to_async: where does the innermost call run?
    async def inner():
        return await sync_to_async(where)()

    return {"outer": where(), "inner": async_to_sync(inner)()}


async def sensitive_view(request):
    first = await sync_to_async(where)()
    met = await sync_to_async(_meet_where)(request)
    second = await sync_to_async(where)()
    nested = await sync_to_async(_nested)()
    insensitive = await sync_to_async(where, thread_sensitive=False)()
    return JsonResponse({
        "main": threading.main_thread().ident,
        "loop": where(),
        "sensitive": [first, met, second, nested["outer"], nested["inner"]],
        "insensitive": insensitive,
        "meeting": met["meeting"],
    })  # fmt: skip


def nested_asyncio_run(request):
    ran_on = []

    def record():
        ran_on.append(threading.get_ident())

    async def inner():
        call = asyncio.ensure_future(sync_to_async(record)())
        stuck = asyncio.ensure_future(aquiet(int(request.GET["meet"])))
        await asyncio.wait({call, stuck}, return_when=asyncio.FIRST_COMPLETED)
        if call.done():
            stuck.cancel()
            call.result()
            return "ran"
        call.cancel()
        # Nothing could run any more, and the call had not started: deadlocked. (Anything else,
        # the cap say, is reported as it is.)
        answer = stuck.result()
        return "deadlocked" if answer == "quiet" else f"gave up waiting: {answer}"

    try:
        outcome = asyncio.run(inner())
    except RuntimeError as error:
        outcome = f"RuntimeError: {error}"
    return JsonResponse({"outcome": outcome, "ran_on": ran_on, "view": threading.get_ident()})


async def until_disconnect(request):
    port, label = int(request.GET["announce"]), request.GET["label"]
    tell(port, label, "inside")
    try:
        await aquiet(port)
    except asyncio.CancelledError:
        tell(port, label, "cancelled")  # blocking: it works in the cancelled task too
        raise
    tell(port, label, "completed")
    return JsonResponse({"outcome": "completed"})


urlpatterns = [
    path("sync/", stamped(sync_view)),
    path("sensitive/", stamped(sensitive_view)),
    path("nested-asyncio-run/", nested_asyncio_run),
    path("until-disconnect/", until_disconnect),
]
