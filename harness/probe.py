"""The concurrency probe: fire requests together, read the server's own stamps, judge.

``fire`` sends N requests at once, each on its own connection from its own client thread (the
threads leave a barrier together), and returns a ``Volley``. The judgement never rests on the
client's stopwatch: it rests on what the server reported (project/evidence.py) and on what the
meeting point saw (harness/meeting.py):

- ``max_in_flight``: the most server-side [enter, exit] intervals that overlap at one instant;
  1 means the requests were served strictly one after another;
- ``meetings``: the meeting point's answers; ``met`` from all N proves they were in flight
  together;
- ``cpu_ratio``: the union of the intervals divided by the CPU time the requests' threads used.
  Under one GIL, N CPU-bound requests cannot finish sooner than their CPU time added up, so this
  stays near 1 (or above) however the requests were interleaved; a real parallel speed-up would
  bring it towards 1/N.
"""

import http.client
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

from harness.protocol import STAMP_PREFIX as STAMP


@dataclass
class Hit:
    status: int
    headers: dict
    body: bytes
    client_start: int
    client_end: int
    client_sent: int = None  # when the whole request had been written to the server's socket

    def stamp(self, name, cast=int):
        value = self.headers.get((STAMP + name).lower())
        return None if value is None else cast(value)

    @property
    def enter(self):
        return self.stamp("Enter")

    @property
    def exit(self):
        return self.stamp("Exit")

    @property
    def thread(self):
        return (self.stamp("Pid"), self.stamp("Thread"))

    @property
    def loop(self):
        return (self.stamp("Pid"), self.stamp("Loop", str))

    @property
    def cpu(self):
        return self.stamp("Cpu")

    def json(self):
        return json.loads(self.body)

    def interval(self):
        if self.enter is None or self.exit is None:
            raise AssertionError(
                f"response {self.status} carries no server stamps; body: {self.body[:300]!r}"
            )
        return (self.enter, self.exit)


