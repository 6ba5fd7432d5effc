"""A timeout (asyncio.wait_for, asyncio.timeout) around a sync_to_async call in an async view.

Claimed (schema.ai, "Synchronous blocking calls prevent cancellation in async views", its
recommended action for Django views on Uvicorn): "Wrap external calls and database queries with
asyncio.wait_for timeouts." The belief behind it: the timeout ends the work it wraps. As people
write it (project/views/sync_timeout.py)::

    async def view(request):
        try:
            result = await asyncio.wait_for(sync_to_async(slow)(), timeout)
        except TimeoutError:
            ...

What is true (asgiref's maintainer says as much in django/asgiref pull request #567: "a
"cancelled" `sync_to_async` call completes immediately — `exec_coro.cancel()` succeeds on the
asyncio wrapper even though the worker thread runs on — orphaning the sync work."):

- The view gets ``TimeoutError`` at the timeout: the builtin (``asyncio.TimeoutError`` is that
  same class on every Python the spec runs on, 3.11 to 3.13), with an empty message, raised
  ``from`` the ``CancelledError`` of the cancelled call; ``asyncio.timeout`` gives the same.
- The sync function does not stop: Python cannot interrupt a thread, and it runs to its end
  after the view has moved on.
- Under an ASGI server the client gets the view's response at the timeout, while the sync code
  still runs. Under a WSGI server it does not: the sync code runs on the request's worker
  thread itself (the thread parked in ``async_to_sync`` for the view), which can only return the
  response once the sync function has ended.
- The next thread-sensitive call of the same request (``sync_to_async``'s default) queues behind
  the timed-out one: it starts only once that one has ended, on the same thread; until then no
  thread-sensitive call of the request can run. ``thread_sensitive=False`` runs at once, on
  another thread.

Why: ``asgiref.sync.SyncToAsync.__call__`` submits the function to an executor
(``loop.run_in_executor``) and awaits it through ``asyncio.shield``; cancelled, it cancels that
asyncio future and re-raises. Cancelling the asyncio future succeeds at once, but the
``concurrent.futures`` work item it wraps is already running, and ``Future.cancel`` cannot stop a
running one. The executor of a thread-sensitive call is the request's one-thread executor: under
ASGI the ``ThreadPoolExecutor(max_workers=1)`` of the ``ThreadSensitiveContext`` that
``django.core.handlers.asgi.ASGIHandler.__call__`` opens per request, under WSGI the
``CurrentThreadExecutor`` of the worker thread, which ``AsyncToSync.__call__`` runs
(``run_until_future``) when ``django.core.handlers.base.BaseHandler._get_response`` calls the
async view through ``async_to_sync``. Under ASGI, ``ASGIHandler.handle`` sends the response
before ``ThreadSensitiveContext.__aexit__`` waits for that executor to finish.
"""

import itertools
import threading

import pytest

