"""Django's AsyncClient compared with the ASGI handler that servers run.

Claimed (a common assumption in Django testing; Django docs, "Testing asynchronous code"):
"Django's AsyncClient is a faithful stand-in for an ASGI server".

It runs the same middleware and views, but not the same way. Concurrent requests sent through one
AsyncClient with ``asyncio.gather``:

- Sync views run one after another, all on one thread: asgiref's process-wide
  ``SyncToAsync.single_thread_executor`` (under pytest-asyncio), or the test's own main thread
  (in a ``django.test.TestCase`` async test, which Django wraps in ``async_to_sync``). Under
  ``ASGIHandler`` (in process or behind uvicorn, daphne, hypercorn, granian, runserver-daphne)
  the same requests are inside their views at the same time, each on a new thread of its own.
- A client cannot disconnect: the AsyncClient has no ``receive`` channel, so an async view always
  runs to completion. Behind a real ASGI server (Django >= 5.0) a client that goes away gets its
  async view cancelled (``asyncio.CancelledError`` in the view). On Django 4.2 there is no
  difference here: ``ASGIHandler`` did not listen for ``http.disconnect`` yet.
- A sync view runs to its end either way: a thread cannot be cancelled. Behind a server whose
  client left it goes on until it returns; on Django >= 5.0 ``ASGIHandler`` has stopped waiting
  for it by then and sends no response (on 4.2 it sends the response to the client that left).
- Thread-sensitive code that starts its own event loop (``asyncio.run`` in a sync view, then a
  thread-sensitive call: asgiref issue 323) raises ``RuntimeError: Single thread executor already
  being used, would deadlock`` through the AsyncClient, and deadlocks instead under the handler:
  the call waits in the queue of the request's one-thread executor, whose only thread is the
  view's, waiting for it. (The view gives up once nothing in the process can run any more, says
  so, and cancels the call; behind every ASGI server, see
  specs/test_thread_sensitive.py::test_under_asgi_the_same_pattern_deadlocks.)

Good for exceptions and ordering; never evidence of concurrency, threads or disconnects.

Why: ``django.test.client.AsyncClientHandler.__call__(scope)`` calls ``get_response_async``
directly: no ``ThreadSensitiveContext`` (which ``ASGIHandler.__call__`` opens per request, so
``sync_to_async`` falls back to the shared ``single_thread_executor``), and no ``receive``
(``ASGIHandler.handle`` runs ``listen_for_disconnect(receive)`` next to the view and cancels the
task running it when it reads ``http.disconnect``, since Django 5.0; for a sync view
``SyncToAsync.__call__`` then stops awaiting the thread, which runs on).
"""

import asyncio
import inspect
import re
import socket
import threading
import time
import urllib.parse
import uuid

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient, SimpleTestCase
from django.test.client import AsyncClientHandler

from harness.spec import (
    ASGI_SERVERS,
    Claim,
    Hit,
    Statement,
    Volley,
    WOULD_DEADLOCK,
    When,
    asgi_get,
    asgiref_shared_thread,
    by_version,
    fire,
    handler,
    http_scope,
    meeting_params,
    progress,
    requires_django,
    serving,
)
from project.views import threads as threads_view

NO_LISTENER = (
    "ASGIHandler does not listen for http.disconnect: behind a server too, the async view runs to "
    "the end"
)

