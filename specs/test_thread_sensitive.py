"""sync_to_async(thread_sensitive=True): which thread runs the call?

Claimed (a common reading of the asgiref documentation of ``thread_sensitive``, and of
django/asgiref issue 323): "sync_to_async(thread_sensitive=True), the default, runs every sync call
on the main thread".

What is true: "the same thread as the other thread-sensitive calls *of that scope*", and which
thread that is depends on what sits above the call:

- Under an ASGI server (Django's ASGIHandler) the scope is the request: every thread-sensitive
  call a request makes, nested ones included (sync_to_async -> async_to_sync -> sync_to_async),
  runs on one thread made for that request. It is neither the main thread nor the event loop's;
  another request's calls run on another thread, at the same time. ``thread_sensitive=False``
  runs the call on the loop's default executor instead, yet another thread.
- Under a WSGI server the async view runs inside ``async_to_sync`` on the server's request thread,
  and the thread-sensitive calls go back to that thread: the request's worker thread, not main.
- Only when the outermost code is sync and runs on the main thread (``async_to_sync`` called there,
  as in a script or a management command) do the calls run on the main thread.
- With no request scope and async code outermost (``asyncio.run``), every call of the process runs
  on asgiref's one shared thread, ``SyncToAsync.single_thread_executor``: not the main thread.

The error of issue 323, ``RuntimeError: Single thread executor already being used, would
deadlock``, comes from that last case: a thread-sensitive call made while another one of the same
context is still running on the shared thread, e.g. from ``asyncio.run()`` (or
``asyncio.run_coroutine_threadsafe``) inside a function that ``sync_to_async`` runs. asgiref
refuses instead of queueing behind itself. Inside a Django request the same pattern does not
raise: the request's own single-thread executor is used, and the call waits forever behind the
thread that waits for it (a real deadlock; the spec bounds it with ``asyncio.wait_for``). Calling
``async_to_sync`` instead of ``asyncio.run``, or ``thread_sensitive=False``, avoids both.

Why: ``asgiref.sync.SyncToAsync.__call__`` picks the executor in this order: the innermost
``AsyncToSync.executors.current`` (a ``CurrentThreadExecutor`` on the thread that called
``async_to_sync``); the ``ThreadSensitiveContext`` of the task (``ASGIHandler.__call__`` opens one
per request; ``context_to_thread_executor`` holds its executor); the executor of a loop that
``async_to_sync`` started (``AsyncToSync.loop_thread_executors``); else, if ``deadlock_context`` is
set, the RuntimeError; else ``single_thread_executor``, setting ``deadlock_context`` for the
duration of the call. ``asyncio.run`` and ``run_coroutine_threadsafe`` copy the calling thread's
context, ``deadlock_context`` included, but not ``AsyncToSync.executors``.
"""

import asyncio
import functools
import threading

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, async_to_sync, sync_to_async

from harness.spec import (
    ASGI_SERVERS,
    Claim,
    SERVERS,
    Statement,
    WOULD_DEADLOCK,
    WSGI_SERVERS,
    fire,
    get,
    handler,
    serve_once,
    serving,
)

