"""Django's PostgreSQL connection pool (``OPTIONS["pool"]``) under an ASGI server.

Claimed (a pull request that moved an ASGI site to the pool): "puts a hard cap on connections per
process" (gyrinx-app/gyrinx PR 2083). Django's docs recommend it for ASGI: "When using ASGI,
persistent connections should be disabled. Instead, use your database backend's built-in
connection pooling if available" (docs/ref/databases.txt, from 5.1).

What is true, on PostgreSQL, under uvicorn:

- From Django 5.1, with ``OPTIONS["pool"] = {"min_size": 0, "max_size": 4}``, the server never
  holds more than 4 connections: of 6 requests in flight at once, 4 have their query in PostgreSQL
  and 2 wait in the pool for a connection; once the first ones end, the others run on the same 4
  backends. A connection goes back to the pool when its request ends and stays open there: the
  next requests reuse the same backends, and 4 idle connections at most remain.
- A request that waits longer than the pool's ``timeout`` fails: ``OperationalError: couldn't get
  a connection after 0.30 sec`` (psycopg_pool's PoolTimeout, re-raised by Django), an HTTP 500.
- Before 5.1 there is no pool: Django hands ``pool`` to psycopg as a connection option, and every
  query fails with ``ProgrammingError: invalid connection option "pool"``.

Why: ``django.db.backends.postgresql.base.DatabaseWrapper.pool`` (5.1+) makes one
``psycopg_pool.ConnectionPool`` per alias and process; ``get_new_connection`` takes a connection
with ``pool.getconn()`` (waiting up to its ``timeout``) and ``_close`` gives it back with
``putconn``, which ``close_old_connections`` does on ``request_finished`` (CONN_MAX_AGE must be 0).
The wait happens on the request's own thread, so the event loop serves on meanwhile.
"""

import concurrent.futures
import json


from harness.spec import (
    AdvisoryLock,
    Claim,
    ServerConfig,
    Statement,
    When,
    get,
    pool_waiting,
    postgres_cluster,
    requires_django,
    serving,
)

NO_POOL = "no pool before 5.1: psycopg rejects 'pool' as a connection option"

