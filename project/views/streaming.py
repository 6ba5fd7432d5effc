"""Views for the disconnect and streaming claims (specs/test_client_disconnect.py,
specs/test_streaming_responses.py), mounted at /streaming/.

Disconnects. ``/streaming/hold/`` (async) and ``/streaming/hold-sync/`` (sync) tell the meeting
point what happens to them (``?meet=PORT&group=G``, project/evidence.py's ``tell``), one event at a
time and in order: the client has gone by then, so nothing but that log can tell. The view says
``started``, then holds until the test releases the group, and says ``completed`` (and
``response_closed`` when Django closes its response), or says ``cancelled:CancelledError`` when
an ``asyncio.CancelledError`` reaches it. ``request_finished`` is reported by a receiver the view
connects (``?finished=sync`` or ``async``) and that disconnects itself at its first call: the
next request_finished of the process, which is this request's as the spec sends one at a time.

Streaming. ``/streaming/sync-iterator/`` and ``/streaming/async-iterator/`` return a
``StreamingHttpResponse`` over a sync or an async generator that yields ``first``, then meets the
client at the meeting point (``?meet=PORT&group=G``; the client joins once it holds
the first chunk, so ``met`` happens only if that chunk reached it while the generator was still
running), then yields the answer and, last, the instant it produced its last chunk.

Warnings. ``/streaming/warnings-go-to/`` answers with the qualified name of what
``warnings.showwarning`` is in the serving process: where a warning that passes the filters goes
(Python's own function writes it to stderr). specs/test_streaming_responses.py and
specs/test_unawaited_sleep.py read it.
"""

import asyncio
import time
import uuid
import warnings

from django.core.signals import request_finished
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from project.evidence import ahold, ameet, hold, meet, tell, where

# --- disconnects ------------------------------------------------------------------------------


def _tell(request, event):
    tell(int(request.GET["meet"]), request.GET["group"], event)


def _on_a_loop():
    return where()["loop"] is not None


def _watch_request_finished(request):
    """Report this request's request_finished signal to the meeting point, once."""
    uid = f"spec-disconnect-{uuid.uuid4().hex}"

    def report():
        request_finished.disconnect(dispatch_uid=uid)
        try:
            _tell(request, f"request_finished:{'loop' if _on_a_loop() else 'no-loop'}")
        except OSError:  # the test that asked has gone: never fail the request for it
            pass

    def sync_receiver(sender, **kwargs):
        report()

    async def async_receiver(sender, **kwargs):
        report()

    kind = request.GET.get("finished", "sync")
    receiver = {"sync": sync_receiver, "async": async_receiver}[kind]
    request_finished.connect(receiver, weak=False, dispatch_uid=uid)


class WitnessedResponse(HttpResponse):
    """Tells the meeting point when Django closes it (a server calls close() once it has sent
    it)."""

    def __init__(self, request, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._witnessed = request

    def close(self):
        _tell(self._witnessed, "response_closed")
        super().close()


async def hold_view(request):
    _watch_request_finished(request)
    _tell(request, "started")
    try:
        held = await ahold(int(request.GET["meet"]), request.GET["group"])
    except asyncio.CancelledError as cancelled:
        # The test hangs up as soon as it hears "started": this may come at any await above.
        _tell(request, f"cancelled:{type(cancelled).__name__}")
        raise
    # Only a release completes the view: a hold that ran out is not one.
    _tell(request, "completed" if held == "go" else f"held:{held}")
    return WitnessedResponse(request, "completed")


def hold_sync(request):
    _watch_request_finished(request)
    _tell(request, "started")
    held = hold(int(request.GET["meet"]), request.GET["group"])
    _tell(request, "completed" if held == "go" else f"held:{held}")
    return WitnessedResponse(request, "completed")


# --- streaming --------------------------------------------------------------------------------


def _meeting(request):
    # The generator and the client: two callers.
    return int(request.GET["meet"]), request.GET["group"], 2


def _where():
    # Which kind of code consumes the iterator: an event loop, or a thread without one.
    return f"loop={'yes' if _on_a_loop() else 'no'}"


def _sync_chunks(request):
    yield f"first {_where()}\n".encode()
    yield f"meeting={meet(*_meeting(request))}\n".encode()
    yield f"last-produced={time.monotonic_ns()}\n".encode()


async def _async_chunks(request):
    yield f"first {_where()}\n".encode()
    yield f"meeting={await ameet(*_meeting(request))}\n".encode()
    yield f"last-produced={time.monotonic_ns()}\n".encode()


def sync_iterator(request):
    return StreamingHttpResponse(_sync_chunks(request), content_type="text/plain")


async def async_iterator(request):
    return StreamingHttpResponse(_async_chunks(request), content_type="text/plain")


# --- warnings ---------------------------------------------------------------------------------


def warnings_go_to(request):
    show = warnings.showwarning
    return HttpResponse(f"{show.__module__}.{show.__qualname__}", content_type="text/plain")


urlpatterns = [
    path("hold/", hold_view),
    path("hold-sync/", hold_sync),
    path("sync-iterator/", sync_iterator),
    path("async-iterator/", async_iterator),
    path("warnings-go-to/", warnings_go_to),
]
