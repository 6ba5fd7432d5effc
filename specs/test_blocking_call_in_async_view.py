"""Seed claim 2: a blocking call inside an async view.

The quiz's view::

    async def my_view(request):
        time.sleep(2) # blocking call
        return JsonResponse({'status': 'done'})

Claimed: "Using blocking calls like time.sleep inside async views blocks the event loop, causing
requests to be handled one after another, not concurrently."

It depends on what serves the view.

- Under an ASGI server with one worker (uvicorn) there is one event loop, and Django runs an async
  view directly on it. ``time.sleep`` holds that loop: requests to the view are served strictly
  one after another, and so is every other request to that process, even a trivial one to an
  unrelated view, which cannot even be read until the sleep ends.
- The claim is about *one* event loop, i.e. one worker process. With two uvicorn workers a blocked
  loop only stops its own process: the other worker accepts and serves the next request. (The
  same holds for processes under WSGI: one gunicorn worker with one thread makes a blocked
  request delay the next; a second such worker serves it meanwhile.)
- Under a threaded WSGI server (gunicorn's gthread worker) there is no shared loop. Django runs an
  async view through ``async_to_sync``, which gives each request a fresh event loop on a thread of
  its own; a blocking call blocks only that request's loop. Requests overlap (up to the worker's
  thread count) and unrelated requests are served meanwhile.

Why: ``django.core.handlers.base.BaseHandler._get_response_async`` awaits an async view on the
server's loop (``ASGIHandler``); ``BaseHandler._get_response`` wraps it in
``asgiref.sync.async_to_sync`` under WSGI, and ``AsyncToSync.__call__`` runs the coroutine in a new
event loop when the calling thread has none.
"""

import asyncio
import threading
import uuid

import pytest

from harness.spec import (
    ASGI_SERVERS,
    Claim,
    SEED,
    ServerConfig,
    ServerRequest,
    Statement,
    Volley,
    WSGI_SERVERS,
    When,
    asgi_get,
    fire,
    fire_sleeping,
    get,
    handler,
    meeting_params,
    progress,
    serving,
)

WSGI_OWN_LOOP = "async_to_sync gives each request's async view a loop and a thread of its own"

