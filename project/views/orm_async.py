"""Views for the async ORM claims, mounted at /orm-async/:

- ``gather/<mode>/`` (specs/test_orm_gather.py): several queries awaited together with
  ``asyncio.gather`` in one request, each of which runs the SQL probe below;
- ``queryset/<form>/`` (specs/test_queryset_from_sync_to_async.py): the QuerySet that escapes
  ``sync_to_async`` unevaluated (django/channels#1916), beside the forms that work;
- ``related/<form>/`` (specs/test_related_in_async.py): following a foreign key and a reverse
  relation in an async view, lazily and the ways that work.

The SQL probe: ``spec_probe(port, group, n, cap_ms)`` is a function registered on every SQLite
connection (``connection_created``), so it runs *inside* the database call, on whatever thread
executes the query. It stamps enter and exit (``time.monotonic_ns``, one clock for every process)
and its thread, and in between waits at the harness's meeting point (harness/meeting.py), which
answers ``met`` only if ``n`` queries of ``group`` are inside the database at the same time and
``alone`` once no other can arrive. A query that answers ``met`` provably overlapped others.
"""

import asyncio
import json
import threading
import time

from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models.expressions import RawSQL
from django.http import JsonResponse
from django.urls import path

from project.evidence import MEET_CAP_MS, meet, meeting_args
from project.library.models import Author, Book

# --- the SQL probe ---------------------------------------------------------------------------

PROBE_AUTHOR = "probe"


def _probe(port, group, n, cap_ms):
    enter = time.monotonic_ns()
    answer = meet(port, group, n, cap_ms)
    return json.dumps(
        {"answer": answer, "enter": enter, "exit": time.monotonic_ns(),
         "thread": threading.get_ident()}
    )  # fmt: skip


def _install_probe(sender, connection, **kwargs):
    # Connections are per thread: each new one (a new request's thread, a worker thread) gets it.
    if connection.vendor == "sqlite":
        connection.connection.create_function("spec_probe", 4, _probe)


connection_created.connect(_install_probe, dispatch_uid="project.views.orm_async.probe")


def probe_queryset(port, group, n, cap_ms):
    """Authors named PROBE_AUTHOR (one row), each row carrying the probe's record as ``probe``."""
    return Author.objects.filter(name=PROBE_AUTHOR).annotate(
        probe=RawSQL("spec_probe(%s, %s, %s, %s)", (port, group, n, cap_ms))
    )


# Async ORM methods that run one query each (and evaluate the probe for the one row).
ASYNC_METHODS = ("afirst", "alast", "aget")


def _first_then_close(queryset):
    try:
        return queryset.first()
    finally:
        # A thread of the loop's default executor: nothing else would close its connection.
        connections.close_all()


def _calls(queryset, mode, queries):
    if mode == "async-methods":
        return [getattr(queryset, ASYNC_METHODS[i % len(ASYNC_METHODS)])() for i in range(queries)]
    if mode == "thread-insensitive":
        evaluate = sync_to_async(_first_then_close, thread_sensitive=False)
        return [evaluate(queryset) for _ in range(queries)]
    raise ValueError(f"unknown mode {mode!r}")


async def gather_probes(mode, queries, port, group, n, cap_ms=MEET_CAP_MS):
    """Run ``queries`` probe queries with asyncio.gather; return their records."""
    calls = _calls(probe_queryset(port, group, n, cap_ms), mode, queries)
    authors = await asyncio.gather(*calls)
    return {"queries": [json.loads(author.probe) for author in authors]}


async def gather(request, mode):
    """``?meet=PORT&group=G&n=N[&queries=K]``: K (default N) gathered queries."""
    port, group, n, cap_ms = meeting_args(request)
    result = await gather_probes(mode, int(request.GET.get("queries", n)), port, group, n, cap_ms)
    result["loop_thread"] = threading.get_ident()
    # Where this request's thread-sensitive sync code runs (its "sync thread").
    result["sync_thread"] = await sync_to_async(threading.get_ident)()
    return JsonResponse(result)


async def seed(request):
    # Servers start from an empty migrated database: the probe needs its one row.
    await Author.objects.aget_or_create(name=PROBE_AUTHOR)
    return JsonResponse({"seeded": PROBE_AUTHOR})


# --- a QuerySet returned from sync_to_async (django/channels#1916) ---------------------------


async def authors_from_sync_to_async(request):
    # The belief: the query ran in the worker thread, so the result can be used freely here.
    authors = await sync_to_async(Author.objects.all)()
    return JsonResponse({"names": [author.name for author in authors]})


async def authors_listed_in_thread(request):
    authors = await sync_to_async(list)(Author.objects.order_by("pk"))
    return JsonResponse({"names": [author.name for author in authors]})


async def authors_async_for(request):
    return JsonResponse({"names": [author.name async for author in Author.objects.order_by("pk")]})


async def authors_aiterator(request):
    authors = Author.objects.order_by("pk").aiterator()
    return JsonResponse({"names": [author.name async for author in authors]})


QUERYSET_FORMS = {
    "from-sync-to-async": authors_from_sync_to_async,
    "listed-in-thread": authors_listed_in_thread,
    "async-for": authors_async_for,
    "aiterator": authors_aiterator,
}


# --- following relations in an async view ---------------------------------------------------


async def book_author_lazy(request):
    book = await Book.objects.aget(title=request.GET["title"])
    return JsonResponse({"author": book.author.name})


async def book_author_select_related(request):
    book = await Book.objects.select_related("author").aget(title=request.GET["title"])
    return JsonResponse({"author": book.author.name})


async def book_author_prefetched(request):
    book = await Book.objects.prefetch_related("author").aget(title=request.GET["title"])
    return JsonResponse({"author": book.author.name})


async def author_books_lazy(request):
    author = await Author.objects.aget(name=request.GET["name"])
    return JsonResponse({"books": [book.title for book in author.books.order_by("pk")]})


async def author_books_async_for(request):
    author = await Author.objects.aget(name=request.GET["name"])
    return JsonResponse({"books": [book.title async for book in author.books.order_by("pk")]})


async def author_books_prefetched(request):
    author = await Author.objects.prefetch_related("books").aget(name=request.GET["name"])
    # all(), not order_by(): a new ordering would be a new query, bypassing the prefetch cache.
    return JsonResponse({"books": sorted(book.title for book in author.books.all())})


RELATED_FORMS = {
    "book-author-lazy": book_author_lazy,
    "book-author-select-related": book_author_select_related,
    "book-author-prefetched": book_author_prefetched,
    "author-books-lazy": author_books_lazy,
    "author-books-async-for": author_books_async_for,
    "author-books-prefetched": author_books_prefetched,
}


urlpatterns = [
    path("seed/", seed),
    path("gather/<str:mode>/", gather),
    *(path(f"queryset/{form}/", view) for form, view in QUERYSET_FORMS.items()),
    *(path(f"related/{form}/", view) for form, view in RELATED_FORMS.items()),
]
