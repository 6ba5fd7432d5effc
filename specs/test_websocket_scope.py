"""WebSockets and plain Django (no Channels) on every ASGI server.

Claimed (errorhandle.ai, "How does Django work with websocket server and webserver
simultaneously"): "with the introduction of ASGI (Asynchronous Server Gateway Interface), Django
can now handle both HTTP and WebSocket protocols simultaneously." Users who deployed that way met
the answer in their logs (django/channels issue 1426, daphne issue 292: "Django can only handle
ASGI/HTTP connections, not websocket."), and Channels' maintainer put it plainly: "Django's ASGI
handler does not support web sockets." (carltongibson, django/channels issue 1426).

What is true, on Django 4.2 to 6.1: ``get_asgi_application()`` serves ``http`` scopes only. For a
``websocket`` scope ``ASGIHandler`` raises ``ValueError: Django can only handle ASGI/HTTP
connections, not websocket.`` before it calls ``receive()`` or ``send()``: it neither accepts nor
closes the socket. What the client sees is the server's doing, and never ``101 Switching
Protocols``:

- uvicorn: ``HTTP/1.1 500`` with ``Internal Server Error`` (text/plain) and ``connection: close``;
- hypercorn: ``HTTP/1.1 500`` with an empty body and ``connection: close``;
- daphne and runserver with daphne: ``HTTP/1.1 500 Internal server error`` and nothing else (no
  header), then the connection closes; it comes up to a second late, because daphne notices a
  dead application only when its ``Server.application_checker`` runs, once a second;
- granian, as the spec runs it (``--no-ws``), does not speak WebSocket at all: it hands the upgrade
  request to Django as an ordinary ``http`` request, and the view at that path answers ``200``;
  the connection is never upgraded.

Each server that speaks WebSocket logs the ValueError with its traceback.

How the spec tells: a minimal RFC 6455 handshake (``Upgrade: websocket``, a ``Sec-WebSocket-Key``)
on a raw socket, to a path whose HTTP view reports the scope type and Upgrade header it saw; the
test reads the whole answer, exactly. In process, ``ASGIHandler`` is called with a websocket scope
and ``receive``/``send`` that record every call.

Why: ``django.core.handlers.asgi.ASGIHandler.__call__`` checks ``scope["type"] != "http"`` first
(``# FIXME: Allow to override this.``) and raises. uvicorn's
``protocols.websockets.wsproto_impl.WSProtocol.run_asgi`` (wsproto: ``websockets`` is not
installed) calls ``send_500_response`` when the application raised before accepting; hypercorn's
``protocol.ws_stream.WSStream.app_send(None)`` (the application ended) sends a 500 while the
handshake is pending; daphne's ``Server.application_checker`` (every second) finds the failed
application future and calls ``WebSocketProtocol.handle_exception``, which denies the pending
handshake with ``ConnectionDeny(code=500, reason="Internal server error")``.
"""

import json
import socket
from urllib.parse import urlsplit

import pytest

from harness.spec import (
    ASGI_SERVERS,
    WEBSOCKET_REJECTED,
    Claim,
    Statement,
    When,
    handler,
    progress,
    read_http_response,
    serving,
)


