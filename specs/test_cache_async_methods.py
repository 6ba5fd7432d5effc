"""The cache API's async methods (``await cache.aget(...)``, ``aset``, ``aincr``, ...): native, or
the sync methods in a thread?

Claimed (the description of action0-django-acache on PyPI): "Django's own RedisCache runs every
one of these calls in a thread via sync_to_async (and on Django 5.2 its aincr is not even atomic:
a get, then a set)." And before it (python-diskcache pull request 241,
https://github.com/grantjenks/python-diskcache/pull/241): "Django 4.0 brought async cache API, but
the default for these calls have `thread_sensitive=True`".

What is true (Django 4.2 to 6.1):

- None of Django's built-in backends (RedisCache, LocMemCache, DatabaseCache, FileBasedCache,
  DummyCache, PyMemcacheCache) defines an async method: every ``a...`` method is
  ``BaseCache``'s. Awaited in an async view under ASGI, the backend's sync ``set``/``get``/
  ``delete`` run on the request's thread-sensitive worker thread (the thread a
  ``sync_to_async`` call of the same request runs on), a thread with no event loop; never on the
  event loop's thread. RedisCache's calls to its client run on a worker thread too (shown
  outside a request, where ``sync_to_async`` uses asgiref's shared thread).
- ``aincr`` changed in Django 6.1. Up to 6.0 it is ``BaseCache.aincr`` for every backend: an
  ``aget``, then an ``aset``, two ``sync_to_async`` calls; on RedisCache two calls to its client
  (``get``, then ``set``), never the client's ``incr``. Two concurrent ``aincr`` of one key can
  then both read the old value: on LocMemCache, two ``aincr`` gathered on one event loop both
  read 0 and both write 1 (the worker thread runs get, get, set, set, each in a hold of the
  cache's lock of its own). From 6.1, ``aincr`` runs the backend's own ``incr`` in one
  ``sync_to_async`` call when the backend overrides it (RedisCache: one ``incr`` call to its
  client; LocMemCache: ``incr`` reads and writes in one hold of the lock, so the two give 1 and
  2).
- The same 6.1 change makes ``aget_many`` use a backend's own ``get_many``: DatabaseCache's
  ``aget_many`` of three keys is one ``get_many`` call from 6.1, and before it three ``get``
  calls (each ``get`` is a ``get_many`` of that one key).

RedisCache is not run against Redis here (neither redis-py nor a server is part of the spec):
its tests put a stand-in for its client (``RedisCache._cache``, a ``RedisCacheClient``), which
records the calls RedisCache makes on it.

Why: ``django.core.cache.backends.base.BaseCache.aget``/``aset``/``adelete``/... are
``sync_to_async(self.get, thread_sensitive=True)(...)`` & co.; ``asgiref.sync.SyncToAsync``
runs them on the executor of the request's ``ThreadSensitiveContext``
(``ASGIHandler.__call__``). ``BaseCache.aincr`` up to 6.0 is ``await self.aget(...)`` then
``await self.aset(...)``; from 6.1 it first checks ``self.incr.__func__ is not BaseCache.incr``
and then awaits ``sync_to_async(self.incr)``; ``aget_many`` likewise with ``get_many``.
"""

import asyncio
import inspect
import uuid

import pytest
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.memcached import PyMemcacheCache
from django.core.cache.backends.redis import RedisCache
from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import DEFAULT_DB_ALIAS

from harness.spec import (
    Claim,
    Statement,
    When,
    asgi_get,
    asgiref_shared_thread,
    by_version,
    handler,
)
from project.evidence import where
from project.views.cache_async import (
    TABLE,
    RecordingDatabaseCache,
    RecordingLocMemCache,
)

