"""Sync views under an ASGI server: one after another, or side by side?

Claimed (django/channels issue 1587, Django 3.1 under daphne): "Multiple requests to synchronous
views are handled sequentially".

What is true (every Django version the spec runs, 4.2 to 6.1): every ASGI server the spec
serves on (uvicorn, daphne, hypercorn, granian, runserver with daphne), and Django's
``ASGIHandler`` driven in process, run each request's sync view on a thread of its own, never on
the event loop's thread, and requests to sync views are inside their views at the same time: N of
them meet at a rendezvous. The thread is new for every request (a fresh single-thread executor
each time, numbered in creation order), not one taken from a pool, and it has ended once the
request is over. (Django's AsyncClient, which skips the per-request context, does run them one at
a time: specs/test_async_client_vs_server.py::
test_async_client_runs_concurrent_sync_views_one_at_a_time.)

Why: ``ASGIHandler.__call__`` wraps each request in ``async with ThreadSensitiveContext()``, and
``BaseHandler._get_response_async`` calls a sync view through ``sync_to_async(...,
thread_sensitive=True)``. ``SyncToAsync.__call__`` finds the request's context in
``SyncToAsync.thread_sensitive_context`` and gives it its own ``ThreadPoolExecutor(max_workers=1)``
(``SyncToAsync.context_to_thread_executor``), which ``ThreadSensitiveContext.__aexit__`` shuts down
when the request ends. Without that context the call falls through to the process-wide
``SyncToAsync.single_thread_executor``, one thread for every request.
"""

import asyncio
import re
import uuid
from urllib.parse import urlencode

import pytest

from harness.spec import (
    ASGI_SERVERS,
    Claim,
    Statement,
    Volley,
    asgi_get,
    fire,
    get,
    handler,
    meeting_params,
    serving,
)
from project.views import threads as threads_view

CLAIM = Claim(
    id="sync-views-under-asgi",
    source="django/channels issue 1587",
    url="https://github.com/django/channels/issues/1587",
    claim="Multiple requests to synchronous views are handled sequentially",
    statements=[
        Statement(
            "sequential",
            "Multiple requests to synchronous views are handled sequentially.",
            "refuted",
            reality=(
                "Under every ASGI server, and through Django's ASGIHandler in process, each "
                "request's sync view runs on a thread of its own, never the event loop's, and "
                "concurrent requests to sync views are inside their views at the same time."
            ),
        ),
        Statement(
            "one-shared-thread",
            "Requests to synchronous views all run on one shared thread.",
            "refuted",
            reality=(
                "Every request gets a new thread, even when the requests come one after "
                "another: a fresh ThreadPoolExecutor(max_workers=1) per request (threads named "
                "ThreadPoolExecutor-<n>_0, numbered in creation order), never the event loop's "
                "thread."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.__call__ (async with ThreadSensitiveContext() per "
        "request); BaseHandler._get_response_async (sync view via sync_to_async(thread_sensitive="
        "True)); asgiref.sync.SyncToAsync.__call__ (a ThreadPoolExecutor(max_workers=1) per "
        "context in context_to_thread_executor, else the process-wide single_thread_executor)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-performance",
    question="Are concurrent requests to sync views handled one at a time?",
    topic="serving",
    code=("project.views.threads.sync_view",),
    instead=(),
)
sequential = CLAIM.statement("sequential")
one_shared_thread = CLAIM.statement("one-shared-thread")

N = 3
SYNC_VIEW = "/threads/sync/"
# asgiref's per-request executor is a ThreadPoolExecutor(max_workers=1) with the default thread
# names: "ThreadPoolExecutor-<executor number>_0".
EXECUTOR_THREAD = re.compile(r"ThreadPoolExecutor-(\d+)_0")


def assert_overlapped_on_own_threads(volley, n=N):
    """Every request met the others inside its sync view, each on its own non-loop thread."""
    assert volley.statuses == [200] * n
    answers = [hit.json() for hit in volley.hits]
    assert [a["meeting"] for a in answers] == ["met"] * n
    assert len({a["thread"] for a in answers}) == n
    for answer in answers:
        assert answer["thread_name"] != answer["loop_thread"]
        assert EXECUTOR_THREAD.fullmatch(answer["thread_name"]), answer["thread_name"]
    assert volley.max_in_flight == n, volley.intervals


@sequential
@serving(*ASGI_SERVERS)
def test_sync_views_overlap_each_on_its_own_thread(server, meeting, evidence):
    volley = fire(server.url, SYNC_VIEW, N, meeting=meeting)
    assert_overlapped_on_own_threads(volley)
    # One event loop's thread served them all (the view's own thread runs none). By name: an
    # ended thread's ident may be given to the next one.
    assert len({hit.json()["loop_thread"] for hit in volley.hits}) == 1
    evidence(f"{server.name} sync views", volley.summary())


@one_shared_thread
@serving(*ASGI_SERVERS)
def test_every_request_gets_a_new_thread(server, evidence):
    # One after another, so that no thread could be busy: still a new executor each time.
    answers = [get(server.url, SYNC_VIEW).json() for _ in range(N)]
    executors = [int(EXECUTOR_THREAD.fullmatch(a["thread_name"]).group(1)) for a in answers]
    assert len(set(executors)) == N, [a["thread_name"] for a in answers]
    assert executors == sorted(executors)  # numbered in creation order
    assert all(a["thread_name"] != a["loop_thread"] for a in answers)
    evidence(f"{server.name} sequential", threads=[a["thread_name"] for a in answers])


@sequential
@pytest.mark.interface("asgi")
async def test_in_process_asgi_handler_overlaps_too(meeting, evidence):
    app = handler("asgi")
    label = uuid.uuid4().hex
    params = urlencode({**meeting_params(meeting, N), "keep": label})
    hits = await asyncio.gather(*(asgi_get(app, SYNC_VIEW, params) for _ in range(N)))
    volley = Volley(list(hits))
    assert_overlapped_on_own_threads(volley)
    # Each request's executor was shut down and its thread had ended when the handler returned:
    # ThreadSensitiveContext.__aexit__ awaits executor.shutdown() (wait=True, a join). The view
    # keeps the executors, so that no garbage collection could end an idle thread instead.
    executors = threads_view.KEPT_EXECUTORS.pop(label)
    assert len(set(map(id, executors))) == N and None not in executors
    assert [executor._shutdown for executor in executors] == [True] * N
    names = {thread.name for executor in executors for thread in executor._threads}
    assert names == {hit.json()["thread_name"] for hit in volley.hits}
    assert [thread.is_alive() for e in executors for thread in e._threads] == [False] * N
    evidence("in-process ASGIHandler", volley.summary())
