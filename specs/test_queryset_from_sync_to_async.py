"""A QuerySet returned from sync_to_async.

Claimed (the pattern behind django/channels#1916): "A QuerySet returned from
sync_to_async(Model.objects.all)() can be used freely afterwards".

No query has run yet: ``Model.objects.all()`` only *builds* a QuerySet; running it on a worker
thread returns that lazy object unevaluated. The first thing that needs rows (iterating it,
``list()``, ``len()``, ``bool()``, indexing, even ``repr()``) runs the query right there, on the
event loop's thread, and Django refuses: ``SynchronousOnlyOperation: You cannot call this from an
async context - use a thread or sync_to_async.`` Evaluating it inside the thread
(``await sync_to_async(list)(qs)``) or by ``async for`` fills the QuerySet's result cache, after
which the same object *can* be used freely (no further query); ``qs.aiterator()`` does not fill
it, so plain iteration afterwards raises again. An async view under WSGI runs in an event loop
too (asgiref's ``async_to_sync``), so the guard fires there as well.

Why: ``Manager.all()`` returns ``get_queryset()`` without touching the database;
``QuerySet.__iter__``/``__len__``/``__bool__``/``__getitem__``/``__repr__`` call ``_fetch_all()``,
which runs ``ModelIterable.__iter__`` -> ``SQLCompiler.execute_sql`` -> ``connection.cursor()``,
guarded by ``django.utils.asyncio.async_unsafe`` (raises when ``asyncio.get_running_loop()``
finds a loop in the calling thread). ``QuerySet.__aiter__`` runs ``_fetch_all`` through
``sync_to_async``; ``QuerySet.aiterator()`` pulls chunks through ``BaseIterable._async_generator``
(``sync_to_async(next_slice)``) and never sets ``_result_cache``.
"""

import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db.models.query import QuerySet

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    Statement,
    assert_view_outcome,
    each_interface,
    each_proves,
)
from project.library.models import Author

