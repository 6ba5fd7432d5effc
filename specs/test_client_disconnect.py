"""Client disconnects: is the async view cancelled?

Claimed (Django docs, Asynchronous support, "Handling disconnects", new in Django 5.0): "when the
client disconnects, the async view is cancelled with asyncio.CancelledError".

What is true: on Django >= 5.0, under an ASGI server, yes. The view's ``await`` raises
``asyncio.CancelledError``, which the view can catch (and re-raise, as the docs show); no
response is sent, and Django sends ``request_finished`` itself (a response never existed, so
``response.close()`` cannot). Every ASGI server here (uvicorn, daphne,
hypercorn, granian, runserver with daphne) delivers ``http.disconnect`` while the view is still
running, so the cancellation happens on all of them.

It does not hold:

- on Django 4.2: ``ASGIHandler`` never calls ``receive()`` once the body is read, so the
  ``http.disconnect`` the server queues is never seen. The view runs to the end, Django sends its
  response to a client that has gone (every server accepts it without raising) and
  ``request_finished`` fires from ``response.close()`` as for any request;
- for a sync view (Django >= 5.0): the task awaiting it is cancelled, but the thread running it
  cannot be. The view runs to the end; its response is thrown away, never sent, never closed.
  Django sends ``request_finished`` as soon as it sees the disconnect, but sync receivers run on
  the request's thread, behind the view. On 5.0-6.0 an async receiver runs at once, *while the
  view still runs*; Django 6.1's ``Signal.asend`` awaits the sync receivers before it starts the
  async ones, so there every receiver waits for the view to end;
- under WSGI (gunicorn, runserver): nothing tells the application that the client left. An
  async view runs inside ``async_to_sync`` to the end, like any other.

Why: ``django.core.handlers.asgi.ASGIHandler.handle`` (Django 5.0 to 6.0) runs
``listen_for_disconnect`` (awaits ``receive()``; ``http.disconnect`` raises ``RequestAborted``)
and ``process_request`` (the view, then ``send_response``) as two tasks, waits for the first to
finish and ``task.cancel()``s the other, then, when the response task was cancelled, calls
``signals.request_finished.asend``. Django 6.1 does the same with an ``asyncio.TaskGroup``: the
listener's ``RequestAborted`` cancels the task that awaits the view, and ``request_finished`` is
sent when no response was produced. A sync view runs in ``asgiref.sync.SyncToAsync``, whose
``__call__`` turns the cancellation into ``CancelledError`` for the awaiting coroutine while the
executor thread carries on. Django 4.2's ``handle`` awaits ``read_body``, then the response,
then ``send_response``: no listener.
"""

import asyncio
import socket
import uuid
from urllib.parse import urlsplit

import pytest

from harness.spec import (
    ASGI_SERVERS,
    Claim,
    Statement,
    WSGI_SERVERS,
    When,
    by_version,
    handler,
    http_scope,
    progress,
    requires_django,
    serving,
)