CLAIM = Claim(
    id="async-client-faithful",
    source="common assumption in Django testing (Django docs, Testing asynchronous code)",
    url="https://docs.djangoproject.com/en/5.2/topics/testing/tools/#testing-asynchronous-code",
    claim="Django's AsyncClient is a faithful stand-in for an ASGI server",
    statements=[
        Statement(
            "sync-views-overlap",
            "Concurrent requests sent through one AsyncClient are inside their sync views at the "
            "same time, as behind an ASGI server.",
            "refuted",
            reality=(
                "Gathered through one AsyncClient, they run one at a time on one shared thread; "
                "under ASGIHandler, in process and behind every ASGI server, the same requests "
                "are inside their views at once, each on a thread of its own."
            ),
        ),
        Statement(
            "sync-view-threads",
            "Through the AsyncClient, a sync view runs on a thread of its own for each request, "
            "as under an ASGI server.",
            "refuted",
            reality=(
                "Every request's sync view runs on the same thread: asgiref's process-wide "
                "SyncToAsync.single_thread_executor, or the test's main thread in an async test "
                "of a Django TestCase. ASGIHandler gives each request a new executor thread."
            ),
        ),
        Statement(
            "disconnect",
            "An async view whose client goes away ends the same way through the AsyncClient as "
            "behind an ASGI server.",
            "refuted",
            when=[When("holds", django="<5.0", why=NO_LISTENER)],
            reality=(
                "The AsyncClient has no receive channel, so its client cannot disconnect and the "
                "async view always runs to completion; on Django >= 5.0 every ASGI server (and "
                "ASGIHandler in process, which then sends no response) cancels the async view "
                "of a client that left: asyncio.CancelledError in the view."
            ),
        ),
        Statement(
            "disconnect-sync-view",
            "A sync view whose client goes away runs to its end behind an ASGI server, as it "
            "does through the AsyncClient.",
            "holds",
        ),
        Statement(
            "nested-event-loop",
            "A sync view that runs asyncio.run and then a thread-sensitive call ends the same way "
            "through the AsyncClient as under ASGIHandler, which servers run.",
            "refuted",
            reality=(
                "Through the AsyncClient it raises RuntimeError: Single thread executor already "
                "being used, would deadlock. Under ASGIHandler it deadlocks (asgiref issue 323): "
                "the call waits, never started, in the queue of the request's one-thread "
                "executor, whose only thread is the view's, inside asyncio.run waiting for it "
                "(behind every ASGI server too: specs/test_thread_sensitive.py::"
                "test_under_asgi_the_same_pattern_deadlocks)."
            ),
        ),
    ],
    mechanism=(
        "django.test.client.AsyncClientHandler.__call__(scope) calls get_response_async with no "
        "ThreadSensitiveContext and no receive; django.core.handlers.asgi.ASGIHandler.__call__ "
        "(ThreadSensitiveContext per request) and ASGIHandler.handle / listen_for_disconnect; "
        "asgiref.sync.SyncToAsync.__call__ (single_thread_executor fallback; once cancelled it "
        "stops awaiting the sync function, whose thread runs on)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/testing/tools/#testing-asynchronous-code",
    question="Is Django's AsyncClient a faithful stand-in for an ASGI server?",
    topic="tests",
    code=(
        "specs.test_async_client_vs_server.test_async_client_runs_concurrent_sync_views_one_at_a_time",
        "project.views.threads.sync_view",
    ),
    instead=(
        "specs.test_async_client_vs_server.test_asgi_handler_runs_the_same_requests_together",
    ),
)
overlap = CLAIM.statement("sync-views-overlap")
thread_each = CLAIM.statement("sync-view-threads")
disconnect = CLAIM.statement("disconnect")
disconnect_sync = CLAIM.statement("disconnect-sync-view")
nested_loop = CLAIM.statement("nested-event-loop")
# Everything in process here is ASGI: the AsyncClient's handler or ASGIHandler.
in_process = pytest.mark.interface("asgi")

N = 3
SYNC_VIEW = "/threads/sync/"
EXECUTOR_THREAD = re.compile(r"ThreadPoolExecutor-\d+_0")


async def client_get(client, path, query=""):
    """One request through the AsyncClient, as a probe Hit (its headers carry the stamps)."""
    start = time.monotonic_ns()
    response = await client.get(path, urllib.parse.parse_qs(query))
    end = time.monotonic_ns()
    headers = {k.lower(): v for k, v in response.items()}
    return Hit(response.status_code, headers, response.content, start, end)


def async_client_route():
    client = AsyncClient()
    return lambda path, query="": client_get(client, path, query)


def asgi_handler_route():
    app = handler("asgi")
    return lambda path, query="": asgi_get(app, path, query)


ROUTES = {"AsyncClient": async_client_route, "ASGIHandler": asgi_handler_route}


async def gather_sync_views(route, meeting):
    send = ROUTES[route]()
    query = urllib.parse.urlencode(meeting_params(meeting, N))
    return Volley(list(await asyncio.gather(*(send(SYNC_VIEW, query) for _ in range(N)))))


@overlap
@in_process
async def test_async_client_runs_concurrent_sync_views_one_at_a_time(meeting, evidence):
    # The first request waits alone until nothing else can run: the others queue behind it.
    shared = asgiref_shared_thread().ident
    volley = await gather_sync_views("AsyncClient", meeting)
    assert volley.statuses == [200] * N
    assert [hit.json()["meeting"] for hit in volley.hits] == ["alone"] * N
    assert volley.max_in_flight == 1, volley.intervals
    assert {hit.json()["thread"] for hit in volley.hits} == {shared}
    evidence("AsyncClient, gathered sync views", volley.summary())


@overlap
@in_process
async def test_asgi_handler_runs_the_same_requests_together(meeting, evidence):
    # Started first, so that it is alive while the requests run: idents of threads that ended
    # may be handed to new threads.
    shared = asgiref_shared_thread().ident
    volley = await gather_sync_views("ASGIHandler", meeting)
    assert [hit.json()["meeting"] for hit in volley.hits] == ["met"] * N
    threads = {hit.json()["thread"] for hit in volley.hits}
    assert len(threads) == N and shared not in threads
    evidence("ASGIHandler in process, gathered sync views", volley.summary())


@overlap
@serving(*ASGI_SERVERS)
def test_servers_run_them_together(server, meeting, evidence):
    volley = fire(server.url, SYNC_VIEW, N, meeting=meeting)
    assert [hit.json()["meeting"] for hit in volley.hits] == ["met"] * N
    assert len({hit.json()["thread"] for hit in volley.hits}) == N
    evidence(f"{server.name} gathered sync views", volley.summary())


@thread_each
@in_process
async def test_async_client_reuses_one_thread_the_handler_never_does():
    by_route = {}
    for route, make in ROUTES.items():
        send = make()
        by_route[route] = [(await send(SYNC_VIEW)).json() for _ in range(N)]
    assert [a["thread"] for a in by_route["AsyncClient"]] == [asgiref_shared_thread().ident] * N
    handler_threads = by_route["ASGIHandler"]
    assert len({a["thread_name"] for a in handler_threads}) == N  # a new executor per request
    assert all(EXECUTOR_THREAD.fullmatch(a["thread_name"]) for a in handler_threads)


@thread_each
@in_process
class TestInDjangoTestCase(SimpleTestCase):
    async def test_sync_view_runs_on_the_test_main_thread(self):
        # Django wraps an async test in async_to_sync, called on the main thread: thread-sensitive
        # calls, the sync view included, go back to that thread. No server ever does this.
        responses = await asyncio.gather(*(self.async_client.get(SYNC_VIEW) for _ in range(N)))
        threads = {response.json()["thread"] for response in responses}
        self.assertEqual(threads, {threading.main_thread().ident})


# --- disconnects ------------------------------------------------------------------------------

OUTCOMES = ("cancelled", "completed")


def first_outcome(meeting, label, activity=None):
    """"cancelled" or "completed", as the view told the meeting point; None if it told neither
    before nothing watched could make progress any more."""
    progress.wait_until(lambda: set(OUTCOMES) & set(meeting.events(label)),
                        activity or progress.Activity())  # fmt: skip
    told = [event for event in meeting.events(label) if event in OUTCOMES]
    return told[0] if told else None


def query_for(meeting, label):
    return urllib.parse.urlencode({"announce": meeting.port, "label": label})


@disconnect
@serving(*ASGI_SERVERS)
def test_a_server_cancels_the_view_of_a_client_that_left(server, meeting, evidence):
    label = f"leave-{uuid.uuid4().hex[:12]}"
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            f"GET /threads/until-disconnect/?{query_for(meeting, label)} HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\n\r\n".encode()
        )
        watched = progress.Activity(groups=[server.proc.pid])
        assert "inside" in meeting.wait_for_event(label, "inside", watched), "the view never started"
    # The connection is closed while the view holds (until nothing can run any more: by then a
    # server that cancels has done so).
    outcome = first_outcome(meeting, label, watched)
    assert outcome == by_version({"4.2": "completed", "5.0": "cancelled"})
    evidence(f"{server.name} client left", view=outcome)