CLAIM = Claim(
    id="queryset-from-sync-to-async",
    source="django/channels issue 1916",
    url="https://github.com/django/channels/issues/1916",
    claim=(
        "A QuerySet returned from sync_to_async(Model.objects.all)() can be used freely afterwards"
    ),
    statements=[
        Statement(
            "used-freely",
            "A QuerySet returned from sync_to_async(Model.objects.all)() can be used freely "
            "afterwards.",
            "refuted",
            reality=(
                "It comes back lazy and unevaluated: no query ran. Iterating it, list(), len(), "
                "bool(), indexing or repr() in async code then runs the query on the event loop's "
                "thread and raises SynchronousOnlyOperation (HTTP 500 from an async view, under "
                "ASGI and WSGI)."
            ),
        ),
        Statement(
            "list-in-thread",
            "Evaluated in the thread, `await sync_to_async(list)(qs)` gives its rows and fills "
            "its result cache, after which the QuerySet can be used freely.",
            "holds",
            claimed=False,
        ),
        Statement(
            "async-for",
            "`async for` over it gives its rows and fills its result cache, after which the "
            "QuerySet can be used freely.",
            "holds",
            claimed=False,
        ),
        Statement(
            "aiterator",
            "`qs.aiterator()` gives its rows but leaves the QuerySet unevaluated: using it "
            "afterwards still raises SynchronousOnlyOperation.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "Manager.all() -> get_queryset() builds a QuerySet without a query; QuerySet._fetch_all() "
        "(from __iter__, __len__, __bool__, __getitem__, __repr__) -> SQLCompiler.execute_sql -> "
        "BaseDatabaseWrapper.cursor(), guarded by django.utils.asyncio.async_unsafe; "
        "QuerySet.__aiter__ wraps _fetch_all in sync_to_async; QuerySet.aiterator() uses "
        "BaseIterable._async_generator and leaves _result_cache unset."
    ),
    docs="https://docs.djangoproject.com/en/5.2/ref/models/querysets/#when-querysets-are-evaluated",
    question="Can a QuerySet returned from sync_to_async(Model.objects.all)() be used freely?",
    topic="orm",
    code=("project.views.orm_async.authors_from_sync_to_async",),
    instead=(
        "project.views.orm_async.authors_listed_in_thread",
        "project.views.orm_async.authors_async_for",
    ),
)
pytestmark = pytest.mark.django_db(transaction=True)
used_freely = CLAIM.statement("used-freely")
list_in_thread = CLAIM.statement("list-in-thread")
async_for = CLAIM.statement("async-for")
aiterator = CLAIM.statement("aiterator")

NAMES = ["Ada", "Grace"]

# Everything that evaluates a QuerySet in plain (sync) Python.
EVALUATIONS = {
    "for": lambda qs: [author.name for author in qs],
    "list": list,
    "len": len,
    "bool": bool,
    "index": lambda qs: qs[0],
    "repr": repr,
}


@pytest.fixture
def authors():
    return [Author.objects.create(name=name) for name in NAMES]


async def returned_queryset():
    return await sync_to_async(Author.objects.order_by("pk").all)()


@used_freely
async def test_no_query_runs_in_the_thread(authors, query_threads):
    qs = await returned_queryset()
    assert type(qs) is QuerySet and qs.model is Author
    assert query_threads == []  # sync_to_async ran all(), which queries nothing


@used_freely
@pytest.mark.parametrize("evaluate", EVALUATIONS.values(), ids=EVALUATIONS.keys())
async def test_evaluating_it_in_async_code_raises(authors, query_threads, evaluate):
    qs = await returned_queryset()
    with pytest.raises(SynchronousOnlyOperation) as raised:
        evaluate(qs)
    assert str(raised.value) == ASYNC_UNSAFE
    # The query was attempted here, on the loop's thread, and stopped at the cursor.
    frames = raised.traceback
    assert frames[-1].frame.code.name == "inner"
    assert frames[-1].path.as_posix().endswith("django/utils/asyncio.py")
    assert frames[-2].frame.code.name == "execute_sql"
    assert query_threads == [threading.get_ident()]


@list_in_thread
async def test_list_inside_sync_to_async_works_and_fills_the_cache(authors, query_threads):
    qs = await returned_queryset()
    listed = await sync_to_async(list)(qs)
    assert [a.name for a in listed] == NAMES
    assert len(query_threads) == 1 and query_threads[0] != threading.get_ident()
    # list(qs) iterated qs itself: its cache is full, so now it can be used freely.
    assert [a.name for a in qs] == NAMES and len(qs) == 2 and qs[1].name == "Grace"
    assert len(query_threads) == 1


@async_for
async def test_async_for_works_and_fills_the_cache(authors, query_threads):
    qs = await returned_queryset()
    assert [author.name async for author in qs] == NAMES
    assert len(query_threads) == 1 and query_threads[0] != threading.get_ident()
    assert [a.name for a in qs] == NAMES and bool(qs) is True
    assert len(query_threads) == 1


@aiterator
async def test_aiterator_works_but_leaves_the_queryset_unevaluated(authors, query_threads):
    qs = await returned_queryset()
    assert [author.name async for author in qs.aiterator()] == NAMES
    assert len(query_threads) == 1 and query_threads[0] != threading.get_ident()
    with pytest.raises(SynchronousOnlyOperation) as raised:
        list(qs)
    assert str(raised.value) == ASYNC_UNSAFE


EXPECTED_VIEWS = {
    "from-sync-to-async": (500, None),
    "listed-in-thread": (200, {"names": NAMES}),
    "async-for": (200, {"names": NAMES}),
    "aiterator": (200, {"names": NAMES}),
}
VIEW_STATEMENTS = {
    "from-sync-to-async": used_freely,
    "listed-in-thread": list_in_thread,
    "async-for": async_for,
    "aiterator": aiterator,
}


@each_interface
@each_proves("form", VIEW_STATEMENTS)
def test_async_view(authors, interface, form, caplog, evidence):
    status, body = EXPECTED_VIEWS[form]
    hit = assert_view_outcome(
        interface, f"/orm-async/queryset/{form}/", status, body, caplog,
        error=(SynchronousOnlyOperation, ASYNC_UNSAFE),
    )  # fmt: skip
    evidence(f"{interface} view {form}", status=hit.status)
