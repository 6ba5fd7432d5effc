"""``async for`` over a QuerySet, and ``QuerySet.aiterator()``: when are the rows fetched?

Claimed (pwtail, reviewing the pull request that gave QuerySets their async interface,
django/django#14843, of ``async for`` over a QuerySet): "I don't think making fetching a row an
async operation is a good idea (of course, they will actually be fetched in chunks)". Said again
in review of django/django#15637 (Carlton Gibson, of the async generator QuerySets then used):
"so we (synchronously) fetch chunks of row before mapping them out asynchronously."

What is true on every version the spec runs (4.2 to 6.1), on SQLite and on PostgreSQL: ``async
for obj in queryset`` reads every row before the loop gets the first object. With 7 rows, the
cursor has given all 7 when the first object arrives, in one trip to a worker thread; the loop
then walks the QuerySet's result cache. (django/django#15658 made it so before 4.1 was released:
"the queryset cannot be iterated anyway before all results are retrieved and cached".) What
fetches chunk by chunk is ``async for obj in queryset.aiterator(chunk_size=3)``: 3 rows when the
first object arrives, the next 3 only when the loop asks for the fourth. Either way the rows are
fetched on a thread without an event loop, never on the loop's: under ASGI the request's
thread-sensitive thread (``ThreadPoolExecutor-<n>_0``), under WSGI the request's own thread (the
async view runs on ``async_to_sync``'s loop thread); every chunk of one ``aiterator()`` on that
same thread, where the connection and its open cursor live. On PostgreSQL ``aiterator()`` reads
through a server-side cursor: at the first object PostgreSQL lists it in ``pg_cursors``
(``_django_curs_<thread>_sync_<n>``, holdable), while ``async for`` over the QuerySet declares no
server-side cursor (``pg_cursors`` is empty at the first object). ``aiterator()`` after
``prefetch_related()`` prefetches chunk by chunk from Django 5.0 (one prefetch query per chunk,
before the chunk's first object); before 5.0 iterating it raises ``NotSupportedError: Using
QuerySet.aiterator() after prefetch_related() is not supported.`` before any query.

Why: ``QuerySet.__aiter__`` is ``await sync_to_async(self._fetch_all)()`` and then a loop over
``self._result_cache``; ``_fetch_all`` runs ``ModelIterable`` with ``chunked_fetch=False``, so
``SQLCompiler.execute_sql`` returns ``list(cursor_iter(...))``: every row, through ``fetchmany``
until it comes back empty. ``QuerySet.aiterator()`` iterates ``BaseIterable._async_generator``:
``await sync_to_async(next_slice)(sync_generator)`` per chunk, ``islice`` of ``chunk_size`` objects
from ``ModelIterable.__iter__`` over ``execute_sql(chunked_fetch=True, chunk_size=...)``, whose
rows come from ``connection.chunked_cursor()`` one ``fetchmany(chunk_size)`` at a time; on
PostgreSQL ``DatabaseWrapper.create_cursor(name=...)`` makes that a named (server-side) cursor,
``withhold`` in autocommit. ``sync_to_async`` is thread-sensitive: ``SyncToAsync.__call__`` uses
the request's ``ThreadSensitiveContext`` executor (``ASGIHandler.__call__``), or, under WSGI, the
``CurrentThreadExecutor`` of the ``AsyncToSync`` that runs the async view.
"""

import re
import threading

import pytest
from django.db import NotSupportedError

from harness.spec import (
    Claim,
    NO_PREFETCH_IN_AITERATOR,
    Statement,
    When,
    asgiref_shared_thread,
    each_interface,
    handler,
    requires_django,
    serve_once,
)
from project.library.models import Author, Book
from project.views import async_iteration

