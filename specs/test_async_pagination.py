"""Paginating a QuerySet in an async view: Paginator, and Django 6.0's AsyncPaginator.

Claimed (a guide to Django's pagination, mintlify.com): "Django provides two main paginator
classes: Paginator - For synchronous views and traditional QuerySets ... AsyncPaginator - For
async views and async QuerySets". Asked before there was one (em1208/adrf issue 21, whose
traceback runs through django/core/paginator.py's ``page`` and ``validate_number``): "I'd like to
know if already exists a way to implement pagination in an async way". Hit in a real project's
async code: freelawproject/courtlistener's "Wrap paginator.num_pages in sync_to_async" and "Wrap
all paginate operations in a single sync_to_async" (pull requests 3552 and 3554, 2024-01-04,
https://github.com/freelawproject/courtlistener/pull/3552). Django ticket #35945 added it
(https://github.com/django/django/pull/18938, "Added async interface to Paginator"), as classes
of their own because, its author wrote, "the cached_property and property decorators do not
support asynchronous methods".

What is true: ``Paginator(queryset, 2).page(1)`` in async code raises ``SynchronousOnlyOperation:
You cannot call this from an async context - use a thread or sync_to_async.``: ``page()``
validates the number against ``num_pages``, which counts with ``queryset.count()``, a query run
on the event loop's thread (HTTP 500 from an async view, under ASGI and WSGI). A page built in a
thread (``await sync_to_async(paginator.page)(n)``) holds a lazy, sliced QuerySet: reading its
``object_list`` with a plain loop raises the same way, and ``async for`` over it works, on every
version. ``django.core.paginator.AsyncPaginator`` (with ``AsyncPage``) exists from Django 6.0 on;
before, importing it raises ``ImportError: cannot import name 'AsyncPaginator' from
'django.core.paginator' (<its path>)``. Its ``acount()``, ``anum_pages()``, ``apage_range()`` and
``apage()``, and the page's ``ahas_next()``, ``ahas_previous()``, ``astart_index()`` and
``aend_index()``, are awaited, ``async for`` over an ``AsyncPage`` reads its rows, and the queries
run off the loop. An ``AsyncPage`` is a sequence only once ``await page.aget_object_list()`` has
run: before, ``len(page)`` raises ``TypeError: AsyncPage.aget_object_list() must be awaited before
calling len().`` and ``page[0]`` ``TypeError: AsyncPage.aget_object_list() must be awaited before
using indexing.``

Why: ``django.core.paginator.Paginator.page`` -> ``validate_number`` -> ``num_pages`` ->
``count`` (``cached_property``s) -> ``QuerySet.count()`` -> ``SQLCompiler.execute_sql`` ->
``connection.cursor()``, guarded by ``django.utils.asyncio.async_unsafe``; ``Page.object_list`` is
``object_list[bottom:top]``, a lazy QuerySet. ``AsyncPaginator`` (6.0, beside ``Paginator`` on a
new ``BasePaginator``) awaits ``object_list.acount()`` and caches it; ``AsyncPage.__aiter__``
iterates the QuerySet's ``__aiter__``; ``AsyncPage.__len__``/``__getitem__`` raise until
``aget_object_list()`` has replaced the QuerySet with a list.
"""

import threading

import django.core.paginator
import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.core.paginator import Paginator

from harness.spec import (
    ASYNC_PAGE_INDEX,
    ASYNC_PAGE_LEN,
    ASYNC_UNSAFE,
    Claim,
    Statement,
    When,
    assert_view_outcome,
    by_version,
    cannot_import,
    each_interface,
    each_proves,
    requires_django,
)
from project.library.models import Author

