"""Seed claim 1: when async views help.

Claimed: "Async views help when the code waits on external I/O like APIs or databases, allowing
other requests to run meanwhile. CPU-heavy or purely synchronous code won't benefit."

The spec serves kinds of view (project/views/serving.py) and lets the evidence speak. "Waits on
external I/O" is real network I/O: each view calls the harness's meeting point, which answers
``met`` only when all N requests are waiting on it at once.

What is true:

- Under an ASGI server an async view that *awaits* I/O lets other requests run meanwhile on its
  own thread: N requests wait together on the one event loop, on one thread, and so do one more
  than gunicorn gthread has threads. But so does a plain sync view there: Django runs each
  request's sync code on a thread of its own, so sync views waiting on I/O overlap too (a thread
  each). Async saves threads; it is not the only way to overlap.
- Under a WSGI server an async view gains nothing. Its await yields only to an event loop of the
  request's own: N requests at once run on N event loops, on N threads. They overlap because the
  server gives each request a thread, exactly as far as sync views do: under gunicorn gthread up
  to its thread count (one request more waits for a thread, async or sync), under runserver (a
  thread per connection) one request more than that meets the others, async or sync alike.
- CPU-bound views gain nothing anywhere. Under an ASGI server an async one holds the event loop:
  requests that had already reached the server start only when the one running ends (no two
  intervals overlap). Everywhere else (sync views; async views under WSGI) requests run on a
  thread each, and N of them, all in flight before any starts its CPU work, take turns on the one
  GIL: from the first one's start to the last one's end they take at least 90% of their CPU time
  added up.

Why: ``ASGIHandler.__call__`` opens an ``asgiref.sync.ThreadSensitiveContext`` per request, so
``BaseHandler._get_response_async`` runs a sync view through ``sync_to_async(thread_sensitive=True)``
on that request's own thread; an async view is awaited on the loop. Under WSGI,
``BaseHandler._get_response`` runs an async view with ``async_to_sync``: with no outer loop to go
back to, ``AsyncToSync.__call__`` runs it under ``asyncio.run`` (a new event loop) in a new
one-thread executor, while the server's thread waits for it.

Throughput figures for these kinds of view (a benchmark, not evidence checked here):
docs/benchmarks/README.md.
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
                    why=(
                        "the await yields only to the request's own new event loop; requests "
                        "overlap on the server's threads, as far as sync views do"
                    ),
                ),
            ],
            reality=(
                "Under a WSGI server an async view gains nothing over a sync one: its await "
                "yields only to a new event loop of the request's own (N requests at once: N "
                "event loops, on N threads), and requests overlap exactly as far as the server's "
                "threads let sync views overlap: under gunicorn gthread up to its thread count, "
                "async or sync; under runserver, a thread per connection, one request more than "
                "that, async or sync. Under an ASGI server awaited I/O overlaps on one event loop, "
                "on one thread, with no thread per request."
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
        "BaseHandler._get_response (async views via async_to_sync under WSGI: "
        "asgiref.sync.AsyncToSync.__call__ runs asyncio.run in a new one-thread executor); the GIL."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    question="Do async views help I/O-bound code but not CPU-bound or synchronous code?",
    topic="serving",
    code=(
        "project.views.serving.async_await_io",
        "project.views.serving.sync_blocking_io",
        "project.views.serving.async_cpu",
    ),
    instead=(),
)
async_io_helps = CLAIM.statement("async-io-helps")
cpu_gains_nothing = CLAIM.statement("cpu-gains-nothing")
sync_gains_nothing = CLAIM.statement("sync-gains-nothing")

N = 3
ALL = tuple(SERVERS)
THREADS = ServerConfig().threads  # gunicorn's gthread worker threads in the default config
WSGI_REFUTED = CLAIM.servers_where("async-io-helps", "refuted")


@async_io_helps
@serving(*ALL)
def test_awaited_io_overlaps(server, meeting, evidence):
    volley = fire_io(server, meeting, "async-await-io", N)
    assert volley.meetings == ["met"] * N
    if SERVERS[server.name].interface == "asgi":
        # All on the event loop's thread: the await let the others run there meanwhile.
        assert (len(volley.threads), len(volley.loops)) == (1, 1)
    else:
        # A thread and a loop each: each await had nothing else to run on its loop.
        assert (len(volley.threads), len(volley.loops)) == (N, N)
    evidence(f"{server.name} async awaited I/O", volley.summary())


@async_io_helps
@serving(*CLAIM.servers_where("async-io-helps", "holds"))
def test_awaited_io_is_not_bounded_by_threads(server, meeting, evidence):
    volley = fire_io(server, meeting, "async-await-io", THREADS + 1)
    assert volley.meetings == ["met"] * (THREADS + 1)
    assert (len(volley.threads), len(volley.loops)) == (1, 1)
    evidence(f"{server.name} {THREADS + 1} async awaits", volley.summary())


@async_io_helps
@serving(*[name for name in WSGI_REFUTED if SERVERS[name].thread_bound])
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


@async_io_helps
@serving(*[name for name in WSGI_REFUTED if not SERVERS[name].thread_bound])
@pytest.mark.parametrize("kind", ["async-await-io", "sync-blocking-io"])
def test_io_overlaps_as_far_sync_or_async_on_a_thread_per_connection(
    server, meeting, kind, evidence
):
    # runserver starts a thread per connection: as many requests as gunicorn gthread bounds,
    # and one more, meet, sync views as well as async ones. The async views gain no overlap,
    # and each still needs a thread and a new event loop of its own, where on an ASGI server
    # the same requests share one loop on one thread (test_awaited_io_is_not_bounded_by_threads).
    n = THREADS + 1
    volley = fire_io(server, meeting, kind, n)
    assert volley.meetings == ["met"] * n
    assert len(volley.threads) == n
    loops = {loop for _, loop in volley.loops}
    if kind == "sync-blocking-io":
        assert loops == {"none"}
    else:
        assert len(loops) == n and "none" not in loops
    evidence(f"{server.name} {n} x {kind}", volley.summary())


@sync_gains_nothing
@serving(*ALL)
def test_sync_io_overlaps_too(server, meeting, evidence):
    volley = fire_io(server, meeting, "sync-blocking-io", N)
    assert volley.meetings == ["met"] * N
    assert len(volley.threads) == N  # a thread per request, under ASGI as under WSGI
    evidence(f"{server.name} sync blocking I/O", volley.summary())


# CPU time each request burns, in ms of its thread's CPU time (project/views/serving.py).
CPU_MS = 30
# Taking turns on the loop shows only if each request reached the server well before the one
# before it ended: budgets tried in turn, longer ones for a machine so busy that requests arrive
# far apart.
TURN_BUDGETS_MS = (10, 50, 250)
# Under one GIL, N CPU-bound requests in flight at once take at least their CPU time added up
# (measured: 1.0 to 1.4, more on a busy machine); run in parallel on this machine's 2 cores they
# would take about half of it (0.5 to 0.8 measured, with 3 worker processes).
GIL_BOUND = 0.9


@cpu_gains_nothing
@serving(*ALL)
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_cpu_bound_views_gain_nothing(server, kind, meeting, evidence):
    if kind == "async" and SERVERS[server.name].interface == "asgi":
        volley = fire_taking_turns(server, "async-cpu")
        # The view holds the loop: each request had reached the server a third of a view's CPU
        # time before the one before it ended, and started only once it had.
        assert volley.max_in_flight == 1, volley.summary()
        assert volley.kept_waiting(margin_ns=volley.figures["cpu_ms"] / 3 * 1e6), volley.summary()
        assert len(volley.threads) == 1
    else:
        # All in flight before any burns (they met), a thread each...
        volley = fire(server.url, f"/serving/{kind}-meet-then-cpu/", N, {"cpu_ms": CPU_MS},
                      meeting=meeting)  # fmt: skip
        assert volley.statuses == [200] * N
        assert volley.meetings == ["met"] * N
        assert len(volley.threads) == N
        # ...taking turns on the one GIL: from the first start to the last end, at least (nearly)
        # their CPU time added up.
        assert volley.cpu_ratio >= GIL_BOUND, volley.summary()
    evidence(f"{server.name} {kind} CPU-bound", volley.summary(), cpu_ratio=round(volley.cpu_ratio, 2))


def fire_io(server, meeting, kind, n):
    volley = fire(server.url, f"/serving/{kind}/", n, meeting=meeting)
    assert volley.statuses == [200] * n
    return volley


def fire_taking_turns(server, kind):
    """N requests at once to a CPU-bound view, with longer CPU budgets until the volley is
    conclusive: the requests overlapped, or each reached the server a third of the budget before
    the one before it ended (else they may only have come late)."""
    for cpu_ms in TURN_BUDGETS_MS:
        volley = fire(server.url, f"/serving/{kind}/", N, {"cpu_ms": cpu_ms})
        assert volley.statuses == [200] * N
        if volley.max_in_flight > 1 or volley.kept_waiting(margin_ns=cpu_ms / 3 * 1e6):
            break
    volley.figures["cpu_ms"] = cpu_ms
    return volley
