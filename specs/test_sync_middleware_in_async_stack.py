"""A synchronous middleware in an async (ASGI) stack: where requests run, and what Django logs.

Claimed (Django docs, "Asynchronous support", the warning in "Async views"; the same words in
the 4.2 and 5.2 docs): "If there is a piece of synchronous middleware, then Django must use a
thread per request to safely emulate a synchronous environment for it. […] To see what middleware
Django has to adapt for, you can turn on debug logging for the django.request logger and look for
log messages about "Asynchronous handler adapted for middleware ..."."

What is true:

- Django adapts it, and uses a thread per request: under ASGI the middleware runs on a worker
  thread outside any event loop, a thread of its own per request in flight (N requests through it
  at once hold N threads), while an async view behind it still runs on the handler's own loop
  and thread, the server's one loop. So a request hops loop → worker → loop (view) → worker →
  loop: 4 thread switches where, without the middleware, there are none. A sync view behind it
  runs on that same worker thread. Under WSGI the middleware runs on the request's thread and
  adds no switch (an async view gets a new loop on another thread there, with or without it).
- The message is right, and so is the logger: with DEBUG=True and django.request at DEBUG,
  building an ASGI handler logs ``Asynchronous handler adapted for middleware
  project.middleware_catalogue.SyncTrail.`` on ``django.request``, at level DEBUG, naming the
  synchronous middleware. ("Synchronous handler adapted for middleware X." is the other
  direction: an async-only middleware X over a synchronous handler, e.g. under WSGI.) It is
  logged once, when the stack is built (server start), never per request; never under WSGI,
  where nothing needs adapting.
- But the docs name only the logger, and the logger is not enough: with DEBUG=False nothing is
  logged, whatever the logger's level. Nor is DEBUG=True alone: the record is a DEBUG one, and
  Django's default LOGGING sets the ``django`` logger to INFO, so ``logger.debug`` does not even
  create it: no server prints it. It takes both: DEBUG=True, and a LOGGING that opens
  ``django.request`` to DEBUG (here done, for servers, by ``DebugRequestLogToStderr``).

Why: ``django.core.handlers.base.BaseHandler.load_middleware`` walks ``reversed(MIDDLEWARE)``; a
middleware that is not ``async_capable`` over an async handler makes ``adapt_method_mode`` wrap the
handler below it in ``async_to_sync``, and ``logger.debug("Asynchronous handler adapted for %s.",
name)`` only ``if debug``, and load_middleware passes ``debug=settings.DEBUG``. The top of the
stack is wrapped in ``sync_to_async(thread_sensitive=True)`` by a second ``adapt_method_mode``
call that passes no ``debug``, so it logs nothing. ``ASGIHandler.__call__`` runs each request
inside asgiref's ``ThreadSensitiveContext``, which gives that request its own executor thread;
from it, ``AsyncToSync.__call__`` schedules the coroutine on the outer loop (``main_event_loop``)
with ``call_soon_threadsafe`` and waits in a ``CurrentThreadExecutor``, where
``_get_response_async``'s ``sync_to_async(thread_sensitive=True)`` for a sync view lands.
``django.utils.log.DEFAULT_LOGGING`` gives the ``django`` logger level INFO.
"""

import asyncio
import json
import logging
import threading
import urllib.parse
from dataclasses import dataclass

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings

from harness.spec import (
    ASGI_SERVERS,
    Claim,
    SERVERS,
    ServerConfig,
    Statement,
    asgi_get,
    fire,
    get,
    meeting_params,
    serving,
    wsgi_get,
)
from project.middleware_catalogue import DebugRequestLogToStderr, trail

DOCS_SAY = (
    "To see what middleware Django has to adapt for, you can turn on debug logging for the "
    'django.request logger and look for log messages about "Asynchronous handler adapted for '
    'middleware ...".'
)

