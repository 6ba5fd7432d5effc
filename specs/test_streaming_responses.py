"""StreamingHttpResponse with sync and async iterators, under WSGI and ASGI.

Claimed (Django docs, Request and response objects, StreamingHttpResponse): "StreamingHttpResponse
streams any iterator under both WSGI and ASGI".

What is true: it *serves* any iterator under both, but it streams only the kind that matches the
interface: a sync iterator under WSGI, an async iterator under ASGI. The other kind is consumed in
full before the first byte of the body is sent, with a ``Warning`` from Django (the base class
itself, not a subclass):

- a sync iterator under ASGI: "StreamingHttpResponse must consume synchronous iterators in order
  to serve them asynchronously. Use an asynchronous iterator instead." It is drained into a list
  on a thread without an event loop (``sync_to_async``'s), then sent;
- an async iterator under WSGI: "StreamingHttpResponse must consume asynchronous iterators in
  order to serve them synchronously. Use a synchronous iterator instead." It is drained into a
  list on an event loop (``async_to_sync``'s: a WSGI server runs none), then sent.

The same on every server and in process. Whether the warning reaches the server's output is the
server's doing: every server prints it except daphne and runserver-daphne (runserver with daphne
in INSTALLED_APPS). ``daphne.server.Server.run``, at its default verbosity (1; daphne's runserver
command passes none), starts Twisted's logging with
``twisted.logger.globalLogBeginner.beginLoggingTo`` and a single observer that drops every event;
``LogBeginner.beginLoggingTo`` also replaces ``warnings.showwarning`` with
``LogBeginner.showwarning``, which turns each warning into a Twisted log event. So under daphne
the warning is issued and goes nowhere. Since Django 5.2 the warning is raised with
``stacklevel=2``, so it points at whoever iterates the response (``ASGIHandler.send_response``;
the WSGI server) instead of at django/http/response.py.

The evidence is a rendezvous, not a stopwatch: the generator yields its first chunk, then waits at
the meeting point for the client, which goes there only once it holds that first chunk. If the
chunk was streamed the two meet (``met``); if the body was buffered the generator waits alone
(``alone``) and the client gets the first chunk only after the generator produced its last. The
generator also stamps the instant it produced its last chunk (one monotonic clock for every
process), which the client compares with the instant the first chunk reached it. The first chunk
says whether an event loop runs where the generator runs.

Why: ``django.http.response.StreamingHttpResponse.__aiter__`` (used by
``ASGIHandler.send_response``) catches the ``TypeError`` of ``async for`` over a sync iterator,
warns, and yields from ``await sync_to_async(list)(self.streaming_content)``;
``StreamingHttpResponse.__iter__`` (iterated by the WSGI server) catches the ``TypeError`` of
``iter()`` over an async iterator, warns, and returns ``async_to_sync(to_list)(...)``. The docs say
so themselves ("the iterator must be fully-consumed, which defeats the purpose").
"""

import asyncio
import http.client
import socket
import threading
import time
import uuid
import warnings
import wsgiref.util
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from harness.spec import (
    ASYNC_ITERATOR_UNDER_WSGI,
    Claim,
    SERVERS,
    SYNC_ITERATOR_UNDER_ASGI,
    Statement,
    When,
    by_version,
    each_interface,
    each_proves,
    get,
    handler,
    http_scope,
    meet_line,
    serving,
)

