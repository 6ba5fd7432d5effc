"""A view that returns a coroutine.

Claimed (Django docs, Asynchronous support, "Async views"): "A view may return a coroutine; Django
awaits it".

What is true: only in the sense the docs mean, "make the callable part of the view return a
coroutine", and only when Django can tell beforehand. Django decides once, by looking at the view
function, whether to await what it returns: an ``async def`` view, or a ``def`` marked with
``markcoroutinefunction``, is called and the coroutine that call returns is awaited (200, the
coroutine's body runs). A coroutine handed back as the *result* is never awaited, in both ways
people write it (project/views/view_kinds.py):

- an ``async def`` view that does ``return greeting(request)`` without ``await``;
- a plain ``def`` view that returns ``greeting(request)``.

Both fail the same way under WSGI and ASGI, in process and on every server: ``ValueError("The view
project.views.view_kinds.<name> didn't return an HttpResponse object. It returned an unawaited
coroutine instead. You may need to add an 'await' into your view.")``, raised by
``BaseHandler.check_response``, logged by ``django.request`` as "Internal Server Error: <path>",
turned into HTTP 500. ``greeting``'s body never runs, and Python reports "coroutine 'greeting' was
never awaited" once the coroutine is collected.

The other guard, ``RuntimeError("Response is still a coroutine.")`` at the end of
``BaseHandler._get_response_async``, is unreachable from a view's return value (``check_response``
raises first). Two things reach it, under ASGI only, both after ``check_response``:

- a response whose sync ``render()`` (as TemplateResponse has) hands back a coroutine;
- a middleware's ``process_exception()`` that hands back a coroutine when a response's
  ``render()`` raised.

Under WSGI nothing checks either result, and Django fails further on, outside its exception
handling, with ``AttributeError: 'coroutine' object has no attribute '_resource_closers'`` (for
``render()``'s coroutine, the WSGI server answers the 500 itself).

A ``process_exception()`` coroutine when the *view* raised meets ``check_response`` instead, under
WSGI and ASGI alike: the same ``ValueError`` as above, naming the view that raised ("The view
project.views.view_kinds.view_raises didn't return an HttpResponse object. It returned an
unawaited coroutine instead. ..."). The middleware's kind makes no difference
(project/middleware.py): a synchronous one whose ``def process_exception`` returns a coroutine,
or an async-only one whose ``async def process_exception`` returns one without awaiting it. Every
process_exception is adapted to sync (``BaseHandler.load_middleware``: ``adapt_method_mode(False,
...)``); an ``async def`` one is wrapped in ``async_to_sync``, which awaits it and hands back what
it returned, here the inner coroutine. Its body never runs, and Python reports it never awaited.

Why: ``BaseHandler._get_response`` wraps the view in ``async_to_sync`` only if
``iscoroutinefunction(view)``; ``_get_response_async`` wraps it in ``sync_to_async`` unless it is.
Either way the result is passed to ``check_response``, which raises ``ValueError`` for ``None`` or
``asyncio.iscoroutine(response)``; ``convert_exception_to_response`` (django/core/handlers/
exception.py) turns that into the 500 and logs it via ``log_response``. When the view raises,
``process_exception_by_middleware`` returns the first truthy thing a process_exception returns (a
coroutine object is truthy), and that too goes through ``check_response`` as the view's result.
What ``render()`` returns, or ``process_exception_by_middleware`` when ``render()`` raised, is
checked only by ``_get_response_async``'s last ``if asyncio.iscoroutine(response)``; the sync
``_get_response`` has no such check.
"""

import asyncio
import html

import pytest

from harness.spec import (
    Claim,
    NO_CLOSERS,
    SERVERS,
    STILL_A_COROUTINE,
    ServerConfig,
    Statement,
    asgi_get,
    each_interface,
    forget_exception,
    get,
    get_with_output,
    handler,
    never_awaited,
    serve_once,
    server_error_record,
    serving,
    unawaited_coroutine,
)
from project import middleware
from project.views import view_kinds

