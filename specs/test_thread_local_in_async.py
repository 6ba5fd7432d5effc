"""threading.local (and contextvars) for per-request data when Django serves async code.

Claimed (Django Forum, "Django with Uvicorn and using thread.local", answering "If we were to
deploy without Gunicorn and just use Uvicorn, update our endpoints to async, our code would break
as async and thread.local don’t play well together - if at all ?"): "Correct. The whole purpose
of async is to reduce the number of threads being used. The design intent of an async environment
is that all views run in the same thread." The same belief in a blog note ("django-crum doesn't
work in async environments", tigerhuangyuhao.uk): "In a full async environment, everything is
running in the same thread. It’s not “one thread per connection”."

What is true (project/views/thread_locals.py):

- Under an ASGI server, async views do all run on one thread, the server's event-loop thread, so
  a ``threading.local`` value one request's async view sets is still there for the next
  request's: it leaks across requests. Under WSGI each async view runs on an event loop in a new
  thread of its own (``async_to_sync``), where the value of the previous request is not.
- The sync code, though, is not on that thread. Under ASGI each request's ``sync_to_async`` calls
  run on a new thread of the request's own, so a ``threading.local`` value set there is gone for
  the next request, and one the async view set is not there for its own ``sync_to_async`` calls
  either. Within one request, the thread-sensitive calls share one thread, and so its
  ``threading.local``. Under WSGI, sync code runs on the server's worker thread: where that
  thread serves request after request (gunicorn's gthread worker), a value one request leaves is
  there for the next request on it; runserver starts a thread per connection.
- ``contextvars`` follow the request instead: a ``ContextVar`` the async view sets is seen inside
  ``sync_to_async``, and a value set there is seen by the view after the ``await``. But each
  call runs in a new copy of the context, so a ``Token`` from ``ContextVar.set`` in one call
  cannot reset the variable in another: ``ValueError: <Token ...> was created in a different
  Context`` (what django/asgiref#267 and OpenTelemetry's Django
  middleware ran into, with ``process_request`` and ``process_response`` in separate hops).

Why: ``django.core.handlers.asgi.ASGIHandler`` runs async views on the server's loop; its
``ThreadSensitiveContext`` per request gives ``asgiref.sync.SyncToAsync.__call__`` a one-thread
executor per request, shut down at the request's end (``ThreadSensitiveContext.__aexit__``).
Under WSGI, ``django.core.handlers.base.BaseHandler._get_response`` calls an async view with
``async_to_sync``, which runs it on a loop in a new ``ThreadPoolExecutor(max_workers=1)`` thread,
and sends thread-sensitive calls back to the calling (worker) thread through its
``CurrentThreadExecutor``. ``SyncToAsync.__call__`` runs the function in
``contextvars.copy_context()`` and copies what changed back into the caller's context
(``asgiref.sync._restore_context``); ``ContextVar.reset`` refuses a token made in another
``Context`` (CPython's ``contextvar_reset``).
"""

import itertools
import re


from harness.spec import (
    ASGI_SERVERS,
    SERVERS,
    Claim,
    ServerConfig,
    Statement,
    When,
    each_interface,
    get,
    handler,
    serve_once,
    serving,
    token_of_another_context,
)
from project.views import thread_locals as views