CLAIM = Claim(
    id="streaming-response-iterators",
    source="Django docs, Request and response objects (StreamingHttpResponse)",
    url="https://docs.djangoproject.com/en/5.2/ref/request-response/#streaminghttpresponse-objects",
    claim="StreamingHttpResponse streams any iterator under both WSGI and ASGI",
    statements=[
        Statement(
            "sync-iterator-streamed",
            "StreamingHttpResponse streams a sync iterator.",
            "holds",
            when=[
                When(
                    "refuted",
                    interface="asgi",
                    why="__aiter__ drains it with sync_to_async(list) first",
                ),
            ],
            reality=(
                "Under ASGI a sync iterator is served, but consumed in full on a thread without "
                "an event loop before the first byte of the body is sent, on every ASGI server "
                "and in process. Django issues a Warning (the base class): \"StreamingHttpResponse "
                "must consume synchronous iterators in order to serve them asynchronously. Use "
                "an asynchronous iterator instead.\" Every ASGI server prints it except daphne "
                "and runserver-daphne, where Twisted's logging has taken over "
                "warnings.showwarning and discards it."
            ),
        ),
        Statement(
            "async-iterator-streamed",
            "StreamingHttpResponse streams an async iterator.",
            "holds",
            when=[
                When(
                    "refuted",
                    interface="wsgi",
                    why="__iter__ drains it with async_to_sync first",
                ),
            ],
            reality=(
                "Under WSGI an async iterator is served, but consumed in full on an event loop "
                "(async_to_sync's) before the first byte of the body is sent, on every WSGI "
                "server and in process, with a Warning (the base class) that every WSGI server "
                "prints: \"StreamingHttpResponse must consume asynchronous iterators in order to "
                "serve them synchronously. Use a synchronous iterator instead.\""
            ),
        ),
    ],
    mechanism=(
        "django.http.response.StreamingHttpResponse.__aiter__ (sync iterator: warnings.warn, "
        "then sync_to_async(list)) and StreamingHttpResponse.__iter__ (async iterator: "
        "warnings.warn, then async_to_sync(to_list)); ASGIHandler.send_response iterates "
        "aiter(response), WSGI servers iterate the response."
    ),
    docs=(
        "https://docs.djangoproject.com/en/5.2/ref/request-response/#streaminghttpresponse-objects"
    ),
    question="Does StreamingHttpResponse stream any iterator under both WSGI and ASGI?",
    topic="views",
    code=("project.views.streaming.sync_iterator", "project.views.streaming.async_iterator"),
    instead=(),
)
# Each iterator kind is its own statement: the marks go on the ``kind`` parameter.
KINDS = each_proves(
    "kind",
    {"sync": CLAIM.statement("sync-iterator-streamed"),
     "async": CLAIM.statement("async-iterator-streamed")},
)  # fmt: skip
PATHS = {"sync": "/streaming/sync-iterator/", "async": "/streaming/async-iterator/"}
# (interface, iterator kind) -> the warning, or None when that kind is the interface's own.
WARNING = {
    ("asgi", "async"): None,
    ("asgi", "sync"): SYNC_ITERATOR_UNDER_ASGI,
    ("wsgi", "sync"): None,
    ("wsgi", "async"): ASYNC_ITERATOR_UNDER_WSGI,
}
# Where the in-process warning points: Django 5.2 added stacklevel=2 (the iterating caller).
WARNED_FROM = by_version({
    "4.2": {"asgi": "django/http/response.py", "wsgi": "django/http/response.py"},
    "5.2": {"asgi": "django/core/handlers/asgi.py", "wsgi": __file__},
})  # fmt: skip


@dataclass
class Streamed:
    """What the client saw: the body, when the first chunk arrived, what the generator reported."""

    status: int
    body: bytes
    first_at: int

    def field(self, name):
        for line in self.body.decode().splitlines():
            for word in line.split():
                if word.startswith(f"{name}="):
                    return word.split("=", 1)[1]
        raise AssertionError(f"no {name}= in {self.body!r}")

    @property
    def meeting(self):
        return self.field("meeting")

    @property
    def last_produced(self):
        return int(self.field("last-produced"))

    @property
    def streamed(self):
        # Streamed: the first chunk was here before the generator made its last one, and the
        # generator met the client, which only goes to the meeting holding that first chunk.
        return self.first_at < self.last_produced and self.meeting == "met"

    @property
    def buffered(self):
        return self.first_at > self.last_produced and self.meeting == "alone"


def join_meeting(meeting, group):
    """The client's side of the rendezvous, from a thread of its own, so that reading goes on.

    Its own answer is not needed (the generator reports the meeting in the body), so nobody
    waits for it.
    """

    def meet():
        with socket.create_connection(("127.0.0.1", meeting.port), timeout=30) as conn:
            conn.sendall(meet_line(group, 2))
            conn.makefile().readline()

    threading.Thread(target=meet, daemon=True).start()


def first_chunk(kind):
    """What the generator yields first: whether an event loop runs where it runs. An async
    generator always runs on one; a sync one, whatever the interface, on a thread without one
    (sync_to_async drains it on a worker thread under ASGI)."""
    return f"first loop={'yes' if kind == 'async' else 'no'}\n".encode()


def has_first_chunk(body):
    return body.startswith(b"first") and b"\n" in body


def complete(body):
    return b"last-produced=" in body


def params(meeting, group):
    return f"meet={meeting.port}&group={group}"


@pytest.fixture
def group():
    return uuid.uuid4().hex[:12]


# --- real servers -----------------------------------------------------------------------------


