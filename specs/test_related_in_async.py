"""Following relations in async code.

Claimed (a reading of Django's docs, Asynchronous support: Queries & the ORM): "Following a foreign
key or a reverse relation works the same in async code as in sync code".

``book.author`` on a book fetched without ``select_related`` is a lazy load: a synchronous query
run by the attribute access itself, on the event loop's thread, so Django raises
``SynchronousOnlyOperation: You cannot call this from an async context - use a thread or
sync_to_async.`` There is no ``await book.author``. The same line works in sync code (e.g. inside
``sync_to_async``), and caches the author on the book: later accesses need no query, in async code
too. ``book.author_id`` needs no query and works. With ``select_related("author")`` the author
arrives in the same query and ``book.author`` works; after ``prefetch_related("author")`` it
arrives in a second query, run with the first inside the ``aget``'s thread, and ``book.author``
works without a query, as it does after ``await aprefetch_related_objects([book], "author")``. A
reverse relation is a manager: ``author.books.all()`` builds a QuerySet without a query, but
iterating it raises like any QuerySet; ``async for`` over it, ``await author.books.afirst()`` and
the other a-methods work, and so does iterating after ``prefetch_related("books")`` (the prefetch
ran inside the ``aget``'s thread) or ``aprefetch_related_objects``. Version differences:
``aprefetch_related_objects`` exists from Django 5.0 (in ``django.db.models.query``;
``django.db.models`` exports it from 5.0.5), and
``aiterator()`` after ``prefetch_related()`` raises ``NotSupportedError`` before 5.0 and
prefetches from 5.0 on. Django 6.1's fetch modes do not make lazy loads async: ``FETCH_PEERS``
still runs a sync query (``SynchronousOnlyOperation``), ``FETCH_RAISE`` raises its own
``FieldFetchBlocked`` in async and sync code alike.

Why: ``ForwardManyToOneDescriptor.__get__`` calls ``get_object()`` (``qs.get(...)``) when the
field's cache is empty (from 6.1 through ``instance._state.fetch_mode.fetch``), a plain sync query
whose ``SQLCompiler.execute_sql`` asks for ``connection.cursor()``, guarded by
``django.utils.asyncio.async_unsafe``. ``ReverseManyToOneDescriptor.__get__`` returns a
``RelatedManager`` whose ``get_queryset()`` returns the prefetch cache when there is one, else a
lazy QuerySet; its a-methods are the QuerySet's, each ``sync_to_async(...)``.
"""

import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import NotSupportedError

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    NO_PREFETCH_IN_AITERATOR,
    Statement,
    When,
    assert_view_outcome,
    by_version,
    each_interface,
    each_proves,
    requires_django,
)
from project.library.models import Author, Book

