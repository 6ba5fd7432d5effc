"""Request bodies under ASGI: read in full, spooled, before the view runs.

Claimed (Django ticket 33699, "Read ASGI request body from asyncio queue on-demand", by the
reporter, who had 1-15 GB uploads behind nginx): "Given, that the application is running within
an ASGI server, the whole request is received by the ASGIHandler. It's method #read_body creates a
SpooledTemporaryFile. This temporary file contains the whole request body, including POST
parameters and files." Channels said the same of its own handler, whose design Django's took
over (django/channels issue 1169, 2018: "AsgiRequests on the other hand load the entire body before
the execution of the view and only offer a fake stream.").

What is true, on Django 4.2 to 6.1:

- under ASGI, yes: the view does not run until the last byte of the body is in, behind uvicorn,
  hypercorn and granian. (daphne, also under runserver, is left out:
  Twisted's ``http.Request`` buffers the whole body before daphne even starts the application, so
  there a Django that read less would look the same.) Under
  WSGI (gunicorn gthread, runserver) it is the other way round: the view runs as soon as the
  headers are in, and ``request.body`` then reads the body from the socket, on the view's thread;
  the view gets a ``LimitedStream``, not a ``SpooledTemporaryFile``;
- the file stays in memory up to ``FILE_UPLOAD_MAX_MEMORY_SIZE`` bytes (2.5 MB by default) and
  goes to a temporary file on disk as soon as it holds more; ``DATA_UPLOAD_MAX_MEMORY_SIZE`` plays
  no part in it;
- a slow upload keeps nobody waiting under ASGI: while its body arrives ``read_body`` awaits
  ``receive()`` on the event loop, holding no thread, so requests go on being answered. Under
  gunicorn's gthread worker each slow upload holds a worker thread (its view blocks reading
  ``wsgi.input``): as many slow uploads as threads (4 here) keep every other request waiting until
  one of them finishes. runserver gives every connection a thread of its own, so it answers;
- from Django 6.0 (ticket 36281), once the file has rolled over to disk, each further chunk is
  written from a worker thread (``sync_to_async(..., thread_sensitive=False)``); before, every
  write ran on the event loop itself.

How the spec tells: the test sends the headers and half of the body on a raw socket; the upload
view tells the meeting point ``started`` before it touches the body. The test waits until that
event arrives or every process involved has gone quiet (harness/progress.py), tells the meeting
point ``body-complete`` and sends the rest, so the log orders "the view ran" against "the body was
complete". For other requests, a ping is sent while the uploads are half sent, and waited for the
same way; where it is not answered, its stamped ``enter`` (one monotonic clock for every process)
comes after the instant the test sent the rest. The in-process tests drive ``ASGIHandler`` with a
body in chunks and look at what the view was handed.

Why: ``django.core.handlers.asgi.ASGIHandler.handle`` awaits ``read_body`` first; ``read_body``
loops on ``await receive()`` until ``more_body`` is false, writing every chunk into
``tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)`` (which rolls over
to a ``TemporaryFile`` when a write takes it past ``max_size``), and only then sends
``request_started``, builds the ``ASGIRequest`` (whose ``_stream`` is that file) and runs the
middleware and view. From 6.0, ``read_body`` checks ``body_file._rolled`` and writes through
``sync_to_async(body_file.write, thread_sensitive=False)``. ``django.core.handlers.wsgi.WSGIRequest``
wraps ``wsgi.input`` in a ``LimitedStream`` that ``HttpRequest.body`` reads only when asked.
"""

import asyncio
import socket
import threading
import time
import types
import uuid
from urllib.parse import urlsplit

import pytest

from harness.spec import (
    Claim,
    SERVERS,
    ServerConfig,
    Statement,
    When,
    get,
    handler,
    http_scope,
    progress,
    read_http_response,
    serving,
)
from project.evidence import tell, where

