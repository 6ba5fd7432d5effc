"""The session's async API: since when does request.session have aget()?

Claimed (a fix in ajslater/codex, May 2026, after ``request.session.get("django_timezone")`` in an
async middleware raised SynchronousOnlyOperation under Granian): "`SessionBase` exposes `aget`
(Django 4.1+) which routes through `aload` / `_aget_session_from_db`".

The views (project/views/session_async.py), under Django's SessionMiddleware (the default ``db``
engine)::

    async def sync_get(request):
        return JsonResponse({"value": request.session.get(KEY)})

    async def aget(request):
        return JsonResponse({"value": await request.session.aget(KEY)})

What is true:

- the async session API (``aget``, ``aset``, ``asave``, ``aload``, ``akeys``, ``acycle_key``,
  ``aflush``, ... 24 methods on SessionBase) arrived in Django 5.1, not 4.1: on 4.2 and 5.0
  ``await request.session.aget(key)`` fails with AttributeError: 'SessionStore' object has no
  attribute 'aget';
- from 5.1, ``aget`` loads the session through ``aload`` and the db engine's
  ``_aget_session_from_db``, as claimed: the claim's route is right, its version is not;
- the bug the fix is for holds on every version: ``request.session.get(key)`` in async code, for a
  request with a session cookie (one that could be a key: 8 characters or more), raises
  SynchronousOnlyOperation (the lazy load is ``SessionStore.load``, a synchronous query);
- from 5.1, ``await request.session.aset(key, value)`` in an async view marks the session modified
  and SessionMiddleware saves it like any other change.

Why: django.contrib.sessions.backends.base.SessionBase (5.1: "SessionBase and all built-in session
engines now provide async API", ticket #34901): ``aget`` is ``(await self._aget_session()).get()``,
``_aget_session`` calls ``await self.aload()`` when the session has a key;
django.contrib.sessions.backends.db.SessionStore.aload awaits ``_aget_session_from_db``, i.e.
``Session.objects.aget(...)``. The sync ``get`` goes through ``SessionBase._get_session`` ->
``SessionStore.load`` -> ``_get_session_from_db`` -> ``Session.objects.get``, guarded by
django.utils.asyncio.async_unsafe.
"""

import traceback
from http.cookies import SimpleCookie

import pytest
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import SynchronousOnlyOperation

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    Statement,
    When,
    answered,
    each_interface,
    handler,
    no_attribute,
    serve_once,
    server_error_record,
    with_cookie,
)
from project.views.session_async import KEY

