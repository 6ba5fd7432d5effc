"""Server-side evidence for the concurrency claims.

``stamped`` wraps a view (sync or async, keeping its kind, because Django decides how to call a
view by ``asgiref.sync.iscoroutinefunction``) and reports, in response headers, when the view body
started and ended, on which thread, process and event loop, and how much CPU time its thread used.

The stamps are ``time.monotonic_ns()``: on Linux that is CLOCK_MONOTONIC, one clock for every
process on the machine, so intervals measured in a server process can be compared with each
other and with the test process.

``?announce=PORT&label=L`` makes the view tell the harness's meeting point (``harness/meeting.py``)
"I have started" before its body runs, so a test can act while a request is known to be inside
the view. It is a blocking loopback write of a few bytes, after the enter stamp.

``meet``/``ameet`` are the views' side of the rendezvous (the line format is harness/protocol.py):
a blocking call that holds the thread (and, in an async view, the event loop) and an awaited one
that frees the loop while it waits. ``meeting_args(request)`` reads ``?meet=PORT&group=G&n=N``
(and an optional ``cap_ms``).
"""

import asyncio
import os
import socket
import threading
import time
from functools import wraps

from asgiref.sync import iscoroutinefunction

from harness.protocol import MEET_CAP_MS, STAMP_PREFIX, meet_line, quiet_line


def meeting_args(request):
    """(port, group, n, cap_ms) from ``?meet=PORT&group=G&n=N[&cap_ms=C]``."""
    get = request.GET
    return int(get["meet"]), get["group"], int(get["n"]), int(get.get("cap_ms", MEET_CAP_MS))


def meet(port, group, n, cap_ms=MEET_CAP_MS):
    """Wait at the meeting point, blocking this thread; returns "met" or "alone"."""
    with socket.create_connection(("127.0.0.1", port), timeout=cap_ms / 1000 + 5) as conn:
        conn.sendall(meet_line(group, n, cap_ms))
        return conn.makefile().readline().strip()


async def aquiet(port):
    """Hold (awaiting) until nothing in the test can make progress any more: whatever could
    still happen to this request (a cancellation, say) has had every chance to."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(quiet_line())
        await writer.drain()
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()


async def ameet(port, group, n, cap_ms=MEET_CAP_MS):
    """Wait at the meeting point, awaiting: the event loop serves others meanwhile."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(meet_line(group, n, cap_ms))
        await writer.drain()
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()


def _announce(request):
    port = request.GET.get("announce")
    if port:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as conn:
            conn.sendall(f"announce {request.GET.get('label', '-')}\n".encode())
            conn.recv(16)


def _loop_id():
    try:
        return str(id(asyncio.get_running_loop()))
    except RuntimeError:
        return "none"


class _Stamp:
    def __init__(self, request):
        # Enter is stamped before announcing, so that anything the harness does after hearing
        # the announcement is provably later than this request's enter.
        self.enter = time.monotonic_ns()
        self.cpu0 = time.thread_time_ns()
        self.loop = _loop_id()
        self.thread = threading.get_ident()
        _announce(request)

    def finish(self, response):
        exit_ = time.monotonic_ns()
        cpu = time.thread_time_ns() - self.cpu0
        thread = threading.get_ident()
        for name, value in {
            "Enter": self.enter,
            "Exit": exit_,
            # A view that ends on another thread than it began makes the CPU figure meaningless;
            # report both threads so the analysis can tell.
            "Thread": self.thread,
            "Exit-Thread": thread,
            "Thread-Name": threading.current_thread().name,
            "Pid": os.getpid(),
            "Loop": self.loop,
            "Cpu": cpu,
        }.items():
            response[STAMP_PREFIX + name] = str(value)
        return response


def stamped(view):
    if iscoroutinefunction(view):

        @wraps(view)
        async def async_stamped(request, *args, **kwargs):
            stamp = _Stamp(request)
            return stamp.finish(await view(request, *args, **kwargs))

        return async_stamped

    @wraps(view)
    def sync_stamped(request, *args, **kwargs):
        stamp = _Stamp(request)
        return stamp.finish(view(request, *args, **kwargs))

    return sync_stamped