CLAIM = Claim(
    id="async-paginator",
    source="Django's pagination guide on mintlify.com (\"Pagination Guide\", Overview)",
    url="https://www.mintlify.com/django/django/guides/pagination",
    claim=(
        "Django provides two main paginator classes: Paginator - For synchronous views and "
        "traditional QuerySets ... AsyncPaginator - For async views and async QuerySets"
    ),
    question=(
        "In an async view, does Paginator.page() fail on the event loop, with an AsyncPaginator "
        "to use instead?"
    ),
    topic="views",
    code=(
        "project.views.async_pagination.paginator_page",
        "project.views.async_pagination.page_object_list",
    ),
    instead=(
        "project.views.async_pagination.async_paginator",
        "project.views.async_pagination.page_in_thread",
    ),
    statements=[
        Statement(
            "paginator-sync-only",
            "Paginator cannot be used on the event loop: page() raises SynchronousOnlyOperation "
            "(its COUNT query), and so does iterating the object_list of a page built in a "
            "thread.",
            "holds",
        ),
        Statement(
            "async-paginator",
            "django.core.paginator provides AsyncPaginator, which paginates a QuerySet in an async "
            "view: acount(), anum_pages(), apage_range(), apage() and the page's ahas_next(), "
            "ahas_previous(), astart_index(), aend_index() are awaited, `async for` over the page "
            "reads its rows, and the queries run off the event loop.",
            "holds",
            when=[When("refuted", django="<6.0", why="added in Django 6.0 (ticket #35945)")],
            reality=(
                "Before Django 6.0 there is no AsyncPaginator: `from django.core.paginator import "
                "AsyncPaginator` raises ImportError: cannot import name 'AsyncPaginator' from "
                "'django.core.paginator' (<its path>), an HTTP 500 from the view."
            ),
        ),
        Statement(
            "async-page-sequence",
            "An AsyncPage is a sequence only after `await page.aget_object_list()`: before it, "
            "len(page) and page[0] raise TypeError.",
            "holds",
            when=[When("refuted", django="<6.0", why="AsyncPage is new in Django 6.0")],
            reality="Before Django 6.0 django.core.paginator has no AsyncPage.",
            claimed=False,
        ),
        Statement(
            "page-in-thread",
            "On every version, Paginator works in an async view when the page is built in a "
            "thread (await sync_to_async(paginator.page)(n)) and its object_list is read with "
            "`async for`.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.paginator.Paginator.page -> validate_number -> num_pages -> count "
        "(cached_property) -> QuerySet.count() -> SQLCompiler.execute_sql -> "
        "BaseDatabaseWrapper.cursor(), guarded by django.utils.asyncio.async_unsafe; Page.object_list "
        "is a lazy sliced QuerySet; django.core.paginator.AsyncPaginator / AsyncPage (Django 6.0: "
        "acount() awaits QuerySet.acount(); AsyncPage.__aiter__ uses QuerySet.__aiter__; "
        "AsyncPage.__len__/__getitem__ raise TypeError until aget_object_list())."
    ),
    docs="https://docs.djangoproject.com/en/6.0/ref/paginator/#django.core.paginator.AsyncPaginator",
)
pytestmark = pytest.mark.django_db(transaction=True)
paginator_sync_only = CLAIM.statement("paginator-sync-only")
async_paginator = CLAIM.statement("async-paginator")
async_page_sequence = CLAIM.statement("async-page-sequence")
page_in_thread = CLAIM.statement("page-in-thread")

NAMES = ["Ada", "Grace", "Barbara", "Frances", "Radia"]  # 5 authors, 2 a page: 3 pages




@pytest.fixture
def authors():
    return Author.objects.bulk_create(Author(name=name) for name in NAMES)


# --- Paginator in async code -------------------------------------------------------------------


@paginator_sync_only
async def test_paginator_page_raises_where_it_counts(authors, query_threads):
    paginator = Paginator(Author.objects.order_by("pk"), 2)
    with pytest.raises(SynchronousOnlyOperation) as raised:
        paginator.page(1)
    assert str(raised.value) == ASYNC_UNSAFE
    # page() -> validate_number() -> num_pages -> count: the COUNT query, on the loop's thread.
    names = [
        f.frame.code.name for f in raised.traceback
        if f.path.as_posix().endswith("django/core/paginator.py")
    ]  # fmt: skip
    assert names == ["page", "validate_number", "num_pages", "count"]
    assert query_threads == [threading.get_ident()]


VIEWS = {
    "paginator-page": (500, None, paginator_sync_only),
    "page-object-list": (500, None, paginator_sync_only),
    "page-in-thread": (200, {"names": ["Barbara", "Frances"], "num_pages": 3, "has_next": True},
                       page_in_thread),
}  # fmt: skip


@each_interface
@each_proves("form", {form: statement for form, (_, _, statement) in VIEWS.items()})
def test_paginator_in_an_async_view(authors, interface, form, caplog, evidence):
    status, body, _ = VIEWS[form]
    hit = assert_view_outcome(
        interface, f"/async-pagination/{form}/", status, body, caplog,
        error=(SynchronousOnlyOperation, ASYNC_UNSAFE), query="page=2",
    )  # fmt: skip
    evidence(f"{interface} view {form}", status=hit.status)


# --- AsyncPaginator (Django >= 6.0) ------------------------------------------------------------

ASYNC_PAGE_2 = {
    "names": ["Barbara", "Frances"], "count": 5, "num_pages": 3, "page_range": [1, 2, 3],
    "has_next": True, "has_previous": True, "start_index": 3, "end_index": 4,
}  # fmt: skip


@each_proves("name", {"AsyncPaginator": async_paginator, "AsyncPage": async_page_sequence})
def test_async_classes_exist_from_6_0(name):
    assert hasattr(django.core.paginator, name) == by_version({"4.2": False, "6.0": True})


@async_paginator
@requires_django(since="6.0")
@each_interface
def test_async_paginator_in_an_async_view(authors, interface, caplog, query_threads, evidence):
    assert_view_outcome(
        interface, "/async-pagination/async-paginator/", 200, ASYNC_PAGE_2, caplog, query="page=2"
    )
    # COUNT once (cached by acount()), then the page's rows.
    assert len(query_threads) == 2
    if interface == "asgi":
        # The loop ran on this thread (serve_once); the queries on the request's worker thread.
        assert threading.get_ident() not in query_threads and len(set(query_threads)) == 1
    else:
        # The WSGI handler served on this thread and ran the view's loop in another
        # (async_to_sync); the thread-sensitive queries came back to the serving thread.
        assert query_threads == [threading.get_ident()] * 2
    evidence(f"{interface} view async-paginator", status=200, queries=len(query_threads))


@async_paginator
@requires_django(until="6.0")
@each_interface
def test_there_is_no_async_paginator_before_6_0(authors, interface, caplog, evidence):
    with pytest.raises(ImportError) as raised:
        from django.core.paginator import AsyncPaginator  # noqa: F401
    message = cannot_import("AsyncPaginator", django.core.paginator)
    assert str(raised.value) == message
    assert_view_outcome(
        interface, "/async-pagination/async-paginator/", 500, None, caplog,
        error=(ImportError, message), query="page=2",
    )  # fmt: skip
    evidence(f"{interface} view async-paginator", status=500)


@async_page_sequence
@requires_django(since="6.0")
async def test_async_page_is_a_sequence_only_after_aget_object_list(authors, query_threads):
    from django.core.paginator import AsyncPaginator

    page = await AsyncPaginator(Author.objects.order_by("pk"), 2).apage(1)
    assert repr(page) == "<Async Page 1>"
    with pytest.raises(TypeError) as raised:
        len(page)
    assert str(raised.value) == ASYNC_PAGE_LEN
    with pytest.raises(TypeError) as raised:
        page[0]
    assert str(raised.value) == ASYNC_PAGE_INDEX
    assert len(query_threads) == 1  # only the COUNT so far
    assert [a.name for a in await page.aget_object_list()] == ["Ada", "Grace"]
    assert len(page) == 2 and page[1].name == "Grace"
    assert len(query_threads) == 2 and threading.get_ident() not in query_threads
