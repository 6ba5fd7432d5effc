"""Views for specs/test_async_pagination.py (claim ``async-paginator``), mounted at
/async-pagination/ (``?page=N``, PER_PAGE authors a page, ordered by pk):

- ``paginator-page/``: Django's Paginator used in an async view as in a sync one;
- ``page-object-list/``: the page built in a thread, its ``object_list`` then read on the loop;
- ``page-in-thread/``: what works on every version: the page built in a thread, its
  ``object_list`` read with ``async for``;
- ``async-paginator/``: ``django.core.paginator.AsyncPaginator`` (imported in the view: before
  Django 6.0 the import itself fails).
"""

from asgiref.sync import sync_to_async
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.urls import path

from project.library.models import Author

PER_PAGE = 2


async def paginator_page(request):
    """Paginator, as in a sync view."""
    paginator = Paginator(Author.objects.order_by("pk"), PER_PAGE)
    page = paginator.page(request.GET.get("page", 1))
    return JsonResponse({"names": [author.name for author in page]})


async def page_object_list(request):
    """The page built in a thread; its object_list read on the loop."""
    paginator = Paginator(Author.objects.order_by("pk"), PER_PAGE)
    page = await sync_to_async(paginator.page)(request.GET.get("page", 1))
    return JsonResponse({"names": [author.name for author in page.object_list]})


async def page_in_thread(request):
    """The page built in a thread; its object_list read with ``async for``."""
    paginator = Paginator(Author.objects.order_by("pk"), PER_PAGE)
    page = await sync_to_async(paginator.page)(request.GET.get("page", 1))
    names = [author.name async for author in page.object_list]
    return JsonResponse({"names": names, "num_pages": paginator.num_pages, "has_next": page.has_next()})


async def async_paginator(request):
    """AsyncPaginator (Django >= 6.0): every step awaited."""
    from django.core.paginator import AsyncPaginator

    paginator = AsyncPaginator(Author.objects.order_by("pk"), PER_PAGE)
    page = await paginator.apage(request.GET.get("page", 1))
    names = [author.name async for author in page]
    return JsonResponse({
        "names": names,
        "count": await paginator.acount(),
        "num_pages": await paginator.anum_pages(),
        "page_range": list(await paginator.apage_range()),
        "has_next": await page.ahas_next(),
        "has_previous": await page.ahas_previous(),
        "start_index": await page.astart_index(),
        "end_index": await page.aend_index(),
    })  # fmt: skip


urlpatterns = [
    path("paginator-page/", paginator_page),
    path("page-object-list/", page_object_list),
    path("page-in-thread/", page_in_thread),
    path("async-paginator/", async_paginator),
]