CLAIM = Claim(
    id="view-returns-coroutine",
    source="Django docs, Asynchronous support (Async views)",
    url="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    claim="A view may return a coroutine; Django awaits it",
    statements=[
        Statement(
            "async-view-awaited",
            "When Django knows a view to be async (async def, or a def marked with "
            "asgiref.sync.markcoroutinefunction), it awaits the coroutine that calling the view "
            "returns.",
            "holds",
        ),
        Statement(
            "returned-coroutine-awaited",
            "A coroutine that a view returns as its result (an async view returning one without "
            "awaiting it, or a plain def returning one) is awaited by Django.",
            "refuted",
            reality=(
                "Django never awaits it: BaseHandler.check_response raises ValueError(\"The view "
                "<module>.<name> didn't return an HttpResponse object. It returned an unawaited "
                "coroutine instead. You may need to add an 'await' into your view.\"), logged "
                "and turned into HTTP 500, under WSGI and ASGI, in process and on every server. "
                "The coroutine's body never runs, and Python reports it never awaited."
            ),
        ),
        Statement(
            "render-coroutine-awaited",
            "A coroutine handed back through the response (a response whose render() returns "
            "one) is awaited by Django.",
            "refuted",
            reality=(
                "Never awaited, and HTTP 500 either way. Under ASGI "
                "BaseHandler._get_response_async's last guard raises RuntimeError('Response is "
                "still a coroutine.'). Under WSGI nothing checks render()'s result: "
                "AttributeError(\"'coroutine' object has no attribute "
                "'_resource_closers'\") escapes Django's exception handling and the WSGI server "
                "answers the 500 itself."
            ),
            claimed=False,
        ),
        Statement(
            "exception-middleware-coroutine-awaited",
            "A coroutine that a middleware's process_exception() hands back (a def returning "
            "one, or an async def returning one without awaiting it) is awaited by Django.",
            "refuted",
            reality=(
                "Never awaited, and the request fails either way. When the view raised, "
                "BaseHandler.check_response takes the coroutine for the view's result: "
                "ValueError(\"The view <module>.<name> didn't return an HttpResponse object. It "
                "returned an unawaited coroutine instead. You may need to add an 'await' into "
                "your view.\"), naming the view that raised; HTTP 500, under WSGI and ASGI. When "
                "a response's render() raised, under ASGI BaseHandler._get_response_async's last "
                "guard raises RuntimeError('Response is still a coroutine.') (HTTP 500); under "
                "WSGI AttributeError(\"'coroutine' object has no attribute '_resource_closers'\") "
                "escapes WSGIHandler. The coroutine's body never runs, and Python reports it never "
                "awaited."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.base.BaseHandler._get_response / _get_response_async choose "
        "async_to_sync / sync_to_async by iscoroutinefunction(view), then call "
        "BaseHandler.check_response (ValueError for None or asyncio.iscoroutine), also on what "
        "process_exception_by_middleware returns when the view raised; _get_response_async's "
        "final `if asyncio.iscoroutine(response)` guard follows render() and the "
        "process_exception_by_middleware called when render() raised. "
        "BaseHandler.load_middleware adapts every process_exception with "
        "adapt_method_mode(False, ...) (async_to_sync for an async def)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    question="Does Django await a coroutine that a view returns?",
    topic="views",
    code=(
        "project.views.view_kinds.async_returns_coroutine",
        "project.views.view_kinds.sync_returns_coroutine",
    ),
    instead=(
        "project.views.view_kinds.async_awaits",
        "project.views.view_kinds.marked_returns_coroutine",
    ),
)
async_view_awaited = CLAIM.statement("async-view-awaited")
returned_coroutine_awaited = CLAIM.statement("returned-coroutine-awaited")
render_coroutine_awaited = CLAIM.statement("render-coroutine-awaited")
exception_middleware_coroutine_awaited = CLAIM.statement("exception-middleware-coroutine-awaited")

BASE = "/view-kinds/coroutine/"
RETURNED = ["async-returns-coroutine", "sync-returns-coroutine"]  # the claim, as people write it
AWAITED = ["async-awaits", "marked-returns-coroutine"]  # what Django does await
NEVER_AWAITED = never_awaited("greeting")


def unawaited_message(case):
    return unawaited_coroutine("project.views.view_kinds." + case.replace("-", "_"))




@pytest.fixture
def greeted():
    """Paths whose ``greeting`` coroutine body actually ran."""
    view_kinds.GREETED.clear()
    yield view_kinds.GREETED
    view_kinds.GREETED.clear()


def last_frame(exc_info):
    tb = exc_info[2]
    while tb.tb_next:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_name, tb.tb_frame.f_code.co_filename


@returned_coroutine_awaited
@each_interface
@pytest.mark.parametrize("case", RETURNED)
def test_a_returned_coroutine_is_never_awaited(interface, case, greeted, caplog, runtime_warnings):
    caplog.set_level("ERROR", logger="django.request")
    path = BASE + case + "/"
    hit = serve_once(interface, handler(interface), path)
    assert hit.status == 500
    assert b"<title>Server Error (500)</title>" in hit.body  # django.views.defaults.server_error
    record = server_error_record(caplog, path)
    assert record.exc_info[0] is ValueError
    assert str(record.exc_info[1]) == unawaited_message(case)
    name, filename = last_frame(record.exc_info)
    assert (name, filename.endswith("django/core/handlers/base.py")) == ("check_response", True)
    assert greeted == []  # the coroutine's body never ran
    forget_exception(caplog)
    assert runtime_warnings() == [NEVER_AWAITED]


@async_view_awaited
@each_interface
@pytest.mark.parametrize("case", AWAITED)
def test_a_view_known_to_be_async_is_awaited(interface, case, greeted, runtime_warnings):
    path = BASE + case + "/"
    hit = serve_once(interface, handler(interface), path)
    assert (hit.status, hit.json()) == (200, {"greeting": "hello"})
    assert greeted == [path]
    assert runtime_warnings(expected=False) == []


@render_coroutine_awaited
@pytest.mark.interface("asgi")
async def test_asgi_reaches_the_still_a_coroutine_guard_through_render(
    caplog, greeted, runtime_warnings
):
    caplog.set_level("ERROR", logger="django.request")
    path = BASE + "deferred-render/"
    hit = await asgi_get(handler("asgi"), path)
    assert hit.status == 500
    record = server_error_record(caplog, path)
    assert record.exc_info[0] is RuntimeError
    assert str(record.exc_info[1]) == STILL_A_COROUTINE
    assert last_frame(record.exc_info)[0] == "_get_response_async"
    assert greeted == []
    forget_exception(caplog)
    # Let the loop run what is left of the finished task (its callbacks still hold its traceback,
    # and with it the coroutine) before looking.
    for attempt in range(50):
        await asyncio.sleep(0.01 if attempt else 0)
        if runtime_warnings(expected=False):
            break
    assert runtime_warnings() == [NEVER_AWAITED]


@render_coroutine_awaited
@pytest.mark.interface("wsgi")
def test_wsgi_lets_a_coroutine_from_render_escape_as_attribute_error(greeted, runtime_warnings):
    with pytest.raises(AttributeError) as raised:
        serve_once("wsgi", handler("wsgi"), BASE + "deferred-render/")
    assert str(raised.value) == NO_CLOSERS
    assert last_frame((None, None, raised.tb))[0] == "get_response"  # BaseHandler.get_response
    assert greeted == []
    del raised
    assert runtime_warnings() == [NEVER_AWAITED]


# With DEBUG on, Django's own logging prints the error to the server's output (and the technical
# 500 page carries it), so each server's 500 can be traced to the exact exception.
@returned_coroutine_awaited
@serving(*SERVERS, config=ServerConfig(debug=True))
@pytest.mark.parametrize("case", RETURNED)
def test_a_server_answers_500_with_the_check_response_error(server, case, evidence):
    path = BASE + case + "/"
    hit, output = get_with_output(server, path)
    assert hit.status == 500
    assert unawaited_message(case) in html.unescape(hit.body.decode())
    assert f"ValueError: {unawaited_message(case)}" in output
    evidence(f"{server.name} {case}", status=hit.status, error="ValueError")


@render_coroutine_awaited
@serving(*SERVERS, config=ServerConfig(debug=True))
def test_a_server_answers_500_for_a_coroutine_from_render(server, evidence):
    hit, output = get_with_output(server, BASE + "deferred-render/")
    assert hit.status == 500
    expected = {
        "asgi": f"RuntimeError: {STILL_A_COROUTINE}",  # Django's own 500
        "wsgi": f"AttributeError: {NO_CLOSERS}",  # escaped Django: the server's 500
    }
    interface = SERVERS[server.name].interface
    assert expected[interface] in output
    evidence(f"{server.name} deferred render", status=hit.status, error=expected[interface])


@async_view_awaited
@serving(*SERVERS, config=ServerConfig(debug=True))
@pytest.mark.parametrize("case", AWAITED)
def test_a_server_awaits_a_view_known_to_be_async(server, case):
    hit = get(server.url, BASE + case + "/")
    assert (hit.status, hit.json()) == (200, {"greeting": "hello"})


# --- a coroutine from a middleware's process_exception() --------------------------------------

# Stack -> the middleware class in it (project/middleware.py).
EXCEPTION_MIDDLEWARE = {
    "process-exception-coroutine-sync": middleware.SyncProcessExceptionReturnsCoroutine,
    "process-exception-coroutine-async": middleware.AsyncProcessExceptionReturnsCoroutine,
}
RAISES = ["view-raises", "async-view-raises"]


@pytest.fixture(params=list(EXCEPTION_MIDDLEWARE))
def exception_middleware(request):
    """(stack, class): what the class's process_exception() saw and which coroutine bodies ran."""
    cls = EXCEPTION_MIDDLEWARE[request.param]
    cls.SEEN.clear()
    cls.HANDLED.clear()
    yield request.param, cls
    cls.SEEN.clear()
    cls.HANDLED.clear()


def handled_never_awaited(cls):
    return never_awaited(cls.handled.__qualname__)


@exception_middleware_coroutine_awaited
@each_interface
@pytest.mark.parametrize("case", RAISES)
def test_a_process_exception_coroutine_after_the_view_raised_meets_check_response(
    interface, case, exception_middleware, caplog, runtime_warnings
):
    stack, cls = exception_middleware
    caplog.set_level("ERROR", logger="django.request")
    path = BASE + case + "/"
    hit = serve_once(interface, handler(interface, stack), path)
    assert hit.status == 500
    assert b"<title>Server Error (500)</title>" in hit.body  # django.views.defaults.server_error
    record = server_error_record(caplog, path)
    # Blames the view, which raised rather than returned.
    assert (record.exc_info[0], str(record.exc_info[1])) == (ValueError, unawaited_message(case))
    name, filename = last_frame(record.exc_info)
    assert (name, filename.endswith("django/core/handlers/base.py")) == ("check_response", True)
    assert (cls.SEEN, cls.HANDLED) == (["the view failed"], [])  # called once; body never ran
    forget_exception(caplog)
    assert runtime_warnings() == [handled_never_awaited(cls)]


@exception_middleware_coroutine_awaited
@pytest.mark.interface("asgi")
def test_asgi_reaches_the_still_a_coroutine_guard_through_process_exception_after_render(
    exception_middleware, caplog, runtime_warnings
):
    stack, cls = exception_middleware
    caplog.set_level("ERROR", logger="django.request")
    path = BASE + "render-raises/"
    hit = serve_once("asgi", handler("asgi", stack), path)
    assert hit.status == 500
    assert b"<title>Server Error (500)</title>" in hit.body
    record = server_error_record(caplog, path)
    assert (record.exc_info[0], str(record.exc_info[1])) == (RuntimeError, STILL_A_COROUTINE)
    assert last_frame(record.exc_info)[0] == "_get_response_async"
    assert (cls.SEEN, cls.HANDLED) == (["render() failed"], [])
    forget_exception(caplog)
    assert runtime_warnings() == [handled_never_awaited(cls)]


@exception_middleware_coroutine_awaited
@pytest.mark.interface("wsgi")
def test_wsgi_lets_a_process_exception_coroutine_after_render_escape(
    exception_middleware, runtime_warnings
):
    stack, cls = exception_middleware
    with pytest.raises(AttributeError) as raised:
        serve_once("wsgi", handler("wsgi", stack), BASE + "render-raises/")
    assert str(raised.value) == NO_CLOSERS
    assert last_frame((None, None, raised.tb))[0] == "get_response"  # BaseHandler.get_response
    assert (cls.SEEN, cls.HANDLED) == (["render() failed"], [])
    del raised
    assert runtime_warnings() == [handled_never_awaited(cls)]