CLAIM = Claim(
    id="disconnect-cancels-async-view",
    source="Django docs, Asynchronous support (Handling disconnects), new in Django 5.0",
    url="https://docs.djangoproject.com/en/5.2/topics/async/#handling-disconnects",
    claim="when the client disconnects, the async view is cancelled with asyncio.CancelledError",
    statements=[
        Statement(
            "async-view-cancelled",
            "When the client disconnects, the async view is cancelled with "
            "asyncio.CancelledError.",
            "holds",
            when=[
                When("refuted", interface="wsgi", why="nothing tells a WSGI application"),
                When("refuted", django="<5.0", why="ASGIHandler does not listen for it"),
            ],
            reality=(
                "Under WSGI servers, and on Django 4.2 under ASGI, the async view runs to the end; "
                "on 4.2 its response is sent to the client that left. On Django >= 5.0 under "
                "ASGI, every server tested delivers http.disconnect mid-view: the view's await "
                "raises CancelledError, no response is sent, and the handler sends "
                "request_finished."
            ),
        ),
        Statement(
            "sync-view-cancelled",
            "A sync view is cancelled the same way.",
            "refuted",
            reality=(
                "Its thread runs it to the end and its response is discarded, never sent nor "
                "closed. On Django >= 5.0 under ASGI, request_finished's async receivers run "
                "while it still runs on 5.0-6.0, after it on 6.1."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.handle: listen_for_disconnect() awaits receive() "
        "and raises RequestAborted on http.disconnect; the task running the view (5.0-6.0: "
        "process_request; 6.1: the TaskGroup's parent task) is cancelled, then "
        "signals.request_finished.asend(). Sync views: asgiref.sync.SyncToAsync.__call__ cannot "
        "stop its executor thread. Django 4.2's handle() never calls receive() after read_body()."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#handling-disconnects",
)
async_view = CLAIM.statement("async-view-cancelled")
sync_view = CLAIM.statement("sync-view-cancelled")

# What the views report (project/views/streaming.py). request_finished's receiver says whether it
# ran on the event loop or on a worker thread.
STARTED, COMPLETED, CLOSED = "started", "completed", "response_closed"
CANCELLED = "cancelled:CancelledError"
FINISHED = "request_finished:no-loop"  # a sync receiver: sync_to_async's worker thread
FINISHED_ON_LOOP = "request_finished:loop"  # an async receiver
# Ran to the end: the response was sent to the gone client and closed, which sends request_finished.
RAN_TO_THE_END = [STARTED, COMPLETED, CLOSED, FINISHED]
# What a held sync view's request has reported before and after the test releases it (Django
# >= 5.0). Django 6.1's Signal.asend awaits the sync receivers (queued behind the view on the
# request's thread) before it starts the async ones; 5.0-6.0 run both at once, so there the
# async receiver reports while the view still runs.
SYNC_VIEW = {
    "5.0": ([STARTED, FINISHED_ON_LOOP], [STARTED, FINISHED_ON_LOOP, COMPLETED]),
    "6.1": ([STARTED], [STARTED, COMPLETED, FINISHED_ON_LOOP]),
}


@pytest.fixture
def group(meeting):
    name = uuid.uuid4().hex[:12]
    yield name
    meeting.release(name)  # never leave a view holding, whatever the test saw


@pytest.fixture
def sync_view_events():
    return by_version(SYNC_VIEW)


def query(meeting, group, finished="sync"):
    return f"meet={meeting.port}&group={group}&finished={finished}"


def start_and_hang_up(server, path, meeting, group, finished="sync"):
    """Send the request on a raw socket, wait until the view runs, then close the connection."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    client = socket.create_connection((host, port), timeout=5)
    try:
        target = f"{path}?{query(meeting, group, finished)}"
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        started = meeting.wait_for_event(group, "started", server_and_test(server))
        assert "started" in started, "the view never started"
    finally:
        client.close()  # the client goes away while the view awaits


def hold_then_release(meeting, group, expected, activity):
    """Wait for the events ``expected`` while the view holds; check that nothing else happens
    (no cancellation) until every process involved has gone quiet, so that nothing more can come
    (harness/progress.py); then release the view."""
    meeting.wait_for_event(group, expected[-1], activity)
    progress.wait_until(lambda: meeting.events(group) != expected, activity)
    assert meeting.events(group) == expected
    meeting.release(group)


def server_and_test(server):
    """What a disconnect can set in motion: the server's processes and this test process."""
    return progress.Activity(groups=[server.proc.pid])


# --- real servers -----------------------------------------------------------------------------


@async_view
@requires_django(since="5.0")
@serving(*ASGI_SERVERS)
def test_async_view_is_cancelled_on_every_asgi_server(server, meeting, group, evidence):
    start_and_hang_up(server, "/streaming/hold/", meeting, group)
    # Nobody releases the view: only a cancellation can end it.
    events = meeting.wait_for_event(group, FINISHED, server_and_test(server))
    assert events == [STARTED, CANCELLED, FINISHED]  # no response, so none to close
    evidence(server.name, events=" > ".join(events))


@async_view
@requires_django(until="5.0")
@serving(*ASGI_SERVERS)
def test_django_42_runs_the_async_view_to_the_end(server, meeting, group, evidence):
    start_and_hang_up(server, "/streaming/hold/", meeting, group)
    hold_then_release(meeting, group, [STARTED], server_and_test(server))
    events = meeting.wait_for_event(group, FINISHED, server_and_test(server))
    assert events == RAN_TO_THE_END
    evidence(server.name, events=" > ".join(events))


@async_view
@serving(*WSGI_SERVERS)
def test_wsgi_servers_run_the_async_view_to_the_end(server, meeting, group, evidence):
    start_and_hang_up(server, "/streaming/hold/", meeting, group)
    hold_then_release(meeting, group, [STARTED], server_and_test(server))
    events = meeting.wait_for_event(group, FINISHED, server_and_test(server))
    assert events == RAN_TO_THE_END
    evidence(server.name, events=" > ".join(events))


@sync_view
@requires_django(since="5.0")
@serving(*ASGI_SERVERS)
def test_sync_view_is_not_cancelled_and_its_response_is_dropped(
    server, meeting, group, sync_view_events, evidence
):
    # An async receiver, so that it does not have to wait for the busy request thread (5.0-6.0).
    start_and_hang_up(server, "/streaming/hold-sync/", meeting, group, finished="async")
    held, after = sync_view_events
    hold_then_release(meeting, group, held, server_and_test(server))
    events = meeting.wait_for_event(group, after[-1], server_and_test(server))
    assert events == after  # never cancelled; its response never sent, never closed
    evidence(server.name, events=" > ".join(events))


# --- in process -------------------------------------------------------------------------------
# asgi_get (harness/inprocess.py) sends the request and reads the response; a disconnect needs
# the driver to send a second message while the view runs, hence this small driver.


async def drive_with_disconnect(meeting, group, path, held, finished="sync"):
    """One request through a fresh ASGIHandler: once the view has started, send
    http.disconnect; see ``held`` reported, release the view unless it was cancelled, and return
    what the app sent and the events reported."""
    app = handler("asgi")
    inbox, sent = asyncio.Queue(), []
    inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    async def send(message):
        sent.append(message)

    scope = http_scope(path, query(meeting, group, finished))
    task = asyncio.ensure_future(app(scope, inbox.get, send))
    try:
        started = await asyncio.to_thread(meeting.wait_for_event, group, STARTED)
        assert started == [STARTED], "the view never started"
        inbox.put_nowait({"type": "http.disconnect"})
        if CANCELLED not in held:
            # In process, everything a disconnect sets in motion runs in this process.
            await asyncio.to_thread(hold_then_release, meeting, group, held, progress.Activity())
        # The app returns normally, cancelled view or not; a view that was not cancelled after
        # all would hold until released: wait only until nothing here can run any more.
        returned = await asyncio.to_thread(progress.wait_until, task.done, progress.Activity())
        events = meeting.events(group)
    finally:
        meeting.release(group)  # never leave a view holding, whatever went wrong
    await asyncio.wait_for(task, 10)  # released, it ends at once
    assert returned, f"the app did not return while the view held; it reported {events}"
    return sent, events


@async_view
@pytest.mark.interface("asgi")
@requires_django(since="5.0")
async def test_in_process_the_async_view_is_cancelled_and_nothing_is_sent(meeting, group):
    sent, events = await drive_with_disconnect(
        meeting, group, "/streaming/hold/", held=[STARTED, CANCELLED]
    )
    assert events == [STARTED, CANCELLED, FINISHED]
    assert sent == []


@async_view
@pytest.mark.interface("asgi")
@requires_django(until="5.0")
async def test_in_process_django_42_sends_the_response_after_the_disconnect(meeting, group):
    sent, events = await drive_with_disconnect(meeting, group, "/streaming/hold/", held=[STARTED])
    assert events == RAN_TO_THE_END
    # Nothing read the disconnect: the whole response goes out to the client that left.
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"completed")


@sync_view
@pytest.mark.interface("asgi")
@requires_django(since="5.0")
async def test_in_process_the_sync_view_is_not_cancelled_and_nothing_is_sent(
    meeting, group, sync_view_events
):
    held, after = sync_view_events
    sent, events = await drive_with_disconnect(
        meeting, group, "/streaming/hold-sync/", held=held, finished="async"
    )
    assert events == after
    assert sent == []
