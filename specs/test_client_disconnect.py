"""Client disconnects: is the async view cancelled?

Claimed (Django docs, Asynchronous support, "Handling disconnects", new in Django 5.0): "when the
client disconnects, the async view is cancelled with asyncio.CancelledError".

What is true: on Django >= 5.0, under an ASGI server, yes. Every ASGI server here (uvicorn,
daphne, hypercorn, granian, runserver with daphne) delivers ``http.disconnect`` while the view
awaits, and the view's ``await`` then raises ``asyncio.CancelledError``, which the view can catch
(and re-raise, as the docs show). No response is sent. Django 5.0.2 and later then send
``request_finished`` themselves (a response never existed, so ``response.close()`` cannot);
5.0.0 and 5.0.1 send none at all for such a request (ticket 35059, fixed in 5.0.2).

It does not hold:

- on Django 4.2: ``ASGIHandler`` never calls ``receive()`` once the body is read, so the
  ``http.disconnect`` the server queues is never seen. The view runs to the end, Django sends its
  response to a client that has gone (every server accepts it without raising) and
  ``request_finished`` fires from ``response.close()`` as for any request;
- for a sync view (Django >= 5.0, under ASGI): the task awaiting it is cancelled, but the thread
  running it cannot be. The view runs to the end; its response is thrown away, never sent, never
  closed. Django 5.0.2 and later send ``request_finished`` as soon as they see the disconnect,
  but a sync receiver runs only once the view has ended (sync_to_async queues it on the request's
  one thread, which the view holds). On 5.0.2-6.0 an async receiver runs at once, *while the view
  still runs*; Django 6.1's ``Signal.asend`` awaits the sync receivers before it starts the async
  ones, so there every receiver waits for the view to end. 5.0.0 and 5.0.1 send no
  ``request_finished`` for it;
- under WSGI (gunicorn, runserver): nothing tells the application that the client left. An
  async view runs inside ``async_to_sync`` to the end, like any other.

How the spec tells: the view reports each step to the meeting point (``started``, then
``cancelled:CancelledError`` or ``completed``, and its ``request_finished`` receiver), and the
test reports there that the client hangs up just before it closes the connection, so one log
orders them all. The view holds until the test releases it, which a test that expects a
cancellation never does: only a cancellation can end it. Before it hangs up, that test waits until
the server has gone quiet with the view still holding: nothing cancels the view while the client
stays. A wait for something that does not come ends once every process involved has gone quiet
(harness/progress.py), not after a window.

Why: ``django.core.handlers.asgi.ASGIHandler.handle`` (Django 5.0 to 6.0) runs
``listen_for_disconnect`` (awaits ``receive()``; ``http.disconnect`` raises ``RequestAborted``)
and ``process_request`` (the view, then ``send_response``) as two tasks, waits for the first to
finish and ``task.cancel()``s the other. From 5.0.2, ``handle`` then calls
``signals.request_finished.asend`` when ``process_request`` was cancelled (it closes the response
otherwise). In 5.0.0 and 5.0.1, ``handle`` does neither: the response was closed at the end of
``ASGIHandler.send_response``, the only place ``request_finished`` came from, and a cancelled
``process_request`` never gets there. Django 6.1 does the same as 5.0.2 with an
``asyncio.TaskGroup``: the listener's ``RequestAborted`` cancels the task that awaits the view,
and ``request_finished`` is sent when no response was produced. A sync view runs in
``asgiref.sync.SyncToAsync``, whose ``__call__`` turns the cancellation into ``CancelledError``
for the awaiting coroutine while the executor thread carries on. Django 4.2's ``handle`` awaits
``read_body``, then the response, then ``send_response``: no listener.
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
    connections_once,
    handler,
    http_scope,
    postgres_cluster,
    progress,
    requires_django,
    serving,
)
from project.evidence import tell



def ticket_35059(why):
    """Refuted under ASGI on the releases whose ASGIHandler.handle sends no request_finished for
    a request a disconnect ended (ticket 35059, fixed in 5.0.2)."""
    return When("refuted", interface="asgi", django=">=5.0,<5.0.2", why=why)


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
                "ASGI, every server tested delivers http.disconnect while the view awaits: the "
                "view's await raises CancelledError after the client has hung up, and no response "
                "is sent."
            ),
        ),
        Statement(
            "sync-view-cancelled",
            "A sync view is cancelled the same way.",
            "refuted",
            reality=(
                "On Django >= 5.0 under ASGI its thread runs it to the end, and its response is "
                "discarded, never sent nor closed. request_finished (sent from 5.0.2) reaches a "
                "sync receiver only once the view has ended; an async one while the view still "
                "runs on 5.0.2-6.0, after it on 6.1."
            ),
            claimed=False,
        ),
        Statement(
            "request-finished-sent",
            "Django sends request_finished for a request that a disconnect ended before any "
            "response was sent.",
            "holds",
            when=[
                ticket_35059(
                    "ASGIHandler.handle cancels process_request, whose send_response closed "
                    "the response, and sends no signal instead"
                ),
            ],
            reality=(
                "On Django 5.0.0 and 5.0.1 under ASGI it sends none for such a request, whether "
                "its async view was cancelled or its sync view's response dropped (ticket 35059, "
                "fixed in 5.0.2). From 5.0.2 ASGIHandler.handle sends it itself once the task "
                "running the view is cancelled; a sync receiver runs on a thread without an "
                "event loop."
            ),
            claimed=False,
        ),
        Statement(
            "connection-closed",
            "Once a disconnect has cancelled an async view that had queried the database, Django "
            "closes the request's connection (CONN_MAX_AGE = 0), as at the end of any request.",
            "holds",
            when=[ticket_35059("no request_finished, so no close_old_connections, for such a request")],
            reality=(
                "On Django 5.0.0 and 5.0.1 under ASGI the connection is left open, idle, after "
                "the request (ticket 35059: \"ASGI server leaves stale DB connections\"): "
                "close_old_connections runs on request_finished, which those versions never "
                "send for a cancelled request."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.handle: listen_for_disconnect() awaits receive() "
        "and raises RequestAborted on http.disconnect; the task running the view (5.0-6.0: "
        "process_request; 6.1: the TaskGroup's parent task) is cancelled, then, from 5.0.2, "
        "signals.request_finished.asend() (5.0.0-5.0.1: nothing; ASGIHandler.send_response closed "
        "the response). Sync views: asgiref.sync.SyncToAsync.__call__ cannot stop its executor "
        "thread. Django 4.2's handle() never calls receive() after read_body()."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#handling-disconnects",
    question="Is an async view cancelled when the client disconnects?",
    topic="serving",
    code=("project.views.streaming.hold_view",),
    instead=(),
)
async_view = CLAIM.statement("async-view-cancelled")
sync_view = CLAIM.statement("sync-view-cancelled")
request_finished_sent = CLAIM.statement("request-finished-sent")
connection_closed = CLAIM.statement("connection-closed")

# What the views report (project/views/streaming.py), and what the test reports just before it
# closes the connection. request_finished's receiver says whether it ran on the event loop or on
# a thread without one (a sync receiver: sync_to_async's worker thread).
STARTED, COMPLETED, CLOSED = "started", "completed", "response_closed"
HANGS_UP = "client_hangs_up"
CANCELLED = "cancelled:CancelledError"
FINISHED = "request_finished:no-loop"  # a sync receiver
FINISHED_ON_LOOP = "request_finished:loop"  # an async receiver
# Ran to the end: the response was sent to the gone client and closed, which sends request_finished.
RAN_TO_THE_END = [STARTED, HANGS_UP, COMPLETED, CLOSED, FINISHED]
CANCELLED_AFTER_HANGING_UP = [STARTED, HANGS_UP, CANCELLED]
# When an async receiver of request_finished runs for a sync view that a disconnect abandoned,
# relative to the view (which holds until the test releases it). Django 6.1's Signal.asend awaits
# the sync receivers (queued behind the view on the request's thread) before it starts the async
# ones; 5.0.2-6.0 run both at once. Whether request_finished is sent at all (not on 5.0.0 and
# 5.0.1) is the record's "request-finished-sent".
ASYNC_RECEIVER_RUNS = {"5.0": "while the view runs", "6.1": "after the view"}


def sync_view_events(receiver, server=None):
    """What a held sync view's request has reported (before, after) the test releases it."""
    finished = {"sync": FINISHED, "async": FINISHED_ON_LOOP}[receiver]
    sent = [finished] if CLAIM.expected("request-finished-sent", server) == "holds" else []
    early = receiver == "async" and by_version(ASYNC_RECEIVER_RUNS) == "while the view runs"
    held = [STARTED, HANGS_UP] + (sent if early else [])
    return held, held + [COMPLETED] + ([] if early else sent)


