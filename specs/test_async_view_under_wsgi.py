"""An async view served by a WSGI server.

Claimed (Django docs, Asynchronous support, "Async views"): "An async view under WSGI is still
async".

Under a WSGI server (gunicorn's gthread worker, Django's runserver) Django gives each request to an
async view a new event loop of its own, started for that request and closed after it, on a new
one-off thread; the server's thread waits meanwhile, and serves as the thread that
``sync_to_async`` sends sync code to. On that loop the view is as async as anywhere: three awaits
gathered with ``asyncio.gather`` are all in flight at once (they meet at the rendezvous), while the
same awaits written one after another never are.
What the view does not get is a loop shared with other requests: the loop is never reused, and
each request still occupies one of the server's threads (see specs/test_when_async_helps.py).
For contrast, under ASGI the view runs on the server's own loop, on the thread that drives it.

Why: ``django.core.handlers.base.BaseHandler._get_response`` wraps a view for which
``iscoroutinefunction`` is true in ``asgiref.sync.async_to_sync``. ``AsyncToSync.__call__``, called
from a thread with no running loop and not from inside ``sync_to_async``, makes a
``ThreadPoolExecutor(max_workers=1)`` and submits ``asyncio.run(...)`` to it: a new loop on a new
thread, per call. The calling thread blocks in ``CurrentThreadExecutor.run_until_future``, and
registers that executor in ``AsyncToSync.loop_thread_executors`` for the new loop, which is where
``SyncToAsync.__call__`` (thread-sensitive) sends sync work back to.
"""

import re
import threading
from urllib.parse import urlencode

import pytest

from harness.spec import (
    Claim,
    Statement,
    WSGI_SERVERS,
    asgi_get,
    each_interface,
    get,
    handler,
    meeting_params,
    serve_once,
    serving,
)

CLAIM = Claim(
    id="async-view-under-wsgi",
    source="Django docs, Asynchronous support (Async views)",
    url="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    claim="An async view under WSGI is still async",
    statements=[
        Statement(
            "still-async",
            "An async view under WSGI is still async: awaits it gathers are in flight at the "
            "same time.",
            "holds",
        ),
        Statement(
            "loop-per-request",
            "Under WSGI, each request's async view runs on a new event loop of its own, on a "
            "one-off thread, while the server's thread waits and takes its sync_to_async calls "
            "(under ASGI it runs on the server's loop).",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "django.core.handlers.base.BaseHandler._get_response wraps async views in "
        "asgiref.sync.async_to_sync; AsyncToSync.__call__ (no running loop, no parent "
        "SyncToAsync) submits asyncio.run(new_loop_wrap()) to a new ThreadPoolExecutor("
        "max_workers=1) and blocks in CurrentThreadExecutor.run_until_future, registered in "
        "AsyncToSync.loop_thread_executors for SyncToAsync.__call__ to use."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    question="Is an async view still async under WSGI?",
    topic="serving",
    code=("project.views.view_kinds.gathered_awaits",),
    instead=(),
)
still_async = CLAIM.statement("still-async")
loop_per_request = CLAIM.statement("loop-per-request")

GATHERED = "/view-kinds/under-wsgi/gathered/"
ONE_BY_ONE = "/view-kinds/under-wsgi/one-by-one/"
K = 3  # awaits inside one view
# asgiref names the thread of the one-off executor it makes per call.
ONE_OFF_THREAD = re.compile(r"ThreadPoolExecutor-\d+_0")
# How each server names the thread that serves a request (gunicorn's gthread pool is a
# ThreadPoolExecutor too; runserver is socketserver.ThreadingMixIn).
SERVER_THREAD = {
    "gunicorn-gthread": re.compile(r"ThreadPoolExecutor-\d+_\d+"),
    "runserver": re.compile(r"Thread-\d+ \(process_request_thread\)"),
}

on_wsgi = serving(*WSGI_SERVERS)


def view_report(hit):
    assert hit.status == 200, hit.body[:300]
    return hit.json()


@still_async
@on_wsgi
def test_gathered_awaits_in_one_view_overlap(server, meeting, evidence):
    report = view_report(get(server.url, GATHERED, meeting_params(meeting, K)))
    assert report["meetings"] == ["met"] * K  # all K awaits were waiting at the same time
    # All of them on the view's own loop thread, which is not the server's thread.
    assert report["await_threads"] == [report["view_thread"]["thread"]]
    assert ONE_OFF_THREAD.fullmatch(report["view_thread"]["thread_name"])
    assert report["sync_thread"]["thread"] != report["view_thread"]["thread"]
    assert SERVER_THREAD[server.name].fullmatch(report["sync_thread"]["thread_name"])
    evidence(f"{server.name} gather", awaits=K, met=report["meetings"].count("met"))


@still_async
@on_wsgi
def test_the_same_awaits_one_after_another_never_meet(server, meeting):
    # The rendezvous tells the two apart: awaited in turn, the first waits alone until nothing
    # runs any more (nobody else can arrive), and the second finds the meeting given up.
    params = meeting_params(meeting, 2)
    report = view_report(get(server.url, ONE_BY_ONE, params))
    assert report["meetings"] == ["alone", "alone"]
    assert meeting.max_waiting(params["group"]) == 1
    assert meeting.given_up(params["group"]) == "quiet"


@loop_per_request
@on_wsgi
def test_each_request_gets_a_new_loop_on_a_new_thread(server, evidence):
    reports = [view_report(get(server.url, GATHERED)) for _ in range(3)]
    assert len({r["pid"] for r in reports}) == 1  # one worker process served them all
    assert len({r["loop"] for r in reports}) == 3  # never the same loop twice
    view_threads = [r["view_thread"]["thread_name"] for r in reports]
    assert len(set(view_threads)) == 3 and all(map(ONE_OFF_THREAD.fullmatch, view_threads))
    for report in reports:
        assert report["sync_thread"]["thread"] != report["view_thread"]["thread"]
    evidence(f"{server.name} 3 requests", loops=len({r["loop"] for r in reports}),
             view_threads=len(set(view_threads)))  # fmt: skip


@loop_per_request
@pytest.mark.interface("wsgi")
def test_in_process_wsgi_runs_the_view_off_the_callers_thread():
    """WSGIHandler called from this thread, as a server's thread calls it."""
    app = handler("wsgi")
    reports = [view_report(serve_once("wsgi", app, GATHERED, "n=0")) for _ in range(2)]
    caller = threading.get_ident()
    for report in reports:
        assert report["view_thread"]["thread"] != caller  # the loop runs on a thread of its own
        assert report["sync_thread"]["thread"] == caller  # sync_to_async comes back to the caller
    assert reports[0]["loop"] != reports[1]["loop"]


@loop_per_request
@pytest.mark.interface("asgi")
async def test_in_process_asgi_runs_the_view_on_the_servers_loop():
    """Contrast: ASGIHandler awaits the view on the loop that drives it, the same every time."""
    app = handler("asgi")
    reports = [view_report(await asgi_get(app, GATHERED, "n=0")) for _ in range(2)]
    for report in reports:
        assert report["view_thread"]["thread"] == threading.get_ident()
        assert report["sync_thread"]["thread"] != threading.get_ident()
    assert reports[0]["loop"] == reports[1]["loop"]


@still_async
@each_interface
def test_in_process_gather_overlaps_on_both_handlers(interface, meeting):
    hit = serve_once(interface, handler(interface), GATHERED, urlencode(meeting_params(meeting, K)))
    assert view_report(hit)["meetings"] == ["met"] * K