CLAIM = Claim(
    id="async-for-streams",
    source=(
        "pwtail, review of django/django pull request 14843 (Added async-compatible interface to "
        "QuerySet), on `async for` over a QuerySet"
    ),
    url="https://github.com/django/django/pull/14843",
    claim=(
        "I don't think making fetching a row an async operation is a good idea (of course, they "
        "will actually be fetched in chunks)"
    ),
    question=(
        "Does `async for` over a QuerySet fetch its rows in chunks, as the loop consumes them?"
    ),
    topic="orm",
    code=("project.views.async_iteration.async_for_all",),
    instead=("project.views.async_iteration.aiterator_chunks",),
    statements=[
        Statement(
            "in-chunks",
            "`async for obj in queryset` fetches the rows in chunks, as the loop consumes them.",
            "refuted",
            reality=(
                "It fetches every row before the loop gets the first object: with 7 rows, the "
                "cursor has given all 7 when the first object arrives, in one trip to a worker "
                "thread (QuerySet.__aiter__ awaits sync_to_async(_fetch_all), which fills the "
                "result cache), on SQLite and PostgreSQL, on Django 4.2 to 6.1."
            ),
        ),
        Statement(
            "aiterator-chunks",
            "`async for obj in queryset.aiterator(chunk_size=3)` fetches 3 rows at a time: 3 when "
            "the first object arrives, the next 3 only when the loop asks for the fourth object.",
            "holds",
            claimed=False,
        ),
        Statement(
            "off-the-loop",
            "Both forms fetch on a thread without an event loop, never on the loop's: under ASGI "
            "the request's thread-sensitive thread (ThreadPoolExecutor-<n>_0), under WSGI the "
            "request's own thread; every chunk of one aiterator() on that same thread.",
            "holds",
            claimed=False,
        ),
        Statement(
            "server-side-cursor",
            "On PostgreSQL, aiterator() reads through a server-side cursor, which PostgreSQL lists "
            "in pg_cursors (holdable) when the first object arrives; `async for` over the "
            "QuerySet declares no server-side cursor (pg_cursors is empty at the first object).",
            "holds",
            claimed=False,
        ),
        Statement(
            "prefetch-per-chunk",
            "aiterator() after prefetch_related() prefetches chunk by chunk: one prefetch query "
            "per chunk of chunk_size objects, before that chunk's first object arrives.",
            "holds",
            when=[When("refuted", django="<5.0", why="aiterator() refuses prefetch_related()")],
            reality=(
                "Before Django 5.0, iterating aiterator() after prefetch_related() raises "
                "NotSupportedError: Using QuerySet.aiterator() after prefetch_related() is not "
                "supported., before any query runs."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.db.models.query.QuerySet.__aiter__ (await sync_to_async(self._fetch_all)(), then "
        "the _result_cache; SQLCompiler.execute_sql without chunked_fetch returns "
        "list(cursor_iter(...))); QuerySet.aiterator -> BaseIterable._async_generator "
        "(sync_to_async(next_slice) per chunk over ModelIterable.__iter__ and "
        "SQLCompiler.execute_sql(chunked_fetch=True): connection.chunked_cursor(), on PostgreSQL "
        "DatabaseWrapper.create_cursor(name=...), a named cursor, withhold in autocommit); from "
        "5.0 aiterator awaits aprefetch_related_objects per chunk (4.2: NotSupportedError); "
        "asgiref.sync.SyncToAsync.__call__ (thread-sensitive: the ThreadSensitiveContext "
        "executor of ASGIHandler.__call__, or under WSGI the AsyncToSync's CurrentThreadExecutor)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/ref/models/querysets/#django.db.models.query.QuerySet.aiterator",
)
pytestmark = pytest.mark.django_db(transaction=True)
in_chunks = CLAIM.statement("in-chunks")
aiterator_chunks = CLAIM.statement("aiterator-chunks")
off_the_loop = CLAIM.statement("off-the-loop")
server_side_cursor = CLAIM.statement("server-side-cursor")
prefetch_per_chunk = CLAIM.statement("prefetch-per-chunk")

NAMES = [f"author-{i}" for i in range(1, 8)]  # 7 rows; aiterator's chunks of 3: 3, 3, 1
CHUNK = async_iteration.CHUNK
PATHS = {"async-for": "/async-iteration/async-for/", "aiterator": "/async-iteration/aiterator/"}
# The request's ThreadSensitiveContext executor's one thread; asgiref's process-wide thread
# (asgiref_shared_thread()) has a name of the same form, so the tests also tell them apart.
REQUEST_THREAD = re.compile(r"ThreadPoolExecutor-\d+_0")


@pytest.fixture
def authors():
    return Author.objects.bulk_create(Author(name=name) for name in NAMES)


@pytest.fixture
def timeline(authors, monkeypatch):
    """``async_iteration.EVENTS``, where the views note each object they receive, with the
    database's side added in order: ("query", model) for each SQL query Django runs and
    ("fetch", rows, thread name) for each fetchmany() from a cursor."""
    from django.db.backends.utils import CursorWrapper
    from django.db.models.sql.compiler import SQLCompiler

    events = async_iteration.EVENTS
    events.clear()
    execute_sql = SQLCompiler.execute_sql

    def recorded_execute_sql(self, *args, **kwargs):
        events.append(("query", self.query.model.__name__))
        return execute_sql(self, *args, **kwargs)

    def fetchmany(self, *args, **kwargs):
        rows = self.db.wrap_database_errors(self.cursor.fetchmany)(*args, **kwargs)
        events.append(("fetch", len(rows), threading.current_thread().name))
        return rows

    monkeypatch.setattr(SQLCompiler, "execute_sql", recorded_execute_sql)
    monkeypatch.setattr(CursorWrapper, "fetchmany", fetchmany, raising=False)
    yield events
    events.clear()


def rows_fetched_at_each_object(events):
    """For each object the loop received, how many rows the cursor had given by then."""
    fetched, seen = 0, []
    for event in events:
        if event[0] == "fetch":
            fetched += event[1]
        elif event[0] == "object":
            seen.append(fetched)
    return seen


def serve(interface, form):
    hit = serve_once(interface, handler(interface), PATHS[form])
    assert hit.status == 200, hit.body[:2000]
    answer = hit.json()
    assert answer["names"] == NAMES
    return answer


@in_chunks
@each_interface
def test_async_for_fetches_every_row_before_the_first_object(timeline, interface, evidence):
    serve(interface, "async-for")
    assert rows_fetched_at_each_object(timeline) == [len(NAMES)] * len(NAMES)
    # One query, read to the end (fetchmany until empty) before any object reached the loop.
    first_object = next(i for i, e in enumerate(timeline) if e[0] == "object")
    assert [e[0] for e in timeline[:first_object]] == ["query", "fetch", "fetch"]
    assert [e[1] for e in timeline[1:first_object]] == [len(NAMES), 0]
    evidence(f"{interface} async for", rows=len(NAMES), fetched_at_first_object=len(NAMES))


@aiterator_chunks
@each_interface
def test_aiterator_fetches_chunk_by_chunk(timeline, interface, evidence):
    serve(interface, "aiterator")
    assert rows_fetched_at_each_object(timeline) == [3, 3, 3, 6, 6, 6, 7]
    assert [e[0] for e in timeline].count("query") == 1  # one query, read a chunk at a time
    evidence(f"{interface} aiterator(chunk_size={CHUNK})", fetched_at_first_object=CHUNK)


@off_the_loop
@each_interface
@pytest.mark.parametrize("form", PATHS)
def test_rows_are_fetched_off_the_loop(timeline, interface, form, evidence):
    view = serve(interface, form)["view"]
    fetch_threads = {e[2] for e in timeline if e[0] == "fetch"}
    assert len(fetch_threads) == 1  # every fetch, every chunk: one thread
    [fetch_thread] = fetch_threads
    assert view["loop"] is not None and fetch_thread != view["thread_name"]
    if interface == "asgi":
        # The request's ThreadSensitiveContext executor: its one thread.
        assert REQUEST_THREAD.fullmatch(fetch_thread), fetch_thread
        assert fetch_thread != asgiref_shared_thread().name  # not asgiref's process-wide one
    else:
        # The thread that called the WSGI handler (this one); the view ran on AsyncToSync's loop.
        assert fetch_thread == threading.current_thread().name
    evidence(f"{interface} {form}", view=view["thread_name"], fetches=fetch_thread)


@server_side_cursor
@pytest.mark.parametrize("form", PATHS)
def test_aiterator_reads_through_a_server_side_cursor(timeline, form, evidence):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("pg_cursors is PostgreSQL's: run with --db postgresql")
    cursors = serve("asgi", form)["cursors"]
    if form == "aiterator":
        [[name, holdable]] = cursors
        assert re.fullmatch(r"_django_curs_\d+_sync_\d+", name), name
        assert holdable is True
    else:
        assert cursors == []
    evidence(f"asgi {form} on postgresql", open_cursors=len(cursors))


# --- prefetch_related -------------------------------------------------------------------------


@pytest.fixture
def books(authors):
    return Book.objects.bulk_create(
        Book(title=f"book of {author.name}", author=author)
        for author in Author.objects.order_by("pk")
    )


async def prefetched_names(events):
    names = []
    async for author in Author.objects.order_by("pk").prefetch_related("books").aiterator(
        chunk_size=CHUNK
    ):
        events.append(("object", author.name))
        names.append([book.title for book in author.books.all()])
    return names


@prefetch_per_chunk
@requires_django(since="5.0")
async def test_aiterator_prefetches_chunk_by_chunk(books, timeline, evidence):
    titles = await prefetched_names(timeline)
    assert titles == [[f"book of {name}"] for name in NAMES]
    order = [e[1] if e[0] == "query" else "object" for e in timeline if e[0] != "fetch"]
    assert order == [
        "Author", "Book", "object", "object", "object",
        "Book", "object", "object", "object",
        "Book", "object",
    ]  # fmt: skip
    evidence("aiterator after prefetch_related", prefetch_queries=order.count("Book"))


@prefetch_per_chunk
@requires_django(until="5.0")
async def test_aiterator_refuses_prefetch_related(books, timeline):
    with pytest.raises(NotSupportedError) as raised:
        await prefetched_names(timeline)
    assert str(raised.value) == NO_PREFETCH_IN_AITERATOR
    assert timeline == []  # raised before any query
