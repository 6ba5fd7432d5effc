"""Persistent database connections (CONN_MAX_AGE > 0) under ASGI and under WSGI.

Claimed (a pull request explaining its CONN_MAX_AGE under ASGI): "The executor threads … are
long-lived and reused", so persistent connections would be reused under ASGI as under WSGI.
Django's docs say otherwise ("When using ASGI, persistent connections should be disabled",
docs/ref/databases.txt from 5.1, ticket 33497), and production sites report the leak ("100
requests → 40 leaked connections with CONN_MAX_AGE=60", gyrinx-app/gyrinx PR 2083; "holding over
400 connections", pennlabs/penn-clubs PR 879).

What is true, on PostgreSQL, every Django version the spec runs (4.2 to 6.1):

- Under an ASGI server every request opens a connection of its own, sync view or async: N
  requests, one after another, use N backends; none is ever reused. With CONN_MAX_AGE > 0 none of
  them is closed when its request ends either: they stay open until Python's garbage collector
  frees their thread's ``DatabaseWrapper`` (here, with automatic collection off in the server, all
  N stay open until the test asks for a collection; then none is left). N concurrent requests
  hold N connections at once.
- Under gunicorn gthread (4 threads) they are reused: any number of requests use at most one
  connection per thread, which stays open, and concurrent requests hold at most 4.
- With CONN_MAX_AGE = 0 (Django's default) every request's connection is closed when the request
  ends, under both: nothing is left open, and nothing is reused.

Why: connections are per thread (``django.db.utils.ConnectionHandler.thread_critical``); a
connection is closed only by ``django.db.close_old_connections`` (on ``request_started`` and
``request_finished``), and only once it is older than CONN_MAX_AGE (``close_at``). Under ASGI each
request's sync code runs on a thread of its own (``ASGIHandler.__call__``'s
``ThreadSensitiveContext``, a new ``ThreadPoolExecutor(max_workers=1)``), so a kept connection is
never seen by another request and its thread ends with the request; the ``DatabaseWrapper`` is
in reference cycles (its ``ops``, ``features``, ``client``, ... point back to it), so only the
cyclic garbage collector frees it, closing the psycopg connection. Under gthread the worker
threads live on, and each keeps its connection for the next request on it.
"""

import concurrent.futures

import pytest

from harness.spec import (
    AdvisoryLock,
    Claim,
    ServerConfig,
    ServerRequest,
    Statement,
    When,
    connections_once,
    get,
    postgres_cluster,
    serving,
)