CLAIM = Claim(
    id="django-asgi-websocket",
    source="errorhandle.ai, How does Django work with websocket server and webserver simultaneously",
    url="https://errorhandle.ai/how-does-django-work-with-websocket-server-and-webserver-simultaneously",
    claim=(
        "with the introduction of ASGI (Asynchronous Server Gateway Interface), Django can now "
        "handle both HTTP and WebSocket protocols simultaneously."
    ),
    statements=[
        Statement(
            "handles-websocket",
            "Django's own ASGI application (get_asgi_application(), without Channels) handles "
            "WebSocket connections.",
            "refuted",
            reality=(
                "For a websocket scope ASGIHandler raises ValueError('Django can only handle "
                "ASGI/HTTP connections, not websocket.') before it calls receive() or send(): it "
                "neither accepts nor closes the connection. WebSockets need Channels (or another "
                "ASGI application routing the websocket scope)."
            ),
        ),
        Statement(
            "handshake-gets-500",
            "A WebSocket client's handshake is answered with HTTP 500, and the server logs "
            "Django's ValueError.",
            "holds",
            when=[
                When(
                    "refuted", servers=("granian",),
                    why="run with --no-ws, granian passes the upgrade request on as plain HTTP",
                ),
            ],
            reality=(
                "granian as the spec runs it (--no-ws) hands the upgrade request to Django as an "
                "ordinary http request: the view at that path answers 200, nothing is logged, "
                "and the connection is never upgraded. Elsewhere the 500 is the server's: uvicorn "
                "sends 'Internal Server Error', hypercorn an empty body, daphne (also under "
                "runserver) a bare status line, up to a second later."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.__call__ raises ValueError for every scope type "
        "but 'http'; the server turns an application that failed before websocket.accept into a "
        "500 (uvicorn WSProtocol.run_asgi/send_500_response, hypercorn WSStream.app_send, daphne "
        "Server.application_checker and WebSocketProtocol.handle_exception)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/howto/deployment/asgi/#the-application-object",
    question="Can Django's own ASGI application handle WebSocket connections?",
    topic="serving",
    code=(
        "project.asgi",
        "specs.test_websocket_scope.test_asgi_handler_rejects_the_websocket_scope",
    ),
    instead=(),
)
handles_websocket = CLAIM.statement("handles-websocket")
handshake_500 = CLAIM.statement("handshake-gets-500")

PATH = "/websocket-scope/page/"

# What each server answers to the handshake: (status line, headers that must be there, body).
ANSWERS = {
    "uvicorn": (
        "HTTP/1.1 500 ",
        {"content-type": "text/plain; charset=utf-8", "connection": "close"},
        b"Internal Server Error",
    ),
    "hypercorn": ("HTTP/1.1 500 ", {"content-length": "0", "connection": "close"}, b""),
    "daphne": ("HTTP/1.1 500 Internal server error", {}, b""),
    "runserver-daphne": ("HTTP/1.1 500 Internal server error", {}, b""),
    "granian": (
        "HTTP/1.1 200 OK",
        {"content-type": "application/json"},
        json.dumps({"scope_type": "http", "upgrade": "websocket"}).encode(),
    ),
}


def handshake(server):
    """Send a WebSocket opening handshake; (status line, headers, body) of the answer."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    with socket.create_connection((host, port), timeout=15) as client:
        client.sendall(
            f"GET {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return read_http_response(client)


@handles_websocket
@pytest.mark.interface("asgi")
async def test_asgi_handler_rejects_the_websocket_scope():
    app = handler("asgi")
    calls = []

    async def receive():
        calls.append("receive")
        return {"type": "websocket.connect"}

    async def send(message):
        calls.append(message)

    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "path": PATH, "raw_path": PATH.encode(),
        "query_string": b"", "root_path": "", "headers": [(b"host", b"127.0.0.1")],
        "scheme": "ws", "subprotocols": [],
    }  # fmt: skip
    with pytest.raises(ValueError) as raised:
        await app(scope, receive, send)
    assert str(raised.value) == WEBSOCKET_REJECTED
    assert calls == []  # neither websocket.accept nor websocket.close: it never speaks the protocol


@handshake_500
@serving(*ASGI_SERVERS)
def test_what_the_websocket_client_gets(server, evidence):
    status, headers, body = handshake(server)
    expected_status, expected_headers, expected_body = ANSWERS[server.name]
    assert status == expected_status  # never "101 Switching Protocols"
    assert {k: headers.get(k) for k in expected_headers} == expected_headers
    assert body == expected_body
    logged = f"ValueError: {WEBSOCKET_REJECTED}"
    if CLAIM.expected("handshake-gets-500", server) == "holds":
        # The server logs it as it fails the handshake; wait for it to reach the log file.
        progress.wait_until(
            lambda: logged in server.output(), progress.Activity(groups=[server.proc.pid])
        )
        assert logged in server.output()
        assert "upgrade" not in headers
    else:
        assert WEBSOCKET_REJECTED not in server.output()
    evidence(server.name, answer=status.strip(), body=body.decode() or "(empty)")
