"""Views for the claim get-object-or-404-async (specs/test_get_object_or_404_async.py), mounted
at /get-object-or-404-async/:

- ``sync/<title>/``: the synchronous shortcut called directly in an async view;
- ``wrapped/<title>/``: the same wrapped with ``sync_to_async`` (the claim's advice);
- ``async-shortcut/<title>/``: ``django.shortcuts.aget_object_or_404`` (Django >= 5.0), imported
  when the view runs, so that this module also loads where it does not exist;
- ``async-list/<author>/``: ``django.shortcuts.aget_list_or_404`` (Django >= 5.0);
- ``seed/``: the rows the served test needs.

``book_sync`` notes where it runs in ``RAN`` (``project.evidence.where()``), for the in-process
test to compare with the thread of the query it attempts.
"""

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path

from project.evidence import where
from project.library.models import Author, Book

AUTHOR = "George Eliot (get-object-or-404-async)"
TITLES = ["Middlemarch-1871", "Silas-Marner-1861"]

RAN = []  # where() of each book_sync call, in this process


# --- the claim: get_object_or_404 in an async view, as is and wrapped ------------------------


async def book_sync(request, title):
    RAN.append(where())
    book = get_object_or_404(Book, title=title)
    return JsonResponse({"title": book.title})


async def book_wrapped(request, title):
    book = await sync_to_async(get_object_or_404)(Book, title=title)
    return JsonResponse({"title": book.title})


# --- the async shortcuts (Django >= 5.0) --------------------------------------------------------


async def book_async_shortcut(request, title):
    from django.shortcuts import aget_object_or_404

    book = await aget_object_or_404(Book, title=title)
    return JsonResponse({"title": book.title})


async def books_async_list(request, author):
    from django.shortcuts import aget_list_or_404

    books = await aget_list_or_404(Book.objects.order_by("title"), author__name=author)
    return JsonResponse({"titles": [book.title for book in books]})


async def seed(request):
    writer, _ = await Author.objects.aget_or_create(name=AUTHOR)
    for title in TITLES:
        await Book.objects.aget_or_create(title=title, author=writer)
    return JsonResponse({"books": await Book.objects.filter(author=writer).acount()})


urlpatterns = [
    path("seed/", seed),
    path("sync/<str:title>/", book_sync),
    path("wrapped/<str:title>/", book_wrapped),
    path("async-shortcut/<str:title>/", book_async_shortcut),
    path("async-list/<str:author>/", books_async_list),
]