def max_in_flight(intervals):
    """The most intervals that contain one common instant (touching ends do not overlap)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals],
                    key=lambda e: (e[0], e[1]))  # fmt: skip
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def union_ns(intervals):
    total, end = 0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


# The sleeps fire_sleeping tries, shortest first.
SLEEPS = (0.03, 0.3, 2.0)
# From this sleep on, a volley in which each request was kept waiting at the server counts as
# conclusive for a test that expects overlap too: it would take a server kept off the CPU for
# longer than a third of it to look like that while running requests together.
CONCLUSIVE_SLEEP = 0.3


@dataclass
class Volley:
    hits: list
    group: str = ""
    figures: dict = field(default_factory=dict)

    @property
    def statuses(self):
        return [hit.status for hit in self.hits]

    @property
    def intervals(self):
        return [hit.interval() for hit in self.hits]

    @property
    def max_in_flight(self):
        return max_in_flight(self.intervals)

    def overlapping_pairs(self):
        """Pairs of hits whose server-side intervals share an instant."""
        hits = self.hits
        return [
            (a, b) for i, a in enumerate(hits) for b in hits[i + 1:]
            if max(a.enter, b.enter) < min(a.exit, b.exit)
        ]  # fmt: skip

    @property
    def meetings(self):
        return sorted(hit.json()["meeting"] for hit in self.hits)

    @property
    def threads(self):
        return {hit.thread for hit in self.hits}

    @property
    def loops(self):
        return {hit.loop for hit in self.hits}

    @property
    def wall_s(self):
        """Client-side: first request sent to last answer received (a second witness only)."""
        hits = self.hits
        return (max(h.client_end for h in hits) - min(h.client_start for h in hits)) / 1e9

    @property
    def cpu_ratio(self):
        return union_ns(self.intervals) / sum(hit.cpu for hit in self.hits)

    def kept_waiting(self, margin_ns):
        """Did each request, in the order the server ran them, reach the server at least
        ``margin_ns`` before the one before it ended? (Evidence that the server held it back, not
        that it came late.)"""
        ran = sorted(self.hits, key=lambda hit: hit.enter)
        return all(b.client_sent + margin_ns <= a.exit for a, b in zip(ran, ran[1:]))

    def summary(self):
        """Figures for the verdict table and results file."""
        figures = {"requests": len(self.hits), "max_in_flight": self.max_in_flight,
                   "threads": len(self.threads), "loops": len(self.loops),
                   "wall_s": round(self.wall_s, 3)}  # fmt: skip
        if all(b"meeting" in hit.body for hit in self.hits):
            figures["met"] = self.meetings.count("met")
        figures.update(self.figures)
        return figures


def get(base_url, path, params=None, timeout=15.0):
    """One GET; returns a Hit."""
    host_port = urllib.parse.urlsplit(base_url).netloc
    query = urllib.parse.urlencode(params or {})
    conn = http.client.HTTPConnection(host_port, timeout=timeout)
    try:
        start = time.monotonic_ns()
        conn.request("GET", f"{path}?{query}" if query else path)
        sent = time.monotonic_ns()
        response = conn.getresponse()
        body = response.read()
        end = time.monotonic_ns()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Hit(response.status, headers, body, start, end, sent)
    finally:
        conn.close()


def get_with_output(server, path, params=None):
    """One GET to a running server, and what the server printed while serving it."""
    before = len(server.output())
    hit = get(server.url, path, params)
    return hit, server.output()[before:]


def meeting_params(meeting, n, group=None):
    """Query parameters that send a view to ``meeting`` as one of ``n`` (project/evidence.py)."""
    return {"meet": meeting.port, "group": group or uuid.uuid4().hex[:12], "n": n}


def fire(base_url, path, n=3, params=None, meeting=None, timeout=15.0):
    """Send n GETs at once. With ``meeting``, each request is told to meet the others there."""
    params = dict(params or {})
    if meeting is not None:
        params.update(meeting_params(meeting, n))
    group = params.get("group", "")
    hits = [None] * n
    errors = []
    gate = threading.Barrier(n)

    def one(i):
        try:
            gate.wait(timeout)
            hits[i] = get(base_url, path, params, timeout)
        except BaseException as error:  # reported below, in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 5)
    if errors:
        raise errors[0]
    if any(hit is None for hit in hits):
        raise TimeoutError(f"requests to {base_url}{path} did not finish within {timeout}s")
    return Volley(hits, group)



def fire_sleeping(base_url, path, n=3, params=None, expect_overlap=True, sleeps=SLEEPS):
    """For a view that sleeps ``?seconds=``: fire n requests at once, lengthening the sleep until
    the volley is conclusive, and return it.

    Only a sleep that outlasts the time the requests take to arrive can show them overlap or take
    turns: on a loaded machine they may arrive far apart, and then a volley without overlap proves
    nothing. A volley is conclusive when the server-side intervals overlap, or when each request
    reached the server (was written to its socket) at least a third of the sleep before the one
    served before it ended, and still started only after it: the server held it back. A test that
    expects requests to take turns accepts that at any sleep; one that expects them to overlap only
    from ``CONCLUSIVE_SLEEP`` on, so that a server kept off the CPU for a moment is never taken
    for one that serializes. Where nothing is conclusive the last volley is returned, for the
    test's assertions to report."""
    for seconds in sleeps:
        volley = fire(base_url, path, n, {**(params or {}), "seconds": seconds})
        if volley.statuses != [200] * n or volley.max_in_flight >= 2:
            break
        accept = not expect_overlap or seconds >= CONCLUSIVE_SLEEP
        if accept and volley.kept_waiting(margin_ns=seconds / 3 * 1e9):
            break
    volley.figures["slept_s"] = seconds
    return volley


def read_http_response(sock):
    """(status line, headers, body) of the one HTTP/1.1 response on a raw socket, de-chunked
    where the server chunked it, for tests that must send their own bytes. It stops at the
    body's end rather than at the connection's (gunicorn's gthread worker closes a finished
    connection only on its main loop's next turn, up to a second later), and a connection
    closed early is a ConnectionError at once, not a wait."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head, body = data.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    if headers.get("transfer-encoding") == "chunked":
        chunked, body = body, b""
        while True:
            while b"\r\n" not in chunked:
                chunked += _recv(sock)
            size_line, rest = chunked.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            while len(rest) < size + 2:
                rest += _recv(sock)
            body, chunked = body + rest[:size], rest[size + 2 :]
    elif "content-length" in headers:
        while len(body) < int(headers["content-length"]):
            body += _recv(sock)
    else:
        while chunk := sock.recv(65536):
            body += chunk
    return status, headers, body


def _recv(sock):
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection before the response ended")
    return chunk