@pytest.fixture
def group(meeting):
    name = uuid.uuid4().hex[:12]
    yield name
    meeting.release(name)  # never leave a view holding, whatever the test saw


def query(meeting, group, finished="sync"):
    return f"meet={meeting.port}&group={group}&finished={finished}"


def start_and_hang_up(server, path, meeting, group, finished="sync", idle_first=False):
    """Send the request on a raw socket, wait until the view runs, report that the client hangs
    up, then close the connection. With ``idle_first``, first show that nothing happens to the
    view while the client stays: the server goes quiet with the view still holding."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    client = socket.create_connection((host, port), timeout=5)
    try:
        target = f"{path}?{query(meeting, group, finished)}"
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        if idle_first:
            started = settled(meeting, group, [STARTED], server_and_test(server))
        else:
            started = meeting.wait_for_event(group, STARTED, server_and_test(server))
        assert started == [STARTED], f"the view never started, or did more: {started}"
        # Told while the connection is still open: whatever the log shows after it came after.
        tell(meeting.port, group, HANGS_UP)
    finally:
        client.close()  # the client goes away while the view awaits


def settled(meeting, group, expected_events, activity):
    """``group``'s events once ``expected_events[-1]`` is among them and then either something
    else comes or every process involved has gone quiet (nothing more can come)."""
    meeting.wait_for_event(group, expected_events[-1], activity)
    progress.wait_until(lambda: meeting.events(group) != expected_events, activity)
    return meeting.events(group)


def hold_then_release(meeting, group, expected_events, activity):
    """Wait until the events are ``expected_events`` and nothing else happens (no cancellation)
    until every process involved has gone quiet; then release the view."""
    assert settled(meeting, group, expected_events, activity) == expected_events
    meeting.release(group)


def server_and_test(server):
    """What a disconnect can set in motion: the server's processes and this test process."""
    return progress.Activity(groups=[server.proc.pid])


