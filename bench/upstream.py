"""The "external API" the benchmark's views call: a tiny raw ASGI app that answers after a fixed
delay (``?ms=``). Served by uvicorn in its own process, so its event loop never competes with the
load generator or with the server under test."""

import asyncio
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/__spec__/ready/":
        import json
        import os

        body = json.dumps({"token": os.environ.get("SPEC_TOKEN", "")}).encode()
    else:
        delay = int(parse_qs(scope["query_string"].decode()).get("ms", ["50"])[0])
        await asyncio.sleep(delay / 1000)
        body = b'{"upstream": "ok"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
