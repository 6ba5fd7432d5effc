"""Where Django runs sync code: the views of the thread claims.

Mounted at ``/threads/`` (project/urls.py mounts every view module with ``urlpatterns``).
Every view answers with JSON saying where each part of it ran (``project.evidence.where()``: the
thread's ident and name, its event loop), plus the process's main thread, so a test can tell
"the main thread", "the event loop's thread" and "a thread of its own" apart:

- ``sync/[?keep=L]``: a plain sync view (claims sync-views-under-asgi and async-client-faithful).
  It also reports the thread of the event loop that serves it (by name), found by running a
  coroutine there with ``async_to_sync`` (from a sync_to_async thread, asgiref runs it on the
  calling loop). With ``keep``, it keeps the request's executor in ``KEPT_EXECUTORS[L]``.
- ``sensitive/``: an async view making thread-sensitive ``sync_to_async`` calls, one of them
  nested (sync_to_async -> async_to_sync -> sync_to_async), and one with
  ``thread_sensitive=False`` (claim thread-sensitive-sync-to-async). Each thread-sensitive call
  also says whether its thread is the one running ``WSGIHandler.__call__`` for this very request
  (read from the thread's own stack): under WSGI, the server's worker thread for the request.
- ``nested-asyncio-run/?meet=PORT[&label=L]``: a sync view that starts ``asyncio.run()`` and
  makes a thread-sensitive call inside it: the call pattern of asgiref issue 323. Where the call
  deadlocks, the view still answers: it waits for the call only until nothing in the test can make
  progress any more (the meeting point's ``quiet``), then reports what the deadlock is made of
  (the request's executor, its threads, the work items in its queue) and breaks it by cancelling
  the call. ``NESTED_RUNS[L]`` keeps the view's thread and the call's work item for an in-process
  test to look at once the request is over.
- ``until-disconnect/?announce=PORT&label=L``: an async view that holds until nothing can make
  progress any more, then completes, and tells the meeting point (group L) ``inside``, then
  ``completed`` or ``cancelled`` (when the client went away).
- ``sync-until-released/?announce=PORT&label=L``: a sync view that tells ``inside``, holds until
  the test releases L, then tells ``completed``.

``?meet=PORT&group=G&n=N`` makes the sync part block on the harness's meeting point
(project/evidence.py), so a test can prove that requests were inside at the same time.
"""

import asyncio
import functools
import queue
import sys
import threading

from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from django.core.handlers.wsgi import WSGIHandler
from django.http import JsonResponse
from django.urls import path

from project.evidence import aquiet, hold, meet, meeting_args, stamped, tell, where


def _meet_if_asked(request):
    return meet(*meeting_args(request)) if "meet" in request.GET else None


async def _where_async():
    return where()


# The request executors that sync/?keep=L ran on, by L: kept alive here, so that an in-process
# test can look at them once the request is over (shut down? its thread ended?), and so that
# garbage collection cannot end an idle executor's thread in its place.
KEPT_EXECUTORS = {}


def sync_view(request):
    if request.GET.get("keep"):
        context = SyncToAsync.thread_sensitive_context.get(None)
        executor = SyncToAsync.context_to_thread_executor.get(context) if context else None
        KEPT_EXECUTORS.setdefault(request.GET["keep"], []).append(executor)
    return JsonResponse({
        **where(),
        "main": threading.main_thread().ident,
        # By name: the ident of a thread that has ended may be given to the next one.
        "loop_thread": async_to_sync(_where_async)()["thread_name"],
        "meeting": _meet_if_asked(request),
    })  # fmt: skip


def _in_wsgi_call(request):
    """Is this thread the one running WSGIHandler.__call__ for ``request``? Its own stack says:
    a thread parked in async_to_sync below that frame runs thread-sensitive calls on top of it."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is WSGIHandler.__call__.__code__ and frame.f_locals.get("request") is request:
            return True
        frame = frame.f_back
    return False


def _where_for(request):
    return {**where(), "in_wsgi_call": _in_wsgi_call(request)}


def _meet_where(request):
    return {**_where_for(request), "meeting": _meet_if_asked(request)}


def _nested(request):
    # sync_to_async -> async_to_sync -> sync_to_async: where does the innermost call run?
    async def inner():
        return await sync_to_async(_where_for)(request)

    return {"outer": _where_for(request), "inner": async_to_sync(inner)()}


async def sensitive_view(request):
    first = await sync_to_async(_where_for)(request)
    met = await sync_to_async(_meet_where)(request)
    second = await sync_to_async(_where_for)(request)
    nested = await sync_to_async(_nested)(request)
    insensitive = await sync_to_async(where, thread_sensitive=False)()
    return JsonResponse({
        "main": threading.main_thread().ident,
        "loop": where(),
        "sensitive": [first, met, second, nested["outer"], nested["inner"]],
        "insensitive": insensitive,
        "meeting": met["meeting"],
    })  # fmt: skip


# What nested-asyncio-run leaves behind, by ?label=: an in-process test checks, once the request
# is over, that the view's thread has ended and the cancelled call never ran.
NESTED_RUNS = {}


def _queued(executor):
    """The work items waiting in ``executor``'s queue, left in place. Call it only on the
    executor's one thread: then no worker can take an item while they are out."""
    items = []
    while True:
        try:
            items.append(executor._work_queue.get_nowait())
        except queue.Empty:
            break
    for item in items:
        executor._work_queue.put(item)
    return items


