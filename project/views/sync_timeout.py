"""Views for the ``sync-to-async-timeout`` claim (specs/test_sync_to_async_timeout.py), mounted at
/sync-timeout/.

The claim's form, as people write it: a timeout around a ``sync_to_async`` call in an async view::

    async def view(request):
        try:
            result = await asyncio.wait_for(sync_to_async(slow)(), timeout)
        except TimeoutError:
            ...

``timed-out/?announce=PORT&label=L&how=wait_for|timeout&then=return|sensitive|insensitive``

- ``slow`` tells the meeting point (group L) ``sync-inside``, holds until the test releases L,
  then tells ``sync-completed`` (``sync-held:<why>`` if the hold ran out instead).
- The view starts the call as a task and waits until ``slow`` has started (so the timeout can
  only fire while the sync code runs, however loaded the machine is), then waits for that task
  with ``asyncio.wait_for(task, TIMEOUT)`` or inside ``async with asyncio.timeout(TIMEOUT)``:
  ``slow`` is still held, so the timeout always expires. It tells ``timeout`` once it has caught
  the exception.
- ``then=return`` answers at once; ``then=sensitive`` / ``insensitive`` makes one more call,
  ``sync_to_async(second, thread_sensitive=True / False)``, whose function tells
  ``second-ran``: the view waits until nothing can make progress any more (``aquiet``), tells
  ``quiet:pending`` or ``quiet:done`` (has the second call finished?), then awaits it.

The answer carries the exception the view caught (type, message, cause, context), where ``slow``
and ``second`` ran, and the view's own ``where()``. ``RAN`` keeps, by label, what the in-process
tests read once the request is over.
"""

import asyncio

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.urls import path

from project.evidence import aquiet, hold, tell, where

# Long enough never to matter, short enough to keep tests cheap: ``slow`` is held until the test
# releases it, so the timeout expires whatever its length.
TIMEOUT = 0.01

# What ran where, by label, in this process.
RAN = {}


def _name(exc):
    return f"{type(exc).__module__}.{type(exc).__qualname__}" if exc is not None else None


async def timed_out(request):
    port, label = int(request.GET["announce"]), request.GET["label"]
    how, then = request.GET.get("how", "wait_for"), request.GET.get("then", "return")
    loop = asyncio.get_running_loop()
    inside = asyncio.Event()
    ran = RAN.setdefault(label, {})

    def slow():
        ran["slow"] = where()
        tell(port, label, "sync-inside")
        loop.call_soon_threadsafe(inside.set)
        held = hold(port, label)
        tell(port, label, "sync-completed" if held == "go" else f"sync-held:{held}")
        return "slow's result"

    def second():
        ran["second"] = where()
        tell(port, label, "second-ran")
        return "second's result"

    task = asyncio.ensure_future(sync_to_async(slow)())
    await inside.wait()
    caught = None
    try:
        if how == "wait_for":
            result = await asyncio.wait_for(task, TIMEOUT)
        else:
            async with asyncio.timeout(TIMEOUT):
                result = await task
    except BaseException as exc:  # what exactly the view sees is the evidence
        caught = exc
        result = None
    tell(port, label, "timeout" if caught is not None else "no-timeout")
    answer = {
        "result": result,
        "caught": _name(caught),
        "is_asyncio_timeout": isinstance(caught, asyncio.TimeoutError),
        "message": str(caught) if caught is not None else None,
        "cause": _name(getattr(caught, "__cause__", None)),
        "context": _name(getattr(caught, "__context__", None)),
        "task_cancelled": task.cancelled(),
        "view": where(),
    }
    if then in ("sensitive", "insensitive"):
        call = asyncio.ensure_future(
            sync_to_async(second, thread_sensitive=then == "sensitive")()
        )
        quiet = await aquiet(port)
        tell(port, label, f"{quiet}:{'done' if call.done() else 'pending'}")
        answer["second_result"] = await call
    answer.update(slow=ran.get("slow"), second=ran.get("second"))
    return JsonResponse(answer)


urlpatterns = [
    path("timed-out/", timed_out),
]
