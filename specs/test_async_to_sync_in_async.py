"""asgiref's async_to_sync called in async code (an async view).

Claimed (django/channels issue #1194, answering the maintainer's "if you are blocking-calling
async-to-sync in the async thread, then the outer event loop will never get to run"): "You are
saying that event loop -> async -> sync -> group_send is not possible... but that's not true."
(``group_send`` there is ``async_to_sync(channel_layer.group_send)``.) The same belief, as people
write it in Django (project/views/async_to_sync_in_async.py)::

    async def direct(request):
        result = async_to_sync(fetch_greeting)(request.path)        # 500

    def fetch_greeting_sync(label):
        return async_to_sync(fetch_greeting)(label)

    async def through_sync(request):
        result = fetch_greeting_sync(request.path)                  # 500 too

What is true: wherever an event loop runs in the calling thread, ``async_to_sync(f)(...)`` raises
``RuntimeError("You cannot use AsyncToSync in the same thread as an async event loop - just await
the async function directly.")``, before it calls ``f``: the coroutine is never even created (so
Python has nothing to report as never awaited), and ``f``'s body never runs. A plain ``def`` in
between changes nothing: it is the thread that counts, not the frame. Every async view has a
running loop in its thread: under ASGI the server's, under WSGI the one-off loop that Django's
``async_to_sync`` made for the request. So the view fails with HTTP 500 (logged by django.request
as "Internal Server Error: <path>") under ASGI and WSGI, in process and on every server, on every
supported Django version (asgiref is pinned, and its message is the same in all of them).

What works instead: ``await f(...)`` in the async view; or, where a plain ``def`` must call it,
``await sync_to_async(helper)()``: the helper then runs on a thread with no running loop, and
``async_to_sync`` inside it sends ``f`` back to the view's own event loop (SyncToAsync records
that loop in a thread-local for it), as asgiref's maintainer answered in django/asgiref#94.

Why: ``asgiref.sync.AsyncToSync.__call__`` checks ``asyncio.get_running_loop()`` first and raises
if it returns: waiting synchronously on the loop's own thread for a coroutine scheduled on that
loop would block the loop that has to run it, a deadlock.
"""

import html

import pytest

from harness.spec import (
    each_interface,
    get_with_output,
    ASYNC_TO_SYNC_IN_LOOP,
    SERVERS,
    Claim,
    ServerConfig,
    Statement,
    get,
    handler,
    serve_once,
    server_error_record,
    serving,
)
from project.views import async_to_sync_in_async as views


