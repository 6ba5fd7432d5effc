"""sync_to_async(thread_sensitive=True): which thread runs the call?

Claimed (a common reading of the asgiref documentation of ``thread_sensitive``, and of
django/asgiref issue 323): "sync_to_async(thread_sensitive=True), the default, runs every sync call
on the main thread".

What is true: "the same thread as the other thread-sensitive calls *of that scope*", and which
thread that is depends on what sits above the call:

- Under an ASGI server (Django's ASGIHandler) the scope is the request: every thread-sensitive
  call an async view makes, nested ones included (sync_to_async -> async_to_sync ->
  sync_to_async), runs on one thread of that request's own. It is neither the main thread nor the
  event loop's; another request's calls run on another thread, at the same time.
  ``thread_sensitive=False`` runs the call on the loop's default executor instead, yet another
  thread.
- Under a WSGI server Django runs an async view with ``async_to_sync`` on the server's worker
  thread for the request, and the view's thread-sensitive calls go back to that thread (the one
  running ``WSGIHandler.__call__`` for the request), while the view itself runs on an event loop
  in a thread of its own.
- A sync view under WSGI that starts its own event loop (``asyncio.run``) has no
  ``async_to_sync`` above it: a thread-sensitive call made on that loop runs on asgiref's one
  process-wide thread, ``SyncToAsync.single_thread_executor``, neither the worker thread nor
  the main thread.
- With no request and async code outermost (``asyncio.run``), every call runs on that same shared
  thread; inside ``async with ThreadSensitiveContext()``, on a thread of that context's own.
- When the outermost code is sync and runs on the main thread (``async_to_sync`` called there, as
  in a script or a management command), the calls, nested ones included, run on the main thread.

The error of issue 323, ``RuntimeError: Single thread executor already being used, would
deadlock``, comes from the shared thread: a thread-sensitive call made while another one of the
same context is still running there, e.g. from ``asyncio.run()`` (or
``asyncio.run_coroutine_threadsafe``) inside a function that ``sync_to_async`` runs. asgiref
refuses instead of queueing behind itself. In a sync Django view served by ASGI the same pattern
does not raise, and deadlocks for real: the call's work item waits in the queue of the request's
one-thread executor, whose only thread is the view's, blocked inside ``asyncio.run`` waiting for
that call; once nothing in the server can run any more, the call still has not started. (The
view then breaks the deadlock by cancelling the call, so the executor skips its work item.) Under
WSGI the shared thread is free and runs the call. Calling ``async_to_sync`` instead of
``asyncio.run``, or ``thread_sensitive=False``, avoids the RuntimeError.

Why: ``asgiref.sync.SyncToAsync.__call__`` picks the executor in this order: the innermost
``AsyncToSync.executors.current`` (a ``CurrentThreadExecutor`` on the thread that called
``async_to_sync``); the ``ThreadSensitiveContext`` of the task (``ASGIHandler.__call__`` opens one
per request; ``context_to_thread_executor`` holds its ``ThreadPoolExecutor(max_workers=1)``); the
executor of a loop that ``async_to_sync`` started (``AsyncToSync.loop_thread_executors``); else,
if ``deadlock_context`` is set, the RuntimeError; else ``single_thread_executor``, setting
``deadlock_context`` for the duration of the call. ``asyncio.run`` and ``run_coroutine_threadsafe``
copy the calling thread's context, ``deadlock_context`` and the request's
``ThreadSensitiveContext`` included. Under WSGI, ``BaseHandler._get_response`` wraps an async
view in ``async_to_sync``, called on the worker thread.
"""

import asyncio
import functools
import threading

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, async_to_sync, sync_to_async