CLAIM = Claim(
    id="thread-local-in-async",
    source="Django Forum, \"Django with Uvicorn and using thread.local\" (answer)",
    url="https://forum.djangoproject.com/t/django-with-uvicorn-and-using-thread-local/42029",
    claim=(
        "The whole purpose of async is to reduce the number of threads being used. The design "
        "intent of an async environment is that all views run in the same thread."
    ),
    statements=[
        Statement(
            "async-views-share-a-thread",
            "Async views of successive requests run on one thread, so a threading.local value "
            "one request's async view sets is there for the next request's.",
            "holds",
            when=[When(
                "refuted", interface="wsgi",
                why="async_to_sync runs each async view on a loop in a new thread",
            )],
            reality=(
                "Under WSGI each async view runs on an event loop in a new thread of its own "
                "(async_to_sync's ThreadPoolExecutor), where the previous request's value is not."
            ),
        ),
        Statement(
            "sync-code-shares-a-thread",
            "The sync code of successive requests (their sync_to_async calls) runs on one "
            "thread, so a threading.local value one request's sync code sets is there for the "
            "next request's.",
            "refuted",
            when=[
                When("refuted", servers=("runserver",), why="a new thread per connection"),
                When(
                    "holds", interface="wsgi",
                    why="sync code runs on the worker thread that serves the request: the next "
                        "request that thread serves sees the value (shown on a gthread worker "
                        "with one thread; with more, the next request may go to another)",
                ),
            ],
            reality=(
                "Under ASGI each request's sync code runs on a new thread of the request's own "
                "(its ThreadSensitiveContext's one-thread executor, shut down at its end), "
                "neither the loop's thread nor the previous request's, and the value is not "
                "there. Under runserver, too: a new thread per connection."
            ),
        ),
        Statement(
            "async-local-seen-in-sync",
            "A threading.local value the async view sets is seen by its own sync_to_async calls.",
            "refuted",
            reality=(
                "They run on another thread (under ASGI the request's own, under WSGI the "
                "worker thread), where the value is not set."
            ),
            claimed=False,
        ),
        Statement(
            "one-request-one-thread",
            "Within one request, successive sync_to_async calls run on one thread and share its "
            "threading.local.",
            "holds",
            claimed=False,
        ),
        Statement(
            "contextvar-round-trip",
            "A ContextVar the async view sets is seen inside sync_to_async, and a value set there "
            "is seen by the view after the await.",
            "holds",
            claimed=False,
        ),
        Statement(
            "contextvar-token-across-calls",
            "A Token from ContextVar.set in one sync_to_async call cannot reset the variable in "
            "another: ValueError '<Token ...> was created in a different Context'.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.__call__ (async views on the server's loop; a "
        "ThreadSensitiveContext per request, whose executor asgiref.sync.SyncToAsync.__call__ "
        "uses and ThreadSensitiveContext.__aexit__ shuts down); "
        "django.core.handlers.base.BaseHandler._get_response -> asgiref.sync.AsyncToSync.__call__ "
        "(WSGI: a loop in a new thread, thread-sensitive calls back on the worker thread); "
        "SyncToAsync.__call__ runs in contextvars.copy_context() and asgiref.sync._restore_context "
        "copies changes back; ContextVar.reset rejects a token of another Context."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#asgiref.sync.sync_to_async",
    question="Does a threading.local value set in one request show up in the next?",
    topic="helpers",
    code=("project.views.thread_locals.async_set", "project.views.thread_locals.sync_set"),
    instead=("project.views.thread_locals.contextvar",),
)
async_views_share_a_thread = CLAIM.statement("async-views-share-a-thread")
sync_code_shares_a_thread = CLAIM.statement("sync-code-shares-a-thread")
async_local_seen_in_sync = CLAIM.statement("async-local-seen-in-sync")
one_request_one_thread = CLAIM.statement("one-request-one-thread")
contextvar_round_trip = CLAIM.statement("contextvar-round-trip")
contextvar_token_across_calls = CLAIM.statement("contextvar-token-across-calls")

TOKEN_REPR = re.compile(
    r"<Token var=<ContextVar name='thread_locals_token_var' default='unset' at 0x[0-9a-f]+> "
    r"at 0x[0-9a-f]+>"
)

BASE = "/thread-locals/"
# gunicorn with one thread: successive requests are served by that same worker thread.
ONE_THREAD = ServerConfig(threads=1)
_values = itertools.count()



def values():
    n = next(_values)
    return f"first-{n}", f"second-{n}"


def in_process(interface, path, query=""):
    # In process, this thread is the server's: its ASGI loop runs here, and WSGI's sync code.
    # Start each request from a thread-local of nothing, whatever an earlier test left.
    views.LOCAL.__dict__.clear()
    hit = serve_once(interface, handler(interface), BASE + path, query)
    assert hit.status == 200
    return hit.json()


def served(server, path, params=None):
    hit = get(server.url, BASE + path, params)
    assert hit.status == 200
    return hit.json()


# --- threading.local across requests ------------------------------------------------------------


def check_async_views(first, second, expected):
    if expected == "holds":
        # Same thread: the second request's view found the first one's value.
        assert second["thread_name"] == first["thread_name"]
        assert second["before"] == first["value"]
    else:
        assert second["thread_name"] != first["thread_name"]
        assert second["before"] is None


@async_views_share_a_thread
@each_interface
def test_async_views_in_process(interface):
    a, b = values()
    # serve_once serves each request from this thread: under ASGI on a loop in this thread, as a
    # server's one loop thread would.
    first = {**in_process(interface, "async-set/", f"value={a}"), "value": a}
    second = serve_once(interface, handler(interface), BASE + "async-set/", f"value={b}").json()
    expected = CLAIM.expected("async-views-share-a-thread", interface=interface)
    check_async_views(first, second, expected)
    assert second["loop"] is not None


@async_views_share_a_thread
@serving(*SERVERS)
def test_async_views_on_a_server(server, evidence):
    a, b = values()
    first = {**served(server, "async-set/", {"value": a}), "value": a}
    second = served(server, "async-set/", {"value": b})
    check_async_views(first, second, CLAIM.expected("async-views-share-a-thread", server))
    same = second["thread_name"] == first["thread_name"]
    evidence(f"{server.name} async views", same_thread=same)


def check_sync_code(first, second, expected):
    if expected == "holds":
        assert second["first"]["thread_name"] == first["first"]["thread_name"]
        assert second["first"]["before"] == first["second"]["value"]
    else:
        assert second["first"]["thread_name"] != first["first"]["thread_name"]
        assert second["first"]["before"] is None
    for answer in (first, second):
        assert answer["first"]["loop"] is None  # never the event loop's thread


@sync_code_shares_a_thread
@each_interface
def test_sync_code_in_process(interface):
    a, b = values()
    first = in_process(interface, "sync-set/", f"value={a}")
    second = serve_once(interface, handler(interface), BASE + "sync-set/", f"value={b}").json()
    check_sync_code(first, second, CLAIM.expected("sync-code-shares-a-thread", interface=interface))


@sync_code_shares_a_thread
@serving(*ASGI_SERVERS, "runserver")
def test_sync_code_on_a_server(server, evidence):
    a, b = values()
    first = served(server, "sync-set/", {"value": a})
    second = served(server, "sync-set/", {"value": b})
    check_sync_code(first, second, CLAIM.expected("sync-code-shares-a-thread", server))
    evidence(f"{server.name} sync code", leaked=second["first"]["before"] is not None)


@sync_code_shares_a_thread
@serving("gunicorn-gthread", config=ONE_THREAD)
def test_sync_code_on_a_one_thread_gthread_worker(server, evidence):
    a, b = values()
    first = served(server, "sync-set/", {"value": a})
    second = served(server, "sync-set/", {"value": b})
    check_sync_code(first, second, CLAIM.expected("sync-code-shares-a-thread", server))
    evidence(f"{server.name} (1 thread) sync code", leaked=second["first"]["before"] is not None)


# --- within one request --------------------------------------------------------------------------


@async_local_seen_in_sync
@each_interface
def test_a_local_set_in_the_async_view_is_not_in_its_sync_calls(interface):
    a, _ = values()
    answer = in_process(interface, "local-to-sync/", f"value={a}")
    assert answer["sync"]["value"] is None
    assert answer["sync"]["thread_name"] != answer["view"]["thread_name"]


@one_request_one_thread
@each_interface
def test_the_sync_calls_of_one_request_share_a_thread(interface):
    a, _ = values()
    answer = in_process(interface, "sync-set/", f"value={a}")
    assert answer["second"]["thread_name"] == answer["first"]["thread_name"]
    assert answer["second"]["thread"] == answer["first"]["thread"]
    assert answer["second"]["value"] == a


@one_request_one_thread
@serving(*SERVERS)
def test_the_sync_calls_of_one_request_share_a_thread_on_a_server(server):
    a, _ = values()
    answer = served(server, "sync-set/", {"value": a})
    assert answer["second"]["thread_name"] == answer["first"]["thread_name"]
    assert answer["second"]["value"] == a


# --- contextvars ---------------------------------------------------------------------------------


@contextvar_round_trip
@each_interface
def test_a_contextvar_goes_into_sync_to_async_and_back(interface):
    answer = in_process(interface, "contextvar/")
    assert (answer["seen_in_sync"], answer["seen_after"]) == ("view", "sync")


@contextvar_round_trip
@serving(*SERVERS)
def test_a_contextvar_goes_into_sync_to_async_and_back_on_a_server(server):
    answer = served(server, "contextvar/")
    assert (answer["seen_in_sync"], answer["seen_after"]) == ("view", "sync")


@contextvar_token_across_calls
@each_interface
def test_a_token_cannot_reset_in_another_call(interface):
    answer = in_process(interface, "contextvar/")
    reset = answer["reset"]
    assert reset is not None, "the reset in the second call raised nothing"
    assert reset["type"] == "builtins.ValueError"
    assert TOKEN_REPR.fullmatch(reset["token"]), reset["token"]
    assert reset["message"] == token_of_another_context(reset["token"])
    assert answer["token_var_after"] == "set in a sync_to_async call"