CLAIM = Claim(
    id="async-to-sync-in-async",
    source="django/channels issue #1194 (Sovetnikov, 2018-11-29)",
    url="https://github.com/django/channels/issues/1194",
    claim=(
        "You are saying that event loop -> async -> sync -> group_send is not possible... but "
        "that's not true."
    ),
    statements=[
        Statement(
            "usable-in-async",
            "async_to_sync(f)() can be called in async code running on an event loop: an async "
            "view may call it, directly or through a plain def it calls (event loop -> async -> "
            "sync -> async_to_sync).",
            "refuted",
            reality=(
                "Both raise RuntimeError('You cannot use AsyncToSync in the same thread as an "
                "async event loop - just await the async function directly.') from "
                "asgiref.sync.AsyncToSync.__call__, before f is called: the coroutine is never "
                "created and its body never runs. Every async view has a running loop in its "
                "thread (under WSGI, the request's one-off loop), so the view answers HTTP 500, "
                "logged by django.request, under ASGI and WSGI, in process and on every server."
            ),
        ),
        Statement(
            "await-directly",
            "Awaiting the coroutine function directly (await f()) in the async view works: f "
            "runs on the view's own event loop and its result comes back.",
            "holds",
            claimed=False,
        ),
        Statement(
            "sync-to-async-helper",
            "A plain def awaited through sync_to_async may call async_to_sync(f)(): the def runs "
            "on a thread with no running loop, and f runs on the view's event loop.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "asgiref.sync.AsyncToSync.__call__: `asyncio.get_running_loop()` succeeding raises "
        "RuntimeError before the awaitable is called; SyncToAsync.thread_handler records the "
        "calling loop (SyncToAsync.threadlocal.main_event_loop) for an AsyncToSync inside it. "
        "Django runs async views on the server's loop under ASGI (BaseHandler."
        "_get_response_async) and through async_to_sync on a one-off loop under WSGI "
        "(BaseHandler._get_response)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#asgiref.sync.async_to_sync",
    question="Can an async view call async_to_sync, directly or through a sync helper?",
    topic="helpers",
    code=(
        "project.views.async_to_sync_in_async.direct",
        "project.views.async_to_sync_in_async.through_sync",
        "project.views.async_to_sync_in_async.fetch_greeting_sync",
    ),
    instead=(
        "project.views.async_to_sync_in_async.awaited",
        "project.views.async_to_sync_in_async.through_sync_to_async",
    ),
)
usable_in_async = CLAIM.statement("usable-in-async")
await_directly = CLAIM.statement("await-directly")
sync_to_async_helper = CLAIM.statement("sync-to-async-helper")

BASE = "/async-to-sync-in-async/"
CLAIMED = list(views.CLAIMED)  # direct, through-sync
RUNTIME_ERROR = f"RuntimeError: {ASYNC_TO_SYNC_IN_LOOP}"



@pytest.fixture
def ran():
    """Paths whose ``fetch_greeting`` body ran in this process."""
    views.RAN.clear()
    yield views.RAN
    views.RAN.clear()


def last_frame(exc_info):
    tb = exc_info[2]
    while tb.tb_next:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_name, tb.tb_frame.f_code.co_filename


# --- in process ----------------------------------------------------------------------------------


@usable_in_async
@each_interface
@pytest.mark.parametrize("form", CLAIMED)
def test_async_to_sync_in_an_async_view_raises(interface, form, ran, caplog):
    caplog.set_level("ERROR", logger="django.request")
    path = BASE + form + "/"
    hit = serve_once(interface, handler(interface), path)
    assert hit.status == 500
    record = server_error_record(caplog, path)
    assert record.exc_info[0] is RuntimeError
    assert str(record.exc_info[1]) == ASYNC_TO_SYNC_IN_LOOP
    name, filename = last_frame(record.exc_info)
    assert (name, filename.endswith("asgiref/sync.py")) == ("__call__", True)  # AsyncToSync's
    assert ran == []  # fetch_greeting was never called


@await_directly
@each_interface
def test_awaiting_the_coroutine_function_works(interface, ran, caplog):
    caplog.set_level("ERROR", logger="django.request")
    path = BASE + "await/"
    hit = serve_once(interface, handler(interface), path)
    assert hit.status == 200
    body = hit.json()
    assert body["greeting"] == "hello"
    assert body["view"]["loop"] is not None
    assert (body["ran"]["loop"], body["ran"]["thread"]) == (
        body["view"]["loop"], body["view"]["thread"]
    )
    assert ran == [path]
    assert [r for r in caplog.records if r.name == "django.request"] == []


@sync_to_async_helper
@each_interface
def test_a_sync_helper_through_sync_to_async_may_use_async_to_sync(interface, ran, caplog):
    caplog.set_level("ERROR", logger="django.request")
    path = BASE + "sync-to-async/"
    hit = serve_once(interface, handler(interface), path)
    assert hit.status == 200
    body = hit.json()
    assert body["greeting"] == "hello"
    assert body["helper"]["loop"] is None  # the helper ran where no loop runs
    assert body["helper"]["thread"] != body["view"]["thread"]
    assert body["ran"]["loop"] == body["view"]["loop"]  # f went back to the view's loop
    assert ran == [path]
    assert [r for r in caplog.records if r.name == "django.request"] == []


# --- on every server -----------------------------------------------------------------------------


# With DEBUG on, Django's logging prints the error to the server's output and the technical 500
# page carries it, so each server's 500 is traced to the exact exception.
@usable_in_async
@serving(*SERVERS, config=ServerConfig(debug=True))
@pytest.mark.parametrize("form", CLAIMED)
def test_a_server_answers_500_with_the_runtime_error(server, form, evidence):
    hit, output = get_with_output(server, BASE + form + "/")
    assert hit.status == 500
    assert ASYNC_TO_SYNC_IN_LOOP in html.unescape(hit.body.decode())
    assert RUNTIME_ERROR in output
    evidence(f"{server.name} {form}", status=hit.status, error="RuntimeError")


@usable_in_async
@serving(*SERVERS)
@pytest.mark.parametrize("form", CLAIMED)
def test_a_server_reports_where_it_is_raised(server, form):
    hit = get(server.url, BASE + "report/" + form + "/")
    assert hit.status == 200
    body = hit.json()
    assert (body["type"], body["message"]) == ("builtins.RuntimeError", ASYNC_TO_SYNC_IN_LOOP)
    assert (body["raised_in"], body["raised_file"].endswith("asgiref/sync.py")) == (
        "__call__", True
    )
    assert body["ran"] is False
    assert body["view"]["loop"] is not None  # the view's thread runs an event loop


@await_directly
@serving(*SERVERS)
def test_a_server_serves_the_awaited_form(server):
    hit = get(server.url, BASE + "await/")
    assert hit.status == 200
    body = hit.json()
    assert body["greeting"] == "hello"
    assert body["ran"]["loop"] == body["view"]["loop"] is not None


@sync_to_async_helper
@serving(*SERVERS)
def test_a_server_serves_the_sync_to_async_form(server):
    hit = get(server.url, BASE + "sync-to-async/")
    assert hit.status == 200
    body = hit.json()
    assert body["greeting"] == "hello"
    assert body["helper"]["loop"] is None
    assert body["ran"]["loop"] == body["view"]["loop"] is not None
