"""Seed claim 1: when async views help.

Claimed: "Async views help when the code waits on external I/O like APIs or databases, allowing
other requests to run meanwhile. CPU-heavy or purely synchronous code won't benefit."

The spec serves five kinds of view (project/views/serving.py) and lets the evidence speak. "Waits
on external I/O" is real network I/O: each view calls the harness's meeting point, which answers
``met`` only when all N requests are waiting on it at once.

What is true:

- Under an ASGI server (uvicorn, one worker) an async view that *awaits* I/O lets other requests
  run meanwhile, all on the one event-loop thread, with no bound but the loop: the claim's first
  sentence holds. But the same is true of a plain sync view there: Django runs each request's sync
  code on a thread of its own, so sync views waiting on I/O overlap too (a thread each). Async
  saves threads; it is not the only way to overlap.
- Under a threaded WSGI server (gunicorn gthread) an async view gains nothing: each request still
  occupies a worker thread (and gets a new event loop on top), so awaited I/O overlaps only as far
  as the thread count lets it, exactly like a sync view. There the claim's "async helps" fails.
- CPU-bound views gain nothing anywhere: under one GIL the requests' wall time is at least their
  CPU time added up, whether they are async (on uvicorn: strictly one after another) or sync
  (interleaved on threads). That part of the claim holds.

Why: ``ASGIHandler.__call__`` opens an ``asgiref.sync.ThreadSensitiveContext`` per request, so
``BaseHandler._get_response_async`` runs a sync view through ``sync_to_async(thread_sensitive=True)``
on that request's own thread; an async view is awaited on the loop. Under WSGI,
``BaseHandler._get_response`` runs an async view with ``async_to_sync`` inside the server's thread.
"""

import pytest

from harness.claims import SEED, Claim
from harness.plugin import serving
from harness.probe import fire
from harness.servers import ASGI_SERVERS, SERVERS, WSGI_SERVERS, ServerConfig

CLAIM = Claim(
    id="async-helps-io-not-cpu",
    source=SEED,
    claim=(
        "Async views help when the code waits on external I/O like APIs or databases, allowing "
        "other requests to run meanwhile. CPU-heavy or purely synchronous code won't benefit."
    ),
    verdict="conditional",
    condition=(
        "Holds under an ASGI server: async views awaiting I/O overlap on one thread with no "
        "thread bound, CPU-bound views gain nothing (though sync I/O views overlap there too, a "
        "thread each). Refuted under a threaded WSGI server: an async view still takes a worker "
        "thread per request, so it overlaps no more than a sync view."
    ),
    outcomes={**dict.fromkeys(ASGI_SERVERS, "holds"), **dict.fromkeys(WSGI_SERVERS, "refuted")},
    reality=(
        "Awaited I/O overlaps on uvicorn on one thread, unbounded by threads; on gunicorn gthread "
        "it overlaps only up to the worker's thread count, like sync views. Sync views waiting on "
        "I/O overlap on both servers. CPU-bound requests take at least their summed CPU time "
        "everywhere (one GIL). How much each gains, in requests/s: docs/benchmarks/README.md."
    ),
    mechanism=(
        "ASGIHandler.__call__ (ThreadSensitiveContext per request) and "
        "BaseHandler._get_response_async (sync views via sync_to_async(thread_sensitive=True)); "
        "BaseHandler._get_response (async views via async_to_sync under WSGI); the GIL."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
)
pytestmark = CLAIM.mark

N = 3
ALL = tuple(CLAIM.outcomes)
THREADS = ServerConfig().threads  # gunicorn's gthread worker threads in the default config


@serving(*ALL)
def test_awaited_io_overlaps(server, meeting, evidence):
    volley = fire_io(server, meeting, "async-await-io", N)
    assert volley.meetings == ["met"] * N
    if SERVERS[server.name].interface == "asgi":
        assert len(volley.threads) == 1  # all on the event loop's thread
    else:
        assert len(volley.threads) == N and len(volley.loops) == N  # a thread and loop each
    evidence(f"{server.name} async awaited I/O", volley.summary())


@serving(*CLAIM.servers_where("holds"))
def test_awaited_io_is_not_bounded_by_threads(server, meeting, evidence):
    volley = fire_io(server, meeting, "async-await-io", THREADS + 1)
    assert volley.meetings == ["met"] * (THREADS + 1)
    evidence(f"{server.name} {THREADS + 1} async awaits", volley.summary())


@serving(*[name for name in CLAIM.servers_where("refuted") if SERVERS[name].thread_bound])
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


@serving(*ALL)
def test_sync_io_overlaps_too(server, meeting, evidence):
    volley = fire_io(server, meeting, "sync-blocking-io", N)
    assert volley.meetings == ["met"] * N
    assert len(volley.threads) == N  # a thread per request, under ASGI as under WSGI
    evidence(f"{server.name} sync blocking I/O", volley.summary())


CPU_MS = 10


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