CLAIM = Claim(
    id="thread-sensitive-sync-to-async",
    source="asgiref documentation (sync_to_async thread_sensitive) and django/asgiref issue 323",
    url="https://github.com/django/asgiref/issues/323",
    claim=(
        "sync_to_async(thread_sensitive=True), the default, runs every sync call on the main "
        "thread"
    ),
    statements=[
        Statement(
            "main-thread",
            "sync_to_async(thread_sensitive=True), the default, runs every sync call on the main "
            "thread.",
            "refuted",
            reality=(
                "Thread-sensitive calls share one thread per scope, not the main thread: under an "
                "ASGI server a new thread per request (nested calls included), under WSGI the "
                "request's worker thread, under bare asyncio.run asgiref's one shared thread "
                "(SyncToAsync.single_thread_executor), inside a ThreadSensitiveContext a thread "
                "of that context's own."
            ),
        ),
        Statement(
            "main-thread-under-async-to-sync",
            "Sync code on the main thread that calls async_to_sync gets its thread-sensitive "
            "calls, nested ones included, run on the main thread.",
            "holds",
            claimed=False,
        ),
        Statement(
            "would-deadlock-error",
            "Outside a request, a thread-sensitive call made on a new event loop (asyncio.run() "
            "or run_coroutine_threadsafe) inside a function that sync_to_async runs raises "
            "RuntimeError('Single thread executor already being used, would deadlock').",
            "holds",
            claimed=False,
        ),
        Statement(
            "would-deadlock-error-in-a-view",
            "The same call made from a sync Django view raises that RuntimeError too.",
            "refuted",
            reality=(
                "In a sync Django view it never raises: under ASGI the request's own "
                "single-thread executor takes the call and queues it behind the view that waits "
                "for it, a real deadlock (the call never starts); under WSGI no thread-sensitive "
                "call runs the view, nothing is busy, and asgiref's shared thread runs it."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "asgiref.sync.SyncToAsync.__call__ (executor order: AsyncToSync.executors.current, "
        "thread_sensitive_context -> context_to_thread_executor, AsyncToSync.loop_thread_executors, "
        "deadlock_context check, single_thread_executor); ThreadSensitiveContext per request in "
        "django.core.handlers.asgi.ASGIHandler.__call__."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#sync-to-async",
)
main_thread = CLAIM.statement("main-thread")
main_thread_under_async_to_sync = CLAIM.statement("main-thread-under-async-to-sync")
would_deadlock_error = CLAIM.statement("would-deadlock-error")
would_deadlock_error_in_a_view = CLAIM.statement("would-deadlock-error-in-a-view")

N = 3


def ident():
    return threading.get_ident()


def name():
    return threading.current_thread().name


def assert_one_thread_per_request(volley, n=N):
    answers = [hit.json() for hit in volley.hits]
    assert volley.statuses == [200] * n
    # Inside the thread-sensitive call, all n requests were waiting at once.
    assert [a["meeting"] for a in answers] == ["met"] * n
    per_request = []
    for a in answers:
        threads = {call["thread"] for call in a["sensitive"]}
        assert len(threads) == 1, a  # every call of the request, the nested one too
        [thread] = threads
        assert thread not in (a["main"], a["loop"]["thread"])
        assert a["insensitive"]["thread"] not in (thread, a["loop"]["thread"])
        per_request.append(thread)
    assert len(set(per_request)) == n  # each request its own
    return answers


@main_thread
@serving(*ASGI_SERVERS)
def test_asgi_one_new_thread_per_request(server, meeting, evidence):
    volley = fire(server.url, "/threads/sensitive/", N, meeting=meeting)
    answers = assert_one_thread_per_request(volley)
    for a in answers:
        assert a["loop"]["thread"] == answers[0]["loop"]["thread"]  # one loop, all requests
        assert a["sensitive"][0]["thread_name"].startswith("ThreadPoolExecutor-")
        # thread_sensitive=False: the event loop's default executor (asyncio's thread names).
        assert a["insensitive"]["thread_name"].startswith("asyncio_"), a["insensitive"]
    evidence(f"{server.name} sensitive calls", volley.summary())


@main_thread
@serving(*WSGI_SERVERS)
def test_wsgi_the_requests_worker_thread(server, meeting, evidence):
    volley = fire(server.url, "/threads/sensitive/", N, meeting=meeting)
    answers = assert_one_thread_per_request(volley)
    # async_to_sync ran each async view on a new loop in a thread of its own.
    assert len({a["loop"]["thread"] for a in answers}) == N
    evidence(f"{server.name} sensitive calls", volley.summary())


@main_thread_under_async_to_sync
def test_main_thread_only_when_async_to_sync_is_called_on_it():
    # The one case the claim describes: sync code outermost, on the main thread.
    assert threading.current_thread() is threading.main_thread()

    async def calls():
        return [await sync_to_async(ident)(), await sync_to_async(nested_ident)()]

    assert async_to_sync(calls)() == [ident(), ident()]


def nested_ident():
    async def inner():
        return await sync_to_async(ident)()

    return async_to_sync(inner)()


@main_thread
@pytest.mark.interface("wsgi")
def test_wsgi_handler_returns_calls_to_the_calling_thread():
    # serve_once is how a WSGI server's worker thread calls Django.
    box = {}

    def worker():
        box["worker"] = ident()
        box["hit"] = serve_once("wsgi", handler("wsgi"), "/threads/sensitive/")

    thread = threading.Thread(target=worker, name="wsgi-worker")
    thread.start()
    thread.join(10)
    answer = box["hit"].json()
    assert {call["thread"] for call in answer["sensitive"]} == {box["worker"]}
    assert {call["thread_name"] for call in answer["sensitive"]} == {"wsgi-worker"}
    assert box["worker"] != threading.main_thread().ident


@main_thread
async def test_bare_asyncio_shares_one_process_wide_thread():
    # No request scope, async outermost (pytest's loop runs this test on the main thread).
    threads = await asyncio.gather(*(sync_to_async(ident)() for _ in range(N)))
    shared = SyncToAsync.single_thread_executor.submit(ident).result()
    assert threads == [shared] * N
    assert shared != ident()


@main_thread
async def test_a_thread_sensitive_context_gets_its_own_thread():
    # Thread names, not idents: a finished thread's ident may be given to the next thread.
    async with ThreadSensitiveContext():
        first, second = await sync_to_async(name)(), await sync_to_async(name)()
    async with ThreadSensitiveContext():
        other = await sync_to_async(name)()
    shared = SyncToAsync.single_thread_executor.submit(name).result()
    assert first == second
    assert len({first, other, shared, name()}) == 4


# --- asgiref issue 323: "Single thread executor already being used, would deadlock" -----------


def via_asyncio_run(coro_fn):
    return asyncio.run(coro_fn())


def via_run_coroutine_threadsafe(coro_fn):
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    try:
        return asyncio.run_coroutine_threadsafe(coro_fn(), loop).result(5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


def via_async_to_sync(coro_fn):
    return async_to_sync(coro_fn)()


SPAWNS = {
    "asyncio.run": via_asyncio_run,
    "run_coroutine_threadsafe": via_run_coroutine_threadsafe,
}


@would_deadlock_error
@pytest.mark.parametrize("spawn", list(SPAWNS))
async def test_thread_sensitive_call_under_a_new_loop_raises(spawn):
    ran = []

    async def inner():
        await sync_to_async(lambda: ran.append(ident()))()

    def outer():  # on the shared thread, which it keeps busy until inner() is done
        return SPAWNS[spawn](inner)

    with pytest.raises(RuntimeError) as raised:
        await sync_to_async(outer)()
    assert type(raised.value) is RuntimeError
    assert str(raised.value) == WOULD_DEADLOCK
    assert raised.traceback[-1].frame.code.name == "__call__"
    assert raised.traceback[-1].path.as_posix().endswith("asgiref/sync.py")
    assert ran == []


@would_deadlock_error
async def test_the_two_ways_out():
    ran = []

    async def inner(thread_sensitive):
        await sync_to_async(lambda: ran.append(ident()), thread_sensitive=thread_sensitive)()

    def outer(spawn, thread_sensitive):
        spawn(functools.partial(inner, thread_sensitive))
        return ident()

    # async_to_sync instead of asyncio.run: the inner call comes back to the outer thread.
    outer_thread = await sync_to_async(outer)(via_async_to_sync, True)
    assert ran.pop() == outer_thread
    # thread_sensitive=False: the inner call goes to another executor's thread.
    outer_thread = await sync_to_async(outer)(via_asyncio_run, False)
    assert ran.pop() != outer_thread


@would_deadlock_error_in_a_view
@serving(*ASGI_SERVERS, *WSGI_SERVERS)
def test_the_same_pattern_in_a_django_view(server, meeting, evidence):
    hit = get(server.url, "/threads/nested-asyncio-run/", {"meet": meeting.port})
    assert hit.status == 200
    answer = hit.json()
    if SERVERS[server.name].interface == "asgi":
        # Not the RuntimeError: the request's own one-thread executor takes the call and queues
        # it behind the view, which waits for it: it never starts, and once nothing in the
        # server can run any more the view stops waiting.
        assert answer == {"outcome": "deadlocked", "ran_on": [], "view": answer["view"]}
    else:
        # No sync_to_async above the view: nothing is busy, the shared thread runs the call.
        assert answer["outcome"] == "ran"
        assert answer["ran_on"] != [answer["view"]]
    evidence(f"{server.name} asyncio.run in a sync view", outcome=answer["outcome"])