CLAIM = Claim(
    id="session-async-api",
    source="ajslater/codex pull request #718, \"middleware: use session.aget in async path to avoid "
    "SynchronousOnlyOperation\"",
    url="https://github.com/ajslater/codex/pull/718",
    claim="`SessionBase` exposes `aget` (Django 4.1+) which routes through `aload` / `_aget_session_from_db`",
    statements=[
        Statement(
            "aget-since-4-1",
            "request.session has aget() on every Django version from 4.1 on: await "
            "request.session.aget(key) works in an async view on 4.2 and 5.0 too.",
            "holds",
            when=[When("refuted", django="<5.1", why="SessionBase's async API arrived in 5.1")],
            reality=(
                "aget() arrived in Django 5.1, with the rest of SessionBase's async API (24 "
                "methods: aset, asave, aload, akeys, acycle_key, aflush, ...); on 4.2 and 5.0 "
                "SessionBase has none of them and the view fails with AttributeError: "
                "'SessionStore' object has no attribute 'aget' (a 500)."
            ),
        ),
        Statement(
            "aget-through-aload",
            "aget() loads the session through aload() and the db engine's "
            "_aget_session_from_db().",
            "holds",
            when=[When("refuted", django="<5.1", why="none of the three exists before 5.1")],
            reality="Before Django 5.1 SessionStore has neither aload() nor _aget_session_from_db().",
        ),
        Statement(
            "sync-get-raises",
            "In an async view, request.session.get(key) for a request with a session cookie (8 "
            "characters or more: SessionBase._validate_session_key) raises "
            "SynchronousOnlyOperation('You cannot call this from an async context - use a thread "
            "or sync_to_async.'): the lazy load is SessionStore.load(), a synchronous query. "
            "Without a session cookie nothing is loaded and it answers.",
            "holds",
            claimed=False,
        ),
        Statement(
            "aset-saved",
            "await request.session.aset(key, value) in an async view marks the session modified, "
            "and SessionMiddleware saves it: the new session's key comes back in the Set-Cookie.",
            "holds",
            when=[When("refuted", django="<5.1", why="no aset() before 5.1")],
            reality="Before Django 5.1: AttributeError: 'SessionStore' object has no attribute 'aset' (a 500).",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.contrib.sessions.backends.base.SessionBase.aget -> _aget_session -> "
        "django.contrib.sessions.backends.db.SessionStore.aload -> _aget_session_from_db "
        "(Session.objects.aget), Django >= 5.1 (ticket #34901); the sync path SessionBase.get -> "
        "_get_session -> SessionStore.load -> _get_session_from_db, guarded by "
        "django.utils.asyncio.async_unsafe; django.contrib.sessions.middleware.SessionMiddleware."
        "process_response saves a modified session."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/http/sessions/#django.contrib.sessions.backends.base.SessionBase.aget",
    question="Can an async view await request.session.aget(), loaded through aload()?",
    topic="auth",
    code=("project.views.session_async.aget", "project.views.session_async.aset"),
    instead=(),
)
# Only the tests that store a user or a session touch the database (each then flushes it).
ON_THE_DATABASE = pytest.mark.django_db(transaction=True)
aget_since_4_1 = CLAIM.statement("aget-since-4-1")
aget_through_aload = CLAIM.statement("aget-through-aload")
sync_get_raises = CLAIM.statement("sync-get-raises")
aset_saved = CLAIM.statement("aset-saved")


# SessionBase's async API as Django 5.1 added it (unchanged up to 6.1).
ASYNC_API = (
    "aget", "aset", "apop", "asetdefault", "aset_test_cookie", "atest_cookie_worked",
    "adelete_test_cookie", "aupdate", "ahas_key", "akeys", "avalues", "aitems",
    "aget_expiry_age", "aget_expiry_date", "aset_expiry", "aget_expire_at_browser_close",
    "aflush", "acycle_key", "aexists", "acreate", "asave", "adelete", "aload", "aclear_expired",
)  # fmt: skip


def no_session_method(name):
    """Python's AttributeError for a SessionStore method that does not exist."""
    return no_attribute("SessionStore", name)


def serve(interface, path, cookie=None, query=""):
    return serve_once(interface, with_cookie(handler(interface, "auth"), interface, cookie), path, query)


@pytest.fixture
def session_key():
    """A saved session holding KEY, as a previous request would have left it."""
    session = SessionStore()
    session[KEY] = "Europe/Paris"
    session.save()
    return session.session_key


def assert_500(caplog, path, exc_type, message):
    record = server_error_record(caplog, path)
    assert (record.exc_info[0], str(record.exc_info[1])) == (exc_type, message)
    return record


@aget_since_4_1
@each_interface
@ON_THE_DATABASE
def test_aget_in_an_async_view(interface, session_key, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve(interface, "/session-async/aget/", f"sessionid={session_key}")
    if CLAIM.expected("aget-since-4-1", interface=interface) == "holds":
        assert answered(hit, caplog) == {"value": "Europe/Paris"}
    else:
        assert hit.status == 500
        assert_500(caplog, "/session-async/aget/", AttributeError, no_session_method("aget"))


@aget_since_4_1
def test_the_whole_async_api_arrives_together():
    present = [name for name in ASYNC_API if hasattr(SessionBase, name)]
    if CLAIM.expected("aget-since-4-1") == "holds":
        assert present == list(ASYNC_API)
    else:
        assert present == []
    # Nothing else async-prefixed beside them (the list above is the whole API).
    coroutines = sorted(
        name for name in dir(SessionBase)
        if name.startswith("a") and not name.startswith("_") and callable(getattr(SessionBase, name))
        and name not in ("accessed",)
    )  # fmt: skip
    assert coroutines == sorted(present)


@aget_through_aload
@pytest.mark.interface("asgi")
@ON_THE_DATABASE
def test_aget_loads_through_aload_and_aget_session_from_db(session_key, monkeypatch, caplog):
    if CLAIM.expected("aget-through-aload") == "refuted":
        assert not hasattr(SessionStore, "aload")
        assert not hasattr(SessionStore, "_aget_session_from_db")
        return
    calls = []
    aload, from_db = SessionStore.aload, SessionStore._aget_session_from_db

    async def spy_aload(self):
        calls.append("aload")
        return await aload(self)

    async def spy_from_db(self):
        calls.append("_aget_session_from_db")
        return await from_db(self)

    monkeypatch.setattr(SessionStore, "aload", spy_aload)
    monkeypatch.setattr(SessionStore, "_aget_session_from_db", spy_from_db)
    hit = serve("asgi", "/session-async/aget/", f"sessionid={session_key}")
    assert answered(hit, caplog) == {"value": "Europe/Paris"}
    assert calls == ["aload", "_aget_session_from_db"]


@sync_get_raises
@each_interface
@ON_THE_DATABASE
def test_sync_get_in_an_async_view(interface, session_key, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve(interface, "/session-async/sync-get/", f"sessionid={session_key}")
    assert hit.status == 500
    record = assert_500(caplog, "/session-async/sync-get/", SynchronousOnlyOperation, ASYNC_UNSAFE)
    names = [frame.name for frame in traceback.extract_tb(record.exc_info[2])]
    assert names.index("sync_get") < names.index("load") < names.index("_get_session_from_db")
    # Without a session cookie: no key, nothing to load, no query.
    caplog.clear()
    hit = serve(interface, "/session-async/sync-get/")
    assert answered(hit, caplog) == {"value": None}
    assert [r for r in caplog.records if r.name == "django.request"] == []


@aset_saved
@each_interface
@ON_THE_DATABASE
def test_aset_is_saved_by_the_middleware(interface, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve(interface, "/session-async/aset/", query="value=Asia/Tokyo")
    if CLAIM.expected("aset-saved", interface=interface) == "refuted":
        assert hit.status == 500
        assert_500(caplog, "/session-async/aset/", AttributeError, no_session_method("aset"))
        return
    assert answered(hit, caplog) == {"modified": True}
    # (WSGIHandler writes the header as SimpleCookie.output(header=""), with a leading space.)
    cookie = SimpleCookie(hit.headers["set-cookie"])
    assert list(cookie) == ["sessionid"]
    key = cookie["sessionid"].value
    assert SessionStore(session_key=key).load() == {KEY: "Asia/Tokyo"}