CLAIM = Claim(
    id="related-objects-in-async",
    source="Django docs, Asynchronous support (Queries & the ORM)",
    url="https://docs.djangoproject.com/en/5.2/topics/async/#queries-the-orm",
    claim=(
        "Following a foreign key or a reverse relation works the same in async code as in sync code"
    ),
    statements=[
        Statement(
            "foreign-key",
            "Following a foreign key works the same in async code as in sync code.",
            "refuted",
            reality=(
                "In async code book.author raises SynchronousOnlyOperation (the attribute access "
                "runs a sync query; HTTP 500 from an async view, under ASGI and WSGI) unless the "
                "author was loaded already (select_related(), prefetch_related() or "
                "aprefetch_related_objects(), an earlier access in sync code); book.author_id "
                "works. The same line works in sync code. Django 6.1's fetch modes "
                "do not change this: FETCH_PEERS still raises SynchronousOnlyOperation, "
                "FETCH_RAISE raises FieldFetchBlocked in async and sync code alike."
            ),
        ),
        Statement(
            "select-related",
            "A foreign key loaded with select_related() can be followed in async code.",
            "holds",
            claimed=False,
        ),
        Statement(
            "foreign-key-prefetched",
            "A foreign key already prefetched (prefetch_related(), or aprefetch_related_objects() "
            "from Django 5.0) can be followed in async code without a query.",
            "holds",
            claimed=False,
        ),
        Statement(
            "reverse-relation",
            "Following a reverse relation works the same in async code as in sync code.",
            "refuted",
            reality=(
                "author.books.all() builds a QuerySet without a query, but iterating it in async "
                "code raises SynchronousOnlyOperation (HTTP 500 from an async view, under ASGI "
                "and WSGI)."
            ),
        ),
        Statement(
            "reverse-async-forms",
            "A reverse relation can be read in async code with `async for` over its QuerySet "
            "and with its a-methods (afirst(), acount(), ...).",
            "holds",
            claimed=False,
        ),
        Statement(
            "reverse-prefetched",
            "A reverse relation already prefetched (prefetch_related(), or "
            "aprefetch_related_objects() from Django 5.0) iterates in async code without a query.",
            "holds",
            claimed=False,
        ),
        Statement(
            "aiterator-prefetches",
            "QuerySet.aiterator() prefetches the relations named by prefetch_related().",
            "holds",
            when=[When("refuted", django="<5.0", why="aiterator() refuses prefetch_related()")],
            reality=(
                "On Django 4.2, iterating aiterator() after prefetch_related() raises "
                "NotSupportedError: Using QuerySet.aiterator() after prefetch_related() is not "
                "supported. From 5.0 it prefetches."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "ForwardManyToOneDescriptor.__get__ -> get_object() -> QuerySet.get() -> "
        "SQLCompiler.execute_sql -> BaseDatabaseWrapper.cursor(), guarded by "
        "django.utils.asyncio.async_unsafe; ReverseManyToOneDescriptor.__get__ returns a "
        "RelatedManager whose get_queryset() is lazy unless prefetched (django/db/models/fields/"
        "related_descriptors.py)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/db/queries/#async-queries",
    question="Do foreign keys and reverse relations work the same in async code?",
    topic="orm",
    code=("project.views.orm_async.book_author_lazy", "project.views.orm_async.author_books_lazy"),
    instead=(
        "project.views.orm_async.book_author_select_related",
        "project.views.orm_async.author_books_async_for",
        "project.views.orm_async.author_books_prefetched",
    ),
)
pytestmark = pytest.mark.django_db(transaction=True)
foreign_key = CLAIM.statement("foreign-key")
select_related = CLAIM.statement("select-related")
foreign_key_prefetched = CLAIM.statement("foreign-key-prefetched")
reverse_relation = CLAIM.statement("reverse-relation")
reverse_async_forms = CLAIM.statement("reverse-async-forms")
reverse_prefetched = CLAIM.statement("reverse-prefetched")
aiterator_prefetches = CLAIM.statement("aiterator-prefetches")

TITLES = ["Notes", "Sketch"]


@pytest.fixture
def ada():
    author = Author.objects.create(name="Ada")
    for title in TITLES:
        Book.objects.create(title=title, author=author)
    return author


def assert_guard(raised):
    assert str(raised.value) == ASYNC_UNSAFE
    frames = raised.traceback
    assert frames[-1].frame.code.name == "inner"
    assert frames[-1].path.as_posix().endswith("django/utils/asyncio.py")
    assert frames[-2].frame.code.name == "execute_sql"


def on_loop(threads):
    """How many of the recorded queries ran (or were attempted) on this, the loop's, thread."""
    return threads.count(threading.get_ident())


# --- a foreign key ---------------------------------------------------------------------------


@foreign_key
async def test_lazy_foreign_key_raises(ada, query_threads):
    book = await Book.objects.aget(title="Notes")
    assert book.author_id == ada.pk  # the column itself: no query
    with pytest.raises(SynchronousOnlyOperation) as raised:
        book.author
    assert_guard(raised)
    # The attribute access itself ran the query, through the descriptor's get_object().
    assert any(
        f.frame.code.name == "get_object"
        and f.path.as_posix().endswith("django/db/models/fields/related_descriptors.py")
        for f in raised.traceback
    )
    assert on_loop(query_threads) == 1


@foreign_key
async def test_there_is_no_await_book_author(ada, query_threads):
    book = await Book.objects.aget(title="Notes")
    # The attribute access runs the query before there is anything to await.
    with pytest.raises(SynchronousOnlyOperation) as raised:
        await book.author
    assert_guard(raised)
    assert on_loop(query_threads) == 1


@foreign_key
async def test_same_line_works_in_sync_code(ada, query_threads):
    book = await Book.objects.aget(title="Notes")
    author = await sync_to_async(lambda: book.author)()
    assert author.name == "Ada"
    assert on_loop(query_threads) == 0
    assert book.author is author  # cached on the instance now: later access needs no query
    assert len(query_threads) == 2


@select_related
async def test_select_related_foreign_key_works(ada, query_threads):
    book = await Book.objects.select_related("author").aget(title="Notes")
    assert book.author.name == "Ada"
    assert len(query_threads) == 1 and on_loop(query_threads) == 0


@foreign_key_prefetched
async def test_prefetched_foreign_key_is_followed_without_a_query(ada, query_threads):
    book = await Book.objects.prefetch_related("author").aget(title="Notes")
    # The book and the prefetch: two queries, both in the aget's thread, off the loop.
    assert len(query_threads) == 2 and len(set(query_threads)) == 1
    assert on_loop(query_threads) == 0
    assert book.author.name == "Ada"
    assert len(query_threads) == 2


@foreign_key_prefetched
@requires_django(since="5.0")
async def test_aprefetch_related_objects_on_a_foreign_key(ada, query_threads):
    # django.db.models exports it only from 5.0.5.
    from django.db.models.query import aprefetch_related_objects

    book = await Book.objects.aget(title="Notes")
    await aprefetch_related_objects([book], "author")
    assert len(query_threads) == 2 and on_loop(query_threads) == 0
    assert book.author.name == "Ada"
    assert len(query_threads) == 2


@each_proves("relation", {"forward": foreign_key_prefetched, "reverse": reverse_prefetched})
def test_aprefetch_related_objects_exists_from_5_0(relation):
    import django.db.models
    import django.db.models.query

    # Defined in django.db.models.query from 5.0.0; django.db.models exports it from 5.0.5 on.
    assert hasattr(django.db.models.query, "aprefetch_related_objects") == by_version(
        {"4.2": False, "5.0": True}
    )
    assert hasattr(django.db.models, "aprefetch_related_objects") == by_version(
        {"4.2": False, "5.0.5": True}
    )


# --- a reverse relation ----------------------------------------------------------------------


@reverse_relation
async def test_reverse_manager_builds_lazily_but_iterating_raises(ada, query_threads):
    author = await Author.objects.aget(name="Ada")
    books = author.books.order_by("pk")  # no query yet
    assert len(query_threads) == 1 and on_loop(query_threads) == 0  # only the aget's
    with pytest.raises(SynchronousOnlyOperation) as raised:
        [book.title for book in books]
    assert_guard(raised)
    assert on_loop(query_threads) == 1


@reverse_async_forms
async def test_reverse_async_for_and_a_methods_work(ada, query_threads):
    author = await Author.objects.aget(name="Ada")
    assert [book.title async for book in author.books.order_by("pk")] == TITLES
    assert (await author.books.order_by("pk").afirst()).title == "Notes"
    assert await author.books.acount() == 2
    assert on_loop(query_threads) == 0


@reverse_prefetched
async def test_prefetched_reverse_relation_iterates_without_a_query(ada, query_threads):
    author = await Author.objects.prefetch_related("books").aget(name="Ada")
    # The author and the prefetch: two queries, both in the aget's thread, off the loop.
    assert len(query_threads) == 2 and len(set(query_threads)) == 1
    assert sorted(book.title for book in author.books.all()) == TITLES
    assert len(query_threads) == 2 and on_loop(query_threads) == 0


@reverse_prefetched
@requires_django(since="5.0")
async def test_aprefetch_related_objects(ada, query_threads):
    # django.db.models exports it only from 5.0.5.
    from django.db.models.query import aprefetch_related_objects

    author = await Author.objects.aget(name="Ada")
    await aprefetch_related_objects([author], "books")
    assert sorted(book.title for book in author.books.all()) == TITLES
    assert on_loop(query_threads) == 0


@aiterator_prefetches
@requires_django(since="5.0")
async def test_aiterator_prefetches(ada, query_threads):
    authors = [a async for a in Author.objects.prefetch_related("books").aiterator()]
    assert sorted(book.title for book in authors[0].books.all()) == TITLES
    assert on_loop(query_threads) == 0


@aiterator_prefetches
@requires_django(until="5.0")
async def test_aiterator_refuses_prefetch_related(ada):
    with pytest.raises(NotSupportedError) as raised:
        [a async for a in Author.objects.prefetch_related("books").aiterator()]
    assert str(raised.value) == NO_PREFETCH_IN_AITERATOR


# --- Django 6.1's fetch modes ----------------------------------------------------------------


async def follow_author(book, where):
    if where == "async":
        return book.author
    return await sync_to_async(lambda: book.author)()


@foreign_key
@requires_django(since="6.1")
async def test_fetch_peers_still_queries_synchronously(ada, query_threads):
    from django.db.models import FETCH_PEERS

    books = [b async for b in Book.objects.fetch_mode(FETCH_PEERS).order_by("pk")]
    with pytest.raises(SynchronousOnlyOperation) as raised:
        books[0].author
    assert_guard(raised)
    assert on_loop(query_threads) == 1


@foreign_key
@requires_django(since="6.1")
@pytest.mark.parametrize("where", ["async", "sync"])
async def test_fetch_raise_blocks_in_async_and_sync_alike(ada, where):
    from django.core.exceptions import FieldFetchBlocked
    from django.db.models import FETCH_RAISE

    book = await Book.objects.fetch_mode(FETCH_RAISE).aget(title="Notes")
    with pytest.raises(FieldFetchBlocked) as raised:
        await follow_author(book, where)
    assert str(raised.value) == "Fetching of Book.author blocked."


# --- in a view, under ASGI and WSGI ----------------------------------------------------------

EXPECTED_VIEWS = {
    "book-author-lazy": (500, None),
    "book-author-select-related": (200, {"author": "Ada"}),
    "book-author-prefetched": (200, {"author": "Ada"}),
    "author-books-lazy": (500, None),
    "author-books-async-for": (200, {"books": TITLES}),
    "author-books-prefetched": (200, {"books": TITLES}),
}
VIEW_STATEMENTS = {
    "book-author-lazy": foreign_key,
    "book-author-select-related": select_related,
    "book-author-prefetched": foreign_key_prefetched,
    "author-books-lazy": reverse_relation,
    "author-books-async-for": reverse_async_forms,
    "author-books-prefetched": reverse_prefetched,
}


@each_interface
@each_proves("form", VIEW_STATEMENTS)
def test_async_view(ada, interface, form, caplog, evidence):
    status, body = EXPECTED_VIEWS[form]
    hit = assert_view_outcome(
        interface, f"/orm-async/related/{form}/", status, body, caplog,
        error=(SynchronousOnlyOperation, ASYNC_UNSAFE), query="title=Notes&name=Ada",
    )  # fmt: skip
    evidence(f"{interface} view {form}", status=hit.status)
