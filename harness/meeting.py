"""The meeting point: a loopback TCP service that proves requests overlapped.

A view under test connects and sends ``meet GROUP N TIMEOUT_MS``. The answer is ``met`` when,
while that caller was waiting, N callers of GROUP were waiting at the same time, and ``alone``
when TIMEOUT_MS passed first. A ``met`` cannot be produced by requests that ran one after another,
so it is evidence of concurrency that no stopwatch can fake; an ``alone`` from every caller, with
non-overlapping server-side intervals, is evidence of serialization.

``announce LABEL`` lets a view say "I am inside now" (project/evidence.py); a test waits for it
with ``wait_announced``.
"""

import socketserver
import threading
from dataclasses import dataclass


@dataclass
class _Group:
    waiting: int = 0
    max_waiting: int = 0
    meetings: int = 0
    arrivals: int = 0


class MeetingPoint:
    def __init__(self):
        self._cond = threading.Condition()
        self._groups = {}
        self._announced = {}
        point = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                words = self.rfile.readline().decode().split()
                if words and words[0] == "meet" and len(words) == 4:
                    answer = point._meet(words[1], int(words[2]), int(words[3]) / 1000)
                elif words and words[0] == "announce" and len(words) == 2:
                    point._announce(words[1])
                    answer = "ok"
                else:
                    answer = "error"
                self.wfile.write(f"{answer}\n".encode())

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            # The default listen backlog (5) drops callers when many requests arrive at once,
            # which would look like a failed rendezvous.
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _meet(self, name, n, timeout):
        with self._cond:
            group = self._groups.setdefault(name, _Group())
            group.arrivals += 1
            group.waiting += 1
            group.max_waiting = max(group.max_waiting, group.waiting)
            seen = group.meetings
            if group.waiting >= n:
                group.meetings += 1
                self._cond.notify_all()
            met = self._cond.wait_for(lambda: group.meetings > seen, timeout=timeout)
            group.waiting -= 1
            return "met" if met else "alone"

    def _announce(self, label):
        with self._cond:
            self._announced.setdefault(label, threading.Event()).set()

    def wait_announced(self, label, timeout=10):
        with self._cond:
            event = self._announced.setdefault(label, threading.Event())
        return event.wait(timeout)

    def max_waiting(self, name):
        """The most callers of one group that were waiting here at the same time."""
        with self._cond:
            return self._groups[name].max_waiting if name in self._groups else 0
