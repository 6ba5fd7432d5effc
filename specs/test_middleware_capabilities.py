"""Middleware capability flags: sync_capable, async_capable, sync_and_async_middleware.

Claimed (Django docs, Middleware, "Asynchronous support"): "A middleware must declare
sync_capable or async_capable, and sync_and_async_middleware makes any __call__ work under both
WSGI and ASGI".

What is true:

- Nothing must be declared. A middleware without the flags is taken as ``sync_capable = True``,
  ``async_capable = False``: synchronous only. It works under WSGI and under ASGI (where Django
  adapts around it and calls it on a worker thread). What fails is declaring *both* False: building
  the handler (server start) raises ``RuntimeError: Middleware <path> must have at least one of
  sync_capable/async_capable set to True.`` under WSGI and ASGI alike.
- ``sync_and_async_middleware`` only sets both flags True; it does not make a ``__call__`` work
  both ways. Django then calls a hybrid the way the layer below it is, to avoid adapting: under
  WSGI synchronously. An ``async def __call__`` (or a factory that always returns an ``async def``)
  then returns an un-awaited coroutine, the request fails with ``AttributeError: 'coroutine' object
  has no attribute '_resource_closers'`` (HTTP 500 from a server) and Python warns that the
  coroutine was never awaited. Under ASGI the same middleware happens to work.
- The pattern the docs show does work under both: branch on ``iscoroutinefunction(get_response)``
  and return a sync or an async callable. It gets the sync branch under WSGI and the async branch
  under ASGI, and nothing is adapted (no adaptation is logged).
- ``MiddlewareNotUsed`` raised from ``__init__`` drops the middleware from the stack. With
  DEBUG=True Django logs at DEBUG on ``django.request`` ``MiddlewareNotUsed: '<path>'`` (no
  message) or ``MiddlewareNotUsed('<path>'): <message>``; with DEBUG=False nothing. Under ASGI a
  dropped synchronous middleware still gets its "Asynchronous handler adapted for middleware
  <path>." line first: the handler is adapted for it before its ``__init__`` runs.

Why: ``django.core.handlers.base.BaseHandler.load_middleware`` reads
``getattr(middleware, "sync_capable", True)`` and ``getattr(middleware, "async_capable", False)``,
raises the RuntimeError when both are false, and sets ``middleware_is_async = False`` whenever
the handler below is synchronous and the middleware can sync (``elif not handler_is_async and
middleware_can_sync``). ``django.utils.decorators.sync_and_async_middleware`` just sets the two
attributes. ``BaseHandler.get_response`` then does ``response._resource_closers.append(...)`` on
what the chain returned. ``load_middleware`` calls ``adapt_method_mode`` before instantiating the
middleware, and catches ``MiddlewareNotUsed`` with ``logger.debug("MiddlewareNotUsed(%r): %s")``
/ ``logger.debug("MiddlewareNotUsed: %r")`` under ``if settings.DEBUG``.
"""

import asyncio
import gc
import threading
import warnings

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings

import project.middleware_catalogue as catalogue
from harness.spec import (
    Claim,
    NO_CLOSERS,
    SERVERS,
    ServerConfig,
    Statement,
    When,
    asgi_get,
    each_interface,
    get,
    never_awaited,
    serving,
    wsgi_get,
)

