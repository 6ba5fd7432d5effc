"""Views for the claim template-lazy-queryset (specs/test_template_lazy_queryset.py), mounted at
/template-lazy-queryset/:

- ``books/``: an async view that passes an unevaluated QuerySet to ``render()`` (the claim);
- ``author/``: the same with a lazy related manager (``{% for book in author.books.all %}``);
- ``async-for/``, ``listed-in-thread/``: the QuerySet evaluated in the view first;
- ``render-in-thread/``: the whole ``render()`` run by ``sync_to_async``;
- ``template-response/``: an unrendered ``TemplateResponse``, which Django's handler renders;
- ``seed/``: the rows the served test needs (servers start from an empty, migrated database).

The templates are project/templates/template_lazy_queryset/*.html, on the engine the project's
TEMPLATES setting configures. Every rendering records where it ran (``RENDERED``, from that
engine's context processor ``here``, which Django calls in the rendering thread when it binds the
template).
"""

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path

from project.evidence import where
from project.library.models import Author, Book

AUTHOR = "Jane Austen (template-lazy-queryset)"
TITLES = ["Emma", "Persuasion"]

RENDERED = []  # where() of each rendering, in this process


def here(request):
    """Context processor: runs when a template is bound to its RequestContext, i.e. where it is
    rendered."""
    RENDERED.append(where())
    return {}


# --- the claim: an unevaluated QuerySet handed to the template ------------------------------


async def books(request):
    books = Book.objects.filter(author__name=AUTHOR).order_by("title")
    return render(request, "template_lazy_queryset/books.html", {"books": books})


async def author(request):
    author = await Author.objects.aget(name=AUTHOR)
    return render(request, "template_lazy_queryset/author.html", {"author": author})


# --- what works instead ----------------------------------------------------------------------


async def books_async_for(request):
    books = [book async for book in Book.objects.filter(author__name=AUTHOR).order_by("title")]
    return render(request, "template_lazy_queryset/books.html", {"books": books})


async def books_listed_in_thread(request):
    books = Book.objects.filter(author__name=AUTHOR).order_by("title")
    return render(request, "template_lazy_queryset/books.html", {"books": await sync_to_async(list)(books)})


async def books_render_in_thread(request):
    books = Book.objects.filter(author__name=AUTHOR).order_by("title")
    return await sync_to_async(render)(request, "template_lazy_queryset/books.html", {"books": books})


async def books_template_response(request):
    books = Book.objects.filter(author__name=AUTHOR).order_by("title")
    return TemplateResponse(request, "template_lazy_queryset/books.html", {"books": books})


async def seed(request):
    writer, _ = await Author.objects.aget_or_create(name=AUTHOR)
    for title in TITLES:
        await Book.objects.aget_or_create(title=title, author=writer)
    return JsonResponse({"books": await Book.objects.filter(author=writer).acount()})


FORMS = {
    "books": books,
    "author": author,
    "async-for": books_async_for,
    "listed-in-thread": books_listed_in_thread,
    "render-in-thread": books_render_in_thread,
    "template-response": books_template_response,
}

urlpatterns = [
    path("seed/", seed),
    *(path(f"{form}/", view) for form, view in FORMS.items()),
]