CLAIM = Claim(
    id="persistent-connections-under-asgi",
    source="Datateknologerna-vid-Abo-Akademi/date-website pull request 1154",
    url="https://github.com/Datateknologerna-vid-Abo-Akademi/date-website/pull/1154",
    claim="The executor threads … are long-lived and reused",
    statements=[
        Statement(
            "reused",
            "With CONN_MAX_AGE > 0, a request reuses the connection an earlier request kept open.",
            "holds",
            when=[When("refuted", interface="asgi", why="a new thread, so a new connection, per request")],
            reality=(
                "Under an ASGI server every request opens a new connection: N requests, one after "
                "another, use N backends. Under gunicorn gthread they reuse one per worker thread."
            ),
        ),
        Statement(
            "bounded",
            "With CONN_MAX_AGE > 0, the connections a server keeps open are bounded by its "
            "threads.",
            "holds",
            when=[When("refuted", interface="asgi", why="only garbage collection closes them")],
            reality=(
                "Under an ASGI server the kept connections of finished requests stay open until "
                "Python's garbage collector frees their thread's DatabaseWrapper: with automatic "
                "collection off, N requests leave N connections open; a collection closes them "
                "all. N concurrent requests hold N connections at once."
            ),
        ),
        Statement(
            "closed-with-zero",
            "With CONN_MAX_AGE = 0, the default, each request's connection is closed when the "
            "request ends.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.db.utils.ConnectionHandler (thread_critical: a connection per thread); "
        "django.db.close_old_connections on request_started/request_finished "
        "(BaseDatabaseWrapper.close_if_unusable_or_obsolete, close_at); "
        "django.core.handlers.asgi.ASGIHandler.__call__ (ThreadSensitiveContext: a new thread per "
        "request); the DatabaseWrapper's reference cycles (ops, features, client, creation, "
        "introspection, validation) leave it to the cyclic garbage collector."
    ),
    docs="https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections",
    question="With CONN_MAX_AGE, are connections reused across requests and bounded by threads?",
    topic="orm",
    code=("project.views.postgresql.aget", "project.views.postgresql.sync_get"),
    instead=(),
)
reused = CLAIM.statement("reused")
bounded = CLAIM.statement("bounded")
closed_with_zero = CLAIM.statement("closed-with-zero")

N = 6  # more than gunicorn gthread's 4 threads
THREADS = ServerConfig().threads
ON_POSTGRESQL = ServerConfig(db="postgresql")
# Kept for a minute; automatic garbage collection off, so that what only a collection frees stays
# visible until the test asks for one (/postgresql/gc/).
PERSISTENT = ServerConfig(db="postgresql", env=(("SPEC_CONN_MAX_AGE", "60"), ("SPEC_GC", "off")))
BOTH = ("uvicorn", "gunicorn-gthread")


def open_connections(server, expected):
    return connections_once(postgres_cluster(), server, expected)


def backends_of(server, paths):
    """The backend each request's one query ran on, the requests one after another."""
    pids = []
    for path in paths:
        hit = get(server.url, path)
        assert hit.status == 200, hit.body[:2000]
        (query,) = hit.json()["queries"]
        pids.append(query["backend_pid"])
    return pids


def sequential_paths(n):
    # Sync and async views alike: the async ORM's query runs on the request's sync thread too.
    return [("/postgresql/get/", "/postgresql/aget/")[i % 2] for i in range(n)]


def collected(server):
    assert get(server.url, "/postgresql/gc/").status == 200
    return open_connections(server, 0)


@pytest.fixture
def before(server):
    """The server's connections before the test (an earlier test's, under gthread its threads'):
    each test counts relative to them. Under ASGI a collection first frees what it can."""
    if server.kind.interface == "asgi" and server.config == PERSISTENT:
        collected(server)
    return {pid for pid, _ in postgres_cluster().connections(server.dbname)}


@reused
@serving(*BOTH, config=PERSISTENT)
def test_a_request_reuses_a_kept_connection_only_under_wsgi(server, before, evidence):
    pids = backends_of(server, sequential_paths(N))
    if server.kind.interface == "asgi":
        assert len(set(pids)) == N  # a new connection for every request, none reused
    else:
        assert len(set(pids)) <= THREADS  # one per worker thread, reused
    evidence(server.name, requests=N, backends=len(set(pids)))


@bounded
@serving(*BOTH, config=PERSISTENT)
def test_kept_connections_stay_open_until_garbage_collection_under_asgi(server, before, evidence):
    pids = set(backends_of(server, sequential_paths(N)))
    open_now = {pid for pid, _ in open_connections(server, len(before | pids))}
    assert pids <= open_now  # every connection a request kept is still open
    if server.kind.interface == "asgi":
        assert len(open_now - before) == N  # one per request
        assert collected(server) == []  # a garbage collection closes them all
    else:
        assert len(open_now) <= THREADS  # one per worker thread at most
    evidence(server.name, requests=N, open_after=len(open_now))


@bounded
@serving(*BOTH, config=PERSISTENT)
def test_kept_connections_of_concurrent_requests(server, before, evidence):
    with AdvisoryLock(postgres_cluster(), server) as lock:
        with concurrent.futures.ThreadPoolExecutor(N) as pool:
            requests = [pool.submit(get, server.url, lock.PATH, {"key": lock.KEY})
                        for _ in range(N)]  # fmt: skip
            lock.settle(lambda: len(lock.waiting()) >= N)
            at_once = len(lock.waiting())
            lock.release()
            pids = {int(request.result().json()["rows"][0][0]) for request in requests}
    open_now = {pid for pid, _ in open_connections(server, len(before | pids))}
    assert pids <= open_now  # kept, every one
    if server.kind.interface == "asgi":
        assert (at_once, len(pids), len(open_now - before)) == (N, N, N)  # one per request in flight
    else:
        assert at_once == THREADS and len(open_now) <= THREADS  # one per worker thread
    evidence(server.name, requests=N, in_flight_at_once=at_once, open_after=len(open_now))


@closed_with_zero
@serving(*(ServerRequest(name, ON_POSTGRESQL) for name in BOTH))
def test_with_zero_each_connection_closes_with_its_request(server, before, evidence):
    pids = backends_of(server, sequential_paths(N))
    assert len(set(pids)) == N  # nothing kept, so nothing reused
    assert {pid for pid, _ in open_connections(server, len(before))} == before
    evidence(server.name, requests=N, backends=len(set(pids)), open_after=0)