def hang_up_on_the_async_view(server, meeting, group, idle_first=False):
    """Hang up on /streaming/hold/, which nobody releases: only a cancellation can end it.
    Returns the events once request_finished is reported, or once the server has nothing left
    to do (no cancellation; or, on 5.0.0 and 5.0.1, no request_finished)."""
    start_and_hang_up(server, "/streaming/hold/", meeting, group, idle_first=idle_first)
    return meeting.wait_for_event(group, FINISHED, server_and_test(server))


# --- real servers -----------------------------------------------------------------------------


@async_view
@requires_django(since="5.0")
@serving(*ASGI_SERVERS)
def test_async_view_is_cancelled_on_every_asgi_server(server, meeting, group, evidence):
    # Nothing cancels the view while the client stays; it is cancelled once it has hung up.
    events = hang_up_on_the_async_view(server, meeting, group, idle_first=True)
    assert events[:3] == CANCELLED_AFTER_HANGING_UP
    # Nothing of the view's after the cancellation: it never completed, no response was closed
    # (request_finished, if any, is the handler's: "request-finished-sent").
    assert events[3:] in ([], [FINISHED])
    evidence(server.name, events=" > ".join(events))


@request_finished_sent
@requires_django(since="5.0")
@serving(*ASGI_SERVERS)
def test_request_finished_after_the_async_view_is_cancelled(server, meeting, group, evidence):
    events = hang_up_on_the_async_view(server, meeting, group)
    sent = CLAIM.expected("request-finished-sent", server) == "holds"
    assert events == CANCELLED_AFTER_HANGING_UP + ([FINISHED] if sent else [])
    evidence(server.name, events=" > ".join(events))


@async_view
@requires_django(until="5.0")
@serving(*ASGI_SERVERS)
def test_django_42_runs_the_async_view_to_the_end(server, meeting, group, evidence):
    start_and_hang_up(server, "/streaming/hold/", meeting, group)
    hold_then_release(meeting, group, [STARTED, HANGS_UP], server_and_test(server))
    events = meeting.wait_for_event(group, FINISHED, server_and_test(server))
    assert events == RAN_TO_THE_END
    evidence(server.name, events=" > ".join(events))


@async_view
@serving(*WSGI_SERVERS)
def test_wsgi_servers_run_the_async_view_to_the_end(server, meeting, group, evidence):
    start_and_hang_up(server, "/streaming/hold/", meeting, group)
    hold_then_release(meeting, group, [STARTED, HANGS_UP], server_and_test(server))
    events = meeting.wait_for_event(group, FINISHED, server_and_test(server))
    assert events == RAN_TO_THE_END
    evidence(server.name, events=" > ".join(events))


@sync_view
@requires_django(since="5.0")
@serving(*ASGI_SERVERS)
def test_sync_view_is_not_cancelled_and_its_response_is_dropped(server, meeting, group, evidence):
    # An async receiver: it need not wait for the busy request thread (5.0.2-6.0).
    start_and_hang_up(server, "/streaming/hold-sync/", meeting, group, finished="async")
    held, after = sync_view_events("async", server)
    hold_then_release(meeting, group, held, server_and_test(server))
    # Never cancelled. (That its response is never sent nor closed, the in-process test shows:
    # there the app's return marks the end of everything that could send or close it.)
    events = meeting.wait_for_event(group, after[-1], server_and_test(server))
    assert events == after
    evidence(server.name, events=" > ".join(events))


# --- in process -------------------------------------------------------------------------------
# asgi_get (harness/inprocess.py) sends the request and reads the response; a disconnect needs
# the driver to send a second message while the view runs, hence this small driver.


