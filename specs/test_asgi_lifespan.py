"""Django and the ASGI lifespan protocol, on every ASGI server.

Claimed (encode/uvicorn issue 709, and wherever people wire startup/shutdown hooks to ASGI):
"Django supports the ASGI lifespan protocol".

``ASGIHandler`` serves ``http`` scopes only; a ``lifespan`` scope makes it raise ``ValueError:
Django can only handle ASGI/HTTP connections, not lifespan.``. Servers that send the lifespan scope
by default treat that as "unsupported" and go on serving, each saying so in its own words (uvicorn
at INFO, hypercorn and granian as WARNINGs); daphne never sends one. So nothing breaks, but no
startup or shutdown hook of yours will ever run through lifespan, and the messages users see in
their logs come from this (Django ticket 31508).

Why: ``django.core.handlers.asgi.ASGIHandler.__call__`` checks ``scope["type"] != "http"`` first
and raises. uvicorn's ``LifespanOn.main`` (``--lifespan auto``), hypercorn's ``Lifespan.handle_lifespan``
and granian's ASGI lifespan handler catch the error and disable lifespan for the process.
"""

import pytest

from harness.spec import ASGI_SERVERS, Claim, LIFESPAN_REJECTED, Statement, handler, serving

CLAIM = Claim(
    id="django-asgi-lifespan",
    source="encode/uvicorn issue 709; Django ticket 31508",
    url="https://github.com/encode/uvicorn/issues/709",
    claim="Django supports the ASGI lifespan protocol",
    statements=[
        Statement(
            "supports-lifespan",
            "Django supports the ASGI lifespan protocol.",
            "refuted",
            reality=(
                "ASGIHandler raises ValueError('Django can only handle ASGI/HTTP connections, not "
                "lifespan.') for a lifespan scope and sends nothing, not even "
                "lifespan.startup.failed. uvicorn, hypercorn and granian log that lifespan is "
                "unsupported and serve on; daphne never sends the scope. No lifespan "
                "startup/shutdown hook runs under Django."
            ),
        ),
    ],
    mechanism=(
        "django.core.handlers.asgi.ASGIHandler.__call__ (rejects every scope type but 'http'); "
        "each server's lifespan handler treats the exception as 'unsupported'."
    ),
    docs="https://docs.djangoproject.com/en/5.2/howto/deployment/asgi/#the-application-object",
    question="Does Django support the ASGI lifespan protocol?",
    topic="serving",
    code=("project.asgi", "specs.test_asgi_lifespan.test_asgi_handler_rejects_the_lifespan_scope"),
    instead=(),
)
supports_lifespan = CLAIM.statement("supports-lifespan")


# What each server prints about it at start-up (None: it never sends a lifespan scope).
REPORTED = {
    "uvicorn": "INFO:     ASGI 'lifespan' protocol appears unsupported.",
    "hypercorn": "[WARNING] ASGI Framework Lifespan error, continuing without Lifespan support",
    "granian": "[WARNING] ASGI Lifespan errored, continuing without Lifespan support",
    "daphne": None,
    "runserver-daphne": None,
}


@supports_lifespan
@pytest.mark.interface("asgi")
async def test_asgi_handler_rejects_the_lifespan_scope():
    app = handler("asgi")
    sent = []

    async def receive():
        return {"type": "lifespan.startup"}

    async def send(message):
        sent.append(message)

    with pytest.raises(ValueError) as raised:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert str(raised.value) == LIFESPAN_REJECTED
    assert sent == []  # not even lifespan.startup.failed: Django does not speak the protocol


@supports_lifespan
@serving(*ASGI_SERVERS)
def test_each_server_reports_it_and_serves_on(server, evidence):
    output = server.output()
    expected = REPORTED[server.name]
    lifespan_lines = [line for line in output.splitlines() if "ifespan" in line]
    if expected is None:
        assert lifespan_lines == []
    else:
        assert any(expected in line for line in lifespan_lines), output
    # The readiness request already went through: the server serves HTTP all the same.
    evidence(server.name, reported=expected or "nothing (no lifespan scope sent)")