CLAIM = Claim(
    id="middleware-capability-flags",
    source="Django docs, Middleware (Asynchronous support)",
    url="https://docs.djangoproject.com/en/5.2/topics/http/middleware/#asynchronous-support",
    claim=(
        "A middleware must declare sync_capable or async_capable, and sync_and_async_middleware "
        "makes any __call__ work under both WSGI and ASGI"
    ),
    statements=[
        Statement(
            "must-declare",
            "A middleware must declare sync_capable or async_capable.",
            "refuted",
            reality=(
                "No flag is needed: without them a middleware is taken as sync_capable = True, "
                "async_capable = False (sync only) and works under WSGI and under ASGI, where "
                "Django calls it on a worker thread, off the loop."
            ),
        ),
        Statement(
            "both-false-rejected",
            "A middleware that declares both flags False is rejected: building the handler "
            "raises RuntimeError('Middleware <path> must have at least one of "
            "sync_capable/async_capable set to True.').",
            "holds",
            claimed=False,
        ),
        Statement(
            "hybrid-any-call",
            "sync_and_async_middleware makes any __call__, an async def one included, work under "
            "both WSGI and ASGI.",
            "refuted",
            when=[
                When(
                    "holds",
                    interface="asgi",
                    why="Django calls a hybrid as the async layer below it is, on the loop",
                ),
            ],
            reality=(
                "The decorator only sets sync_capable and async_capable to True. Under WSGI "
                "Django then calls the middleware synchronously, so an async def __call__ (or a "
                "factory returning an async def) returns an un-awaited coroutine: the request "
                "fails with AttributeError: 'coroutine' object has no attribute "
                "'_resource_closers' (HTTP 500 from a server) and a 'coroutine ... was never "
                "awaited' RuntimeWarning. Under ASGI it happens to work, on the event loop."
            ),
        ),
        Statement(
            "documented-branch-works",
            "The documented pattern, branching on iscoroutinefunction(get_response) to return a "
            "sync or an async callable, works under both WSGI and ASGI, unadapted.",
            "holds",
            claimed=False,
        ),
        Statement(
            "not-used-dropped",
            "A middleware whose __init__ raises MiddlewareNotUsed is left out of the stack, and "
            "Django logs that (at DEBUG, on django.request) only with DEBUG=True.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.base.BaseHandler.load_middleware: getattr(mw, 'sync_capable', True), "
        "getattr(mw, 'async_capable', False), the RuntimeError, `elif not handler_is_async and "
        "middleware_can_sync: middleware_is_async = False`, MiddlewareNotUsed caught with "
        "logger.debug under settings.DEBUG; django.utils.decorators.sync_and_async_middleware sets "
        "the attributes; BaseHandler.get_response touches response._resource_closers."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/http/middleware/#asynchronous-support",
    question=(
        "Must middleware declare its capabilities, and does sync_and_async_middleware make any "
        "__call__ work?"
    ),
    topic="middleware",
    code=(
        "project.middleware_catalogue.HybridAsyncCall",
        "project.middleware_catalogue.hybrid_async_function",
    ),
    instead=(
        "project.middleware_catalogue.documented_hybrid",
        "project.middleware_catalogue.SyncTrail",
    ),
)
must_declare = CLAIM.statement("must-declare")
both_false = CLAIM.statement("both-false-rejected")
hybrid_any_call = CLAIM.statement("hybrid-any-call")
documented_branch = CLAIM.statement("documented-branch-works")
not_used = CLAIM.statement("not-used-dropped")

M = "project.middleware_catalogue."
PROBE = "/middleware-probe/"
NOT_USED_REASON = "not needed in this deployment"



def build(interface, middleware, debug=False):
    with override_settings(MIDDLEWARE=middleware, DEBUG=debug):
        return {"asgi": ASGIHandler, "wsgi": WSGIHandler}[interface]()


def drive(interface, app, path):
    """One request; also where the handler ran: (hit, handler's thread, handler's loop)."""
    if interface == "wsgi":
        return wsgi_get(app, path), threading.get_ident(), None

    async def one():
        return await asgi_get(app, path), id(asyncio.get_running_loop())

    hit, loop = asyncio.run(one())
    return hit, threading.get_ident(), loop


def place(point, handler_thread, handler_loop):
    """(label, on the handler's thread?, in the handler's loop / no loop)."""
    thread = "handler's thread" if point["thread"] == handler_thread else "other thread"
    if point["loop"] is None:
        loop = "no loop"
    else:
        loop = "handler's loop" if point["loop"] == handler_loop else "other loop"
    return (point["at"], thread, loop)


# --- the flags ------------------------------------------------------------------------------


@both_false
@each_interface
def test_both_flags_false_fails_when_the_handler_is_built(interface):
    with pytest.raises(RuntimeError) as raised:
        build(interface, [M + "NeitherCapable"])
    assert str(raised.value) == (
        f"Middleware {M}NeitherCapable must have at least one of sync_capable/async_capable set "
        "to True."
    )


# Where a middleware without flags runs: always synchronously (no loop), under ASGI off the loop.
UNFLAGGED = {
    "wsgi": [("SyncTrail before", "handler's thread", "no loop"),
             ("SyncTrail after", "handler's thread", "no loop")],
    "asgi": [("SyncTrail before", "other thread", "no loop"),
             ("SyncTrail after", "other thread", "no loop")],
}  # fmt: skip


@must_declare
@each_interface
def test_no_flags_means_sync_only_and_works_everywhere(interface):
    assert not hasattr(catalogue.SyncTrail, "sync_capable")
    assert not hasattr(catalogue.SyncTrail, "async_capable")
    app = build(interface, [M + "SyncTrail"])
    hit, thread, loop = drive(interface, app, PROBE + "sync/")
    assert hit.status == 200
    middleware = [place(p, thread, loop) for p in catalogue.trail(hit) if p["at"] != "view"]
    assert middleware == UNFLAGGED[interface]


# --- sync_and_async_middleware with an async __call__ ----------------------------------------

HYBRIDS = {
    "HybridAsyncCall": never_awaited("HybridAsyncCall.__call__"),
    # convert_exception_to_response's async wrapper keeps the wrapped function's name (@wraps).
    "hybrid_async_function": never_awaited("hybrid_async_function.<locals>.middleware"),
}
hybrids = pytest.mark.parametrize("hybrid", HYBRIDS)
views = pytest.mark.parametrize("view", ["async", "sync"])


@hybrid_any_call
@hybrids
def test_the_decorator_only_sets_both_flags(hybrid):
    middleware = getattr(catalogue, hybrid)
    assert (middleware.sync_capable, middleware.async_capable) == (True, True)


@hybrid_any_call
@pytest.mark.interface("wsgi")
@hybrids
@views
def test_an_async_call_declared_hybrid_fails_under_wsgi(hybrid, view):
    app = build("wsgi", [M + hybrid])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AttributeError) as raised:
            wsgi_get(app, f"{PROBE}{view}/")
        assert str(raised.value) == NO_CLOSERS
        del raised  # its traceback keeps the un-awaited coroutine alive
        gc.collect()
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == [HYBRIDS[hybrid]]


@hybrid_any_call
@pytest.mark.interface("asgi")
@hybrids
@views
def test_an_async_call_declared_hybrid_runs_on_the_loop_under_asgi(hybrid, view, request_log):
    app = build("asgi", [M + hybrid], debug=True)
    assert request_log() == []  # nothing adapted for it
    hit, thread, loop = drive("asgi", app, f"{PROBE}{view}/")
    assert hit.status == 200
    middleware = [place(p, thread, loop) for p in catalogue.trail(hit) if p["at"] != "view"]
    assert middleware == [(f"{hybrid} before", "handler's thread", "handler's loop"),
                          (f"{hybrid} after", "handler's thread", "handler's loop")]  # fmt: skip


# --- the documented pattern ------------------------------------------------------------------

DOCUMENTED = {
    "wsgi": ("documented_hybrid sync", "handler's thread", "no loop"),
    "asgi": ("documented_hybrid async", "handler's thread", "handler's loop"),
}


@documented_branch
@each_interface
@views
def test_the_documented_branch_works_under_both_unadapted(interface, view, request_log):
    app = build(interface, [M + "documented_hybrid"], debug=True)
    assert request_log() == []
    hit, thread, loop = drive(interface, app, f"{PROBE}{view}/")
    assert hit.status == 200
    assert place(catalogue.trail(hit)[0], thread, loop) == DOCUMENTED[interface]


# --- MiddlewareNotUsed -----------------------------------------------------------------------

QUIET, REASONED, SYNC_TRAIL = M + "NotUsedQuietly", M + "NotUsedWithReason", M + "SyncTrail"
NOT_USED_QUIET = f"MiddlewareNotUsed: {QUIET!r}"
NOT_USED_REASONED = f"MiddlewareNotUsed({REASONED!r}): {NOT_USED_REASON}"


def adapted(path):
    return f"Asynchronous handler adapted for middleware {path}."


# Built innermost first: NotUsedQuietly, NotUsedWithReason, then SyncTrail.
NOT_USED_LOG = {
    ("wsgi", False): [],
    ("asgi", False): [],
    ("wsgi", True): [NOT_USED_QUIET, NOT_USED_REASONED],
    # Each dropped sync middleware is adapted for, and that logged, before its __init__ raises.
    ("asgi", True): [adapted(QUIET), NOT_USED_QUIET, adapted(REASONED), NOT_USED_REASONED,
                     adapted(SYNC_TRAIL)],
}  # fmt: skip


@not_used
@pytest.mark.parametrize("interface, debug", NOT_USED_LOG,
                         ids=[f"{i}-debug={d}" for i, d in NOT_USED_LOG])  # fmt: skip
def test_middleware_not_used_is_dropped_and_logged_only_with_debug(interface, debug, request_log):
    app = build(interface, [SYNC_TRAIL, REASONED, QUIET], debug=debug)
    expected = NOT_USED_LOG[(interface, debug)]
    assert request_log() == [("django.request", "DEBUG", message) for message in expected]
    hit, _, _ = drive(interface, app, PROBE + "async/")
    assert hit.status == 200
    assert [p["at"] for p in catalogue.trail(hit)] == ["SyncTrail before", "view", "SyncTrail after"]


# --- on real servers ------------------------------------------------------------------------


@hybrid_any_call
@serving(*SERVERS, config=ServerConfig(stack="catalogue-hybrid-async-call"))
def test_an_async_call_declared_hybrid_on_a_server(server, evidence):
    hit = get(server.url, PROBE + "async/")
    if server.kind.interface == "asgi":
        assert hit.status == 200
        before = catalogue.trail(hit)[0]
        assert (before["at"], before["loop"] is not None) == ("HybridAsyncCall before", True)
    else:
        assert hit.status == 500
        assert f"AttributeError: {NO_CLOSERS}" in server.output()
    evidence(f"{server.name} HybridAsyncCall", status=hit.status)


CAPABILITIES_LOG = {
    "wsgi": [f"MiddlewareNotUsed({M + 'DebugRequestLogToStderr'!r}): "
             f"{catalogue.DebugRequestLogToStderr.REASON}", NOT_USED_QUIET, NOT_USED_REASONED],
    "asgi": [f"MiddlewareNotUsed({M + 'DebugRequestLogToStderr'!r}): "
             f"{catalogue.DebugRequestLogToStderr.REASON}",
             adapted(QUIET), NOT_USED_QUIET, adapted(REASONED), NOT_USED_REASONED],
}  # fmt: skip


CAPABILITIES = ServerConfig(stack="catalogue-capabilities", debug=True)


@documented_branch
@serving("uvicorn", "gunicorn-gthread", config=CAPABILITIES)
def test_documented_pattern_and_not_used_on_a_server(server):
    hit = get(server.url, PROBE + "async/")
    assert hit.status == 200
    branch = {"asgi": "documented_hybrid async", "wsgi": "documented_hybrid sync"}
    assert catalogue.trail(hit)[0]["at"] == branch[server.kind.interface]
    logged = catalogue.DebugRequestLogToStderr.lines(server.output())
    assert logged == [f"django.request DEBUG {m}" for m in CAPABILITIES_LOG[server.kind.interface]]
