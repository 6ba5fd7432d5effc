"""Several async ORM calls awaited together with asyncio.gather.

Claimed (a common belief about Django's async ORM): "Awaiting several async ORM calls with
asyncio.gather inside one request runs the queries in parallel".

Every query of the request runs on one and the same thread, the request's "sync thread", one
after another, never overlapping; the event loop's thread runs none of them. ``gather`` only lets
the coroutines *wait* together. Under ASGI that thread is one Django gives each request; under
WSGI (gunicorn gthread, runserver) it is the server's own request thread, to which asgiref hands
every sync call back. Outside any request (a script, a test) it is asgiref's one process-wide sync
thread: still one at a time.

The spec's probe is a SQL function evaluated inside each query (project/views/orm_async.py): it
stamps enter/exit and its thread, and waits at the meeting point, which answers ``met`` only when
all the queries are inside the database at once. Gathered async ORM calls never meet; their
intervals never overlap. The same probe does see overlap, so the "alone" is not blindness: when
the queries run in separate requests (each request has its own sync thread), or when the request
gives up thread sensitivity (``sync_to_async(..., thread_sensitive=False)``: a thread and a
database connection per call), the queries meet.

On PostgreSQL (every server, ``@postgresql``) the probe is PostgreSQL's own, since it runs no
Python: each query waits for an advisory lock the test holds, and ``pg_stat_activity`` shows how
many wait at once, on how many backends. Gathered calls: one at a time, one backend; separate
requests and thread-insensitive calls: all at once, a backend each. (In process on PostgreSQL,
``--db postgresql``, the SQLite-function tests skip, saying so.)

Why: every async QuerySet method is ``await sync_to_async(self.<method>)(...)``
(django/db/models/query.py), and ``sync_to_async`` defaults to ``thread_sensitive=True``.
``asgiref.sync.SyncToAsync.__call__`` then picks, in order: the thread of an enclosing
``async_to_sync`` (``AsyncToSync.executors.current``: the WSGI request thread), else the
single-thread executor of the current ``ThreadSensitiveContext`` (``ASGIHandler.__call__`` opens
one per request), else the process-wide ``SyncToAsync.single_thread_executor``. Each of these is one
thread, so the gathered calls queue on it.
"""

import asyncio
import concurrent.futures
import threading
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async

from harness.spec import (
    AdvisoryLock,
    ASGI_SERVERS,
    Claim,
    DATABASES,
    ServerConfig,
    Statement,
    WSGI_SERVERS,
    asgi_get,
    each_interface,
    fire,
    get,
    handler,
    max_in_flight,
    meeting_params,
    postgres_cluster,
    serve_once,
    serving,
)
from django.db import connection

from project.library.models import Author
from project.views.orm_async import PROBE_AUTHOR, gather_probes