from harness.spec import (
    ASGI_SERVERS,
    Claim,
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
            "main-thread-asgi-request",
            "Under an ASGI server, the thread-sensitive calls of an async view run on the main "
            "thread.",
            "refuted",
            reality=(
                "They run on one thread of the request's own (an executor thread, "
                "ThreadPoolExecutor-<n>_0), nested calls (sync_to_async -> async_to_sync -> "
                "sync_to_async) included: neither the main thread nor the event loop's, and "
                "each of several concurrent requests has its own. thread_sensitive=False runs "
                "the call on the event loop's default executor instead (asyncio_<n>)."
            ),
        ),
        Statement(
            "main-thread-wsgi-async-view",
            "Under a WSGI server, the thread-sensitive calls of an async view run on the main "
            "thread.",
            "refuted",
            reality=(
                "They run on the server's worker thread for the request, the thread running "
                "WSGIHandler.__call__ for it, nested calls included; the async view itself runs "
                "on an event loop in another thread, one per request."
            ),
        ),
        Statement(
            "main-thread-wsgi-new-loop",
            "Under a WSGI server, a thread-sensitive call that a sync view makes on an event "
            "loop of its own (asyncio.run) runs on the main thread.",
            "refuted",
            reality=(
                "It runs on asgiref's one process-wide thread, "
                "SyncToAsync.single_thread_executor: neither the main thread nor the request's "
                "worker thread."
            ),
        ),
        Statement(
            "main-thread-asyncio-run",
            "With no request, the thread-sensitive calls of code that asyncio.run runs on the "
            "main thread run on the main thread.",
            "refuted",
            reality=(
                "They all run on asgiref's one process-wide thread, "
                "SyncToAsync.single_thread_executor, while the main thread runs the event loop."
            ),
        ),
        Statement(
            "main-thread-own-context",
            "Inside async with ThreadSensitiveContext(), thread-sensitive calls run on the main "
            "thread.",
            "refuted",
            reality=(
                "They run on one thread of that context's own: neither the main thread, nor "
                "asgiref's process-wide thread, nor another context's thread."
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
                "In a sync Django view it never raises. Under ASGI it deadlocks: the call's work "
                "item waits in the queue of the request's one-thread executor, whose only thread "
                "is the view's, blocked in asyncio.run waiting for that call; once nothing in "
                "the server can run any more, the call still has not started. Under WSGI the "
                "call runs, on asgiref's shared thread."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "asgiref.sync.SyncToAsync.__call__ (executor order: AsyncToSync.executors.current, "
        "thread_sensitive_context -> context_to_thread_executor, AsyncToSync.loop_thread_executors, "
        "deadlock_context check, single_thread_executor); ThreadSensitiveContext per request in "
        "django.core.handlers.asgi.ASGIHandler.__call__; async_to_sync around an async view in "
        "django.core.handlers.base.BaseHandler._get_response (WSGI)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#sync-to-async",
    question="Does sync_to_async(thread_sensitive=True) run sync code on the main thread?",
    topic="helpers",
    code=("project.views.threads.sensitive_view", "project.views.threads.nested_asyncio_run"),
    instead=(),
)
main_thread_asgi_request = CLAIM.statement("main-thread-asgi-request")
main_thread_wsgi_async_view = CLAIM.statement("main-thread-wsgi-async-view")
main_thread_wsgi_new_loop = CLAIM.statement("main-thread-wsgi-new-loop")
main_thread_asyncio_run = CLAIM.statement("main-thread-asyncio-run")
main_thread_own_context = CLAIM.statement("main-thread-own-context")
main_thread_under_async_to_sync = CLAIM.statement("main-thread-under-async-to-sync")
would_deadlock_error = CLAIM.statement("would-deadlock-error")
would_deadlock_error_in_a_view = CLAIM.statement("would-deadlock-error-in-a-view")

N = 3
NESTED_ASYNCIO_RUN = "/threads/nested-asyncio-run/"


def ident():
    return threading.get_ident()


def name():
    return threading.current_thread().name


def thread_of(where):
    return where["thread"], where["thread_name"]


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


@main_thread_asgi_request
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


@main_thread_wsgi_async_view
@serving(*WSGI_SERVERS)
def test_wsgi_the_requests_worker_thread(server, meeting, evidence):
    volley = fire(server.url, "/threads/sensitive/", N, meeting=meeting)
    answers = assert_one_thread_per_request(volley)
    # Each call ran on the thread whose stack holds WSGIHandler.__call__ for that very request:
    # the server's worker thread, parked in async_to_sync (BaseHandler._get_response).
    assert [[call["in_wsgi_call"] for call in a["sensitive"]] for a in answers] == [[True] * 5] * N
    # async_to_sync ran each async view on a new loop in a thread of its own.
    assert len({a["loop"]["thread"] for a in answers}) == N
    evidence(f"{server.name} sensitive calls", volley.summary())


@main_thread_wsgi_async_view
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


@main_thread_wsgi_new_loop
@serving(*WSGI_SERVERS)
def test_wsgi_sync_view_new_loop_calls_go_to_the_shared_thread(server, meeting, evidence):
    answer = get(server.url, NESTED_ASYNCIO_RUN, {"meet": meeting.port}).json()
    view, shared = answer["view"], answer["shared"]
    assert answer["outcome"] == "ran"
    # The view asked SyncToAsync.single_thread_executor for its thread once the call was done.
    # Names too: the ident of a thread that has ended may be given to the next one, never its
    # name (ThreadPoolExecutor numbers its threads).
    assert [thread_of(call) for call in answer["ran_on"]] == [thread_of(shared)]
    assert thread_of(shared) != thread_of(view)
    assert (shared["main_thread"], view["main_thread"]) == (False, False)
    evidence(f"{server.name} asyncio.run in a sync view", call=shared["thread_name"])


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


@main_thread_asyncio_run
def test_asyncio_run_shares_one_process_wide_thread():
    # No request scope, async outermost, started by asyncio.run on the main thread.
    assert threading.current_thread() is threading.main_thread()

    def here():
        return ident(), name()

    async def calls():
        return await asyncio.gather(*(sync_to_async(here)() for _ in range(N))), here()

    threads, loop_thread = asyncio.run(calls())
    shared = SyncToAsync.single_thread_executor.submit(here).result()
    assert threads == [shared] * N
    assert loop_thread == here() != shared


@main_thread_own_context
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


def assert_deadlocked(answer):
    """The nested-asyncio-run view's answer shows the deadlock itself, not just a call that did
    not come back (project/views/threads.py)."""
    assert (answer["outcome"], answer["ran_on"]) == ("deadlocked", [])
    view, loop = answer["view"], answer["loop"]
    # The sync view's thread has no loop of its own; asyncio.run started one on it.
    assert (view["loop"], loop["thread"]) == (None, view["thread"]) and loop["loop"] is not None
    # Once nothing could run any more: the call's work item, not started, was the one item in
    # the queue of the request's ThreadSensitiveContext executor, whose only thread was the
    # view's, still inside asyncio.run waiting for it.
    assert answer["executor"] == {
        "max_workers": 1,
        "threads": [view["thread"]],
        "queue": [{"call": "record", "started": False}],
    }
    # Cancelling the call cancelled its work item: the freed thread will skip it.
    assert answer["cancelled"] is True


@would_deadlock_error_in_a_view
@serving(*ASGI_SERVERS)
def test_under_asgi_the_same_pattern_deadlocks(server, meeting, evidence):
    hit = get(server.url, NESTED_ASYNCIO_RUN, {"meet": meeting.port})
    assert hit.status == 200
    assert_deadlocked(hit.json())
    evidence(f"{server.name} asyncio.run in a sync view", outcome=hit.json()["outcome"])


@would_deadlock_error_in_a_view
@serving(*WSGI_SERVERS)
def test_under_wsgi_the_same_pattern_runs(server, meeting, evidence):
    hit = get(server.url, NESTED_ASYNCIO_RUN, {"meet": meeting.port})
    assert hit.status == 200
    answer = hit.json()
    # Nothing thread-sensitive runs the view: the shared thread is free and runs the call.
    assert answer["outcome"] == "ran"
    assert [thread_of(call) for call in answer["ran_on"]] == [thread_of(answer["shared"])]
    evidence(f"{server.name} asyncio.run in a sync view", outcome=answer["outcome"])
