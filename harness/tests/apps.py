"""Tiny synthetic apps whose concurrency is known by construction, to test the probe on.

Each answers ``/__spec__/ready/`` with the harness's token like the project does, and every other
path by calling the meeting point (``meet`` query parameters, as project/views/serving.py) between
two stamps, in the same headers as project/evidence.py.

- ``serial_asgi``: an ``asyncio.Lock`` admits one request at a time: known serial.
- ``concurrent_asgi``: no lock: known concurrent.
- ``serial_wsgi``/``concurrent_wsgi``: the same two, for WSGI servers.
"""

import asyncio
import json
import os
import socket
import threading
import time
from urllib.parse import parse_qs

from harness.protocol import meet_line


def _meeting_line(query):
    params = {k: v[0] for k, v in parse_qs(query).items()}
    return int(params["meet"]), meet_line(params["group"], params["n"])


def _stamps(enter, exit_):
    return [
        (b"x-spec-enter", str(enter).encode()),
        (b"x-spec-exit", str(exit_).encode()),
        (b"x-spec-thread", str(threading.get_ident()).encode()),
        (b"x-spec-pid", str(os.getpid()).encode()),
        (b"x-spec-cpu", b"1"),
    ]


def _ready_body():
    return json.dumps({"pid": os.getpid(), "token": os.environ.get("SPEC_TOKEN", "")}).encode()


def _asgi(lock):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return  # no lifespan support needed
        if scope["path"] == "/__spec__/ready/":
            body, headers = _ready_body(), []
        else:
            async with lock or _NoLock():
                enter = time.monotonic_ns()
                port, line = _meeting_line(scope["query_string"].decode())
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(line)
                answer = (await reader.readline()).decode().strip()
                writer.close()
                body = json.dumps({"meeting": answer}).encode()
                headers = _stamps(enter, time.monotonic_ns())
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class _NoLock:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


def _wsgi(lock):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/__spec__/ready/":
            start_response("200 OK", [])
            return [_ready_body()]
        with lock or threading.Lock():  # a fresh lock per request locks nothing
            enter = time.monotonic_ns()
            port, line = _meeting_line(environ["QUERY_STRING"])
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(line)
                answer = conn.makefile().readline().strip()
            headers = _stamps(enter, time.monotonic_ns())
        start_response("200 OK", [(k.decode(), v.decode()) for k, v in headers])
        return [json.dumps({"meeting": answer}).encode()]

    return app


serial_asgi = _asgi(asyncio.Lock())
concurrent_asgi = _asgi(None)
serial_wsgi = _wsgi(threading.Lock())
concurrent_wsgi = _wsgi(None)