CLAIM = Claim(
    id="blocking-call-in-async-view",
    source=SEED,
    claim=(
        "Using blocking calls like time.sleep inside async views blocks the event loop, causing "
        "requests to be handled one after another, not concurrently."
    ),
    statements=[
        Statement(
            "blocks-the-loop",
            "A blocking call like time.sleep inside an async view blocks the event loop that "
            "other requests are served on.",
            "holds",
            when=[When("refuted", interface="wsgi", why=WSGI_OWN_LOOP)],
            reality=(
                "On a threaded WSGI server (gunicorn gthread, runserver) the call blocks only its "
                "own request's event loop: an unrelated request is served meanwhile."
            ),
        ),
        Statement(
            "one-after-another",
            "Requests to such a view are handled one after another, not concurrently.",
            "holds",
            when=[When("refuted", interface="wsgi", why=WSGI_OWN_LOOP)],
            reality=(
                "On a threaded WSGI server (gunicorn gthread, runserver) the view's requests "
                "overlap, each on its own thread with its own event loop."
            ),
        ),
        Statement(
            "per-worker",
            "What a blocked request holds up is its own worker process: a worker that serves one "
            "request at a time (one event loop, or one thread) delays the next, and a second "
            "worker serves it meanwhile.",
            "holds",
            claimed=False,
        ),
        Statement(
            "awaiting-overlaps",
            "Awaiting the sleep instead (await asyncio.sleep(...)) lets the requests overlap.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "BaseHandler._get_response_async awaits async views on the server's event loop "
        "(ASGIHandler); under WSGI BaseHandler._get_response wraps them in "
        "asgiref.sync.async_to_sync, whose AsyncToSync.__call__ starts a new loop per call."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    question="Does time.sleep in an async view make other requests wait?",
    topic="serving",
    code=("project.views.blocking.my_view",),
    instead=("project.views.blocking.my_view_fixed",),
)
blocks_the_loop = CLAIM.statement("blocks-the-loop")
one_after_another = CLAIM.statement("one-after-another")
per_worker = CLAIM.statement("per-worker")
awaiting_overlaps = CLAIM.statement("awaiting-overlaps")

N = 3
BLOCK = 0.03  # seconds each quiz view blocks for, in process
SEED_VIEW = "/seed/blocking/"

serialized_on = serving(*CLAIM.servers_where("one-after-another", "holds"))
concurrent_on = serving(*CLAIM.servers_where("one-after-another", "refuted"))


def assert_serialized(volley, block=BLOCK):
    assert volley.statuses == [200] * len(volley.hits)
    assert volley.max_in_flight == 1, volley.intervals
    # Second witness, by ratio with a wide margin: back to back, they take N times as long.
    assert volley.wall_s >= 0.8 * len(volley.hits) * block


@one_after_another
@serialized_on
def test_quiz_view_serializes_requests(server, evidence):
    volley = fire_sleeping(server.url, SEED_VIEW, N, expect_overlap=False)
    assert_serialized(volley, block=volley.figures["slept_s"])
    # Each was at the server while the one before it slept, and was held back until it ended.
    assert volley.kept_waiting(margin_ns=volley.figures["slept_s"] / 3 * 1e9)
    assert len(volley.loops) == 1  # one event loop served them all
    evidence(f"{server.name} quiz view", volley.summary())


@one_after_another
@serialized_on
def test_blocking_io_in_async_view_never_meets(server, meeting, evidence):
    # The rendezvous needs all N requests inside at once; a blocked loop lets in one at a time.
    # The first waits until nothing runs any more: the others cannot even be read.
    volley = fire(server.url, "/serving/async-blocking-io/", N, meeting=meeting)
    assert volley.meetings == ["alone"] * N
    assert volley.max_in_flight == 1
    assert meeting.max_waiting(volley.group) == 1
    assert meeting.given_up(volley.group) == "quiet"
    evidence(f"{server.name} blocking I/O", volley.summary())


@one_after_another
@concurrent_on
def test_quiz_view_requests_overlap_on_threads(server, evidence):
    volley = fire_sleeping(server.url, SEED_VIEW, N)
    assert volley.statuses == [200] * N
    assert volley.max_in_flight >= 2, volley.intervals  # not one after another
    # Requests that overlapped ran on different threads, each with an event loop of its own.
    for a, b in volley.overlapping_pairs():
        assert a.thread != b.thread and a.loop != b.loop
    evidence(f"{server.name} quiz view", volley.summary())


@one_after_another
@concurrent_on
def test_blocking_io_in_async_view_meets(server, meeting, evidence):
    volley = fire(server.url, "/serving/async-blocking-io/", N, meeting=meeting)
    assert volley.meetings == ["met"] * N
    evidence(f"{server.name} blocking I/O", volley.summary())


def block_and_ping(server, meeting):
    """Start a request whose async view blocks its thread (a blocking socket read, as time.sleep
    would), wait until it is inside the view, then send an unrelated request.

    The blocking call is a wait at the meeting point that nobody joins: it returns only once
    nothing can make progress any more. So the unrelated request has every chance to be served
    while the view blocks, however slow the machine, and when it cannot be (a blocked loop), the
    block ends within a fraction of a second instead of running out a fixed sleep."""
    label = f"blocker-{uuid.uuid4().hex[:12]}"
    box = {}
    params = {**meeting_params(meeting, 2), "announce": meeting.port, "label": label}
    blocker = threading.Thread(
        target=lambda: box.update(hit=get(server.url, "/serving/async-blocking-io/", params))
    )
    blocker.start()
    try:
        watched = progress.Activity(groups=[server.proc.pid])
        assert "inside" in meeting.wait_for_event(label, "inside", watched), "the view never started"
        ping = get(server.url, "/__spec__/ping/")
    finally:
        blocker.join(30)
    return box["hit"], ping


@blocks_the_loop
@serialized_on
def test_blocked_loop_delays_an_unrelated_request(server, meeting, evidence):
    blocked, ping = block_and_ping(server, meeting)
    assert (blocked.status, ping.status) == (200, 200)
    assert ping.enter >= blocked.exit  # could not even start until the sleep ended
    evidence(f"{server.name} unrelated request", waited_ms=round((ping.enter - blocked.enter) / 1e6))


@blocks_the_loop
@concurrent_on
def test_unrelated_request_is_served_meanwhile(server, meeting, evidence):
    blocked, ping = block_and_ping(server, meeting)
    assert (blocked.status, ping.status) == (200, 200)
    assert blocked.enter <= ping.enter < blocked.exit  # began while the quiz view was blocked
    evidence(f"{server.name} unrelated request", started_inside_block=True)


# One thread per worker, and a worker whose thread is busy stops accepting (worker_connections=1):
# so for gunicorn, as for uvicorn, "one worker" means one request at a time.
ONE_THREAD = dict(threads=1, worker_connections=1)


@per_worker
@serving(
    ServerRequest("uvicorn", ServerConfig(workers=2)),
    ServerRequest("gunicorn-gthread", ServerConfig(workers=2, **ONE_THREAD)),
)
def test_a_second_worker_serves_while_one_is_blocked(server, meeting, evidence):
    blocked, ping = block_and_ping(server, meeting)
    assert (blocked.status, ping.status) == (200, 200)
    assert blocked.enter <= ping.enter < blocked.exit  # began while one loop was blocked
    assert ping.stamp("Pid") != blocked.stamp("Pid")  # in the other worker process
    evidence(f"{server.name} 2 workers", unrelated_served_by="other worker, meanwhile")


@per_worker
@serving(ServerRequest("gunicorn-gthread", ServerConfig(workers=1, **ONE_THREAD)))
def test_one_worker_with_one_thread_delays_the_next_request(server, meeting, evidence):
    blocked, ping = block_and_ping(server, meeting)
    assert ping.enter >= blocked.exit
    evidence(f"{server.name} 1 worker 1 thread", waited_ms=round((ping.enter - blocked.enter) / 1e6))


@one_after_another
@pytest.mark.interface("asgi")
async def test_in_process_asgi_serializes_like_one_worker(evidence):
    # The same loop drives every request, as in a one-worker ASGI server: the fast path agrees.
    app = handler("asgi")
    hits = await asyncio.gather(
        *(asgi_get(app, SEED_VIEW, f"seconds={BLOCK}") for _ in range(N))
    )
    volley = Volley(list(hits))
    assert_serialized(volley)
    evidence("in-process ASGI", volley.summary())


@awaiting_overlaps
@serving(*ASGI_SERVERS, *WSGI_SERVERS)
def test_awaiting_instead_overlaps_everywhere(server, evidence):
    volley = fire_sleeping(server.url, "/fixed/blocking/", N)
    assert volley.statuses == [200] * N
    assert volley.max_in_flight >= 2, volley.intervals  # rendezvous proof: test_when_async_helps
    evidence(f"{server.name} awaited sleep", volley.summary())
