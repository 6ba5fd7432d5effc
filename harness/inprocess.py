"""Django's handlers driven in this process, the way a server drives them.

ASGI: each request gets its own scope and its own application instance task, through asgiref's
``ApplicationCommunicator`` (what Django's own tests/asgi/tests.py uses). WSGI: a PEP 3333 environ
and ``start_response``, as wsgiref builds them.

``handler(interface, stack)`` builds a fresh ``ASGIHandler``/``WSGIHandler`` with a chosen middleware
stack. Both load their middleware in ``__init__`` (BaseHandler.load_middleware), so building one is
what "server start" means for middleware.
"""

import time
import wsgiref.util
from contextlib import contextmanager

from asgiref.testing import ApplicationCommunicator

from harness.probe import Hit


def http_scope(path, query=""):
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def asgi_get(app, path, query="", timeout=5):
    """One request through an ASGI app; exceptions the app raises propagate to the caller."""
    communicator = ApplicationCommunicator(app, http_scope(path, query))
    start = time.monotonic_ns()
    await communicator.send_input({"type": "http.request", "body": b""})
    head = await communicator.receive_output(timeout)
    body = b""
    while True:
        message = await communicator.receive_output(timeout)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(timeout)
    headers = {k.decode().lower(): v.decode() for k, v in head["headers"]}
    return Hit(head["status"], headers, body, start, time.monotonic_ns())


def wsgi_get(app, path, query=""):
    environ = {}
    wsgiref.util.setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, QUERY_STRING=query, HTTP_HOST="127.0.0.1")
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