CLAIM = Claim(
    id="cache-async-methods",
    source="action0-django-acache, project description on PyPI",
    url="https://pypi.org/project/action0-django-acache/",
    claim=(
        "Django's own RedisCache runs every one of these calls in a thread via sync_to_async "
        "(and on Django 5.2 its aincr is not even atomic: a get, then a set)."
    ),
    statements=[
        Statement(
            "in-a-thread",
            "Django's built-in cache backends have no async methods of their own: an awaited "
            "cache method runs the backend's sync method in a thread through sync_to_async, "
            "not on the event loop.",
            "holds",
        ),
        Statement(
            "aincr-get-then-set",
            "await cache.aincr() on RedisCache is a get, then a set: two calls to its client, "
            "never the client's incr.",
            "holds",
            when=[When("refuted", django=">=6.1",
                       why="BaseCache.aincr calls the backend's own incr when it has one")],
            reality=(
                "From Django 6.1, aincr runs RedisCache.incr in one sync_to_async call: one incr "
                "call to its client, no get and no set."
            ),
        ),
        Statement(
            "aincr-lost-update",
            "Two concurrent aincr of one key on LocMemCache can both read the old value: "
            "gathered from 0, both return 1 and the key ends at 1.",
            "holds",
            when=[When("refuted", django=">=6.1",
                       why="BaseCache.aincr calls LocMemCache.incr")],
            reality=(
                "From Django 6.1, each aincr is one LocMemCache.incr call, which reads and "
                "writes the value in one hold of the cache's lock: gathered from 0 they return "
                "1 and 2 and the key ends at 2."
            ),
            claimed=False,
        ),
        Statement(
            "aget-many-one-call",
            "await cache.aget_many() of three keys on DatabaseCache is one call of its own "
            "get_many.",
            "refuted",
            when=[When("holds", django=">=6.1",
                       why="BaseCache.aget_many calls the backend's own get_many when it has one")],
            reality=(
                "Up to Django 6.0, BaseCache.aget_many awaits aget once per key: three "
                "DatabaseCache.get calls, each a get_many of that one key."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.cache.backends.base.BaseCache.aget/aset/adelete/... = "
        "sync_to_async(self.get/set/delete, thread_sensitive=True); asgiref.sync.SyncToAsync."
        "__call__ (the request's ThreadSensitiveContext executor, opened by "
        "django.core.handlers.asgi.ASGIHandler.__call__); up to 6.0 BaseCache.aincr awaits aget "
        "then aset and BaseCache.aget_many one aget per key; from 6.1 each awaits "
        "sync_to_async(self.incr/get_many) when the backend overrides BaseCache's method "
        "(self.incr.__func__ is not BaseCache.incr)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/cache/#asynchronous-support",
    question="Do async cache methods run in a thread, with a non-atomic aincr?",
    topic="auth",
    code=(
        "project.views.cache_async.awaited",
        "specs.test_cache_async_methods.test_redis_cache_aincr_calls_on_its_client",
    ),
    instead=(),
)
in_a_thread = CLAIM.statement("in-a-thread")
aincr_get_then_set = CLAIM.statement("aincr-get-then-set")
aincr_lost_update = CLAIM.statement("aincr-lost-update")
aget_many_one_call = CLAIM.statement("aget-many-one-call")

BACKENDS = (RedisCache, LocMemCache, DatabaseCache, FileBasedCache, DummyCache, PyMemcacheCache)
ASYNC_METHODS = sorted(
    name for name, value in vars(BaseCache).items() if inspect.iscoroutinefunction(value)
)


class ClientStandIn:
    """Stands in for RedisCache's client (a RedisCacheClient, which needs redis-py and a
    server): records each call RedisCache makes on it, with where() it ran, and keeps values in
    a dict."""

    def __init__(self):
        self.calls = []
        self.data = {}

    def _record(self, name):
        self.calls.append({"call": name, **where()})

    def get(self, key, default):
        self._record("get")
        return self.data.get(key, default)

    def set(self, key, value, timeout):
        self._record("set")
        self.data[key] = value

    def incr(self, key, delta):
        self._record("incr")
        self.data[key] += delta
        return self.data[key]


def thread_of(place):
    return place["thread"], place["thread_name"]


def redis_cache():
    cache = RedisCache("redis://127.0.0.1:1", {})
    cache.__dict__["_cache"] = ClientStandIn()  # RedisCache._cache is a cached_property
    return cache, cache.__dict__["_cache"]


# --- in-a-thread -------------------------------------------------------------------------------


@in_a_thread
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda cls: cls.__name__)
def test_no_backend_defines_an_async_method(backend):
    assert ASYNC_METHODS == [
        "aadd", "aclear", "aclose", "adecr", "adecr_version", "adelete", "adelete_many",
        "aget", "aget_many", "aget_or_set", "ahas_key", "aincr", "aincr_version", "aset",
        "aset_many", "atouch",
    ]  # fmt: skip
    for name in ASYNC_METHODS:
        assert getattr(backend, name) is getattr(BaseCache, name), name


@pytest.fixture
def cache_table(transactional_db):
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(DEFAULT_DB_ALIAS, TABLE, dry_run=False)


@pytest.fixture
def table_if_database(backend, request):
    if backend == "database":
        request.getfixturevalue("cache_table")


@in_a_thread
@pytest.mark.interface("asgi")
@pytest.mark.parametrize("backend", [
    "locmem", "file", pytest.param("database", marks=pytest.mark.django_db(transaction=True)),
])  # fmt: skip
async def test_awaited_in_an_async_view_the_sync_methods_run_on_the_requests_thread(
    backend, table_if_database, evidence
):
    hit = await asgi_get(handler("asgi"), "/cache-async/awaited/", f"backend={backend}")
    assert hit.status == 200, hit.body[:2000]
    answer = hit.json()
    view, sensitive, calls = answer["view"], answer["sensitive"], answer["calls"]
    assert answer["value"] == 1
    assert view["loop"] is not None
    # Each public method the backend defines itself, in order; DatabaseCache.get is a get_many.
    assert [call["call"] for call in calls] == {
        "database": ["set", "get", "get_many", "delete"],
    }.get(backend, ["set", "get", "delete"])
    for call in calls:
        # The request's thread-sensitive thread: the one its sync_to_async calls run on, with no
        # event loop; not the view's (the event loop's) thread.
        assert thread_of(call) == thread_of(sensitive)
        assert call["loop"] is None
        assert call["thread"] != view["thread"]
    evidence(f"{backend} in process (asgi)",
             view=view["thread_name"], calls=sensitive["thread_name"])


@in_a_thread
async def test_redis_cache_calls_its_client_from_a_worker_thread():
    cache, client = redis_cache()
    await cache.aset("key", 1)
    assert await cache.aget("key") == 1
    here = where()
    assert [call["call"] for call in client.calls] == ["set", "get"]
    # Thread-sensitive, outside any request: asgiref's one shared thread, never the loop's.
    shared = asgiref_shared_thread().ident
    for call in client.calls:
        assert call["loop"] is None and call["thread"] == shared != here["thread"]
    assert here["loop"] is not None


# --- aincr -------------------------------------------------------------------------------------


@aincr_get_then_set
async def test_redis_cache_aincr_calls_on_its_client():
    cache, client = redis_cache()
    client.data[cache.make_key("hits")] = 41
    assert await cache.aincr("hits") == 42
    expected = CLAIM.expected("aincr-get-then-set")
    assert [call["call"] for call in client.calls] == (
        ["get", "set"] if expected == "holds" else ["incr"]
    )
    assert {call["loop"] for call in client.calls} == {None}
    assert {call["thread"] for call in client.calls} == {asgiref_shared_thread().ident}


class RecordingLock:
    """The cache's lock, recording each hold in the cache's calls."""

    def __init__(self, lock, calls):
        self.lock, self.calls = lock, calls

    def __enter__(self):
        self.lock.__enter__()
        self.calls.append({"call": "lock", **where()})

    def __exit__(self, *exc):
        self.calls.append({"call": "unlock", **where()})
        return self.lock.__exit__(*exc)


@aincr_lost_update
async def test_two_gathered_aincr_on_locmem():
    cache = RecordingLocMemCache(f"spec-aincr-{uuid.uuid4().hex}", {})
    cache.calls = []
    cache.set("hits", 0)
    cache._lock = RecordingLock(cache._lock, cache.calls)
    cache.calls.clear()
    results = await asyncio.gather(cache.aincr("hits"), cache.aincr("hits"))
    order = [call["call"] for call in cache.calls]
    held = ["lock", "unlock"]
    if CLAIM.expected("aincr-lost-update") == "holds":
        # BaseCache.aincr: aget, aset. The two tasks' gets both ran before either set, each
        # method in a hold of the lock of its own.
        assert order == ["get", *held, "get", *held, "set", *held, "set", *held]
        assert results == [1, 1]
    else:
        # Each aincr: one LocMemCache.incr, its read and write in one hold of the lock.
        assert order == ["incr", *held, "incr", *held]
        assert sorted(results) == [1, 2]
    assert {call["loop"] for call in cache.calls} == {None}
    assert {call["thread"] for call in cache.calls} == {asgiref_shared_thread().ident}
    assert cache.get("hits") == max(results)


# --- aget_many ---------------------------------------------------------------------------------


@aget_many_one_call
@pytest.mark.django_db(transaction=True)
async def test_database_cache_aget_many(cache_table):
    cache = RecordingDatabaseCache(TABLE, {})
    cache.calls = []
    await cache.aset_many({"a": 1, "b": 2, "c": 3})
    cache.calls.clear()
    assert await cache.aget_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
    assert [call["call"] for call in cache.calls] == by_version({
        "4.2": ["get", "get_many"] * 3,
        "6.1": ["get_many"],
    })  # fmt: skip
    assert {call["loop"] for call in cache.calls} == {None}
    await cache.aclear()
