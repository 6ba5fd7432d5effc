"""Views of the PostgreSQL claims (specs/test_postgresql_*.py). Mounted at ``/postgresql/``.

Every query a view makes through Django is recorded where it runs: the thread and event loop
(``project.evidence.where()``), the class of the driver's connection object, and the PostgreSQL
backend's pid (one backend runs one statement at a time: two queries on one pid never overlapped).
The record is an ``execute_wrapper`` installed on each new connection (``connection_created``); it
appends to the list in ``QUERIES``, a context variable the view sets, which ``sync_to_async``
copies into the thread that runs the query.

- ``aget/``: one ``await Author.objects.afirst()`` in an async view; ``get/``: one
  ``Author.objects.first()`` in a sync view. Both answer with the recorded query (its backend).
- ``query-then-hold/?announce=PORT&label=L``: an async view that tells ``before``, holds (L-a),
  runs one query, tells ``queried``, holds (L-b), then answers: the test counts the server's
  connections before the first query and while the view awaits something that is not the
  database. Cancelled while it holds (its client left), it tells ``cancelled``.
- ``pool-waiting/``: how many requests wait in Django's connection pool for a connection now
  (psycopg_pool's ``requests_waiting``; 0 without a pool).
- ``gc/``: ``gc.collect()`` in the server (whose automatic collection SPEC_GC=off turns off).
- ``locked/?key=K[&gathered=N][&mode=thread-insensitive]``: queries that wait for the PostgreSQL
  advisory lock K (shared), which the test holds (exclusive): one query, or N gathered with
  ``asyncio.gather`` in one request, each an async iteration of a raw QuerySet (thread-sensitive
  ``sync_to_async``), or with ``mode=thread-insensitive`` a ``sync_to_async(...,
  thread_sensitive=False)`` call each. While the test holds the lock, every query that has reached PostgreSQL waits, visible
  in ``pg_stat_activity`` (wait_event 'advisory'): how many wait at once is how many are in flight.
"""

import asyncio
import contextvars
import gc

from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created
from django.http import JsonResponse
from django.urls import path

from project.evidence import ahold, tell, where
from project.library.models import Author

QUERIES = contextvars.ContextVar("spec_queries")

# One row, once the advisory lock is granted: the statement waits in PostgreSQL until then.
LOCKED_QUERY = (
    "SELECT 1 AS id, pg_backend_pid()::text AS name "
    "FROM (SELECT pg_advisory_xact_lock_shared(%s)) AS granted"
)


def _record(execute, sql, params, many, context):
    seen = QUERIES.get(None)
    if seen is not None:
        raw = context["connection"].connection
        seen.append({
            **where(),
            "connection_class": f"{type(raw).__module__}.{type(raw).__qualname__}",
            "backend_pid": raw.info.backend_pid,
        })  # fmt: skip
    return execute(sql, params, many, context)


def _install_recorder(sender, connection, **kwargs):
    if connection.vendor == "postgresql" and _record not in connection.execute_wrappers:
        connection.execute_wrappers.append(_record)


connection_created.connect(_install_recorder, dispatch_uid="project.views.postgresql.record")


async def aget(request):
    QUERIES.set(seen := [])
    await Author.objects.afirst()
    return JsonResponse({"view": where(), "queries": seen})


def sync_get(request):
    QUERIES.set(seen := [])
    Author.objects.first()
    return JsonResponse({"view": where(), "queries": seen})


async def query_then_hold(request):
    QUERIES.set(seen := [])
    port, label = int(request.GET["announce"]), request.GET["label"]
    tell(port, label, "before")
    if await ahold(port, f"{label}-a") != "go":
        return JsonResponse({"held": "not released"}, status=500)
    await Author.objects.acount()
    tell(port, label, "queried")
    try:
        if await ahold(port, f"{label}-b") != "go":
            return JsonResponse({"held": "not released"}, status=500)
    except asyncio.CancelledError:  # the client went away (Django >= 5.0 under ASGI)
        tell(port, label, "cancelled")
        raise
    return JsonResponse({"view": where(), "queries": seen})


async def pool_waiting(request):
    # The pool is the process's, one per alias (DatabaseWrapper._connection_pools): any thread's
    # wrapper finds it, and asking opens no connection.
    pool = connections["default"].pool if hasattr(connections["default"], "pool") else None
    measures = pool._get_measures() if pool is not None else {}
    return JsonResponse({"waiting": measures.get("requests_waiting", 0)})


async def collect(request):
    return JsonResponse({"collected": gc.collect()})


async def _locked(key):
    return [author.name async for author in Author.objects.raw(LOCKED_QUERY, [key])]


def _locked_then_close(key):
    try:
        return [author.name for author in Author.objects.raw(LOCKED_QUERY, [key])]
    finally:
        # A thread of the loop's default executor: nothing else would close its connection.
        connections.close_all()


async def locked(request):
    QUERIES.set(seen := [])
    key, gathered = int(request.GET["key"]), int(request.GET.get("gathered", 1))
    if request.GET.get("mode") == "thread-insensitive":
        call = sync_to_async(_locked_then_close, thread_sensitive=False)
        rows = await asyncio.gather(*(call(key) for _ in range(gathered)))
    else:
        rows = await asyncio.gather(*(_locked(key) for _ in range(gathered)))
    return JsonResponse({"view": where(), "rows": rows, "queries": seen})


urlpatterns = [
    path("aget/", aget),
    path("get/", sync_get),
    path("query-then-hold/", query_then_hold),
    path("gc/", collect),
    path("pool-waiting/", pool_waiting),
    path("locked/", locked),
]
