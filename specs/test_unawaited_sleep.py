"""Seed claim 5: ``asyncio.sleep`` called without ``await``.

The quiz's view::

    async def slow_view(request):
        asyncio.sleep(3)
        return JsonResponse({'status': 'done'})

Claimed: "asyncio.sleep is a coroutine that must be awaited. Without await, the coroutine is
created but not run, causing the view to hang waiting indefinitely."

Calling ``asyncio.sleep(3)`` only creates a coroutine object; nothing runs it, so nothing waits.
The view goes straight on and returns its response: HTTP 200 in under a tenth of the 3 s asked
for, not a hang. The discarded coroutine is destroyed on that same line (nothing refers to it
once the call's result is dropped), and Python warns ``RuntimeWarning: coroutine 'sleep' was
never awaited``, pointing at that line of the view. Every server prints the warning in its output
except daphne and runserver-daphne (runserver with daphne in INSTALLED_APPS):
``daphne.server.Server.run`` starts Twisted's logging (``globalLogBeginner.beginLoggingTo``, at its
default verbosity with one observer that drops every event), and that replaces
``warnings.showwarning`` with Twisted's ``LogBeginner.showwarning``. So under daphne a forgotten
``await`` leaves no trace at all.

Why: a coroutine function's body runs only when the coroutine is awaited or scheduled. When a
coroutine that never started is finalized, CPython's ``_PyGen_Finalize`` (Objects/genobject.c)
calls ``_PyErr_WarnUnawaitedCoroutine`` (defined in Python/_warnings.c), which warns through
``warnings._warn_unawaited_coroutine`` with ``stacklevel=2``: the frame that dropped the
coroutine. Django sees an ordinary ``JsonResponse`` from the view
(``BaseHandler._get_response_async``) and sends it.
"""

import inspect
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
from project.views import sleep

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
                "Nothing waits: the view returns its 200 response in under a tenth of the 3 s "
                "asked for, and Python warns \"RuntimeWarning: coroutine 'sleep' was never "
                "awaited\" at the view's line. Every server prints the warning except daphne and "
                "runserver-daphne, where Twisted's logging has taken over warnings.showwarning "
                "and discards it."
            ),
        ),
    ],
    mechanism=(
        "Python: calling a coroutine function only creates the coroutine; CPython's "
        "_PyGen_Finalize (Objects/genobject.c) calls _PyErr_WarnUnawaitedCoroutine "
        "(Python/_warnings.c) for one never started. Django: BaseHandler._get_response_async "
        "returns the view's JsonResponse as usual. daphne: Server.run's "
        "globalLogBeginner.beginLoggingTo sends warnings to a Twisted log that drops them."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    question="Does an un-awaited asyncio.sleep make an async view hang?",
    topic="views",
    code=("project.views.sleep.slow_view",),
    instead=("project.views.sleep.slow_view_fixed",),
)
must_be_awaited = CLAIM.statement("must-be-awaited")
created_not_run = CLAIM.statement("created-not-run")
view_hangs = CLAIM.statement("view-hangs")

ASKED = 3.0  # the quiz's own duration: if the view did wait, these tests would see it
NEVER_AWAITED = never_awaited("sleep")


def _line_of(function, text):
    lines, first = inspect.getsourcelines(function)
    [offset] = [i for i, line in enumerate(lines) if text in line]
    return first + offset


# Where the warning points: the quiz's un-awaited call, in the view.
SLEEP_LINE = _line_of(sleep.slow_view, "asyncio.sleep(")


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
    assert (warning.filename, warning.lineno) == (sleep.__file__, SLEEP_LINE)
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


@view_hangs
@serving(*SERVERS)
def test_quiz_view_answers_at_once_on_a_real_server(server, evidence):
    hit = get(server.url, "/seed/sleep/")
    assert (hit.status, hit.json()) == (200, {"status": "done"})
    assert seconds(hit) < 0.1 * ASKED
    assert (hit.client_end - hit.client_start) / 1e9 < 0.1 * ASKED
    goes_to = get(server.url, "/streaming/warnings-go-to/").body.decode()
    assert goes_to == server.kind.warnings_to  # harness/servers.py says why
    # The whole output: with PYTHONWARNINGS=default a server prints the warning once per place,
    # at the first such request.
    output = server.output()
    if server.kind.prints_warnings:
        # warnings.formatwarning's "file:line: category: message": the quiz's line.
        assert f"{sleep.__file__}:{SLEEP_LINE}: RuntimeWarning: {NEVER_AWAITED}" in output, output
    else:
        assert NEVER_AWAITED not in output, output  # not in any form
    shown = NEVER_AWAITED in output
    evidence(server.name, took_ms=round(seconds(hit) * 1000, 1), warning_shown=shown)