CLAIM = Claim(
    id="connection-pool-bounds-connections",
    source="gyrinx-app/gyrinx pull request 2083",
    url="https://github.com/gyrinx-app/gyrinx/pull/2083",
    claim="puts a hard cap on connections per process",
    statements=[
        Statement(
            "bounded",
            "With OPTIONS['pool'] max_size 4, an ASGI server never holds more than 4 database "
            "connections, however many requests are in flight.",
            "holds",
            when=[When("refuted", django="<5.1", why=NO_POOL)],
            reality=(
                "Before Django 5.1 there is no pool: every query fails with ProgrammingError: "
                "invalid connection option \"pool\"."
            ),
        ),
        Statement(
            "returned",
            "A request's connection goes back to the pool when the request ends, and the next "
            "requests reuse it.",
            "holds",
            claimed=False,
        ),
        Statement(
            "times-out",
            "A request that waits for a connection longer than the pool's timeout fails with "
            "OperationalError: couldn't get a connection after <timeout> sec.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.db.backends.postgresql.base.DatabaseWrapper.pool (5.1+: one "
        "psycopg_pool.ConnectionPool per alias and process), get_new_connection (pool.getconn()), "
        "_close (putconn) from django.db.close_old_connections on request_finished; before 5.1, "
        "OPTIONS are psycopg connection parameters."
    ),
    docs="https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool",
    question="Does Django's connection pool cap a process's database connections?",
    topic="orm",
    code=("project.views.postgresql.aget",),
    instead=(),
)
bounded = CLAIM.statement("bounded")
returned = CLAIM.statement("returned")
times_out = CLAIM.statement("times-out")

MAX = 4
N = MAX + 2


def pooled(**options):
    return ServerConfig(db="postgresql", env=(("SPEC_DB_POOL", json.dumps(options)),))


# A waiter's timeout well past what the tests need, and short enough that a pool that never
# hands a connection back fails the test in seconds (psycopg_pool's default is 30 s).
POOL = pooled(min_size=0, max_size=MAX, timeout=5)
# DEBUG: the 500's traceback is in the server's output.
POOL_TIMEOUT = ServerConfig(db="postgresql", debug=True,
                            env=(("SPEC_DB_POOL", json.dumps({"min_size": 0, "max_size": 2, "timeout": 0.3})),))  # fmt: skip
TIMED_OUT = "django.db.utils.OperationalError: couldn't get a connection after 0.30 sec"


class Locked(AdvisoryLock):
    """``n`` requests to /postgresql/locked/ sent while the test holds the lock they wait for."""

    def __init__(self, server, n):
        super().__init__(postgres_cluster(), server)
        self.pool = concurrent.futures.ThreadPoolExecutor(n)
        self.requests = [self.pool.submit(get, server.url, self.PATH, {"key": self.KEY})
                         for _ in range(n)]  # fmt: skip

    def results(self):
        """Release the lock; every request's Hit."""
        self.release()
        hits = [request.result() for request in self.requests]
        self.pool.shutdown()
        self.close()
        return hits


def open_backends(server):
    return {pid for pid, _ in postgres_cluster().connections(server.dbname)}


@bounded
@requires_django(since="5.1")
@serving("uvicorn", config=POOL)
def test_the_pool_caps_the_connections_of_requests_in_flight(server, evidence):
    locked = Locked(server, N)
    # Until MAX queries wait in PostgreSQL and the rest in the pool (not until nothing runs: a
    # waiter's pool timeout runs meanwhile, and a busy machine takes long to go quiet).
    locked.settle(lambda: len(locked.waiting()) >= MAX and pool_waiting(server) >= N - MAX)
    at_once, in_pool, connected = len(locked.waiting()), pool_waiting(server), locked.others()
    hits = locked.results()
    assert (at_once, in_pool, len(connected)) == (MAX, N - MAX, MAX)
    assert [hit.status for hit in hits] == [200] * N
    # The two that waited ran on the pool's 4 backends once the first ones were done.
    assert {int(hit.json()["rows"][0][0]) for hit in hits} <= connected
    evidence(server.name, requests=N, in_postgresql_at_once=at_once, connections=len(connected))


@returned
@requires_django(since="5.1")
@serving("uvicorn", config=POOL)
def test_a_connection_goes_back_to_the_pool_and_is_reused(server, evidence):
    pids = []
    for _ in range(N):
        (query,) = get(server.url, "/postgresql/aget/").json()["queries"]
        pids.append(query["backend_pid"])
    kept = open_backends(server)
    # N requests, one after another, on at most MAX backends (fewer than N: connections were
    # reused), all of them still open in the pool.
    assert len(set(pids)) <= MAX < N and set(pids) <= kept and len(kept) <= MAX
    evidence(server.name, requests=N, backends=len(set(pids)), open_after=len(kept))


@times_out
@requires_django(since="5.1")
@serving("uvicorn", config=POOL_TIMEOUT)
def test_a_request_that_waits_too_long_for_a_connection_fails(server, evidence):
    locked = Locked(server, 4)
    # Not "until nothing runs": a request waiting for the pool's timer runs nothing meanwhile.
    # The wait is the pool's timeout (0.3 s); the bound only makes a regression fail in seconds.
    done, _ = concurrent.futures.wait(locked.requests, timeout=5, return_when="FIRST_COMPLETED")
    if len(done) < 2:
        concurrent.futures.wait([r for r in locked.requests if r not in done], timeout=5,
                                return_when="FIRST_COMPLETED")  # fmt: skip
    waited = [request.result().status for request in locked.requests if request.done()]
    hits = locked.results()
    assert waited == [500, 500]  # the two beyond max_size, while the other two held the lock
    assert sorted(hit.status for hit in hits) == [200, 200, 500, 500]
    assert server.output().count(TIMED_OUT) == 2
    evidence(server.name, requests=4, timed_out=2)


@bounded
@requires_django(until="5.1")
@serving("uvicorn", config=POOL)
def test_before_51_the_pool_option_breaks_every_query(server, evidence):
    hit = get(server.url, "/postgresql/aget/")
    assert hit.status == 500
    evidence(server.name, status=hit.status)


@bounded
@requires_django(until="5.1")
@serving("uvicorn", config=ServerConfig(db="postgresql", debug=True,
                                        env=(("SPEC_DB_POOL", json.dumps({"max_size": MAX})),)))  # fmt: skip
def test_before_51_psycopg_rejects_the_pool_option(server):
    assert get(server.url, "/postgresql/aget/").status == 500
    assert 'django.db.utils.ProgrammingError: invalid connection option "pool"' in server.output()
