"""Do database queries run in parallel in async Django? Across requests, and within one.

Claimed (Django Forum, "Are concurrent database queries in ASGI a thing?", a reply): "no, as of
5.0, Django can not execute database queries concurrently." And, the other way (capypad, a
tutorial): "By wrapping sync ORM calls with @sync_to_async and using asyncio.gather, multiple
database queries execute simultaneously instead of sequentially".

What is true, on PostgreSQL, every Django version the spec runs (4.2 to 6.1), every ASGI server:

- Queries of separate requests run at the same time. The evidence is PostgreSQL's own: the test
  holds an advisory lock, each request's query waits for it, and N requests have N queries
  waiting in ``pg_stat_activity`` at once, on N backends.
- Queries gathered in one request (``asyncio.gather`` over async QuerySet iterations, each a
  thread-sensitive ``sync_to_async``) run one at a time: while the lock is held only one of them
  has reached PostgreSQL, and the others do not arrive until nothing can run any more; all of them
  run on one backend, which runs one statement at a time. So the forum reply holds within one
  request, and the tutorial's "execute simultaneously" is refuted (with ``thread_sensitive=False``
  they do overlap, on other threads: specs/test_orm_gather.py).

Why: ``ASGIHandler.__call__`` gives each request its own ``ThreadSensitiveContext``: a thread of
its own, so a connection of its own (``ConnectionHandler.thread_critical``: connections are per
thread). Within the request, every thread-sensitive call queues on that one thread
(``SyncToAsync.__call__``: ``context_to_thread_executor``, a ``ThreadPoolExecutor(max_workers=1)``),
and on its one connection.
"""

import concurrent.futures

import pytest

from harness.spec import (
    ASGI_SERVERS,
    AdvisoryLock,
    Claim,
    Statement,
    get,
    postgres_cluster,
    serving,
)

CLAIM = Claim(
    id="queries-in-parallel",
    source="Django Forum, \"Are concurrent database queries in ASGI a thing?\" (a reply)",
    url="https://forum.djangoproject.com/t/are-concurrent-database-queries-in-asgi-a-thing/24136/2",
    claim="no, as of 5.0, Django can not execute database queries concurrently.",
    statements=[
        Statement(
            "separate-requests",
            "Django cannot run the queries of separate requests at the same time.",
            "refuted",
            reality=(
                "Behind every ASGI server, N concurrent requests have N queries in PostgreSQL at "
                "once, each on a backend of its own: each request has a thread, so a connection, "
                "of its own."
            ),
        ),
        Statement(
            "gathered-in-one-request",
            "Django cannot run the queries of async ORM calls gathered with asyncio.gather in one "
            "request at the same time.",
            "holds",
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.__call__ (a ThreadSensitiveContext per request); "
        "asgiref.sync.SyncToAsync.__call__ (context_to_thread_executor: one thread per context); "
        "django.db.utils.ConnectionHandler (thread_critical: a connection per thread); "
        "QuerySet/RawQuerySet async iteration = sync_to_async(_fetch_all)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#queries-the-orm",
    question="Does Django run database queries only one at a time?",
    topic="orm",
    code=("project.views.postgresql.locked", "project.views.postgresql._locked"),
    instead=(),
)
separate_requests = CLAIM.statement("separate-requests")
gathered = CLAIM.statement("gathered-in-one-request")

N = 3
ON_POSTGRESQL = serving(*ASGI_SERVERS, databases=("postgresql",))


@pytest.fixture
def lock(server):
    with AdvisoryLock(postgres_cluster(), server) as held:
        yield held


def send(pool, server, params):
    return pool.submit(get, server.url, AdvisoryLock.PATH, params)


def waiting_once_settled(lock, n):
    """The waiting backends once ``n`` wait, or once nothing can run any more."""
    lock.settle(lambda: len(lock.waiting()) >= n)
    return lock.waiting()


@separate_requests
@ON_POSTGRESQL
def test_separate_requests_have_their_queries_in_postgresql_at_once(server, lock, evidence):
    with concurrent.futures.ThreadPoolExecutor(N) as pool:
        requests = [send(pool, server, {"key": AdvisoryLock.KEY}) for _ in range(N)]
        waiting = waiting_once_settled(lock, N)
        lock.release()
        answers = [request.result().json() for request in requests]
    assert len(waiting) == N, waiting
    # Each request's query ran on the backend that waited: N backends, N request threads.
    pids = sorted(int(answer["rows"][0][0]) for answer in answers)
    assert pids == waiting
    assert len({answer["queries"][0]["thread_name"] for answer in answers}) == N
    evidence(server.name, waiting_at_once=len(waiting), backends=len(set(pids)))


@gathered
@ON_POSTGRESQL
def test_gathered_queries_of_one_request_reach_postgresql_one_at_a_time(server, lock, evidence):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        request = send(pool, server, {"key": AdvisoryLock.KEY, "gathered": N})
        waiting = waiting_once_settled(lock, N)  # N never come: settled once nothing can run
        lock.release()
        answer = request.result().json()
    assert len(waiting) == 1, waiting
    # All N ran, one after another, on the one backend that waited and the request's one thread.
    assert answer["rows"] == [[str(waiting[0])]] * N
    assert len({query["thread_name"] for query in answer["queries"]}) == 1
    assert {query["backend_pid"] for query in answer["queries"]} == set(waiting)
    evidence(server.name, waiting_at_once=len(waiting), queries=N, backends=1)