@disconnect
@in_process
async def test_async_client_cannot_leave_so_the_view_completes(meeting, monkeypatch):
    listened = []
    if hasattr(ASGIHandler, "listen_for_disconnect"):  # Django >= 5.0
        monkeypatch.setattr(ASGIHandler, "listen_for_disconnect", lambda *a: listened.append(a))
    # No receive callable to send http.disconnect on: only a scope goes in.
    assert list(inspect.signature(AsyncClientHandler.__call__).parameters) == ["self", "scope"]
    label = f"client-{uuid.uuid4().hex[:12]}"
    response = await AsyncClient().get(f"/threads/until-disconnect/?{query_for(meeting, label)}")
    assert (response.status_code, response.json()) == (200, {"outcome": "completed"})
    assert first_outcome(meeting, label) == "completed"
    assert listened == []


async def leave_once_inside(meeting, path, label):
    """Drive ``path`` through a fresh ASGIHandler and send ``http.disconnect`` once the view has
    told the meeting point ``inside``. Returns the handler's task and the messages it sends."""
    app = handler("asgi")
    inbox, sent = asyncio.Queue(), []
    inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    async def send(message):
        sent.append(message)

    task = asyncio.ensure_future(app(http_scope(path, query_for(meeting, label)), inbox.get, send))
    assert "inside" in await asyncio.to_thread(meeting.wait_for_event, label, "inside")
    inbox.put_nowait({"type": "http.disconnect"})
    return task, sent


@disconnect
@in_process
@requires_django(since="5.0")
async def test_the_handler_listens_for_the_disconnect_the_client_never_sends(meeting):
    # The same view through ASGIHandler with a client that leaves: cancelled.
    label = f"handler-{uuid.uuid4().hex[:12]}"
    task, sent = await leave_once_inside(meeting, "/threads/until-disconnect/", label)
    await asyncio.wait_for(task, 5)
    assert await asyncio.to_thread(first_outcome, meeting, label) == "cancelled"
    assert sent == []  # no response at all


