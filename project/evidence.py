"""The project's side of every wire protocol with the harness (harness/protocol.py), and the one
answer to "where does this code run". Every view that reports evidence uses this module.

- ``where()``: the calling code's thread (ident and name), whether it is the process's main
  thread, its event loop (None where none runs in this thread) and the process.
- ``stamped(view)`` wraps a view (sync or async, keeping its kind, because Django decides how to
  call a view by ``asgiref.sync.iscoroutinefunction``) and reports, in response headers, when the
  view body started and ended, on which thread, process and event loop, and how much CPU time its
  thread used. The stamps are ``time.monotonic_ns()``: on Linux that is CLOCK_MONOTONIC, one
  clock for every process on the machine, so intervals measured in a server process can be
  compared with each other and with the test process. ``?announce=PORT&label=L`` makes it tell
  the meeting point ``L inside`` once its body has started (after the enter stamp, so anything the
  test does once it hears it is provably later), so a test can act while a request is inside.
- The meeting point's verbs: ``meet``/``ameet`` (a rendezvous: blocking, which holds the thread
  and, in an async view, the event loop; or awaited, which frees the loop), ``aquiet`` (hold until
  nothing in the test can make progress any more), ``tell`` (report an event, in order) and
  ``hold`` (wait for the test's release). ``meeting_args(request)`` reads
  ``?meet=PORT&group=G&n=N`` (and an optional ``cap_ms``).
"""

import asyncio
import os
import socket
import threading
import time
from functools import wraps

from asgiref.sync import iscoroutinefunction

from harness.protocol import (
    MEET_CAP_MS,
    STAMP_PREFIX,
    hold_line,
    meet_line,
    quiet_line,
    tell_line,
)


def where():
    """Where the calling code runs."""
    try:
        loop = id(asyncio.get_running_loop())
    except RuntimeError:
        loop = None
    thread = threading.current_thread()
    return {
        "thread": thread.ident,
        "thread_name": thread.name,
        "main_thread": thread is threading.main_thread(),
        "loop": loop,
        "pid": os.getpid(),
    }


# --- the meeting point -------------------------------------------------------------------------


def meeting_args(request):
    """(port, group, n, cap_ms) from ``?meet=PORT&group=G&n=N[&cap_ms=C]``."""
    get = request.GET
    return int(get["meet"]), get["group"], int(get["n"]), int(get.get("cap_ms", MEET_CAP_MS))


def _ask(port, line, timeout=MEET_CAP_MS / 1000 + 5):
    # A blocking loopback exchange of a few bytes: it also works inside an `except
    # CancelledError` block and from a worker thread, where awaiting could be interrupted again.
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(line)
        return conn.makefile().readline().strip()


async def _aask(port, line):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(line)
        await writer.drain()
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()


def meet(port, group, n, cap_ms=MEET_CAP_MS):
    """Wait at the meeting point, blocking this thread; returns "met" or "alone"."""
    return _ask(port, meet_line(group, n, cap_ms), timeout=cap_ms / 1000 + 5)


async def ameet(port, group, n, cap_ms=MEET_CAP_MS):
    """Wait at the meeting point, awaiting: the event loop serves others meanwhile."""
    return await _aask(port, meet_line(group, n, cap_ms))


async def aquiet(port):
    """Hold (awaiting) until nothing in the test can make progress any more: whatever could
    still happen to this request (a cancellation, say) has had every chance to."""
    return await _aask(port, quiet_line())


def tell(port, group, event):
    """Report an event to the test, in order (blocking, a few bytes)."""
    return _ask(port, tell_line(group, event), timeout=5)


def hold(port, group):
    """Wait, blocking, until the test releases ``group``: ``go``, or why it did not (protocol)."""
    return _ask(port, hold_line(group))


async def ahold(port, group):
    """Wait, awaiting, until the test releases ``group``: ``go``, or why it did not."""
    return await _aask(port, hold_line(group))


# --- stamps ----------------------------------------------------------------------------------


class _Stamp:
    def __init__(self, request):
        self.enter = time.monotonic_ns()
        self.cpu0 = time.thread_time_ns()
        self.here = where()
        if request.GET.get("announce"):
            tell(int(request.GET["announce"]), request.GET.get("label", "-"), "inside")

    def finish(self, response):
        exit_ = time.monotonic_ns()
        cpu = time.thread_time_ns() - self.cpu0
        for name, value in {
            "Enter": self.enter,
            "Exit": exit_,
            # A view that ends on another thread than it began makes the CPU figure meaningless;
            # report both threads so the analysis can tell.
            "Thread": self.here["thread"],
            "Exit-Thread": threading.get_ident(),
            "Thread-Name": threading.current_thread().name,
            "Pid": self.here["pid"],
            "Loop": self.here["loop"] or "none",
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
