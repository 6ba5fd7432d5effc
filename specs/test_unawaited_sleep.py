"""Seed claim 5: ``asyncio.sleep`` called without ``await``.

The quiz's view::

    async def slow_view(request):
        asyncio.sleep(3)
        return JsonResponse({'status': 'done'})

Claimed: "asyncio.sleep is a coroutine that must be awaited. Without await, the coroutine is
created but not run, causing the view to hang waiting indefinitely."

Calling ``asyncio.sleep(3)`` only creates a coroutine object; nothing runs it, so nothing waits.
The view goes straight on and returns its response: HTTP 200 at once, not a hang. When the
discarded coroutine is destroyed (immediately, by reference counting) Python warns
``RuntimeWarning: coroutine 'sleep' was never awaited``, pointing at the view's line. The request
takes a tiny fraction of the 3 s asked for. Every server shows the warning in its output except
daphne, which silences it (see ``WARNING_SHOWN``).

Why: a coroutine function's body runs only when the coroutine is awaited or scheduled; CPython's
coroutine finalizer (``_PyErr_WarnUnawaitedCoroutine`` in Objects/genobject.c) emits the warning
for one that never started. Django sees an ordinary ``JsonResponse`` from the view
(``BaseHandler._get_response_async``) and sends it.
"""

import warnings

import pytest

from harness.spec import (
    Claim,
    SEED,
    SERVERS,
    Statement,
    asgi_get,
    get,
    handler,
    never_awaited,
    serving,
)

CLAIM = Claim(
    id="unawaited-asyncio-sleep",
    source=SEED,
    claim=(
        "asyncio.sleep is a coroutine that must be awaited. Without await, the coroutine is "
        "created but not run, causing the view to hang waiting indefinitely."
    ),
    statements=[
        Statement(
            "must-be-awaited",
            "asyncio.sleep is a coroutine that must be awaited.",
            "holds",
        ),
        Statement(
            "created-not-run",
            "Without await, the coroutine is created but not run.",
            "holds",
        ),
        Statement(
            "view-hangs",
            "Without await, the view hangs waiting indefinitely.",
            "refuted",
            reality=(
                "Nothing waits: the view returns its 200 response at once, in a small fraction of "
                "the sleep asked for, and Python emits \"RuntimeWarning: coroutine 'sleep' was "
                "never awaited\" at the view's line, which every server shows except daphne and "
                "runserver-daphne (Twisted's logging swallows warnings)."
            ),
        ),
    ],
    mechanism=(
        "Python: calling a coroutine function only creates the coroutine; CPython's finalizer "
        "(_PyErr_WarnUnawaitedCoroutine) warns for one never started. Django: "
        "BaseHandler._get_response_async returns the view's JsonResponse as usual."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
)
must_be_awaited = CLAIM.statement("must-be-awaited")
created_not_run = CLAIM.statement("created-not-run")
view_hangs = CLAIM.statement("view-hangs")

ASKED = 3.0  # the quiz's own duration: if the view did wait, these tests would see it
NEVER_AWAITED = never_awaited("sleep")


def seconds(hit):
    start, end = hit.interval()
    return (end - start) / 1e9


@created_not_run
@pytest.mark.interface("asgi")
async def test_quiz_view_answers_at_once_with_a_warning(evidence):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hit = await asgi_get(handler("asgi"), "/seed/sleep/")
    assert (hit.status, hit.json()) == (200, {"status": "done"})
    assert seconds(hit) < 0.1 * ASKED
    [warning] = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert str(warning.message) == NEVER_AWAITED
    # Raised where the coroutine was dropped: the quiz's line in the view.
    assert warning.filename.endswith("project/views/sleep.py")
    evidence("in-process ASGI", took_ms=round(seconds(hit) * 1000, 1), asked_ms=ASKED * 1000)


@must_be_awaited
@pytest.mark.interface("asgi")
async def test_awaited_sleep_waits_and_warns_nothing():
    asked = 0.2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hit = await asgi_get(handler("asgi"), "/fixed/sleep/", f"seconds={asked}")
    assert (hit.status, hit.json()) == (200, {"status": "done"})
    assert seconds(hit) >= 0.9 * asked
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []


# Whether the warning reaches the server's output. daphne (also as runserver's ASGI backend)
# swallows it: at its default verbosity, daphne.server.Server.run starts Twisted's logging with an
# observer that discards everything, and Twisted's LogBeginner.beginLoggingTo replaces
# warnings.showwarning with one that writes to that log. So under daphne a forgotten `await`
# leaves no trace at all.
WARNING_SHOWN = {name: name not in ("daphne", "runserver-daphne") for name in SERVERS}


@view_hangs
@serving(*SERVERS)
def test_quiz_view_answers_at_once_on_a_real_server(server, evidence):
    hit = get(server.url, "/seed/sleep/")
    assert (hit.status, hit.json()) == (200, {"status": "done"})
    assert seconds(hit) < 0.1 * ASKED
    assert (hit.client_end - hit.client_start) / 1e9 < 0.1 * ASKED
    shown = f"RuntimeWarning: {NEVER_AWAITED}" in server.output()
    assert shown is WARNING_SHOWN[server.name], server.output()
    evidence(server.name, took_ms=round(seconds(hit) * 1000, 1), warning_shown=shown)
