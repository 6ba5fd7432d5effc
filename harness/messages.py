"""The messages Django, asgiref and Python give that the spec asserts, defined once, each beside
what produces it. Specs compare them exactly: a changed message is a changed behaviour.
"""

import sys

# django.utils.asyncio.async_unsafe: SynchronousOnlyOperation, raised by every guarded database
# call made where an event loop runs.
ASYNC_UNSAFE = "You cannot call this from an async context - use a thread or sync_to_async."

# django.core.handlers.base.BaseHandler.get_response / get_response_async: an AttributeError when
# what came back is a coroutine, not a response (response._resource_closers.append(...)).
NO_CLOSERS = "'coroutine' object has no attribute '_resource_closers'"

def unawaited_coroutine(view):
    """django.core.handlers.base.BaseHandler.check_response, when a view (named by its dotted
    path, e.g. "project.views.view_kinds.greeting") returned a coroutine: ValueError."""
    return (
        f"The view {view} didn't return an HttpResponse object. It returned an unawaited "
        "coroutine instead. You may need to add an 'await' into your view."
    )


# django.core.handlers.base.BaseHandler._get_response_async: a response's render() returned a
# coroutine.
STILL_A_COROUTINE = "Response is still a coroutine."

# SQLite's SQLITE_BUSY, through django.db.backends.sqlite3.base.SQLiteCursorWrapper.execute, when
# another connection holds the database's write lock past the busy timeout.
SQLITE_LOCKED = "database is locked"

# django.core.handlers.asgi.ASGIHandler.__call__, for any scope but http.
def not_http(scope_type):
    return f"Django can only handle ASGI/HTTP connections, not {scope_type}."


LIFESPAN_REJECTED = not_http("lifespan")
WEBSOCKET_REJECTED = not_http("websocket")

# django.core.handlers.base.BaseHandler.make_view_atomic, for an async view with ATOMIC_REQUESTS.
NO_ATOMIC_REQUESTS = "You cannot use ATOMIC_REQUESTS with async views."

# django.shortcuts.get_object_or_404 / get_list_or_404 (and their async forms, Django >= 5.0):
# the Http404 for a missing object or an empty list (English; translated from Django 6.1 on).
def no_match(object_name):
    return f"No {object_name} matches the given query."


# django.core.paginator.AsyncPage.__len__ / __getitem__ (Django >= 6.0), before
# aget_object_list() was awaited.
ASYNC_PAGE_LEN = "AsyncPage.aget_object_list() must be awaited before calling len()."
ASYNC_PAGE_INDEX = "AsyncPage.aget_object_list() must be awaited before using indexing."

# django.db.models.query.QuerySet.aiterator, before Django 5.0.
NO_PREFETCH_IN_AITERATOR = "Using QuerySet.aiterator() after prefetch_related() is not supported."

# django.http.response.StreamingHttpResponse.__aiter__ / __iter__: the Warning for an iterator of
# the other kind, which Django then consumes in full.
SYNC_ITERATOR_UNDER_ASGI = (
    "StreamingHttpResponse must consume synchronous iterators in order to serve them "
    "asynchronously. Use an asynchronous iterator instead."
)
ASYNC_ITERATOR_UNDER_WSGI = (
    "StreamingHttpResponse must consume asynchronous iterators in order to serve them "
    "synchronously. Use a synchronous iterator instead."
)

# asgiref.sync.SyncToAsync.__call__: a thread-sensitive call from a new event loop on the thread
# that the one-thread executor is already running.
WOULD_DEADLOCK = "Single thread executor already being used, would deadlock"

# asgiref.sync.AsyncToSync.__call__, when the calling thread has a running event loop.
ASYNC_TO_SYNC_IN_LOOP = (
    "You cannot use AsyncToSync in the same thread as an async event loop - just await the async "
    "function directly."
)


def mixed_handlers(class_name):
    """django.views.generic.base.View.view_is_async: ImproperlyConfigured."""
    return f"{class_name} HTTP handlers must either be all sync or all async."


def never_awaited(name):
    """Python's RuntimeWarning when a coroutine is destroyed unawaited."""
    return f"coroutine '{name}' was never awaited"


def not_awaitable(class_name):
    """Python's TypeError for ``await`` on an object that is not awaitable (in CPython,
    ``_PyCoro_GetAwaitableIter``'s caller in the eval loop)."""
    return by_python(_NOT_AWAITABLE).format(name=class_name)


def no_async_with(class_name):
    """Python's TypeError for ``async with`` on an object without ``__aenter__`` (the eval loop's
    BEFORE_ASYNC_WITH), e.g. transaction.atomic()'s Atomic."""
    return by_python(_NO_ASYNC_WITH).format(name=class_name)


# Python's own wordings change between releases. Each table gives a wording from the release that
# first says it, and covers only the Pythons the spec runs on (tox.ini): a newer Python says
# nothing until someone runs the spec on it and records what it says, because a guessed wording
# would make the spec assert what nobody saw.
PYTHONS = ("3.11", "3.12", "3.13")
_NOT_AWAITABLE = {"3.11": "object {name} can't be used in 'await' expression"}
_NO_ASYNC_WITH = {"3.11": "'{name}' object does not support the asynchronous context manager protocol"}


def by_python(wordings, current=None):
    """The wording ``wordings`` (``{"3.11": text, ...}``) gives for this Python (``"3.12"``)."""
    current = current or "{}.{}".format(*sys.version_info[:2])
    if current not in PYTHONS:
        raise LookupError(
            f"no wording recorded for Python {current} (recorded: {', '.join(PYTHONS)}); run "
            f"the spec on it and add what it says to harness/messages.py"
        )
    applicable = [v for v in wordings if _release(v) <= _release(current)]
    return wordings[max(applicable, key=_release)]


def _release(text):
    return tuple(int(part) for part in text.split("."))


# CPython's contextvar_reset (Python/context.c): a ContextVar.reset() with another Context's token.
def token_of_another_context(token_repr):
    return f"{token_repr} was created in a different Context"


# Python's ImportError for ``from module import name`` when the module has no such name (the
# eval loop's import_from): the module's file path ends it.
def cannot_import(name, module):
    return f"cannot import name '{name}' from '{module.__name__}' ({module.__file__})"


# Python's TypeError for hashing a list: asyncio.gather() given one (Django 5.0.0-5.0.2's
# Signal.asend with no sync receiver, ticket 35174).
UNHASHABLE_LIST = "unhashable type: 'list'"


# Python's AttributeError for an attribute an object lacks (Django 4.2's Signal for asend, ...).
def no_attribute(type_name, name):
    return f"'{type_name}' object has no attribute '{name}'"
