"""Views for specs/test_async_iteration.py (claim ``async-for-streams``), mounted at
/async-iteration/:

- ``async-for/``: the claim's form, ``async for`` straight over a QuerySet;
- ``aiterator/``: its corrected form, ``async for`` over ``QuerySet.aiterator(chunk_size=CHUNK)``.

Each view notes every object as its loop receives it in ``EVENTS`` (the test adds the database
cursor's fetches to the same list, so the two interleave as they happened) and, at the first
object, asks PostgreSQL which server-side (declared) cursors this request's connection holds
(``pg_cursors``; None on SQLite), from the thread that runs this request's queries, where that
connection lives.
"""

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import JsonResponse
from django.urls import path

from project.evidence import where
from project.library.models import Author

CHUNK = 3

# ("object", name) per object received, in order; the test's fixture appends the fetches.
EVENTS = []


def open_cursors():
    """The declared (server-side) cursors PostgreSQL lists in pg_cursors for this thread's
    connection, or None on SQLite."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, is_holdable FROM pg_cursors ORDER BY name")
        return [list(row) for row in cursor.fetchall()]


async def async_for_all(request):
    """The claim: ``async for`` over the QuerySet itself."""
    names, cursors = [], None
    async for author in Author.objects.order_by("pk"):
        EVENTS.append(("object", author.name))
        if not names:
            cursors = await sync_to_async(open_cursors)()
        names.append(author.name)
    return JsonResponse({"names": names, "cursors": cursors, "view": where()})


async def aiterator_chunks(request):
    """What fetches chunk by chunk: ``async for`` over ``aiterator(chunk_size=...)``."""
    names, cursors = [], None
    async for author in Author.objects.order_by("pk").aiterator(chunk_size=CHUNK):
        EVENTS.append(("object", author.name))
        if not names:
            cursors = await sync_to_async(open_cursors)()
        names.append(author.name)
    return JsonResponse({"names": names, "cursors": cursors, "view": where()})


urlpatterns = [
    path("async-for/", async_for_all),
    path("aiterator/", aiterator_chunks),
]
