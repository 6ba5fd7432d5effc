"""Seed claim 4: middleware order, for the quiz's two classes.

The quiz's ``SyncMiddleware`` (plain ``def __call__``) and ``AsyncMiddleware`` (``async def
__call__``, no capability flags) stand verbatim in project/middleware.py, installed as
``MIDDLEWARE = [SyncMiddleware, AsyncMiddleware]``.

Claimed: "Middleware __init__ runs in order on startup. On request, SyncMiddleware __call__ runs
first, then calls AsyncMiddleware __call__, which awaits the next layer. The prints show nested
calls accordingly."

What is true:

- ``__init__`` runs in *reverse* order: Django builds the onion from the inside out, so the last
  middleware in MIDDLEWARE is constructed first. It runs when the handler is built: at server start
  for a real server (once per process), at the first request for Django's test clients.
- With the quiz's classes exactly as written the request never reaches the view.
  ``AsyncMiddleware`` declares no ``async_capable``, so Django treats it as synchronous and calls
  ``__call__`` without awaiting it: the call returns an un-awaited coroutine, its body (and its
  prints) never run, and ``SyncMiddleware`` returns that coroutine as the "response". Django then
  fails with ``AttributeError: 'coroutine' object has no attribute '_resource_closers'`` (HTTP 500
  from a server), and Python warns ``coroutine 'AsyncMiddleware.__call__' was never awaited``. In
  the other order ``SyncMiddleware`` never runs at all. Same on WSGI and ASGI.
- Declared the way Django documents (``async_capable = True``, ``sync_capable = False``,
  ``markcoroutinefunction``), the nesting the quiz describes is real, and each class runs where it
  can: under ASGI the async middleware on the event loop's thread and the sync one on a worker
  thread; under WSGI the sync one on the request's thread and the async one on a new event loop in
  another thread.

Why: ``BaseHandler.load_middleware`` iterates ``reversed(settings.MIDDLEWARE)``, reads
``sync_capable`` (default True) / ``async_capable`` (default False), and adapts each layer with
``adapt_method_mode`` (``sync_to_async`` / ``async_to_sync``). ``BaseHandler.get_response`` and
``get_response_async`` then do ``response._resource_closers.append(request.close)`` on whatever the
chain returned. ``ASGIHandler.__init__`` and ``WSGIHandler.__init__`` call ``load_middleware``;
``django.test.client.ClientHandler.__call__`` calls it when its chain is still ``None``.
"""

import asyncio
import gc
import threading
import warnings
from dataclasses import dataclass

import pytest
from django.test import AsyncClient, Client

import project.middleware
from harness.spec import (
    Claim,
    NO_CLOSERS,
    SEED,
    SERVERS,
    ServerConfig,
    Statement,
    each_interface,
    each_proves,
    get,
    handler,
    middleware_stack,
    never_awaited,
    serve_once,
    serving,
)

