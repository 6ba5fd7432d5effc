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
"""

import asyncio
import os
import socket
import threading
import time
from functools import wraps

from asgiref.sync import iscoroutinefunction

HEADER_PREFIX = "X-Spec-"


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
            response[HEADER_PREFIX + name] = str(value)
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
