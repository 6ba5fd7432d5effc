"""Django's handlers driven in this process, the way a server drives them.

ASGI: each request gets its own scope and its own application task, with ``receive``/``send``
queues, as asgiref's ``ApplicationCommunicator`` (used by Django's tests/asgi/tests.py) does.
WSGI: a PEP 3333 environ and ``start_response``, as wsgiref builds them.

``handler(interface, stack)`` builds a fresh ``ASGIHandler``/``WSGIHandler`` with a chosen middleware
stack. Both load their middleware in ``__init__`` (BaseHandler.load_middleware), so building one is
what "server start" means for middleware.
"""

import asyncio
import threading
import time
import wsgiref.util
from contextlib import contextmanager

import pytest
from asgiref.sync import SyncToAsync

from harness.probe import Hit

# One test per handler, for a test that takes ``interface`` ("asgi" or "wsgi"): ``@each_interface``.
each_interface = pytest.mark.parametrize("interface", ["asgi", "wsgi"])


def asgiref_shared_thread():
    """asgiref's one process-wide thread (``SyncToAsync.single_thread_executor``'s), where
    thread-sensitive calls go when no request context or outer async_to_sync claims them. Its
    name, ThreadPoolExecutor-<n>_0, has the form of any one-thread executor's."""
    return SyncToAsync.single_thread_executor.submit(threading.current_thread).result()


def http_scope(path, query="", *, method="GET"):
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def asgi_get(app, path, query="", timeout=5, *, method="GET"):
    """One request through an ASGI app, as a server does it: its own scope, its own task.

    (asgiref's ApplicationCommunicator does the same, but reports an exception raised by the app
    only after its receive timeout; this driver reports it as soon as the app's task ends.)
    An exception the app raises propagates to the caller.
    """
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    start = time.monotonic_ns()
    task = asyncio.ensure_future(app(http_scope(path, query, method=method), inbox.get, outbox.put))
    try:
        head, body = None, b""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            getter = asyncio.ensure_future(outbox.get())
            remaining = deadline - asyncio.get_running_loop().time()
            await asyncio.wait({getter, task}, timeout=remaining, return_when="FIRST_COMPLETED")
            if not getter.done():
                getter.cancel()
                if task.done():
                    task.result()  # the app's own exception, if it raised
                    raise AssertionError(f"ASGI app returned before completing a response to {path}")
                raise TimeoutError(f"no response to {path} within {timeout}s")
            message = getter.result()
            if message["type"] == "http.response.start":
                head = message
            elif message["type"] == "http.response.body":
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        end = time.monotonic_ns()
        await asyncio.wait_for(task, timeout)
    finally:
        if not task.done():
            task.cancel()
    headers = {k.decode().lower(): v.decode() for k, v in head["headers"]}
    return Hit(head["status"], headers, body, start, end)


def wsgi_get(app, path, query="", *, method="GET"):
    environ = {}
    wsgiref.util.setup_testing_defaults(environ)
    environ.update(
        PATH_INFO=path, QUERY_STRING=query, HTTP_HOST="127.0.0.1", REQUEST_METHOD=method
    )
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=int(status.split()[0]), headers=headers)

    start = time.monotonic_ns()
    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    headers = {k.lower(): v for k, v in started["headers"]}
    return Hit(started["status"], headers, body, start, time.monotonic_ns())


def serve_once(interface, app, path, query="", *, method="GET"):
    """One request from a plain thread (no running loop), as a server's worker would make it.

    WSGI: called directly. ASGI: on a fresh event loop in this thread, as an ASGI server runs it.
    """
    if interface == "wsgi":
        return wsgi_get(app, path, query, method=method)
    return asyncio.run(asgi_get(app, path, query, method=method))


def with_cookie(app, interface, cookie):
    """``app`` as a client that sends ``Cookie: <cookie>`` sees it (``None``: no cookie): the
    header is added to each ASGI scope / WSGI environ."""
    if cookie is None:
        return app
    if interface == "asgi":

        async def asgi_app(scope, receive, send):
            headers = [*scope["headers"], (b"cookie", cookie.encode())]
            return await app(dict(scope, headers=headers), receive, send)

        return asgi_app

    def wsgi_app(environ, start_response):
        environ["HTTP_COOKIE"] = cookie
        return app(environ, start_response)

    return wsgi_app


def answered(hit, caplog):
    """The JSON of a 200; otherwise fail naming what Django logged for the request."""
    if hit.status != 200:
        logged = [(r.exc_info[0].__name__, str(r.exc_info[1])) if r.exc_info else r.getMessage()
                  for r in caplog.records if r.name == "django.request"]  # fmt: skip
        raise AssertionError(f"status {hit.status}, not 200; django.request logged {logged}")
    return hit.json()


def nothing_logged(caplog):
    return [r for r in caplog.records if r.name == "django.request"] == []


def forget_exception(caplog):
    """Drop the tracebacks of the test's log records: a logged traceback keeps the view's frames,
    and with them an un-awaited coroutine, alive, and Python reports it never awaited only once
    it is collected (the ``runtime_warnings`` fixture collects)."""
    for record in caplog.records:
        record.exc_info = None


@contextmanager
def middleware_stack(stack):
    from django.test import override_settings

    from project.middleware import STACKS

    with override_settings(MIDDLEWARE=STACKS[stack]):
        yield


def handler(interface, stack="none"):
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    with middleware_stack(stack):
        return {"asgi": ASGIHandler, "wsgi": WSGIHandler}[interface]()


def assert_view_outcome(interface, path, status, body, caplog, error=None, query=""):
    """Serve ``path`` once and check the whole outcome: a 200 with ``body`` and nothing logged,
    or ``status`` with exactly one "Internal Server Error" record carrying ``error``, an
    ``(exception type, message)`` pair. Returns the hit."""
    caplog.set_level("ERROR", logger="django.request")
    hit = serve_once(interface, handler(interface), path, query)
    assert hit.status == status
    if status == 200:
        assert hit.json() == body
        assert [r for r in caplog.records if r.name == "django.request"] == []
    else:
        record = server_error_record(caplog, path)
        assert (record.exc_info[0], str(record.exc_info[1])) == error
    return hit


def server_error_record(caplog, path):
    """The one record Django logged for a request that became its 500 page."""
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == f"Internal Server Error: {path}"
    return record