def stream_get(server, path, meeting, group):
    """GET, read until the first chunk is here; if the rest is not, go to the meeting point."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", f"{path}?{params(meeting, group)}")
        response = conn.getresponse()
        body = b""
        while not has_first_chunk(body):
            chunk = response.read1(65536)
            assert chunk, f"the body ended before its first chunk: {body!r}"
            body += chunk
        first_at = time.monotonic_ns()
        if not complete(body):
            join_meeting(meeting, group)
        body += response.read()
        return Streamed(response.status, body, first_at)
    finally:
        conn.close()


@serving(*SERVERS)
@KINDS
def test_only_the_interfaces_own_iterator_kind_is_streamed(server, kind, meeting, group, evidence):
    interface = server.kind.interface
    seen = len(server.output())
    hit = stream_get(server, PATHS[kind], meeting, group)
    # The warning is written before the first byte of the body is sent. (Each kind is served once
    # per server: PYTHONWARNINGS=default prints a warning once per code location.)
    printed = server.output()[seen:]
    assert hit.status == 200
    assert hit.body.startswith(first_chunk(kind)), hit.body
    warning = WARNING[(interface, kind)]
    if warning is None:
        assert hit.streamed, (hit.first_at, hit.body)
        assert "StreamingHttpResponse must consume" not in printed
    else:
        assert hit.buffered, (hit.first_at, hit.body)
        goes_to = get(server.url, "/streaming/warnings-go-to/").body.decode()
        assert goes_to == server.kind.warnings_to  # harness/servers.py says why
        if server.kind.prints_warnings:
            # warnings.formatwarning's "file:line: category: message".
            assert f": Warning: {warning}" in printed, printed
        else:
            assert warning not in printed, printed  # not in any form
    evidence(
        f"{server.name} {kind} iterator",
        streamed=hit.streamed,
        first_chunk_after_last_produced_ms=round((hit.first_at - hit.last_produced) / 1e6, 1),
    )


# --- in process -------------------------------------------------------------------------------


async def asgi_stream(path, meeting, group):
    """Drive a fresh ASGIHandler, reading each body message as a server would send it."""
    app = handler("asgi")
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    scope = http_scope(path, params(meeting, group))
    task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    start = await asyncio.wait_for(outbox.get(), 10)
    body, first_at = b"", None
    while True:
        message = await asyncio.wait_for(outbox.get(), 10)
        body += message.get("body", b"")
        if first_at is None and has_first_chunk(body):
            first_at = time.monotonic_ns()
            if not complete(body):
                join_meeting(meeting, group)
        if not message.get("more_body"):
            break
    await asyncio.wait_for(task, 10)
    return Streamed(start["status"], body, first_at)


def wsgi_stream(path, meeting, group):
    """Call a fresh WSGIHandler and iterate its response chunk by chunk, as a WSGI server does."""
    environ = {}
    wsgiref.util.setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, QUERY_STRING=params(meeting, group), HTTP_HOST="127.0.0.1")
    started = {}
    result = handler("wsgi")(environ, lambda status, headers: started.update(status=status))
    body, first_at = b"", None
    try:
        for chunk in result:
            body += chunk
            if first_at is None and has_first_chunk(body):
                first_at = time.monotonic_ns()
                if not complete(body):
                    # The generator is suspended until the next chunk is asked for: the client
                    # meets it from another thread.
                    join_meeting(meeting, group)
    finally:
        result.close()
    return Streamed(int(started["status"].split()[0]), body, first_at)


async def serve_in_process(interface, path, meeting, group):
    if interface == "asgi":
        return await asgi_stream(path, meeting, group)
    return await asyncio.to_thread(wsgi_stream, path, meeting, group)


@each_interface
@KINDS
async def test_in_process_streaming_and_warning(interface, kind, meeting, group, evidence):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hit = await serve_in_process(interface, PATHS[kind], meeting, group)
    assert hit.status == 200
    assert hit.body.startswith(first_chunk(kind)), hit.body
    ours = [w for w in caught if "StreamingHttpResponse" in str(w.message)]
    expected = WARNING[(interface, kind)]
    if expected is None:
        assert hit.streamed, (hit.first_at, hit.body)
        assert ours == []
    else:
        assert hit.buffered, (hit.first_at, hit.body)
        [warned] = ours
        assert warned.category is Warning  # the base class: no filter for DeprecationWarning & co.
        assert str(warned.message) == expected
        assert warned.filename.endswith(WARNED_FROM[interface])
    evidence(f"in-process {interface} {kind} iterator", streamed=hit.streamed)