async def drive_with_disconnect(
    meeting, group, path, held=None, finished="sync", idle_first=False
):
    """One request through a fresh ASGIHandler: once the view has started (with ``idle_first``,
    and nothing more has happened by the time everything here has gone quiet), report that the
    client hangs up and send http.disconnect. A view expected to go on (``held``: the events it
    has reported while it holds) is released once exactly those are reported and everything
    here has gone quiet; one expected to be cancelled never is. Returns what the app sent and
    the events reported once it returned."""
    app = handler("asgi")
    inbox, sent = asyncio.Queue(), []
    inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    async def send(message):
        sent.append(message)

    scope = http_scope(path, query(meeting, group, finished))
    task = asyncio.ensure_future(app(scope, inbox.get, send))
    try:
        if idle_first:
            started = await asyncio.to_thread(
                settled, meeting, group, [STARTED], progress.Activity()
            )
        else:
            started = await asyncio.to_thread(meeting.wait_for_event, group, STARTED)
        assert started == [STARTED], f"the view never started, or did more: {started}"
        tell(meeting.port, group, HANGS_UP)
        inbox.put_nowait({"type": "http.disconnect"})
        if held is not None:
            # In process, everything a disconnect sets in motion runs in this process.
            await asyncio.to_thread(hold_then_release, meeting, group, held, progress.Activity())
        # A view that was not cancelled after all would hold until released: wait only until
        # nothing here can run any more.
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
    sent, events = await drive_with_disconnect(meeting, group, "/streaming/hold/", idle_first=True)
    assert events[:3] == CANCELLED_AFTER_HANGING_UP
    assert events[3:] in ([], [FINISHED])  # the handler's request_finished, if any
    assert sent == []


@request_finished_sent
@pytest.mark.interface("asgi")
@requires_django(since="5.0")
async def test_in_process_request_finished_after_the_async_view_is_cancelled(meeting, group):
    _sent, events = await drive_with_disconnect(meeting, group, "/streaming/hold/")
    finished = CLAIM.expected("request-finished-sent") == "holds"
    assert events == CANCELLED_AFTER_HANGING_UP + ([FINISHED] if finished else [])


@async_view
@pytest.mark.interface("asgi")
@requires_django(until="5.0")
async def test_in_process_django_42_sends_the_response_after_the_disconnect(meeting, group):
    sent, events = await drive_with_disconnect(
        meeting, group, "/streaming/hold/", held=[STARTED, HANGS_UP]
    )
    assert events == RAN_TO_THE_END
    # Nothing read the disconnect: the whole response goes out to the client that left.
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"completed")


@sync_view
@pytest.mark.interface("asgi")
@requires_django(since="5.0")
@pytest.mark.parametrize("receiver", ["sync", "async"])
async def test_in_process_the_sync_view_is_not_cancelled_and_nothing_is_sent(
    meeting, group, receiver
):
    held, after = sync_view_events(receiver)
    sent, events = await drive_with_disconnect(
        meeting, group, "/streaming/hold-sync/", held=held, finished=receiver
    )
    assert events == after
    assert sent == []


# --- the request's database connection (PostgreSQL) -------------------------------------------

QUERY_THEN_HOLD = "/postgresql/query-then-hold/"


@connection_closed
@requires_django(since="5.0")
@serving(*ASGI_SERVERS, databases=("postgresql",))
def test_the_connection_of_a_cancelled_view_is_closed(server, meeting, evidence):
    label, cluster = f"conn-{uuid.uuid4().hex[:12]}", postgres_cluster()
    watched = server_and_test(server)
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    # runserver's start-up checks (unapplied migrations) leave a connection of its main thread.
    before = set(cluster.connections(server.dbname))
    with socket.create_connection((host, port), timeout=5) as client:
        client.sendall(f"GET {QUERY_THEN_HOLD}?announce={meeting.port}&label={label} HTTP/1.1\r\n"
                       f"Host: {host}:{port}\r\n\r\n".encode())  # fmt: skip
        assert meeting.wait_for_event(label, "before", watched) == ["before"]
        meeting.release(f"{label}-a")
        assert meeting.wait_for_event(label, "queried", watched) == ["before", "queried"]
        ((backend, state),) = set(cluster.connections(server.dbname)) - before
        assert state == "idle"  # the view's connection, kept while it awaits
    # The client has gone: the view is cancelled, then the request's connection closed.
    assert meeting.wait_for_event(label, "cancelled", watched) == ["before", "queried", "cancelled"]
    closed = CLAIM.expected("connection-closed", server) == "holds"
    left = set(connections_once(cluster, server, len(before) + (0 if closed else 1))) - before
    assert left == (set() if closed else {(backend, "idle")})
    evidence(server.name, open_after_disconnect=len(left))
