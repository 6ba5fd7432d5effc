"""Views for the ``sync-to-async-in-task`` claim (specs/test_sync_to_async_in_task.py), mounted at
/create-task/.

The claim's forms, as people write them: a thread-sensitive ``sync_to_async`` call awaited inside
a task the view creates, inside ``asyncio.gather``, or wrapped in ``asyncio.wait_for``::

    async def in_task(request):
        result = await asyncio.create_task(call_sync())      # call_sync: await sync_to_async(f)()

``<form>/`` for form in ``create-task``, ``gather``, ``wait-for`` answers where ``f`` ran
(``here()``: ``where()`` and whether the thread is the sync middleware's) beside where a plain
``await sync_to_async(f)()`` of the same view ran, and the view's own ``where()``.

Where it does deadlock:

- ``blocked-behind/?announce=PORT&label=L``: a thread-sensitive call that waits (blocking) for a
  ``threading.Event`` that a task sets with another thread-sensitive call. The view waits until
  nothing can make progress any more (``aquiet``), tells ``quiet:waiting`` and whether the
  setter has run, tells ``breaking`` and breaks the deadlock by setting the event itself; the
  setter tells ``setter-ran`` whenever it runs.
- ``outlives/?announce=PORT&label=L``: the view starts a task it never awaits, and answers. The
  task holds (``ahold``) until the test releases L, then calls ``sync_to_async`` and tells
  ``task-call-ran:<thread name>:exited=<True|False>`` (had the request's ThreadSensitiveContext
  exited?); cancelled instead, it tells ``task-cancelled``.
"""

import asyncio
import sys
import threading

from asgiref.sync import SyncToAsync, sync_to_async
from django.http import JsonResponse
from django.urls import path

from project.evidence import ahold, aquiet, tell, where
from project.middleware_bench import PassThroughMiddleware


def here():
    """where(), and whether this thread is the one running the synchronous middleware's
    ``__call__`` (PassThroughMiddleware, stack ``bench-one-sync``) below this frame."""
    frame, under = sys._getframe(1), False
    while frame is not None and not under:
        under = frame.f_code is PassThroughMiddleware.__call__.__code__
        frame = frame.f_back
    return {**where(), "under_middleware": under}


async def call_sync():
    return await sync_to_async(here)()


async def create_task(request):
    ran = await asyncio.create_task(call_sync())
    return JsonResponse({"ran": ran, "plain": await call_sync(), "view": where()})


async def gather(request):
    ran, other = await asyncio.gather(call_sync(), call_sync())
    return JsonResponse({"ran": ran, "other": other, "plain": await call_sync(), "view": where()})


async def wait_for(request):
    ran = await asyncio.wait_for(sync_to_async(here)(), timeout=30)
    return JsonResponse({"ran": ran, "plain": await call_sync(), "view": where()})


FORMS = {"create-task": create_task, "gather": gather, "wait-for": wait_for}


async def blocked_behind(request):
    port, label = int(request.GET["announce"]), request.GET["label"]
    event = threading.Event()
    ran = {}

    def wait():
        ran["waiter"] = where()
        tell(port, label, "waiter-inside")
        event.wait()
        return "waited"

    def set_():
        ran["setter"] = where()
        tell(port, label, "setter-ran")
        event.set()

    async def setter_task():
        await sync_to_async(set_)()

    waiter = asyncio.ensure_future(sync_to_async(wait)())
    setter = asyncio.create_task(setter_task())
    stuck = asyncio.ensure_future(aquiet(port))
    await asyncio.wait({waiter, stuck}, return_when=asyncio.FIRST_COMPLETED)
    deadlocked = not waiter.done()
    if deadlocked:
        quiet = await stuck
        tell(port, label, f"{quiet}:{'set' if setter.done() else 'waiting'}")
        tell(port, label, "breaking")
        event.set()  # break it from the event loop's thread
    else:
        stuck.cancel()
    await waiter
    await setter
    return JsonResponse({"deadlocked": deadlocked, **ran, "view": where()})


# Tasks the views started and never awaited: kept, so that garbage collection cannot end them.
BACKGROUND = set()


async def outlives(request):
    port, label = int(request.GET["announce"]), request.GET["label"]

    async def background():
        try:
            await ahold(port, label)
        except asyncio.CancelledError:
            tell(port, label, "task-cancelled")  # blocking: it works in the cancelled task too
            raise
        # Has the request's ThreadSensitiveContext exited (its executor gone) by now?
        context = SyncToAsync.thread_sensitive_context.get(None)
        exited = context is not None and context not in SyncToAsync.context_to_thread_executor
        ran = await sync_to_async(where)()
        tell(port, label, f"task-call-ran:{ran['thread_name']}:exited={exited}")

    task = asyncio.create_task(background())
    BACKGROUND.add(task)
    task.add_done_callback(BACKGROUND.discard)
    return JsonResponse({"request_thread": (await call_sync())["thread_name"], "view": where()})


urlpatterns = [
    *(path(f"{form}/", view) for form, view in FORMS.items()),
    path("blocked-behind/", blocked_behind),
    path("outlives/", outlives),
]