CLAIM = Claim(
    id="orm-gather-parallel",
    source="common belief (Django docs, Asynchronous support: Queries & the ORM)",
    claim=(
        "Awaiting several async ORM calls with asyncio.gather inside one request runs the "
        "queries in parallel"
    ),
    statements=[
        Statement(
            "parallel",
            "Awaiting several async ORM calls with asyncio.gather inside one request runs the "
            "queries in parallel.",
            "refuted",
            reality=(
                "They run one after another, all on the request's one sync thread (never on the "
                "event loop's thread), on every server, ASGI and WSGI, and in process; gather "
                "only lets the coroutines wait together. Outside any request they take turns "
                "the same way, on asgiref's one process-wide sync thread."
            ),
        ),
        Statement(
            "separate-requests",
            "Queries made by separate requests run in parallel, each on its own request's sync "
            "thread.",
            "holds",
            claimed=False,
        ),
        Statement(
            "thread-insensitive",
            "Gathered ORM calls wrapped in sync_to_async(thread_sensitive=False) run in "
            "parallel, a thread (and so a database connection) each.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "QuerySet.aget/afirst/... are `await sync_to_async(self.get)(...)` "
        "(django/db/models/query.py) with thread_sensitive=True; asgiref.sync.SyncToAsync.__call__ "
        "runs them on AsyncToSync.executors.current (WSGI request thread), else the one-thread "
        "executor of the ThreadSensitiveContext that ASGIHandler.__call__ opens per request, else "
        "SyncToAsync.single_thread_executor."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#queries-the-orm",
    question="Does asyncio.gather of async ORM calls run the queries in parallel?",
    topic="orm",
    code=("project.views.orm_async.gather_probes", "project.views.orm_async._calls"),
    instead=(),
)
parallel = CLAIM.statement("parallel")
separate_requests = CLAIM.statement("separate-requests")
thread_insensitive = CLAIM.statement("thread-insensitive")
# In process the queries run on other threads than the test's, so they must see committed rows.
# (Served tests use the server's own database, not the test database.)
in_test_db = pytest.mark.django_db(transaction=True)

N = 3
SERVED = serving(*ASGI_SERVERS, *WSGI_SERVERS, config=ServerConfig(), databases=DATABASES)


def gather_path(mode):
    return f"/orm-async/gather/{mode}/"


def probe_params(meeting, n=N, **more):
    return {**meeting_params(meeting, n), **more}


def assert_took_turns(result, meeting, group, evidence, label):
    """The gathered queries ran one after another on the request's sync thread."""
    queries = result["queries"]
    assert len(queries) == N
    assert [q["answer"] for q in queries] == ["alone"] * N
    assert meeting.max_waiting(group) == 1  # never two inside the database at once
    # The first query waited until nothing could run any more: the others were queued behind it.
    assert meeting.given_up(group) == "quiet"
    intervals = [(q["enter"], q["exit"]) for q in queries]
    assert max_in_flight(intervals) == 1, intervals
    threads = {q["thread"] for q in queries}
    assert threads == {result["sync_thread"]}
    assert result["loop_thread"] not in threads
    evidence(label, queries=N, met=0, max_in_flight=1, threads=len(threads))


def assert_overlapped(queries, meeting, group, evidence, label):
    assert [q["answer"] for q in queries] == ["met"] * N
    assert meeting.max_waiting(group) == N
    assert len({q["thread"] for q in queries}) == N
    evidence(label, queries=N, met=N, threads=N)


@pytest.fixture
def probe_row():
    if connection.vendor != "sqlite":  # in process with --db postgresql
        pytest.skip("the probe is a SQLite function (Connection.create_function); on PostgreSQL "
                    "the served tests (@postgresql) show the same with an advisory lock")
    return Author.objects.create(name=PROBE_AUTHOR)


@pytest.fixture
def seeded(server):
    hit = get(server.url, "/orm-async/seed/")
    assert hit.status == 200, hit.body[:300]
    return server


# --- in process ------------------------------------------------------------------------------


# Whose thread runs the request's sync code, seen from the thread that drives the handler: under
# ASGI a thread Django starts for the request; under WSGI the server's (here: the test's) thread.
SYNC_THREAD_IS_CALLER = {"asgi": False, "wsgi": True}


@parallel
@in_test_db
@pytest.mark.parametrize("interface", SYNC_THREAD_IS_CALLER)
def test_gathered_queries_take_turns_in_process(interface, probe_row, meeting, evidence):
    params = probe_params(meeting)
    path = gather_path("async-methods")
    hit = serve_once(interface, handler(interface), path, urlencode(params))
    assert hit.status == 200, hit.body[:300]
    result = hit.json()
    assert_took_turns(result, meeting, params["group"], evidence, f"in-process {interface}")
    caller = threading.get_ident()
    assert (result["sync_thread"] == caller) is SYNC_THREAD_IS_CALLER[interface]


@thread_insensitive
@in_test_db
@each_interface
def test_thread_insensitive_calls_overlap_in_process(interface, probe_row, meeting, evidence):
    params = probe_params(meeting)
    path = gather_path("thread-insensitive")
    hit = serve_once(interface, handler(interface), path, urlencode(params))
    assert hit.status == 200, hit.body[:300]
    result = hit.json()
    assert_overlapped(result["queries"], meeting, params["group"], evidence,
                      f"in-process {interface} thread_sensitive=False")  # fmt: skip
    assert {q["thread"] for q in result["queries"]}.isdisjoint(
        {result["sync_thread"], result["loop_thread"]}
    )


@separate_requests
@pytest.mark.interface("asgi")
@in_test_db
async def test_separate_requests_overlap_in_process(probe_row, meeting, evidence):
    # One query per request, the requests gathered: each request has its own sync thread.
    params = probe_params(meeting, queries=1)
    app = handler("asgi")
    hits = await asyncio.gather(
        *(asgi_get(app, gather_path("async-methods"), urlencode(params)) for _ in range(N))
    )
    assert [hit.status for hit in hits] == [200] * N
    queries = [q for hit in hits for q in hit.json()["queries"]]
    assert_overlapped(queries, meeting, params["group"], evidence, "in-process asgi, 3 requests")
    assert {q["thread"] for q in queries} == {hit.json()["sync_thread"] for hit in hits}


@parallel
@in_test_db
async def test_outside_a_request_they_take_turns_on_one_thread(probe_row, meeting, evidence):
    params = probe_params(meeting)
    result = await gather_probes("async-methods", N, params["meet"], params["group"], N)
    result["loop_thread"] = threading.get_ident()
    result["sync_thread"] = await sync_to_async(threading.get_ident)()
    assert_took_turns(result, meeting, params["group"], evidence, "no request (plain coroutine)")


# --- real servers ----------------------------------------------------------------------------


# On PostgreSQL the probe is PostgreSQL's own: each query waits for an advisory lock the test holds,
# and how many wait at once (pg_stat_activity) is how many are in flight, on how many backends.


def in_postgresql_at_once(server, requests):
    """Send ``requests`` (params of /postgresql/locked/) at once while the test holds the lock:
    how many of their queries waited in PostgreSQL at once (once all could, or once nothing could
    run any more), and the answers."""
    expected = sum(int(params.get("gathered", 1)) for params in requests)
    with AdvisoryLock(postgres_cluster(), server) as lock:
        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            sent = [pool.submit(get, server.url, lock.PATH, {"key": lock.KEY, **params})
                    for params in requests]  # fmt: skip
            lock.settle(lambda: len(lock.waiting()) >= expected)
            at_once = len(lock.waiting())
            lock.release()
            hits = [request.result() for request in sent]
    assert [hit.status for hit in hits] == [200] * len(requests), hits[0].body[:2000]
    return at_once, [hit.json() for hit in hits]


def backends(answers):
    return {int(row[0]) for answer in answers for row in answer["rows"]}


def query_threads(answers):
    return {query["thread_name"] for answer in answers for query in answer["queries"]}


@parallel
@SERVED
def test_gathered_queries_take_turns(server, seeded, meeting, evidence):
    if server.config.db == "postgresql":
        at_once, answers = in_postgresql_at_once(server, [{"gathered": N}])
        assert at_once == 1  # one in PostgreSQL; the others not sent until it was done
        assert len(backends(answers)) == 1 and len(query_threads(answers)) == 1
        assert answers[0]["view"]["thread_name"] not in query_threads(answers)
        evidence(f"{server.name} on postgresql", queries=N, at_once=1, backends=1)
        return
    params = probe_params(meeting)
    hit = get(server.url, gather_path("async-methods"), params)
    assert hit.status == 200, hit.body[:300]
    assert_took_turns(hit.json(), meeting, params["group"], evidence, server.name)


@thread_insensitive
@SERVED
def test_thread_insensitive_calls_overlap(server, seeded, meeting, evidence):
    if server.config.db == "postgresql":
        at_once, answers = in_postgresql_at_once(server, [{"gathered": N, "mode": "thread-insensitive"}])
        assert at_once == N and len(backends(answers)) == N and len(query_threads(answers)) == N
        evidence(f"{server.name} on postgresql thread_sensitive=False", queries=N, at_once=N)
        return
    params = probe_params(meeting)
    hit = get(server.url, gather_path("thread-insensitive"), params)
    assert hit.status == 200, hit.body[:300]
    assert_overlapped(hit.json()["queries"], meeting, params["group"], evidence,
                      f"{server.name} thread_sensitive=False")  # fmt: skip


@separate_requests
@SERVED
def test_separate_requests_overlap(server, seeded, meeting, evidence):
    if server.config.db == "postgresql":
        at_once, answers = in_postgresql_at_once(server, [{}] * N)
        assert at_once == N and len(backends(answers)) == N and len(query_threads(answers)) == N
        evidence(f"{server.name} on postgresql, 3 requests", at_once=N, backends=N)
        return
    volley = fire(server.url, gather_path("async-methods"), N, {"queries": 1}, meeting=meeting)
    assert volley.statuses == [200] * N
    queries = [q for hit in volley.hits for q in hit.json()["queries"]]
    assert_overlapped(queries, meeting, volley.group, evidence, f"{server.name} 3 requests")