from harness.spec import (
    SERVERS,
    Claim,
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
    id="sync-to-async-timeout",
    source=(
        "schema.ai, \"Synchronous blocking calls prevent cancellation in async views\" "
        "(Gunicorn/Django insight, recommended action)"
    ),
    url=(
        "https://schema.ai/technologies/gunicorn/insights/"
        "blocking-calls-prevent-async-cancellation"
    ),
    claim="Wrap external calls and database queries with asyncio.wait_for timeouts.",
    statements=[
        Statement(
            "view-sees-timeout",
            "When the timeout expires, the async view gets a TimeoutError instead of the sync "
            "function's result.",
            "holds",
        ),
        Statement(
            "sync-code-stops",
            "When the timeout expires, the sync function that sync_to_async runs stops.",
            "refuted",
            reality=(
                "It runs on to its end, on its own thread, after the view has caught the "
                "TimeoutError: the timeout cancels only the asyncio future that waits for it "
                "(asgiref.sync.SyncToAsync.__call__), and a running thread cannot be cancelled."
            ),
        ),
        Statement(
            "response-at-timeout",
            "The client gets the view's response at the timeout, while the sync code still runs.",
            "holds",
            when=[When(
                "refuted", interface="wsgi",
                why="the sync code runs on the request's worker thread, which returns the response",
            )],
            reality=(
                "Under WSGI the response comes only once the sync function has ended: it runs on "
                "the worker thread that serves the request (the CurrentThreadExecutor of "
                "async_to_sync, which Django calls the async view through), and that thread "
                "returns the response after it."
            ),
            claimed=False,
        ),
        Statement(
            "next-call-queues",
            "The request's next thread-sensitive sync_to_async call waits until the timed-out "
            "one has ended, then runs on the same thread.",
            "holds",
            claimed=False,
        ),
        Statement(
            "insensitive-call-runs",
            "A thread_sensitive=False call made after the timeout runs at once, on another thread.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "asgiref.sync.SyncToAsync.__call__ (awaits asyncio.shield(loop.run_in_executor(...)); on "
        "CancelledError cancels that asyncio future and re-raises, the running "
        "concurrent.futures work item runs on); asyncio.wait_for / asyncio.timeout (TimeoutError "
        "from the CancelledError); the request's one-thread executor: ThreadSensitiveContext "
        "opened by django.core.handlers.asgi.ASGIHandler.__call__ (ASGI), "
        "asgiref.current_thread_executor.CurrentThreadExecutor.run_until_future in "
        "AsyncToSync.__call__ from django.core.handlers.base.BaseHandler._get_response (WSGI); "
        "ASGIHandler.handle sends the response before ThreadSensitiveContext.__aexit__ joins it."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#sync-to-async",
    question="Does asyncio.wait_for around sync_to_async stop the sync code at the timeout?",
    topic="helpers",
    code=("project.views.sync_timeout.timed_out",),
    instead=(),
)
view_sees_timeout = CLAIM.statement("view-sees-timeout")
sync_code_stops = CLAIM.statement("sync-code-stops")
response_at_timeout = CLAIM.statement("response-at-timeout")
next_call_queues = CLAIM.statement("next-call-queues")
insensitive_call_runs = CLAIM.statement("insensitive-call-runs")

PATH = "/sync-timeout/timed-out/"
HOWS = ["wait_for", "timeout"]
_labels = itertools.count()

hows = pytest.mark.parametrize("how", HOWS)


def label():
    return f"timeout-{next(_labels)}"


class InProcess:
    """One request through Django's handler, from a thread of its own (as a server's worker),
    while the test watches the meeting point and releases the sync code."""

    def __init__(self, interface, meeting, how="wait_for", then="return"):
        self.label = label()
        self.meeting = meeting
        query = f"announce={meeting.port}&label={self.label}&how={how}&then={then}"
        self.box = {}

        def serve():
            try:
                self.box["hit"] = serve_once(interface, handler(interface), PATH, query)
            except BaseException as error:  # reported by result()
                self.box["error"] = error

        self.thread = threading.Thread(target=serve, name=f"request-{self.label}")
        self.thread.start()

    def wait_for(self, event):
        return self.meeting.wait_for_event(self.label, event)

    def release(self):
        self.meeting.release(self.label)

    def result(self):
        self.thread.join(10)
        if "error" in self.box:
            raise self.box["error"]
        return self.box["hit"].json()

    def events(self):
        return self.meeting.events(self.label)


# --- in process ----------------------------------------------------------------------------------


@view_sees_timeout
@each_interface
@hows
def test_the_view_gets_a_timeout_error(interface, how, meeting):
    request = InProcess(interface, meeting, how)
    assert request.wait_for("timeout") == ["sync-inside", "timeout"]
    request.release()
    answer = request.result()
    # The builtin TimeoutError (asyncio.TimeoutError is the same class on Python 3.11-3.13), with
    # an empty message, raised from the CancelledError of the call it cancelled.
    assert answer["caught"] == "builtins.TimeoutError"
    assert answer["is_asyncio_timeout"] is True
    assert answer["message"] == ""
    assert answer["cause"] == answer["context"] == "asyncio.exceptions.CancelledError"
    assert (answer["result"], answer["task_cancelled"]) == (None, True)


@sync_code_stops
@each_interface
@hows
def test_the_sync_code_runs_to_its_end(interface, how, meeting):
    request = InProcess(interface, meeting, how)
    # The view has caught the TimeoutError, and the sync function is still inside.
    assert request.wait_for("timeout") == ["sync-inside", "timeout"]
    request.release()
    assert request.wait_for("sync-completed") == ["sync-inside", "timeout", "sync-completed"]
    answer = request.result()
    assert answer["caught"] == "builtins.TimeoutError"
    slow = answer["slow"]
    assert slow["loop"] is None  # a thread of its own, not the view's event loop
    assert slow["thread_name"] != answer["view"]["thread_name"]


@next_call_queues
@each_interface
@hows
def test_the_next_thread_sensitive_call_waits_for_it(interface, how, meeting):
    request = InProcess(interface, meeting, how, then="sensitive")
    # Once nothing could run any more, the second call had still not run: it waits behind the
    # timed-out one, still held.
    assert request.wait_for("quiet:pending") == ["sync-inside", "timeout", "quiet:pending"]
    request.release()
    answer = request.result()
    assert request.events() == [
        "sync-inside", "timeout", "quiet:pending", "sync-completed", "second-ran",
    ]
    assert answer["second_result"] == "second's result"
    assert answer["second"]["thread_name"] == answer["slow"]["thread_name"]
    assert answer["second"]["thread"] == answer["slow"]["thread"]


@insensitive_call_runs
@each_interface
def test_a_thread_insensitive_call_does_not_wait(interface, meeting):
    request = InProcess(interface, meeting, then="insensitive")
    assert request.wait_for("quiet:done") == ["sync-inside", "timeout", "second-ran", "quiet:done"]
    request.release()
    answer = request.result()
    assert request.events()[-1] == "sync-completed"
    assert answer["second"]["thread_name"] != answer["slow"]["thread_name"]
    assert answer["second"]["loop"] is None


# --- on every server -----------------------------------------------------------------------------


@response_at_timeout
@serving(*SERVERS)
def test_when_the_client_gets_the_response(server, meeting, evidence):
    name = label()
    query = {"announce": meeting.port, "label": name}
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("hit", get(server.url, PATH, query)))
    thread.start()
    activity = progress.Activity(groups=[server.proc.pid])
    assert meeting.wait_for_event(name, "timeout", activity) == ["sync-inside", "timeout"]
    # Until the response has come, or nothing can happen any more.
    arrived = progress.wait_until(lambda: "hit" in box, activity)
    before_release = meeting.events(name)
    meeting.release(name)
    thread.join(10)
    hit = box["hit"]
    assert hit.status == 200
    assert hit.json()["caught"] == "builtins.TimeoutError"
    if CLAIM.expected("response-at-timeout", server) == "holds":
        # The response came while the sync code was still held.
        assert (arrived, before_release) == (True, ["sync-inside", "timeout"])
        assert meeting.wait_for_event(name, "sync-completed", activity)[-1] == "sync-completed"
    else:
        # Nothing came while it was held; the response followed its end.
        assert (arrived, before_release) == (False, ["sync-inside", "timeout"])
        assert meeting.events(name) == ["sync-inside", "timeout", "sync-completed"]
    evidence(f"{server.name} response", before_sync_end=arrived)
