"""A thread-sensitive sync_to_async call inside asyncio.create_task (or gather, or wait_for).

Claimed (debuglab.net, "Django 5.1.6 asgiref sync_to_async Deadlocks With
thread_sensitive=True"): "Django 5.1.6 still ships with the long-standing thread-pool contention
bug that hangs ASGI workers when sync_to_async(thread_sensitive=True) is invoked from inside
asyncio.create_task() or wrapped in asyncio.wait_for()." The post's mechanism: "Because the outer
thread is already pinned to the same executor and is currently parked on await, the inner sync
call cannot acquire the only worker thread it is allowed to run on." The same belief on Django's
forum ("Race condition? ASGI, asyncio, & asgiref.sync_to_async... oh my!!!", Django 5.1.4 on
uvicorn): "asgiref.sync_to_async wrapped database accesses are NOT executed if they are in an
await statement inside an async function that is run with asyncio.create_task() resulting in
application hanging when processing requests…". As people write it
(project/views/create_task.py)::

    async def call_sync():
        return await sync_to_async(f)()

    async def view(request):
        result = await asyncio.create_task(call_sync())     # or gather(...), or
        result = await asyncio.wait_for(sync_to_async(f)(), timeout)

What is true, with the asgiref the spec pins (3.13.0) on every supported Django version: none of
these hangs. The call runs, on the same thread as the view's own thread-sensitive calls, and the
view answers. A task is created with a copy of its creator's context, so it finds the request's
executor exactly as the view does; and the view, parked on ``await``, is not holding that
executor's thread: only a *sync* function on that thread would be. With a synchronous
middleware in the stack, the call runs on the middleware's thread, parked in ``async_to_sync``
for the view (its ``CurrentThreadExecutor``), which is free too. (Hangs of this shape were
reported against older asgiref: django/asgiref#249, asgiref 3.3.0, a second ``sync_to_async``
call in a task created under ``async_to_sync``; #348, "sync_to_async calls hang / deadlock when
called in a task". Not run here: the spec pins asgiref 3.13.0.)

Where it does deadlock: when a thread-sensitive sync function of the request is itself waiting
(blocking) for something that another thread-sensitive call, in a task, must do. That call
queues behind the waiting one on the request's one thread and never starts: every request-
scoped thread-sensitive call runs on one thread, one at a time.

A task the view does not await outlives the request. Under an ASGI server the server's loop goes
on running it: a ``sync_to_async`` call it makes once the request is over runs, on a new thread
of its own (the request's ``ThreadSensitiveContext`` has exited and dropped its executor, and
``SyncToAsync.__call__`` makes a new one for it). Under a WSGI server the view's event loop is a
one-off one: ``async_to_sync`` ends it with the request and cancels the task (``asyncio.run``
cancels every task left), so the call is never made.

Why: ``asyncio.create_task`` (and ``gather``, and ``wait_for`` on Python 3.11, which wrap
coroutines in tasks) copy the current ``contextvars`` context into the task;
``asgiref.sync.SyncToAsync.__call__`` reads its executor from that context:
``AsyncToSync.executors.current`` (an ``asgiref.local.Local``, stored in a context variable), else
``SyncToAsync.thread_sensitive_context`` (the ``ThreadSensitiveContext`` that
``django.core.handlers.asgi.ASGIHandler.__call__`` opens per request) and its one-thread
executor in ``SyncToAsync.context_to_thread_executor``. ``ThreadSensitiveContext.__aexit__``
pops that executor; a later call from the same context gets a new ``ThreadPoolExecutor``. Under
WSGI, ``django.core.handlers.base.BaseHandler._get_response`` calls an async view through
``async_to_sync``, which runs it with ``asyncio.run`` on a new loop.
"""

import itertools

import pytest

from harness.spec import (
    SERVERS,
    Claim,
    ServerConfig,
    Statement,
    When,
    each_interface,
    get,
    handler,
    progress,
    serve_once,
    serving,
)

