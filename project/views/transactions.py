"""Transactions in async views, and the DJANGO_ALLOW_ASYNC_UNSAFE switch.

Mounted at /transactions/. Used by specs/test_transactions_in_async.py (claim ``atomic-in-async``)
and specs/test_async_unsafe_setting.py (claim ``django-allow-async-unsafe``).

- ``atomic_block`` is the form the claim has in mind: ``with transaction.atomic():`` written
  straight into an async view.
- ``atomic_via_sync_to_async`` is the form Django documents: the transactional work is one
  synchronous function decorated with ``atomic``, awaited through ``sync_to_async``.
- ``add_author`` / ``add_author_async`` / ``add_author_async_exempt`` are the same write as a sync
  view, an async view, and an async view excused from ATOMIC_REQUESTS by ``non_atomic_requests``.
- ``unsafe_probe`` makes the ORM mistake the guard exists for, ``await Model.objects.get(...)``,
  and reports what it raised; ``unsafe_set`` changes DJANGO_ALLOW_ASYNC_UNSAFE in the running
  process with ``os.environ``, as Django's docs tell people to do from Python.

Every view names its author after ``?name=``, so a test can look in the database for exactly the
rows one request tried to write.
"""

import os
import threading

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import path

from project.library.models import Author, Book

UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


class Rollback(Exception):
    """Raised on purpose (``?fail=1``) inside a transaction, to see what is rolled back."""


def _failing(request):
    return request.GET.get("fail") == "1"


# --- the claim's form -----------------------------------------------------------------------


async def atomic_block(request):
    with transaction.atomic():
        author = await Author.objects.acreate(name=request.GET["name"])
        await Book.objects.acreate(title="first", author=author)
    return JsonResponse({"author": author.pk})


# --- the documented form: one sync function, atomic, through sync_to_async ------------------


@transaction.atomic
def add_author_with_books(name, titles, fail):
    author = Author.objects.create(name=name)
    for title in titles:
        Book.objects.create(title=title, author=author)
    seen = {"in_atomic_block": connection.in_atomic_block, "thread": threading.get_ident()}
    if fail:
        raise Rollback(seen)
    return seen


async def atomic_via_sync_to_async(request):
    try:
        seen = await sync_to_async(add_author_with_books)(
            request.GET["name"], ["first", "second"], _failing(request)
        )
    except Rollback as error:
        seen, status = {**error.args[0], "rolled_back": True}, 409
    else:
        status = 200
    return JsonResponse({**seen, "view_thread": threading.get_ident()}, status=status)


# --- ATOMIC_REQUESTS: the same write as a sync view, an async one, an exempt async one ------


def add_author(request):
    Author.objects.create(name=request.GET["name"])
    if _failing(request):
        raise Rollback("the view failed after writing")
    return JsonResponse({"in_atomic_block": connection.in_atomic_block})


async def add_author_async(request):
    await Author.objects.acreate(name=request.GET["name"])
    return JsonResponse({"written": True})


@transaction.non_atomic_requests
async def add_author_async_exempt(request):
    await Author.objects.acreate(name=request.GET["name"])
    return JsonResponse({"written": True})


# --- DJANGO_ALLOW_ASYNC_UNSAFE ----------------------------------------------------------------


async def unsafe_probe(request):
    author = await Author.objects.acreate(name=request.GET.get("name", "probe"))
    try:
        await Author.objects.get(pk=author.pk)  # the mistake: get() is not awaitable
    except (SynchronousOnlyOperation, TypeError) as error:
        return JsonResponse(
            {"raised": type(error).__name__, "message": str(error), UNSAFE: os.environ.get(UNSAFE)}
        )


async def unsafe_set(request):
    if "value" in request.GET:
        os.environ[UNSAFE] = request.GET["value"]
    else:
        os.environ.pop(UNSAFE, None)
    return JsonResponse({UNSAFE: os.environ.get(UNSAFE)})


urlpatterns = [
    path("atomic-block/", atomic_block),
    path("atomic-via-sync-to-async/", atomic_via_sync_to_async),
    path("add-author/", add_author),
    path("add-author-async/", add_author_async),
    path("add-author-async-exempt/", add_author_async_exempt),
    path("unsafe/probe/", unsafe_probe),
    path("unsafe/set/", unsafe_set),
]