SYNC_UNTIL_RELEASED = "/threads/sync-until-released/"


@disconnect_sync
@serving(*ASGI_SERVERS)
def test_a_server_lets_a_sync_view_run_to_its_end(server, meeting, evidence):
    label = f"sync-leave-{uuid.uuid4().hex[:12]}"
    port = int(server.url.rsplit(":", 1)[1])
    watched = progress.Activity(groups=[server.proc.pid])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            f"GET {SYNC_UNTIL_RELEASED}?{query_for(meeting, label)} HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\n\r\n".encode()
        )
        assert "inside" in meeting.wait_for_event(label, "inside", watched), "the view never started"
    # The client has gone. Once nothing in the server can run any more, it has done whatever it
    # does about that, and the view is still held.
    assert meeting.wait_for_event(label, "completed", watched) == ["inside"]
    meeting.release(label)
    assert meeting.wait_for_event(label, "completed", watched) == ["inside", "completed"]
    evidence(f"{server.name} client left a sync view", view="completed")


@disconnect_sync
@in_process
async def test_the_handler_lets_a_sync_view_run_to_its_end(meeting):
    label = f"sync-handler-{uuid.uuid4().hex[:12]}"
    task, sent = await leave_once_inside(meeting, SYNC_UNTIL_RELEASED, label)
    # Until nothing can run any more: ASGIHandler.handle has cancelled the view's task (>= 5.0).
    assert await asyncio.to_thread(meeting.wait_for_event, label, "completed") == ["inside"]
    meeting.release(label)
    await asyncio.wait_for(task, 5)
    assert meeting.events(label) == ["inside", "completed"]
    # The view returned its response; Django >= 5.0 had stopped waiting for it and sends none.
    assert [message["type"] for message in sent] == by_version({
        "4.2": ["http.response.start", "http.response.body"],
        "5.0": [],
    })  # fmt: skip


@disconnect_sync
@in_process
async def test_async_client_runs_a_sync_view_to_its_end(meeting):
    label = f"sync-client-{uuid.uuid4().hex[:12]}"
    request = asyncio.ensure_future(
        AsyncClient().get(f"{SYNC_UNTIL_RELEASED}?{query_for(meeting, label)}")
    )
    assert "inside" in await asyncio.to_thread(meeting.wait_for_event, label, "inside")
    meeting.release(label)
    response = await asyncio.wait_for(request, 5)
    assert (response.status_code, response.json()) == (200, {"outcome": "completed"})
    assert meeting.events(label) == ["inside", "completed"]


# --- asgiref issue 323's pattern --------------------------------------------------------------

NESTED_ASYNCIO_RUN = "/threads/nested-asyncio-run/"


@nested_loop
@in_process
async def test_asyncio_run_in_a_sync_view_raises_through_the_async_client(meeting):
    hit = await ROUTES["AsyncClient"]()(NESTED_ASYNCIO_RUN, f"meet={meeting.port}")
    assert hit.status == 200
    answer = hit.json()
    assert (answer["outcome"], answer["ran_on"]) == (f"RuntimeError: {WOULD_DEADLOCK}", [])
    # The view ran on the shared thread, the thread-sensitive calls' one thread outside a request.
    assert answer["view"]["thread"] == asgiref_shared_thread().ident


@nested_loop
@in_process
async def test_asyncio_run_in_a_sync_view_deadlocks_under_the_handler(meeting):
    label = f"nested-{uuid.uuid4().hex[:12]}"
    hit = await ROUTES["ASGIHandler"]()(NESTED_ASYNCIO_RUN, f"meet={meeting.port}&label={label}")
    assert hit.status == 200
    answer = hit.json()
    assert (answer["outcome"], answer["ran_on"], answer["cancelled"]) == ("deadlocked", [], True)
    view = answer["view"]
    # Once nothing could run any more: asyncio.run's loop on the view's thread, the call's work
    # item not started and alone in the queue of the request's executor, whose one thread is
    # the view's.
    assert answer["loop"]["thread"] == view["thread"] and view["loop"] is None
    assert answer["executor"] == {
        "max_workers": 1,
        "threads": [view["thread"]],
        "queue": [{"call": "record", "started": False}],
    }
    # Over when the request is: ThreadSensitiveContext.__aexit__ has shut the executor down and
    # joined its thread, which skipped the cancelled call.
    left = threads_view.NESTED_RUNS.pop(label)
    assert left["executor"]._shutdown and left["executor"]._threads == {left["thread"]}
    assert not left["thread"].is_alive()
    assert left["item"].future.cancelled() and left["ran_on"] == []
