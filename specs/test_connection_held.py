"""Does an async view hold its database connection while it awaits something else?

Claimed (django-pg-real-pool's introduction): "A plain connection pool hands a connection to a
thread and keeps it checked out for the whole request/context — even if a single query was made
early".

What is true, on PostgreSQL, under uvicorn, every Django version the spec runs:

- An async view has no connection before its first query, and from its first query to the end of
  the request it keeps one, idle, while it awaits something that is not the database (here the
  test's release); with CONN_MAX_AGE = 0 it is closed when the request ends.
- With Django's pool (5.1+, max_size 4), four such views, parked after a query, hold all four
  connections: a fifth request's query waits in the pool, its connection never made, until one of
  the four views ends; then it runs on that view's backend.

Why: nothing in Django gives a connection back between queries. The request's connection lives on
its thread-sensitive thread (``ConnectionHandler.thread_critical``) and is closed, or given back to
the pool (``DatabaseWrapper._close`` -> ``putconn``), only by ``django.db.close_old_connections``
on ``request_finished``, or by an explicit ``close()``.
"""

import concurrent.futures
import contextlib
import json
import uuid

from harness.spec import (
    Claim,
    ServerConfig,
    Statement,
    connections_once,
    get,
    pool_waiting,
    postgres_cluster,
    progress,
    requires_django,
    serving,
)

CLAIM = Claim(
    id="connection-held-for-the-request",
    source="django-pg-real-pool (introduction)",
    url="https://spumer.github.io/django-pg-real-pool/",
    claim=(
        "A plain connection pool hands a connection to a thread and keeps it checked out for the "
        "whole request/context — even if a single query was made early"
    ),
    statements=[
        Statement(
            "held-across-awaits",
            "After its first query, an async view keeps its connection while it awaits something "
            "that is not the database, until the request ends.",
            "holds",
        ),
        Statement(
            "pool-slot-held",
            "With Django's pool, a connection an async view keeps while it awaits is a pool slot "
            "no other request can have until the view's request ends.",
            "holds",
        ),
    ],
    mechanism=(
        "django.db.close_old_connections on request_finished closes (or, with the pool, "
        "DatabaseWrapper._close gives back) the connection; nothing does between queries; "
        "django.db.utils.ConnectionHandler (thread_critical: the connection is the request "
        "thread's)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/ref/databases/#connection-management",
    question="After one query, does an async view keep its connection until the request ends?",
    topic="orm",
    code=("project.views.postgresql.query_then_hold",),
    instead=(),
)
held_across_awaits = CLAIM.statement("held-across-awaits")
pool_slot_held = CLAIM.statement("pool-slot-held")

MAX = 4
VIEW = "/postgresql/query-then-hold/"
# psycopg_pool's default timeout is 30 s: 5 makes a slot never given back fail in seconds.
POOL = ServerConfig(db="postgresql", env=(("SPEC_DB_POOL", json.dumps({"min_size": 0, "max_size": MAX, "timeout": 5})),))  # fmt: skip


class Parked:
    """One request to the query-then-hold view, run in the background, told apart by its label."""

    def __init__(self, server, meeting, pool):
        self.label = f"held-{uuid.uuid4().hex[:12]}"
        self.meeting, self.server = meeting, server
        params = {"announce": meeting.port, "label": self.label}
        self.request = pool.submit(get, server.url, VIEW, params)

    def events(self, until):
        cluster = postgres_cluster()
        activity = progress.Activity(groups=[self.server.proc.pid, cluster.proc.pid])
        return self.meeting.wait_for_event(self.label, until, activity)

    def release(self, step):
        self.meeting.release(f"{self.label}-{step}")

    def let_go(self):
        """Release both of its holds, whatever the test saw: it must never wait out the cap."""
        self.release("a")
        self.release("b")

    def answer(self):
        hit = self.request.result()
        assert hit.status == 200, hit.body[:2000]
        return hit.json()


def connections(server):
    return postgres_cluster().connections(server.dbname)


@held_across_awaits
@serving("uvicorn", config=ServerConfig(db="postgresql"))
def test_an_async_view_keeps_its_connection_while_it_awaits(server, meeting, evidence):
    with concurrent.futures.ThreadPoolExecutor(1) as pool, contextlib.ExitStack() as stack:
        view = Parked(server, meeting, pool)
        stack.callback(view.let_go)
        assert view.events("before") == ["before"]
        before = connections(server)
        view.release("a")
        assert view.events("queried") == ["before", "queried"]
        awaiting = connections(server)
        view.release("b")
        (query,) = view.answer()["queries"]
    assert before == []
    assert awaiting == [(query["backend_pid"], "idle")]  # its one connection, idle, kept
    # Closed with the request (CONN_MAX_AGE = 0).
    assert connections_once(postgres_cluster(), server, 0) == []
    evidence(server.name, before_query=0, while_awaiting=1, after=0)


@pool_slot_held
@requires_django(since="5.1")
@serving("uvicorn", config=POOL)
def test_views_awaiting_after_a_query_hold_the_pools_slots(server, meeting, evidence):
    with concurrent.futures.ThreadPoolExecutor(MAX + 1) as pool, contextlib.ExitStack() as stack:
        parked = [Parked(server, meeting, pool) for _ in range(MAX)]
        for view in parked:
            stack.callback(view.let_go)
        for view in parked:
            assert view.events("before") == ["before"]
            view.release("a")
            assert view.events("queried") == ["before", "queried"]
        late = Parked(server, meeting, pool)
        stack.callback(late.let_go)
        assert late.events("before") == ["before"]
        late.release("a")
        # Its query waits for a pool slot (not "until nothing runs": its pool timeout runs).
        activity = progress.Activity(groups=[server.proc.pid, postgres_cluster().proc.pid])
        progress.wait_until(lambda: pool_waiting(server) == 1, activity)
        assert (pool_waiting(server), late.meeting.events(late.label)) == (1, ["before"])
        held = {pid for pid, _ in connections(server)}
        parked[0].release("b")  # one view ends, and gives its connection back
        assert late.events("queried") == ["before", "queried"]
        for view in [*parked[1:], late]:
            view.release("b")
        first = parked[0].answer()["queries"][0]["backend_pid"]
        (late_query,) = late.answer()["queries"]
    assert len(held) == MAX  # the four parked views' connections, and no fifth
    assert late_query["backend_pid"] == first  # the slot the first view gave back
    evidence(server.name, parked=MAX, connections=len(held), late_ran_on="the freed slot")