def _is_call_of(item, fn):
    # SyncToAsync.__call__ submits partial(thread_handler, loop, exc_info, task_context, func,
    # child), child being partial(fn, *args, **kwargs).
    return any(isinstance(arg, functools.partial) and arg.func is fn for arg in item.fn.args)


def _request_executor(fn):
    """The executor of this request's ThreadSensitiveContext (opened by ASGIHandler.__call__),
    as SyncToAsync.__call__ finds it, and the work item of ``fn`` in its queue; (None, None)
    where there is none, or where another thread could be taking from its queue."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    executor = SyncToAsync.context_to_thread_executor.get(context) if context else None
    if executor is None or set(executor._threads) != {threading.current_thread()}:
        return None, None
    items = _queued(executor)
    report = {
        "max_workers": executor._max_workers,
        "threads": [thread.ident for thread in executor._threads],
        "queue": [
            {"call": fn.__name__ if _is_call_of(item, fn) else repr(item.fn),
             "started": item.future.running() or item.future.done()}
            for item in items
        ],
    }  # fmt: skip
    mine = [item for item in items if _is_call_of(item, fn)]
    return report, (mine[0] if mine else None)


def nested_asyncio_run(request):
    port, label = int(request.GET["meet"]), request.GET.get("label", "")
    ran_on, found = [], {"executor": None, "cancelled": None}

    def record():
        ran_on.append(where())

    async def inner():
        found["loop"] = where()
        call = asyncio.ensure_future(sync_to_async(record)())
        stuck = asyncio.ensure_future(aquiet(port))
        await asyncio.wait({call, stuck}, return_when=asyncio.FIRST_COMPLETED)
        if call.done():
            stuck.cancel()
            call.result()
            return "ran"
        # Nothing could run any more and the call had not finished: what is it waiting behind?
        found["executor"], item = _request_executor(record)
        # Break the deadlock the way asgiref does for a cancelled caller: SyncToAsync.__call__
        # cancels its future, which cancels the pending work item (asyncio.wrap_future), and the
        # executor's worker skips a cancelled item (concurrent.futures _WorkItem.run) once the
        # view has returned and freed it. Nothing is left waiting when the request ends.
        call.cancel()
        await asyncio.wait({call})
        if item is not None:
            found["cancelled"] = item.future.cancelled()
            context = SyncToAsync.thread_sensitive_context.get(None)
            NESTED_RUNS[label] = {
                "thread": threading.current_thread(), "item": item, "ran_on": ran_on,
                # Kept, so that garbage collection cannot end its idle thread instead of shutdown.
                "executor": SyncToAsync.context_to_thread_executor.get(context),
            }  # fmt: skip
        answer = stuck.result()
        return "deadlocked" if answer == "quiet" else f"gave up waiting: {answer}"

    try:
        outcome = asyncio.run(inner())
    except RuntimeError as error:
        outcome = f"RuntimeError: {error}"
    # Where the call ran, the shared one-thread executor is free again: ask it which thread it is.
    shared = SyncToAsync.single_thread_executor.submit(where).result() if outcome == "ran" else None
    return JsonResponse({
        "outcome": outcome, "view": where(), "loop": found.get("loop"), "ran_on": ran_on,
        "executor": found["executor"], "cancelled": found["cancelled"], "shared": shared,
    })  # fmt: skip


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


def sync_until_released(request):
    port, label = int(request.GET["announce"]), request.GET["label"]
    tell(port, label, "inside")
    held = hold(port, label)
    # Only a release completes the view: a hold that ran out is not one.
    tell(port, label, "completed" if held == "go" else f"held:{held}")
    return JsonResponse({"outcome": "completed"})


urlpatterns = [
    path("sync/", stamped(sync_view)),
    path("sensitive/", stamped(sensitive_view)),
    path("nested-asyncio-run/", nested_asyncio_run),
    path("until-disconnect/", until_disconnect),
    path("sync-until-released/", sync_until_released),
]
