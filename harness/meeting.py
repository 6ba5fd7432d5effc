"""The meeting point: a loopback TCP service that proves requests overlapped.

A view under test connects and sends ``meet GROUP N CAP_MS PID`` (harness/protocol.py). The
answer is ``met`` when, while that caller was waiting, N callers of GROUP were waiting at the same
time. A ``met`` cannot be produced by requests that ran one after another, so it is evidence of
concurrency that no stopwatch can fake.

How long a lone caller waits is decided by progress, not by a window (harness/progress.py): it
waits while the callers' processes (each caller's process group: a server and its workers) and
this test process keep running or wanting to run, up to CAP_MS, and gets ``alone`` as soon as all
of them have gone quiet. Quiet means nobody can arrive any more: the others are stuck behind the
caller (one event loop, a thread bound, a lock). So

- a rendezvous that happens costs nothing, and a loaded machine only makes a caller wait longer;
- one that cannot happen ends once nothing has run for ``progress.QUIET``, not after a long
  window;
- once a group has given up, later callers of it get ``alone`` at once (the group stays broken:
  the callers it needed have left), so a serial server costs one quiet span per group, not one
  per request. (Such late callers are not counted as waiting: what they did among themselves is
  for the server-side interval stamps to show.)

``quiet PID`` is a rendezvous nobody else joins: it answers ``quiet`` once everything watched has
gone quiet (``cap`` if the cap ran out first).

Views also report what happens to them (project/evidence.py): ``tell GROUP EVENT`` adds to GROUP's
ordered log, which a test reads with ``events`` and waits on with ``wait_for_event``, and ``hold
GROUP`` keeps a view waiting until the test calls ``release(GROUP)``.
"""

import os
import socketserver
import sys
import uuid
import threading
import time
from dataclasses import dataclass, field

from harness import progress
from harness.protocol import MEET_CAP_MS, parse_meet


@dataclass
class _Group:
    activity: progress.Activity = field(default_factory=progress.Activity)
    quiet: progress.Quiet = None
    waiting: int = 0
    max_waiting: int = 0
    meetings: int = 0
    arrivals: int = 0
    given_up: str = ""  # "quiet" or "cap": why the group stopped waiting
    watched: set = field(default_factory=set)

    def __post_init__(self):
        # The group's own hold ends on quiet: it must not wait for itself (nor for other groups).
        self.quiet = progress.Quiet(self.activity, heed_holds=False)

    def watch(self, pid):
        if pid in self.watched:
            return
        self.watched.add(pid)
        if pid != os.getpid():
            try:
                self.activity.add(group=os.getpgid(pid))
            except OSError:  # gone already
                self.activity.add(pid=pid)


class MeetingPoint:
    def __init__(self):
        self._cond = threading.Condition()
        self._groups = {}
        self._events = {}
        self._released = set()
        self._stopping = False
        point = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                words = self.rfile.readline().decode().split()
                if words and words[0] == "meet" and len(words) == 5:
                    answer = point._meet(*parse_meet(words))
                elif words and words[0] == "quiet" and len(words) == 2:
                    group = f"quiet-{uuid.uuid4().hex}"
                    point._meet(group, 2**31, MEET_CAP_MS / 1000, int(words[1]))
                    answer = point.given_up(group)
                elif words and words[0] == "tell" and len(words) == 3:
                    point._tell(words[1], words[2])
                    answer = "ok"
                elif words and words[0] == "hold" and len(words) == 2:
                    answer = point._hold(words[1])
                else:
                    answer = "error"
                progress.event()  # the answer wakes the caller up: whatever waits on it, wait on
                try:
                    self.wfile.write(f"{answer}\n".encode())
                except OSError:  # the caller left (a cancelled view): nobody to answer
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            # The default listen backlog (5) drops callers when many requests arrive at once,
            # which would look like a failed rendezvous.
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="meeting-watch")

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        self._thread.start()
        self._watcher.start()
        return self

    def stop(self):
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._watcher.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _meet(self, name, n, cap, pid):
        with self._cond:
            group = self._groups.setdefault(name, _Group())
            group.watch(pid)
            group.arrivals += 1
            if group.given_up:
                return "alone"
            group.waiting += 1
            group.max_waiting = max(group.max_waiting, group.waiting)
            seen = group.meetings
            if group.waiting >= n:
                group.meetings += 1
            group.quiet.progress()  # an arrival is progress
            self._cond.notify_all()
            progress.held(+1)
            try:
                self._cond.wait_for(lambda: group.meetings > seen or group.given_up, timeout=cap)
            finally:
                progress.held(-1)
            group.waiting -= 1
            if group.meetings > seen:
                return "met"
            group.given_up = group.given_up or "cap"
            self._cond.notify_all()
            return "alone"

    def _watch(self):
        """Give up on a group whose processes have all gone quiet (one thread samples them all)."""
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping or any(self._waiting_groups()), timeout=None
                )
                if self._stopping:
                    return
                groups = [(group, group.arrivals) for group in self._waiting_groups()]
            for group, arrivals in groups:
                try:
                    stalled = group.quiet.stalled()
                except Exception as error:  # never let one bad sample stop every wait
                    print(f"meeting point: could not sample activity: {error!r}", file=sys.stderr)
                    stalled = False
                with self._cond:
                    # An arrival while we sampled is progress: the sample is stale.
                    if stalled and group.arrivals == arrivals and group.waiting and not group.given_up:
                        group.given_up = "quiet"
                        self._cond.notify_all()
            time.sleep(progress.SAMPLE)

    def _waiting_groups(self):
        return (g for g in self._groups.values() if g.waiting and not g.given_up)

    def _tell(self, group, event):
        with self._cond:
            self._events.setdefault(group, []).append(event)
            self._cond.notify_all()

    def _hold(self, group):
        with self._cond:
            self._cond.wait_for(
                lambda: group in self._released or self._stopping, timeout=MEET_CAP_MS / 1000
            )
            if group in self._released:
                return "go"
            return "stopping" if self._stopping else "cap"

    def events(self, group):
        """What the views of ``group`` have told, in order."""
        with self._cond:
            return list(self._events.get(group, []))

    def wait_for_event(self, group, event, activity=None):
        """``group``'s events once ``event`` is among them, or as they are once nothing watched
        (``activity``; by default this process) can make progress any more."""
        progress.wait_until(lambda: event in self.events(group), activity or progress.Activity())
        return self.events(group)

    def release(self, group):
        """Let the views holding on ``group`` go on (now, and any that hold later)."""
        with self._cond:
            self._released.add(group)
            self._cond.notify_all()

    def max_waiting(self, name):
        """The most callers of one group that were waiting here at the same time."""
        with self._cond:
            return self._groups[name].max_waiting if name in self._groups else 0

    def longest_pause(self, name):
        """The longest span in which the group's watched processes looked quiet but then went
        on (how close a rendezvous that happened came to being given up), in seconds."""
        with self._cond:
            return self._groups[name].quiet.longest_pause if name in self._groups else 0.0

    def given_up(self, name):
        """Why the group's callers stopped waiting without meeting: "quiet" (nobody could make
        progress any more), "cap" (the cap ran out while they still could), or "" (never)."""
        with self._cond:
            return self._groups[name].given_up if name in self._groups else ""