CLAIM = Claim(
    id="asgi-request-body-read-first",
    source="Django ticket 33699 (Read ASGI request body from asyncio queue on-demand), its description",
    url="https://groups.google.com/g/django-updates/c/4XO-Pf9TYLA/m/t8NN_I5SBAAJ",
    claim=(
        "Given, that the application is running within an ASGI server, the whole request is "
        "received by the ASGIHandler. It's method #read_body creates a SpooledTemporaryFile. This "
        "temporary file contains the whole request body, including POST parameters and files."
    ),
    statements=[
        Statement(
            "read-in-full-first",
            "Under ASGI, Django receives the whole request body before it runs the view.",
            "holds",
            when=[
                When(
                    "refuted", interface="wsgi",
                    why="WSGIHandler runs the view once the headers are in; request.body reads "
                    "wsgi.input later",
                ),
            ],
            reality=(
                "Under WSGI (gunicorn gthread, runserver) the view runs as soon as the headers are "
                "in, and request.body then reads the rest from the socket on the view's thread, "
                "through a LimitedStream."
            ),
        ),
        Statement(
            "spooled-to-disk-above-file-upload-limit",
            "ASGIHandler.read_body writes the body into a SpooledTemporaryFile, which the view "
            "gets as its stream: it stays in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE bytes and "
            "goes to a temporary file on disk as soon as it holds more, whatever "
            "DATA_UPLOAD_MAX_MEMORY_SIZE says.",
            "holds",
        ),
        Statement(
            "slow-upload-keeps-others-waiting",
            "Slow uploads keep other requests waiting: with as many uploads sending their body "
            "as gunicorn has threads (4), a further request is not answered until one of them "
            "finishes.",
            "refuted",
            when=[
                When(
                    "holds", servers=("gunicorn-gthread",),
                    why="each upload's view blocks a worker thread reading wsgi.input",
                ),
            ],
            reality=(
                "Under ASGI the request is answered at once: read_body awaits receive() on the "
                "event loop and holds no thread while the body arrives. runserver gives every "
                "connection its own thread, and answers too. Under gunicorn's gthread worker each "
                "slow upload holds one of its threads, blocked in the view reading the body; once "
                "every thread is held, nothing else is served."
            ),
            claimed=False,
        ),
        Statement(
            "disk-writes-off-the-loop",
            "Once the body has gone to disk, read_body writes each further chunk from a worker "
            "thread, not on the event loop.",
            "holds",
            when=[
                When(
                    "refuted", django="<6.0",
                    why="read_body calls body_file.write() on the event loop for every chunk",
                ),
            ],
            reality=(
                "Before Django 6.0 (ticket 36281), every chunk is written on the event loop's "
                "thread, also after the file has rolled over to disk: the loop waits for each "
                "disk write."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.handle awaits ASGIHandler.read_body (await "
        "receive() until more_body is false, into tempfile.SpooledTemporaryFile(max_size="
        "settings.FILE_UPLOAD_MAX_MEMORY_SIZE); from 6.0, sync_to_async(body_file.write, "
        "thread_sensitive=False) once body_file._rolled) before request_started, "
        "ASGIHandler.create_request (ASGIRequest._stream = the file) and get_response_async. "
        "django.core.handlers.wsgi.WSGIRequest wraps wsgi.input in a LimitedStream read by "
        "HttpRequest.body."
    ),
    docs="https://docs.djangoproject.com/en/5.2/ref/settings/#file-upload-max-memory-size",
    question="Does Django receive the whole request body into a spooled file before the view runs?",
    topic="serving",
    code=("project.views.request_bodies.upload", "project.views.request_bodies.stream"),
    instead=(),
)
read_first = CLAIM.statement("read-in-full-first")
spooled = CLAIM.statement("spooled-to-disk-above-file-upload-limit")
others_wait = CLAIM.statement("slow-upload-keeps-others-waiting")
off_loop = CLAIM.statement("disk-writes-off-the-loop")

# Not daphne, nor runserver with daphne: Twisted's http.Request buffers the whole body before daphne
# starts the application, so there a Django that read the body lazily would look the same.
SERVED = [name for name, kind in SERVERS.items() if kind.package != "daphne"]
HALF = 1000  # bytes sent before the test waits, and after
UPLOADS = ServerConfig().threads  # as many slow uploads as gunicorn-gthread has threads
STARTED, COMPLETE = "started", "body-complete"


# --- a raw HTTP/1.1 client that sends its body in two halves ----------------------------------


class SlowUpload:
    """A POST whose headers and first half of the body are sent at once; ``finish`` sends the
    rest (telling the meeting point first) and reads the response."""

    def __init__(self, server, meeting, group):
        self.meeting, self.group = meeting, group
        host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
        self.sock = socket.create_connection((host, port), timeout=15)
        target = f"/request-bodies/upload/?meet={meeting.port}&group={group}"
        self.sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {2 * HALF}\r\n"
            "Connection: close\r\n\r\n".encode() + b"a" * HALF
        )

    def finish(self):
        tell(self.meeting.port, self.group, COMPLETE)
        self.sock.sendall(b"b" * HALF)
        status, _, body = read_http_response(self.sock)
        return int(status.split()[1]), body

    def close(self):
        self.sock.close()


def activity(server):
    return progress.Activity(groups=[server.proc.pid])


@pytest.fixture
def uploads():
    opened = []
    yield opened
    for upload in opened:
        upload.close()


# --- read-in-full-first ------------------------------------------------------------------------


@read_first
@serving(*SERVED)
def test_the_view_runs_only_once_the_body_is_in(server, meeting, uploads, evidence):
    import json

    group = uuid.uuid4().hex[:12]
    upload = SlowUpload(server, meeting, group)
    uploads.append(upload)
    # Until the view says it started, or nothing involved can make progress any more.
    before = meeting.wait_for_event(group, STARTED, activity(server))
    status, body = upload.finish()
    answer = json.loads(body)
    assert status == 200 and answer["length"] == 2 * HALF
    events = meeting.events(group)
    if CLAIM.expected("read-in-full-first", server) == "holds":
        assert before == []
        assert events == [COMPLETE, STARTED]
        assert answer["stream"] == "SpooledTemporaryFile"
    else:
        assert before == [STARTED]
        assert events == [STARTED, COMPLETE]
        assert answer["stream"] == "LimitedStream"
        assert answer["where"]["loop"] is None  # a sync view on a server thread, blocked reading
    evidence(server.name, order=" then ".join(events), stream=answer["stream"])


# --- slow-upload-keeps-others-waiting ------------------------------------------------------------


@others_wait
@serving(*SERVED)
def test_slow_uploads_and_another_request(server, meeting, uploads, evidence):
    import json

    groups = [uuid.uuid4().hex[:12] for _ in range(UPLOADS)]
    for group in groups:
        uploads.append(SlowUpload(server, meeting, group))
    watched = activity(server)
    interface = server.kind.interface
    # Under WSGI every upload's view runs (and blocks reading); under ASGI none does. One wait for
    # all of them: until every view started, or nothing watched can make progress any more.
    progress.wait_until(lambda: all(STARTED in meeting.events(g) for g in groups), watched)
    started = [meeting.events(g) for g in groups]
    assert started == [[STARTED] if interface == "wsgi" else []] * UPLOADS

    answered = {}
    pinger = threading.Thread(target=lambda: answered.update(hit=get(server.url, "/__spec__/ping/")))
    pinger.start()
    try:
        served_at_once = progress.wait_until(lambda: "hit" in answered, watched)
        finished_at = time.monotonic_ns()
        answers = [json.loads(upload.finish()[1]) for upload in uploads]
    finally:
        pinger.join(20)
    hit = answered["hit"]
    assert hit.status == 200 and hit.json() == {"pong": True}
    assert [a["length"] for a in answers] == [2 * HALF] * UPLOADS
    if CLAIM.expected("slow-upload-keeps-others-waiting", server) == "holds":
        assert not served_at_once
        assert hit.enter > finished_at  # it ran only once the test had sent the rest
        # Each upload's view held a thread of its own while its body arrived.
        assert len({a["where"]["thread"] for a in answers}) == UPLOADS
    else:
        assert served_at_once
        assert hit.exit < finished_at
    evidence(server.name, ping_answered_during_uploads=served_at_once)


# --- in process: what read_body makes of a body ------------------------------------------------


async def post(app, path, chunks):
    """POST ``chunks`` (one http.request message each) through an ASGI app, as a server does;
    the (status, body) of its response. receive() blocks once the body has been sent."""
    size = sum(len(c) for c in chunks)
    scope = http_scope(path, method="POST")
    scope["headers"] = scope["headers"] + [(b"content-length", str(size).encode())]
    inbox, sent = asyncio.Queue(), []
    for i, chunk in enumerate(chunks):
        inbox.put_nowait({"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1})
    done = asyncio.Event()

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    task = asyncio.ensure_future(app(scope, inbox.get, send))
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        inbox.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(task, 5)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], body


LIMIT = 1000  # FILE_UPLOAD_MAX_MEMORY_SIZE in these tests


@spooled
@pytest.mark.interface("asgi")
@pytest.mark.parametrize(
    "size, data_limit, on_disk",
    [(LIMIT, None, False), (LIMIT + 1, None, True), (LIMIT, 10, False), (LIMIT + 1, 10**6, True)],
    ids=["limit-in-memory", "limit+1-on-disk", "data-limit-small", "data-limit-large"],
)
async def test_the_body_rolls_over_to_disk_above_file_upload_max_memory_size(
    settings, size, data_limit, on_disk
):
    import json

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = LIMIT
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = data_limit
    status, body = await post(handler("asgi"), "/request-bodies/stream/", [b"x" * 600, b"y" * (size - 600)])
    assert status == 200
    assert json.loads(body) == {"stream": "SpooledTemporaryFile", "rolled": on_disk, "size": size}


@off_loop
@pytest.mark.interface("asgi")
async def test_where_read_body_writes_once_on_disk(settings, monkeypatch):
    import json
    import tempfile

    from django.core.handlers import asgi as django_asgi

    writes = []

    class Recording(tempfile.SpooledTemporaryFile):
        def write(self, s):
            writes.append((self._rolled, where()["loop"] is not None))
            return super().write(s)

    # Only Django's ASGI handler sees the recording file; the rest of tempfile is the real one.
    monkeypatch.setattr(
        django_asgi, "tempfile", types.SimpleNamespace(SpooledTemporaryFile=Recording)
    )
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100
    chunks = [b"a" * 100, b"b" * 50, b"c" * 10, b"d" * 10]
    status, body = await post(handler("asgi"), "/request-bodies/stream/", chunks)
    assert (status, json.loads(body)["rolled"]) == (200, True)
    # (rolled over before this write, written on the event loop's thread)
    in_memory = [(False, True), (False, True)]  # the second write takes it past 100 bytes
    expected = CLAIM.expected("disk-writes-off-the-loop", None) == "holds"
    assert writes == in_memory + [(True, not expected)] * 2
