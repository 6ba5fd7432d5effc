"""Where Django runs sync code: the views of the thread claims.

Mounted at ``/threads/`` (project/urls.py mounts every view module with ``urlpatterns``).
Every view answers with JSON saying which thread ran which part of it, as
``threading.get_ident()`` values, plus the process's main thread, so a test can tell "the main
thread", "the event loop's thread" and "a thread of its own" apart:

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
  progress any more, then completes, and reports (through the meeting point) whether it ran to
  completion or was cancelled when the client went away.

``?meet=PORT&group=G&n=N`` makes the sync part block on the harness's meeting point
(project/views/serving.py), so a test can prove that requests were inside at the same time.
"""

import asyncio
import socket
import threading

from asgiref.sync import async_to_sync, sync_to_async
from django.http import JsonResponse
from django.urls import path

from project.evidence import aquiet, stamped
from project.views.serving import _block_on_meeting

def _where():
    return {"thread": threading.get_ident(), "name": threading.current_thread().name}


def _meet_if_asked(request):
    return _block_on_meeting(request) if "meet" in request.GET else None


async def _where_async():
    return _where()


def sync_view(request):
    here = _where()
    return JsonResponse({
        **here,
        "main": threading.main_thread().ident,
        "loop": async_to_sync(_where_async)()["thread"],
        "meeting": _meet_if_asked(request),
    })  # fmt: skip


def _meet_where(request):
    return {**_where(), "meeting": _meet_if_asked(request)}


def _nested():
    # sync_to_async -> async_to_sync -> sync_to_async: where does the innermost call run?
    async def inner():
        return await sync_to_async(_where)()

    return {"outer": _where(), "inner": async_to_sync(inner)()}


async def sensitive_view(request):
    first = await sync_to_async(_where)()
    met = await sync_to_async(_meet_where)(request)
    second = await sync_to_async(_where)()
    nested = await sync_to_async(_nested)()
    insensitive = await sync_to_async(_where, thread_sensitive=False)()
    return JsonResponse({
        "main": threading.main_thread().ident,
        "loop": _where(),
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


def _announce(request, suffix):
    # A blocking loopback write of a few bytes: it must also work inside the CancelledError
    # handler, where the task has been cancelled already.
    port, label = int(request.GET["announce"]), request.GET["label"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"announce {label}-{suffix}\n".encode())
        conn.recv(16)


async def until_disconnect(request):
    _announce(request, "inside")
    try:
        await aquiet(int(request.GET["announce"]))
    except asyncio.CancelledError:
        _announce(request, "cancelled")
        raise
    _announce(request, "completed")
    return JsonResponse({"outcome": "completed"})


urlpatterns = [
    path("sync/", stamped(sync_view)),
    path("sensitive/", stamped(sensitive_view)),
    path("nested-asyncio-run/", nested_asyncio_run),
    path("until-disconnect/", until_disconnect),
]
