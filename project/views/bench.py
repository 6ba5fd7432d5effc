"""Views for the benchmark (``python -m bench``), mounted at /bench/.

Each kind of work comes as an async view and a sync view doing the same thing:

- ``api-*``: call the upstream service (bench/upstream.py), which answers after ``ms``
  milliseconds: with an asyncio stream from the async view, with ``http.client`` from the sync one;
- ``db-*``: one ORM query that really waits ``ms`` in the database (a SQLite function that sleeps,
  registered on every connection), through the async ORM (``afirst``) and the sync ORM (``first``);
- ``cpu-*``: ``cpu_ms`` of pure-Python work;
- ``blocking-async``: ``time.sleep`` inside an async view (seed claim 2);
- ``noop-*``: nothing at all, to measure what Django's sync/async adaptation costs per request.
"""

import asyncio
import http.client
import time

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
    return Author.objects.annotate(waited=RawSQL("spec_sleep(%s)", (_ms(request),))).values_list(
        "waited", flat=True
    )


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