CLAIM = Claim(
    id="sync-middleware-in-async-stack",
    source='Django docs, "Asynchronous support" (Async views, warning)',
    url="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    claim=(
        "If there is a piece of synchronous middleware, then Django must use a thread per "
        "request to safely emulate a synchronous environment for it. […] " + DOCS_SAY
    ),
    statements=[
        Statement(
            "adapts",
            "Django adapts a synchronous middleware in an async stack.",
            "holds",
        ),
        Statement(
            "thread-per-request",
            "Django uses a thread per request for it: each request in flight runs the "
            "middleware on a worker thread of its own, off the event loop, while the async views "
            "behind it share the server's one loop.",
            "holds",
        ),
        Statement(
            "hops",
            "A request to an async view behind it switches threads 4 times (the handler's loop, "
            "the middleware's thread, the loop again for the view, the middleware's thread, the "
            "loop), where without the middleware it switches none.",
            "holds",
            claimed=False,
        ),
        Statement(
            "logs-with-debug-and-logger",
            "With DEBUG=True and the django.request logger at DEBUG, Django logs 'Asynchronous "
            "handler adapted for middleware <dotted path>.' for each synchronous middleware it "
            "adapts, once, when it builds the async stack.",
            "holds",
        ),
        Statement(
            "logger-alone-shows-it",
            "Turning on debug logging for the django.request logger is all it takes to see the "
            "message, whatever DEBUG is.",
            "refuted",
            reality=(
                "Only with DEBUG=True as well: with DEBUG=False Django logs nothing, whatever the "
                "logger's level, because BaseHandler.load_middleware passes debug=settings.DEBUG "
                "to adapt_method_mode, which logs only if it is true. The docs mention only the "
                f"logger: “{DOCS_SAY}”"
            ),
        ),
        Statement(
            "debug-alone-shows-it",
            "DEBUG=True with Django's default LOGGING shows the message.",
            "refuted",
            reality=(
                "Django's default LOGGING (django.utils.log.DEFAULT_LOGGING) sets the 'django' "
                "logger to INFO, so with DEBUG=True alone logger.debug creates no record and no "
                "server prints it. It takes both: DEBUG=True and the django.request logger at "
                "DEBUG."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.base.BaseHandler.load_middleware -> adapt_method_mode(False, "
        "handler, True, debug=settings.DEBUG, name='middleware <path>'): async_to_sync, and "
        "logger.debug('Asynchronous handler adapted for %s.') only if debug; the top of the stack "
        "gets sync_to_async(thread_sensitive=True) unlogged; ASGIHandler.__call__'s asgiref "
        "ThreadSensitiveContext (a thread per request); AsyncToSync.__call__ runs the coroutine "
        "on the outer loop; django.utils.log.DEFAULT_LOGGING keeps 'django' at INFO."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    question=(
        "Does a sync middleware cost a thread per request, shown by django.request debug logs?"
    ),
    topic="middleware",
    code=(
        "project.middleware_catalogue.SyncTrail",
        "project.middleware_catalogue.DebugRequestLogToStderr",
    ),
    instead=("project.middleware_catalogue.AsyncOnlyTrail",),
)
adapts = CLAIM.statement("adapts")
thread_per_request = CLAIM.statement("thread-per-request")
hops = CLAIM.statement("hops")
logs_with_both = CLAIM.statement("logs-with-debug-and-logger")
logger_alone = CLAIM.statement("logger-alone-shows-it")
debug_alone = CLAIM.statement("debug-alone-shows-it")

M = "project.middleware_catalogue."
SYNC_TRAIL, ASYNC_ONLY = M + "SyncTrail", M + "AsyncOnlyTrail"
PROBE = "/middleware-probe/"


def async_adapted(path):
    return f"Asynchronous handler adapted for middleware {path}."


def sync_adapted(path):
    return f"Synchronous handler adapted for middleware {path}."


def build(interface, middleware, debug):
    """A handler built as a server builds it at start, with these settings."""
    with override_settings(MIDDLEWARE=middleware, DEBUG=debug):
        return {"asgi": ASGIHandler, "wsgi": WSGIHandler}[interface]()


# --- what is logged, in process -----------------------------------------------------------


@dataclass(frozen=True)
class Build:
    interface: str
    middleware: tuple
    debug: bool
    messages: tuple  # django.request DEBUG messages, in the order they are logged


BUILDS = {
    "asgi-sync-debug": Build("asgi", (SYNC_TRAIL,), True, (async_adapted(SYNC_TRAIL),)),
    "asgi-sync-no-debug": Build("asgi", (SYNC_TRAIL,), False, ()),
    "wsgi-sync-debug": Build("wsgi", (SYNC_TRAIL,), True, ()),
    "asgi-none-debug": Build("asgi", (), True, ()),
    # The other message: an async-only middleware over a synchronous handler.
    "wsgi-async-only-debug": Build("wsgi", (ASYNC_ONLY,), True, (sync_adapted(ASYNC_ONLY),)),
    # Innermost first, as the stack is built.
    "asgi-async-only-over-sync-debug": Build(
        "asgi", (ASYNC_ONLY, SYNC_TRAIL), True,
        (async_adapted(SYNC_TRAIL), sync_adapted(ASYNC_ONLY)),
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    # Each case builds and drives one handler: its interface is where it observes. With DEBUG=False
    # (and the logger open all the same) it is evidence that the logger alone is not enough.
    [
        pytest.param(c, id=k, marks=[pytest.mark.interface(c.interface),
                                     logs_with_both if c.debug else logger_alone])
        for k, c in BUILDS.items()
    ],
)  # fmt: skip
def test_what_building_the_stack_logs_and_what_a_request_logs(case, request_log):
    app = build(case.interface, list(case.middleware), case.debug)
    assert request_log() == [("django.request", "DEBUG", m) for m in case.messages]
    before = len(request_log())
    hit = (wsgi_get(app, PROBE + "async/") if case.interface == "wsgi"
           else asyncio.run(asgi_get(app, PROBE + "async/")))  # fmt: skip
    assert hit.status == 200
    assert len(request_log()) == before  # logged when the stack is built, not per request


@debug_alone
@pytest.mark.interface("asgi")
def test_debug_true_alone_creates_no_record_under_default_logging():
    logger = logging.getLogger("django.request")
    # DEFAULT_LOGGING: the "django" logger at INFO, and django.request inherits it.
    assert (logger.level, logger.getEffectiveLevel()) == (logging.NOTSET, logging.INFO)
    created = []
    catcher = logging.Handler(logging.DEBUG)
    catcher.emit = created.append
    logger.addHandler(catcher)
    try:
        build("asgi", [SYNC_TRAIL], debug=True)
    finally:
        logger.removeHandler(catcher)
    assert created == []


# --- where a request runs, in process ------------------------------------------------------


def drive(interface, app, path, query=""):
    """One request; also where the handler ran: (hit, handler's thread, handler's loop)."""
    if interface == "wsgi":
        return wsgi_get(app, path, query), threading.get_ident(), None

    async def one():
        return await asgi_get(app, path, query), id(asyncio.get_running_loop())

    hit, loop = asyncio.run(one())
    return hit, threading.get_ident(), loop


def places(points, handler_thread, handler_loop):
    """Each trail point as (label, thread, loop), threads named "handler", "T1", "T2"... in the
    order they appear, loops as "handler's loop", "no loop" or "own loop"."""
    names = {handler_thread: "handler"}
    out = []
    for point in points:
        thread = names.setdefault(point["thread"], f"T{len(names)}")
        if point["loop"] is None:
            loop = "no loop"
        else:
            loop = "handler's loop" if point["loop"] == handler_loop else "own loop"
        out.append((point["at"], thread, loop))
    return out


def thread_switches(path):
    """Thread changes along handler -> trail -> handler (what the request visibly hops)."""
    threads = ["handler", *(thread for _, thread, _ in path), "handler"]
    return sum(a != b for a, b in zip(threads, threads[1:]))


BEFORE, AFTER = "SyncTrail before", "SyncTrail after"
PATHS = {
    # (interface, middleware, view): (path, thread switches)
    ("asgi", "none", "async"): ([("view", "handler", "handler's loop")], 0),
    ("asgi", "none", "sync"): ([("view", "T1", "no loop")], 2),
    ("asgi", "SyncTrail", "async"): ([
        (BEFORE, "T1", "no loop"), ("view", "handler", "handler's loop"), (AFTER, "T1", "no loop"),
    ], 4),
    # The sync view joins the middleware's thread (thread_sensitive=True). Between the two the
    # request also passes through the loop (async_to_sync, then sync_to_async): not visible here.
    ("asgi", "SyncTrail", "sync"): ([
        (BEFORE, "T1", "no loop"), ("view", "T1", "no loop"), (AFTER, "T1", "no loop"),
    ], 2),
    ("wsgi", "none", "async"): ([("view", "T1", "own loop")], 2),
    ("wsgi", "none", "sync"): ([("view", "handler", "no loop")], 0),
    ("wsgi", "SyncTrail", "async"): ([
        (BEFORE, "handler", "no loop"), ("view", "T1", "own loop"), (AFTER, "handler", "no loop"),
    ], 2),
    ("wsgi", "SyncTrail", "sync"): ([
        (BEFORE, "handler", "no loop"), ("view", "handler", "no loop"),
        (AFTER, "handler", "no loop"),
    ], 0),
}  # fmt: skip


@adapts
@pytest.mark.parametrize("interface, middleware, view", PATHS, ids=["-".join(k) for k in PATHS])
def test_where_one_request_runs(interface, middleware, view, evidence):
    stack = [] if middleware == "none" else [M + middleware]
    app = build(interface, stack, debug=False)
    hit, handler_thread, handler_loop = drive(interface, app, f"{PROBE}{view}/")
    assert hit.status == 200
    path = places(trail(hit), handler_thread, handler_loop)
    expected_path, expected_switches = PATHS[(interface, middleware, view)]
    assert path == expected_path
    assert thread_switches(path) == expected_switches
    evidence(f"{interface} {view} view behind {middleware}", thread_switches=thread_switches(path))


def streamed_trail(hit):
    """The trail of /middleware-probe/async-streamed/, whose last point is the handler's own."""
    assert hit.status == 200
    points = json.loads(hit.body)["trail"]
    assert points[-1]["at"] == "handler"
    return points


def handler_switches(points):
    """Thread changes along the handler -> each point -> the handler (the last point)."""
    threads = [points[-1]["thread"], *(point["thread"] for point in points)]
    return sum(a != b for a, b in zip(threads, threads[1:]))


def assert_hops(points, middleware):
    """The request's path from the handler through the middleware (or none) to the async view
    and back, as the trail of one request shows it; returns the thread switches."""
    *inner, handler = points
    at_handler = (handler["thread"], handler["loop"])
    assert handler["loop"] is not None
    if middleware == "none":
        assert [p["at"] for p in inner] == ["view"]
        assert (inner[0]["thread"], inner[0]["loop"]) == at_handler
    else:
        before, view, after = inner
        assert [before["at"], view["at"], after["at"]] == [BEFORE, "view", AFTER]
        # The middleware on one thread of its own, off any loop; the view on the handler's loop.
        assert before["thread"] == after["thread"] != handler["thread"]
        assert before["loop"] is None and after["loop"] is None
        assert (view["thread"], view["loop"]) == at_handler
    return handler_switches(points)


HOPS = {"none": 0, "SyncTrail": 4}


@hops
@pytest.mark.interface("asgi")
@pytest.mark.parametrize("middleware", HOPS)
def test_hops_of_one_request_in_process(middleware, evidence):
    stack = [] if middleware == "none" else [M + middleware]
    app = build("asgi", stack, debug=False)
    hit, handler_thread, handler_loop = drive("asgi", app, PROBE + "async-streamed/")
    points = streamed_trail(hit)
    # The body's generator runs where the handler runs: the test's thread and loop here.
    assert (points[-1]["thread"], points[-1]["loop"]) == (handler_thread, handler_loop)
    switches = assert_hops(points, middleware)
    assert switches == HOPS[middleware]
    evidence(f"asgi in process, async view behind {middleware}", thread_switches=switches)


@thread_per_request
@pytest.mark.interface("asgi")
async def test_each_request_in_flight_holds_a_middleware_thread_of_its_own(meeting, evidence):
    app = build("asgi", [SYNC_TRAIL], debug=False)
    n = 3
    query = urllib.parse.urlencode(meeting_params(meeting, n))
    hits = await asyncio.gather(*(asgi_get(app, PROBE + "async-meet/", query) for _ in range(n)))
    # All n were inside the view at once, each with its middleware thread blocked waiting on it.
    assert [hit.json()["meeting"] for hit in hits] == ["met"] * n
    trails = [trail(hit) for hit in hits]
    middleware_threads = {t[0]["thread"] for t in trails}
    assert len(middleware_threads) == n
    assert threading.get_ident() not in middleware_threads
    assert {t[1]["thread"] for t in trails} == {threading.get_ident()}  # views: the loop's thread
    evidence("asgi in process, 3 requests at once", met=n, middleware_threads=n, view_threads=1)


# --- on real servers ------------------------------------------------------------------------

# DEBUG on, and django.request opened to DEBUG on stderr (DebugRequestLogToStderr, built first).
LOGGED = ServerConfig(stack="catalogue-sync-logged", debug=True)
OPENED = (f"MiddlewareNotUsed({M + 'DebugRequestLogToStderr'!r}): "
          f"{DebugRequestLogToStderr.REASON}")  # fmt: skip
SERVER_LOG = {
    "asgi": [f"django.request DEBUG {OPENED}", f"django.request DEBUG {async_adapted(SYNC_TRAIL)}"],
    "wsgi": [f"django.request DEBUG {OPENED}"],
}


def spec_log(server):
    return DebugRequestLogToStderr.lines(server.output())


@logs_with_both
@serving(*SERVERS, config=LOGGED)
def test_what_a_server_logs_and_when(server):
    assert spec_log(server) == SERVER_LOG[server.kind.interface]
    for _ in range(2):
        assert get(server.url, PROBE + "async/").status == 200
    assert spec_log(server) == SERVER_LOG[server.kind.interface]


@adapts
@serving(*SERVERS, config=LOGGED)
def test_where_requests_run_on_a_server(server, evidence):
    trails = []
    for _ in range(2):
        hit = get(server.url, PROBE + "async/")
        assert hit.status == 200
        trails.append({point["at"]: point for point in trail(hit)})
    for points in trails:
        before, view, after = points[BEFORE], points["view"], points[AFTER]
        assert before["thread"] == after["thread"]
        assert before["loop"] is None and after["loop"] is None
        assert view["loop"] is not None and view["thread"] != before["thread"]
    # The switches between the middleware and the view, as measured; where the handler itself
    # runs is not on this trail (test_hops_of_each_request_on_a_server_* stream it).
    crossings = [sum(a["thread"] != b["thread"] for a, b in
                     zip([p[BEFORE], p["view"]], [p["view"], p[AFTER]])) for p in trails]  # fmt: skip
    if server.kind.interface == "asgi":
        # One loop, on the server's main thread, ran every view; the middleware never did.
        assert len({(p["view"]["thread"], p["view"]["loop"]) for p in trails}) == 1
        assert [(p["view"]["main_thread"], p[BEFORE]["main_thread"]) for p in trails] == [
            (True, False)
        ] * 2
    evidence(f"{server.name} async view behind SyncTrail", middleware_view_switches=crossings[0])


def assert_hops_on(server, middleware, evidence):
    # Two requests: the count is per request, the same for each, not a one-off of the first.
    switches = [assert_hops(streamed_trail(get(server.url, PROBE + "async-streamed/")), middleware)
                for _ in range(2)]  # fmt: skip
    assert switches == [HOPS[middleware]] * 2
    evidence(f"{server.name} async view behind {middleware}", thread_switches=switches[0])


@hops
@serving(*ASGI_SERVERS, config=LOGGED)
def test_hops_of_each_request_on_a_server_behind_it(server, evidence):
    assert_hops_on(server, "SyncTrail", evidence)


@hops
@serving(*ASGI_SERVERS)
def test_hops_of_each_request_on_a_server_without_it(server, evidence):
    assert_hops_on(server, "none", evidence)


@thread_per_request
@serving(*ASGI_SERVERS, config=LOGGED)
def test_requests_in_flight_each_hold_a_middleware_thread_on_a_server(server, meeting, evidence):
    n = 3
    volley = fire(server.url, PROBE + "async-meet/", n, meeting=meeting)
    assert volley.statuses == [200] * n
    assert volley.meetings == ["met"] * n
    trails = [trail(hit) for hit in volley.hits]
    assert len({t[0]["thread"] for t in trails}) == n  # alive at once, so distinct
    assert len({(t[1]["thread"], t[1]["loop"]) for t in trails}) == 1
    evidence(f"{server.name} 3 requests at once", met=n, middleware_threads=n, view_loops=1)


@debug_alone
@serving("uvicorn", "daphne", config=ServerConfig(stack="catalogue-sync", debug=True))
def test_default_logging_prints_nothing_though_the_middleware_is_adapted(server):
    # daphne too, although its own root logging prints DEBUG records: none is ever created.
    hit = get(server.url, PROBE + "async/")
    assert hit.status == 200
    before, view, _ = trail(hit)
    assert before["loop"] is None and view["thread"] != before["thread"]  # adapted all the same
    assert "adapted for" not in server.output()


@logger_alone
@serving("uvicorn", config=ServerConfig(stack="catalogue-sync-logged", debug=False))
def test_debug_false_logs_nothing_even_with_the_logger_open(server):
    hit = get(server.url, PROBE + "async/")
    assert hit.status == 200
    before, view, _ = trail(hit)
    assert before["loop"] is None and view["thread"] != before["thread"]
    assert spec_log(server) == []