CLAIM = Claim(
    id="sync-to-async-in-task",
    source=(
        "debuglab.net, \"Django 5.1.6 asgiref sync_to_async Deadlocks With thread_sensitive=True\" "
        "(2026); Django forum, \"Race condition? ASGI, asyncio, & asgiref.sync_to_async... oh "
        "my!!!\""
    ),
    url="https://debuglab.net/?p=203258",
    claim=(
        "Django 5.1.6 still ships with the long-standing thread-pool contention bug that hangs "
        "ASGI workers when sync_to_async(thread_sensitive=True) is invoked from inside "
        "asyncio.create_task() or wrapped in asyncio.wait_for()."
    ),
    statements=[
        Statement(
            "task-hangs",
            "A thread-sensitive sync_to_async call awaited inside a task the async view creates "
            "(asyncio.create_task, asyncio.gather) hangs the request.",
            "refuted",
            reality=(
                "The call runs and the view answers 200: on the same thread as the view's own "
                "thread-sensitive calls (under ASGI the request's own thread, under WSGI the "
                "server's worker thread), never the event loop's. The task inherits the view's "
                "context, and with it the request's executor, whose thread is free while the "
                "view awaits."
            ),
        ),
        Statement(
            "task-hangs-sync-middleware",
            "With a synchronous middleware in the stack, that call hangs the request.",
            "refuted",
            reality=(
                "It runs on the middleware's thread, the one parked in async_to_sync while the "
                "view runs (its CurrentThreadExecutor, found through the task's copied context), "
                "and the view answers 200."
            ),
        ),
        Statement(
            "wait-for-hangs",
            "A thread-sensitive sync_to_async call wrapped in asyncio.wait_for hangs the request.",
            "refuted",
            reality=(
                "It returns its result within the timeout, run on the same thread as the view's "
                "other thread-sensitive calls; the view answers 200."
            ),
        ),
        Statement(
            "blocked-behind-a-waiting-call",
            "A task's thread-sensitive call deadlocks when a thread-sensitive sync function of "
            "the same request is blocked waiting for it: it queues behind that function on the "
            "request's one thread and never starts.",
            "holds",
            claimed=False,
        ),
        Statement(
            "task-outlives-request",
            "A task the view does not await can still call sync_to_async once the response has "
            "been sent; the call runs on a new thread, not the request's.",
            "holds",
            when=[When(
                "refuted", interface="wsgi",
                why="async_to_sync ends the view's one-off loop with the request, cancelling it",
            )],
            reality=(
                "Under WSGI the task is cancelled when the request ends: async_to_sync ran the "
                "view with asyncio.run on a loop of the request's own, which cancels every task "
                "left when the view returns, so the call is never made."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "asyncio.create_task copies the contextvars context into the task; "
        "asgiref.sync.SyncToAsync.__call__ picks its executor from it "
        "(AsyncToSync.executors.current, then SyncToAsync.thread_sensitive_context -> "
        "context_to_thread_executor); ThreadSensitiveContext per request in "
        "django.core.handlers.asgi.ASGIHandler.__call__, whose __aexit__ pops the executor (a "
        "later call makes a new one); django.core.handlers.base.BaseHandler._get_response runs "
        "an async view with async_to_sync (WSGI): asyncio.run cancels the tasks left."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#sync-to-async",
    question="Does sync_to_async inside asyncio.create_task or wait_for hang the request?",
    topic="helpers",
    code=(
        "project.views.create_task.create_task",
        "project.views.create_task.gather",
        "project.views.create_task.wait_for",
    ),
    instead=(),
)
task_hangs = CLAIM.statement("task-hangs")
task_hangs_sync_middleware = CLAIM.statement("task-hangs-sync-middleware")
wait_for_hangs = CLAIM.statement("wait-for-hangs")
blocked_behind = CLAIM.statement("blocked-behind-a-waiting-call")
task_outlives_request = CLAIM.statement("task-outlives-request")

BASE = "/create-task/"
SYNC_STACK = "bench-one-sync"  # one plain synchronous middleware (project/middleware_bench.py)
_labels = itertools.count()



def assert_ran_with_the_view(answer, *calls):
    """Each call ran on the thread of the view's plain thread-sensitive call, off the loop."""
    plain = answer["plain"]
    assert plain["loop"] is None
    assert plain["thread_name"] != answer["view"]["thread_name"]
    for call in calls:
        assert (call["thread_name"], call["thread"]) == (plain["thread_name"], plain["thread"])


# --- in process ----------------------------------------------------------------------------------


@task_hangs
@each_interface
@pytest.mark.parametrize("form", ["create-task", "gather"])
def test_a_call_in_a_task_runs(interface, form):
    hit = serve_once(interface, handler(interface), f"{BASE}{form}/")
    assert hit.status == 200
    answer = hit.json()
    calls = [answer["ran"], answer["other"]] if form == "gather" else [answer["ran"]]
    assert_ran_with_the_view(answer, *calls)
    assert answer["ran"]["under_middleware"] is False


@task_hangs_sync_middleware
@each_interface
@pytest.mark.parametrize("form", ["create-task", "gather"])
def test_a_call_in_a_task_runs_under_a_sync_middleware(interface, form):
    hit = serve_once(interface, handler(interface, SYNC_STACK), f"{BASE}{form}/")
    assert hit.status == 200
    answer = hit.json()
    assert_ran_with_the_view(answer, answer["ran"])
    # The thread running the sync middleware's __call__, parked below in async_to_sync.
    assert answer["ran"]["under_middleware"] is True


@wait_for_hangs
@each_interface
@pytest.mark.parametrize("stack", ["none", SYNC_STACK])
def test_a_call_in_wait_for_returns(interface, stack):
    hit = serve_once(interface, handler(interface, stack), f"{BASE}wait-for/")
    assert hit.status == 200
    answer = hit.json()
    assert_ran_with_the_view(answer, answer["ran"])
    assert answer["ran"]["under_middleware"] is (stack == SYNC_STACK)


@blocked_behind
@each_interface
def test_a_task_call_behind_a_waiting_call_deadlocks(interface, meeting):
    name = f"task-{next(_labels)}"
    query = f"announce={meeting.port}&label={name}"
    hit = serve_once(interface, handler(interface), f"{BASE}blocked-behind/", query)
    assert hit.status == 200
    answer = hit.json()
    # Nothing could run any more and the setter had not started: only the view, setting the
    # event from the loop's thread, broke it; then the setter ran, on the waiter's thread.
    assert answer["deadlocked"] is True
    assert meeting.events(name) == ["waiter-inside", "quiet:waiting", "breaking", "setter-ran"]
    assert answer["setter"]["thread_name"] == answer["waiter"]["thread_name"]
    assert answer["waiter"]["loop"] is None


# --- on every server -----------------------------------------------------------------------------


@task_hangs
@serving(*SERVERS)
def test_a_server_answers_a_call_in_a_task(server, evidence):
    hit = get(server.url, f"{BASE}create-task/")
    assert hit.status == 200
    answer = hit.json()
    assert_ran_with_the_view(answer, answer["ran"])
    evidence(f"{server.name} create_task", status=hit.status, thread=answer["ran"]["thread_name"])


@task_hangs_sync_middleware
@serving(*SERVERS, config=ServerConfig(stack=SYNC_STACK))
def test_a_server_answers_a_call_in_a_task_under_a_sync_middleware(server, evidence):
    hit = get(server.url, f"{BASE}create-task/")
    assert hit.status == 200
    answer = hit.json()
    assert_ran_with_the_view(answer, answer["ran"])
    assert answer["ran"]["under_middleware"] is True
    evidence(f"{server.name} create_task, sync middleware", status=hit.status)


@task_outlives_request
@serving(*SERVERS)
def test_a_task_that_outlives_the_request(server, meeting, evidence):
    name = f"task-{next(_labels)}"
    hit = get(server.url, f"{BASE}outlives/", {"announce": meeting.port, "label": name})
    assert hit.status == 200
    answer = hit.json()
    activity = progress.Activity(groups=[server.proc.pid])
    # Until the request is over: its ThreadSensitiveContext exited, its loop (WSGI) gone.
    progress.wait_until(lambda: False, activity)
    meeting.release(name)
    progress.wait_until(lambda: meeting.events(name), activity)
    [event] = meeting.events(name)
    if CLAIM.expected("task-outlives-request", server) == "holds":
        ran, thread, exited = event.split(":")
        assert (ran, exited) == ("task-call-ran", "exited=True")
        assert thread not in (answer["request_thread"], answer["view"]["thread_name"])
        assert thread.startswith("ThreadPoolExecutor-")
    else:
        assert event == "task-cancelled"
    evidence(f"{server.name} task after the response", event=event.split(":")[0])
