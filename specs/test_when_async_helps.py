"""Seed claim 1: when async views help.

Claimed: "Async views help when the code waits on external I/O like APIs or databases, allowing
other requests to run meanwhile. CPU-heavy or purely synchronous code won't benefit."

The spec serves five kinds of view (project/views/serving.py) and lets the evidence speak. "Waits
on external I/O" is real network I/O: each view calls the harness's meeting point, which answers
``met`` only when all N requests are waiting on it at once.

What is true:

- Under an ASGI server (uvicorn, one worker) an async view that *awaits* I/O lets other requests
  run meanwhile, all on the one event-loop thread, with no bound but the loop. But so does a
  plain sync view there: Django runs each request's sync code on a thread of its own, so sync
  views waiting on I/O overlap too (a thread each). Async saves threads; it is not the only way
  to overlap.
- Under a threaded WSGI server (gunicorn gthread) an async view gains nothing: each request still
  occupies a worker thread (and gets a new event loop on top), so awaited I/O overlaps only as far
  as the thread count lets it, exactly like a sync view.
- CPU-bound views gain nothing anywhere: under one GIL the requests' wall time is at least their
  CPU time added up, whether they are async (on uvicorn: strictly one after another) or sync
  (interleaved on threads).

Why: ``ASGIHandler.__call__`` opens an ``asgiref.sync.ThreadSensitiveContext`` per request, so
``BaseHandler._get_response_async`` runs a sync view through ``sync_to_async(thread_sensitive=True)``
on that request's own thread; an async view is awaited on the loop. Under WSGI,
``BaseHandler._get_response`` runs an async view with ``async_to_sync`` inside the server's thread.
"""

import pytest

from harness.spec import (
    Claim,
    SEED,
    SERVERS,
    ServerConfig,
    Statement,
    When,
    fire,
    serving,
)

CLAIM = Claim(
    id="async-helps-io-not-cpu",
    source=SEED,
    claim=(
        "Async views help when the code waits on external I/O like APIs or databases, allowing "
        "other requests to run meanwhile. CPU-heavy or purely synchronous code won't benefit."
    ),
    statements=[
        Statement(
            "async-io-helps",
            "Async views help when the code waits on external I/O like APIs or databases, "
            "allowing other requests to run meanwhile.",
            "holds",
            when=[
                When(
                    "refuted",
                    interface="wsgi",
                    why="each request still takes a server thread, with a new event loop on top",
                ),
            ],
            reality=(
                "Under a WSGI server an async view gains nothing: each request occupies a worker "
                "thread (and gets an event loop of its own), so awaited I/O overlaps only as far "
                "as the server's threads let it (gunicorn gthread: its thread count), exactly "
                "like a sync view. Under an ASGI server awaited I/O overlaps on the one "
                "event-loop thread, unbounded by threads. How much each gains, in requests/s: "
                "docs/benchmarks/README.md."
            ),
        ),
        Statement(
            "cpu-gains-nothing",
            "CPU-heavy code won't benefit.",
            "holds",
        ),
        Statement(
            "sync-gains-nothing",
            "Purely synchronous code won't benefit: while it waits on I/O, other requests do not "
            "run meanwhile.",
            "refuted",
            reality=(
                "Sync views blocking on I/O overlap on every server, each request on a thread of "
                "its own (under ASGI Django runs each request's sync view on a thread of its "
                "own; under WSGI the server's threads run them), bounded only by the server's "
                "thread count where it has one (gunicorn gthread), as async views are there. "
                "Async saves threads, not overlap."
            ),
        ),
    ],
    mechanism=(
        "ASGIHandler.__call__ (ThreadSensitiveContext per request) and "
        "BaseHandler._get_response_async (sync views via sync_to_async(thread_sensitive=True)); "
        "BaseHandler._get_response (async views via async_to_sync under WSGI); the GIL."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
)
async_io_helps = CLAIM.statement("async-io-helps")
cpu_gains_nothing = CLAIM.statement("cpu-gains-nothing")
sync_gains_nothing = CLAIM.statement("sync-gains-nothing")

N = 3
ALL = tuple(SERVERS)
THREADS = ServerConfig().threads  # gunicorn's gthread worker threads in the default config


@async_io_helps
@serving(*ALL)
def test_awaited_io_overlaps(server, meeting, evidence):
    volley = fire_io(server, meeting, "async-await-io", N)
    assert volley.meetings == ["met"] * N
    if SERVERS[server.name].interface == "asgi":
        assert len(volley.threads) == 1  # all on the event loop's thread
    else:
        assert len(volley.threads) == N and len(volley.loops) == N  # a thread and loop each
    evidence(f"{server.name} async awaited I/O", volley.summary())


@async_io_helps
@serving(*CLAIM.servers_where("async-io-helps", "holds"))
def test_awaited_io_is_not_bounded_by_threads(server, meeting, evidence):
    volley = fire_io(server, meeting, "async-await-io", THREADS + 1)
    assert volley.meetings == ["met"] * (THREADS + 1)
    evidence(f"{server.name} {THREADS + 1} async awaits", volley.summary())


@async_io_helps
@serving(
    *[
        name
        for name in CLAIM.servers_where("async-io-helps", "refuted")
        if SERVERS[name].thread_bound
    ]
)
@pytest.mark.parametrize("kind", ["async-await-io", "sync-blocking-io"])
def test_io_is_bounded_by_worker_threads_async_or_not(server, meeting, kind, evidence):
    # One request more than the worker has threads: the last one cannot start while the others
    # wait, so the rendezvous of all of them never happens. An async view does not lift the bound.
    volley = fire_io(server, meeting, kind, THREADS + 1)
    assert volley.meetings == ["alone"] * (THREADS + 1)
    # All the worker's threads were inside at once, and waited until nothing could run any more:
    # the last request was queued for a thread.
    assert meeting.max_waiting(volley.group) == THREADS
    assert meeting.given_up(volley.group) == "quiet"
    assert volley.max_in_flight == THREADS
    evidence(f"{server.name} {THREADS + 1} x {kind}", volley.summary())


@sync_gains_nothing
@serving(*ALL)
def test_sync_io_overlaps_too(server, meeting, evidence):
    volley = fire_io(server, meeting, "sync-blocking-io", N)
    assert volley.meetings == ["met"] * N
    assert len(volley.threads) == N  # a thread per request, under ASGI as under WSGI
    evidence(f"{server.name} sync blocking I/O", volley.summary())


CPU_MS = 10


@cpu_gains_nothing
@serving(*ALL)
def test_cpu_bound_views_gain_nothing(server, evidence):
    for kind in ("async-cpu", "sync-cpu"):
        volley = fire(server.url, f"/serving/{kind}/", N, {"cpu_ms": CPU_MS})
        assert volley.statuses == [200] * N
        # One GIL: the union of the intervals is at least the CPU time the requests used.
        assert volley.cpu_ratio >= 0.8, volley.summary()
        if kind == "async-cpu" and SERVERS[server.name].interface == "asgi":
            assert volley.max_in_flight == 1  # the loop runs them strictly one after another
        evidence(f"{server.name} {kind}", volley.summary(), cpu_ratio=round(volley.cpu_ratio, 2))


def fire_io(server, meeting, kind, n):
    volley = fire(server.url, f"/serving/{kind}/", n, meeting=meeting)
    assert volley.statuses == [200] * n
    return volley
