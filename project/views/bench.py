"""Views for the benchmark (``python -m bench``), mounted at /bench/.

Each kind of work comes as an async view and a sync view doing the same thing:

- ``api-*``: call the upstream service (bench/upstream.py), which answers after ``ms``
  milliseconds: with an asyncio stream from the async view, with ``http.client`` from the sync one;
- ``db-*``: one ORM query that really waits ``ms`` in the database, through the async ORM
  (``afirst``) and the sync ORM (``first``): on SQLite a function that sleeps (registered on every
  connection), on PostgreSQL ``pg_sleep`` (the benchmark's PostgreSQL part, bench/postgres.py);
- ``cpu-*``: ``cpu_ms`` of pure-Python work;
- ``blocking-async``: ``time.sleep`` inside an async view (seed claim 2);
- ``noop-*``: nothing at all, to measure what Django's sync/async adaptation costs per request.
"""

import asyncio
import http.client
import time

from django.db import connection
from django.db.backends.signals import connection_created
from django.db.models.expressions import RawSQL
from django.http import JsonResponse
from django.urls import path

from project.library.models import Author


def _sleep_ms(ms):
    time.sleep(ms / 1000)
    return ms


def _register_sleep(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("spec_sleep", 1, _sleep_ms)


connection_created.connect(_register_sleep)


def _ms(request, name="ms", default=50):
    return int(request.GET.get(name, default))


def _upstream(request):
    return int(request.GET["upstream"]), f"/?ms={_ms(request)}"


async def api_async(request):
    port, target = _upstream(request)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return JsonResponse({"ok": answer.startswith(b"HTTP/1.1 200")})


def api_sync(request):
    port, target = _upstream(request)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        ok = conn.getresponse().status == 200
    finally:
        conn.close()
    return JsonResponse({"ok": ok})


def _waiting_query(request):
    ms = _ms(request)
    if connection.vendor == "postgresql":
        # pg_sleep returns void: the query selects the milliseconds from it, so that both
        # databases answer the same (SELECT 50 FROM pg_sleep(0.05): one wait, evaluated once).
        wait = RawSQL("SELECT %s FROM pg_sleep(%s)", (ms, ms / 1000))
    else:
        wait = RawSQL("spec_sleep(%s)", (ms,))
    return Author.objects.annotate(waited=wait).values_list("waited", flat=True)


async def db_async(request):
    return JsonResponse({"waited": await _waiting_query(request).afirst()})


def db_sync(request):
    return JsonResponse({"waited": _waiting_query(request).first()})


def _burn(request):
    budget = _ms(request, "cpu_ms", 5) * 1_000_000
    start = time.thread_time_ns()
    while time.thread_time_ns() - start < budget:
        sum(i * i for i in range(200))


async def cpu_async(request):
    _burn(request)
    return JsonResponse({"ok": True})


def cpu_sync(request):
    _burn(request)
    return JsonResponse({"ok": True})


async def blocking_async(request):
    time.sleep(_ms(request) / 1000)
    return JsonResponse({"ok": True})


async def noop_async(request):
    return JsonResponse({"ok": True})


def noop_sync(request):
    return JsonResponse({"ok": True})


async def setup(request):
    # The waiting query needs one row to evaluate its annotation on.
    await Author.objects.aget_or_create(id=1, defaults={"name": "bench"})
    return JsonResponse({"ok": True})


VIEWS = {
    "api-async": api_async, "api-sync": api_sync,
    "db-async": db_async, "db-sync": db_sync,
    "cpu-async": cpu_async, "cpu-sync": cpu_sync,
    "blocking-async": blocking_async,
    "noop-async": noop_async, "noop-sync": noop_sync,
}  # fmt: skip

urlpatterns = [path("setup/", setup)] + [path(f"{name}/", view) for name, view in VIEWS.items()]
