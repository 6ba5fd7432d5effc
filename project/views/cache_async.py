"""Django's built-in cache backends awaited in an async view (specs/test_cache_async_methods.py).

``recording(backend)`` makes a subclass of a backend whose public sync methods *that the backend
defines itself* record their name and ``project.evidence.where()`` before running; the methods it
inherits from ``BaseCache`` stay BaseCache's own, so every ``a...`` method takes the path it takes
on the real backend (Django 6.1's ``BaseCache.aincr`` & co. ask ``self.incr.__func__ is not
BaseCache.incr``).

``/cache-async/awaited/?backend=locmem|file|database`` awaits ``aset`` then ``aget`` on a fresh
cache of that kind and answers where the view ran, where a thread-sensitive ``sync_to_async``
call of the same request ran, and every recorded backend call. The database backend's table is
``TABLE``, which the test creates (``createcachetable``'s ``Command.create_table``).
"""

import shutil
import tempfile
import uuid

from asgiref.sync import sync_to_async
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.http import JsonResponse
from django.urls import path

from project.evidence import where

PUBLIC = (
    "add", "get", "set", "touch", "delete", "get_many", "get_or_set", "has_key", "incr",
    "set_many", "delete_many", "clear", "incr_version", "close",
)  # fmt: skip
TABLE = "spec_cache_async"


def recording(backend):
    def wrap(name, method):
        def recorded(self, *args, **kwargs):
            self.calls.append({"call": name, **where()})
            return method(self, *args, **kwargs)

        recorded.__name__ = recorded.__qualname__ = name
        return recorded

    own = {name: wrap(name, vars(backend)[name]) for name in PUBLIC if name in vars(backend)}
    return type(f"Recording{backend.__name__}", (backend,), own)


RecordingLocMemCache = recording(LocMemCache)
RecordingFileBasedCache = recording(FileBasedCache)
RecordingDatabaseCache = recording(DatabaseCache)


def new_cache(kind):
    """A fresh recording cache of ``kind`` and what to call once done with it."""
    if kind == "locmem":
        cache, done = RecordingLocMemCache(f"spec-{uuid.uuid4().hex}", {}), lambda: None
    elif kind == "file":
        folder = tempfile.mkdtemp(prefix="spec-cache-")
        cache, done = RecordingFileBasedCache(folder, {}), lambda: shutil.rmtree(folder)
    elif kind == "database":
        cache, done = RecordingDatabaseCache(TABLE, {}), lambda: None
    else:
        raise ValueError(kind)
    cache.calls = []
    return cache, done


async def awaited(request):
    cache, done = new_cache(request.GET["backend"])
    try:
        await cache.aset("key", 1)
        value = await cache.aget("key")
        await cache.adelete("key")
    finally:
        await sync_to_async(done)()
    return JsonResponse({
        "value": value,
        "view": where(),
        "sensitive": await sync_to_async(where)(),
        "calls": cache.calls,
    })  # fmt: skip


urlpatterns = [path("awaited/", awaited)]
