"""The async ORM on PostgreSQL: which connection and which thread run an awaited query.

Claimed (a blog post, June 2026): "Django 6.0 fixed it for real in December 2025 ... from "fake
async via threads" to "native async via psycopg3"". And before it (Fly.io, on Django 4.2):
"psycopg version 3 support which provides asynchronous connections and cursors".

What is true, on every version the spec runs (4.2 to 6.1) and every ASGI server: an awaited
QuerySet method (``afirst`` here) runs its SQL through psycopg's synchronous API, a
``psycopg.Connection``, never an ``AsyncConnection``, on a worker thread: the request's own
thread-sensitive thread (``ThreadPoolExecutor-<n>_0``), neither the event loop's thread nor one
with a loop of its own. psycopg 3 has an async API; Django's backend does not use it.

Why: ``django.db.models.query.QuerySet.afirst`` (like ``aget``, ``acount``, ...) is
``sync_to_async`` around its sync twin; ``asgiref.sync.SyncToAsync.__call__`` runs it on the
executor of the request's ``ThreadSensitiveContext`` (``ASGIHandler.__call__``). There
``django.db.backends.postgresql.base.DatabaseWrapper.get_new_connection`` opens the connection with
``psycopg.connect`` (``Connection.connect``), the synchronous API; connections are per thread
(``ConnectionHandler.thread_critical``).
"""

import re

import pytest

from harness.spec import ASGI_SERVERS, Claim, Statement, get, serving

CLAIM = Claim(
    id="async-orm-driver",
    source="Saurabh Kumar, \"Django ORM: from sync_to_async threads to native psycopg3\" (blog)",
    url="https://saurabh-kumar.com/articles/2026/06/django-orm-from-sync_to_async-threads-to-native-psycopg3/",
    claim=(
        "Django 6.0 fixed it for real in December 2025 ... from \"fake async via threads\" to "
        "\"native async via psycopg3\""
    ),
    statements=[
        Statement(
            "async-connection",
            "An awaited QuerySet method on PostgreSQL runs its query on psycopg's async API (an "
            "AsyncConnection).",
            "refuted",
            reality=(
                "It runs it on a psycopg.Connection, psycopg's synchronous API, on every Django "
                "version from 4.2 to 6.1: the backend opens its connections with psycopg.connect."
            ),
        ),
        Statement(
            "on-the-loop",
            "An awaited QuerySet method runs its query on the event loop's thread, without a "
            "thread.",
            "refuted",
            reality=(
                "It runs on the request's thread-sensitive worker thread (ThreadPoolExecutor-<n>_0), "
                "a thread without an event loop, while the view waits on the loop's thread."
            ),
        ),
    ],
    mechanism=(
        "django.db.models.query.QuerySet.afirst/aget/... = sync_to_async(first/get/...); "
        "asgiref.sync.SyncToAsync.__call__ (the request's ThreadSensitiveContext executor, opened "
        "by django.core.handlers.asgi.ASGIHandler.__call__); "
        "django.db.backends.postgresql.base.DatabaseWrapper.get_new_connection (psycopg.connect)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#queries-the-orm",
    question="Does the async ORM query PostgreSQL natively async, without a thread?",
    topic="orm",
    code=("project.views.postgresql.aget",),
    instead=(),
)
async_connection = CLAIM.statement("async-connection")
on_the_loop = CLAIM.statement("on-the-loop")

ON_POSTGRESQL = serving(*ASGI_SERVERS, databases=("postgresql",))


@pytest.fixture
def awaited(server):
    """What one ``await Author.objects.afirst()`` recorded, through the server."""
    hit = get(server.url, "/postgresql/aget/")
    assert hit.status == 200, hit.body[:2000]
    answer = hit.json()
    assert len(answer["queries"]) == 1, answer
    return answer["view"], answer["queries"][0]


@async_connection
@ON_POSTGRESQL
def test_the_query_runs_on_a_synchronous_psycopg_connection(server, awaited, evidence):
    _, query = awaited
    assert query["connection_class"] == "psycopg.Connection"
    evidence(server.name, connection=query["connection_class"])


@on_the_loop
@ON_POSTGRESQL
def test_the_query_runs_on_the_requests_worker_thread(server, awaited, evidence):
    view, query = awaited
    assert view["loop"] is not None  # the async view runs on the server's loop...
    assert query["loop"] is None  # ...the query on a thread without one,
    assert query["thread_name"] != view["thread_name"]
    # The request's own ThreadPoolExecutor(max_workers=1): its one thread.
    assert re.fullmatch(r"ThreadPoolExecutor-\d+_0", query["thread_name"]), query["thread_name"]
    evidence(server.name, view=view["thread_name"], query=query["thread_name"])