CLAIM = Claim(
    id="middleware-order",
    source=SEED,
    claim=(
        "Middleware __init__ runs in order on startup. On request, SyncMiddleware __call__ runs "
        "first, then calls AsyncMiddleware __call__, which awaits the next layer. The prints show "
        "nested calls accordingly."
    ),
    statements=[
        Statement(
            "init-in-order",
            "Middleware __init__ runs in MIDDLEWARE order.",
            "refuted",
            reality=(
                "It runs in reverse MIDDLEWARE order: Django builds the stack from the inside "
                "out, so the last middleware listed is constructed first (AsyncMiddleware, then "
                "SyncMiddleware)."
            ),
        ),
        Statement(
            "init-on-startup",
            "Middleware __init__ runs on startup: once, when the handler is built (a server's "
            "start; a Django test client's first request), not per request.",
            "holds",
        ),
        Statement(
            "sync-call-first",
            "On request, SyncMiddleware __call__ runs first.",
            "holds",
        ),
        Statement(
            "async-call-awaits",
            "SyncMiddleware __call__ then calls AsyncMiddleware __call__, which awaits the next "
            "layer.",
            "refuted",
            reality=(
                "AsyncMiddleware declares no async_capable, so Django treats it as synchronous "
                "and calls its async def __call__ without awaiting it: its body never runs and "
                "the view is never reached. The un-awaited coroutine comes back as the "
                "response, and the request fails with AttributeError: 'coroutine' object has no "
                "attribute '_resource_closers' (HTTP 500 from a server) and RuntimeWarning: "
                "coroutine 'AsyncMiddleware.__call__' was never awaited, under WSGI and ASGI "
                "alike. In the other order neither class's __call__ body runs."
            ),
        ),
        Statement(
            "prints-nested",
            "The prints show nested calls accordingly.",
            "refuted",
            reality=(
                "Only SyncMiddleware's prints appear ('before', then 'after'); AsyncMiddleware's "
                "never do, on every server as in process."
            ),
        ),
        Statement(
            "documented-nests",
            "Declared as Django documents (async_capable = True, sync_capable = False, "
            "markcoroutinefunction), the async middleware nests with SyncMiddleware as the quiz "
            "describes, in either order, each running where it can: the async one in an event "
            "loop, the sync one outside any.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.base.BaseHandler.load_middleware (reversed(settings.MIDDLEWARE), "
        "sync_capable/async_capable defaults, adapt_method_mode); BaseHandler.get_response / "
        "get_response_async touch response._resource_closers."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/http/middleware/#asynchronous-support",
    question="Do a sync and an async middleware initialise in order and nest their calls?",
    topic="middleware",
    code=("project.middleware.SyncMiddleware", "project.middleware.AsyncMiddleware"),
    instead=("project.middleware.DocumentedAsyncMiddleware",),
)
init_in_order = CLAIM.statement("init-in-order")
init_on_startup = CLAIM.statement("init-on-startup")
sync_call_first = CLAIM.statement("sync-call-first")
async_call_awaits = CLAIM.statement("async-call-awaits")
prints_nested = CLAIM.statement("prints-nested")
documented_nests = CLAIM.statement("documented-nests")

SYNC, ASYNC, DOCUMENTED = "SyncMiddleware", "AsyncMiddleware", "DocumentedAsyncMiddleware"
NEVER_AWAITED = never_awaited("AsyncMiddleware.__call__")


@dataclass(frozen=True)
class Expected:
    init: tuple  # order of the __init__ prints
    request: tuple  # order of the __call__ prints for one request
    served: bool  # does the request reach the view?


EXPECTED = {
    "seed": Expected((f"{ASYNC} init", f"{SYNC} init"), (f"{SYNC} before", f"{SYNC} after"), False),
    "seed-reversed": Expected((f"{SYNC} init", f"{ASYNC} init"), (), False),
    "documented": Expected(
        (f"{DOCUMENTED} init", f"{SYNC} init"),
        (f"{SYNC} before", f"{DOCUMENTED} before", f"{DOCUMENTED} after", f"{SYNC} after"),
        True,
    ),
    "documented-reversed": Expected(
        (f"{SYNC} init", f"{DOCUMENTED} init"),
        (f"{DOCUMENTED} before", f"{SYNC} before", f"{SYNC} after", f"{DOCUMENTED} after"),
        True,
    ),
}

# Where each class's __call__ runs: (on the thread that drives the handler?, inside an event loop?)
PLACES = {
    ("asgi", SYNC): ("worker thread", "no loop"),
    ("asgi", DOCUMENTED): ("handler's thread", "loop"),
    ("wsgi", SYNC): ("handler's thread", "no loop"),
    ("wsgi", DOCUMENTED): ("worker thread", "loop"),
}


@pytest.fixture
def prints(monkeypatch):
    """Every print of project/middleware.py, with where it ran (module global shadows the builtin)."""
    seen = []
    driver = threading.get_ident()

    def record(text):
        try:
            asyncio.get_running_loop()
            loop = "loop"
        except RuntimeError:
            loop = "no loop"
        thread = "handler's thread" if threading.get_ident() == driver else "worker thread"
        seen.append((text, thread, loop))

    monkeypatch.setattr(project.middleware, "print", record, raising=False)
    return seen


def texts(prints):
    return tuple(text for text, _, _ in prints)


stacks = pytest.mark.parametrize("stack", list(EXPECTED))
# What one request through each stack is evidence for.
REQUEST_STATEMENT = {
    "seed": sync_call_first,
    "seed-reversed": async_call_awaits,
    "documented": documented_nests,
    "documented-reversed": documented_nests,
}
request_stacks = each_proves("stack", REQUEST_STATEMENT)


@init_in_order
@each_interface
@stacks
def test_init_runs_innermost_first_when_the_handler_is_built(interface, stack, prints):
    handler(interface, stack)
    assert texts(prints) == EXPECTED[stack].init
    assert {(thread, loop) for _, thread, loop in prints} == {("handler's thread", "no loop")}


@each_interface
@request_stacks
def test_what_one_request_runs(interface, stack, prints, evidence):
    app = handler(interface, stack)
    prints.clear()
    expected = EXPECTED[stack]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if expected.served:
            hit = serve_once(interface, app, "/__spec__/ping/")
            assert (hit.status, hit.json()) == (200, {"pong": True})
        else:
            with pytest.raises(AttributeError) as raised:
                serve_once(interface, app, "/__spec__/ping/")
            assert str(raised.value) == NO_CLOSERS
            del raised  # its traceback keeps the un-awaited coroutine alive
            gc.collect()
    assert texts(prints) == expected.request
    for text, *place in prints:
        assert tuple(place) == PLACES[(interface, text.split()[0])], text
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert runtime == ([] if expected.served else [NEVER_AWAITED])
    evidence(f"{interface} {stack}", order=" > ".join(texts(prints)) or "(nothing)")


@init_on_startup
@pytest.mark.interface("wsgi")
def test_test_client_builds_the_stack_on_its_first_request(prints):
    with middleware_stack("documented"):
        client = Client()
        assert prints == []
        client.get("/__spec__/ping/")
        first = texts(prints)
        prints.clear()
        client.get("/__spec__/ping/")
    assert first == EXPECTED["documented"].init + EXPECTED["documented"].request
    assert texts(prints) == EXPECTED["documented"].request


@init_on_startup
@pytest.mark.interface("asgi")
async def test_async_client_builds_the_stack_on_its_first_request(prints):
    with middleware_stack("documented"):
        client = AsyncClient()
        assert prints == []
        await client.get("/__spec__/ping/")
    assert texts(prints) == EXPECTED["documented"].init + EXPECTED["documented"].request


@async_call_awaits
@pytest.mark.interface("wsgi")
def test_test_client_raises_what_a_server_turns_into_a_500(prints):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with middleware_stack("seed"), pytest.raises(AttributeError, match=f"^{NO_CLOSERS}$"):
            Client().get("/__spec__/ping/")
        gc.collect()
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == [NEVER_AWAITED]


def lines_of(output, prefixes=(SYNC, ASYNC, DOCUMENTED)):
    return [line for line in output.splitlines() if line.startswith(prefixes)]


@init_on_startup
@serving(*SERVERS, config=ServerConfig(stack="documented"))
def test_a_server_builds_the_stack_once_at_start(server):
    for _ in range(3):
        assert get(server.url, "/__spec__/ping/").status == 200
    lines = lines_of(server.output())
    init = [line for line in lines if line.endswith(" init")]
    assert tuple(init) == EXPECTED["documented"].init  # once per process, not per request
    assert lines[:2] == init  # before the first request (the harness's readiness check) ran
    assert tuple(lines[-4:]) == EXPECTED["documented"].request


@prints_nested
@serving(*SERVERS, config=ServerConfig(stack="seed"))
def test_the_quiz_stack_answers_500_on_a_server(server):
    hit = get(server.url, "/__spec__/ping/")
    assert hit.status == 500
    output = server.output()
    assert f"AttributeError: {NO_CLOSERS}" in output
    # (The 'never awaited' warning comes when the server's garbage collector gets to the
    # coroutine, which may be much later: it is pinned in-process above, where gc can be forced.)
    assert tuple(lines_of(output)[:2]) == EXPECTED["seed"].init
    assert not any(line.startswith(f"{ASYNC} before") for line in lines_of(output))
