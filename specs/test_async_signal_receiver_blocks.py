"""An async receiver of a model signal: does it block the request, the event loop, a thread?

Claimed (the README of django-q-signals): "Even async handlers, which Django's signals support,
still block the request", about an ``async def`` receiver of ``post_save``. And, of every
receiver (an answer in GuruPruthviJM/Accuknox-India, https://github.com/GuruPruthviJM/Accuknox-India):
"the handler (receiver function) is executed immediately within the same thread and process
flow that triggered the signal."

Snippet (project/views/signal_receivers.py): an async view awaits
``Author.objects.acreate(...)`` with a sync and an async ``post_save`` receiver connected.

What is true:

- From Django 5.0 the async receiver runs to completion before ``acreate`` returns: the request
  does wait for it, as the README says. Django 4.2 never runs it: ``Signal.send`` calls it like a
  function, and the coroutine it returns is dropped unawaited (``RuntimeWarning: coroutine ...
  was never awaited``); ``acreate`` returns without it.
- It does not block the server. ``save()`` runs on the request's thread-sensitive worker thread
  (``acreate`` is ``sync_to_async``), and ``post_save.send`` hands the async receivers, through
  ``async_to_sync``, back to the server's event loop, where they run on the loop's thread while
  the worker thread waits: the loop keeps serving, and the async receivers of two concurrent
  requests meet at the meeting point on every ASGI server.
- "the same thread that triggered the signal" holds for the sync receiver (it runs on the worker
  thread that runs ``save()``), not for the async one (the event loop's thread, from 5.0).

Why: ``django.db.models.query.QuerySet.acreate`` is ``sync_to_async(self.create)``;
``Model.save_base`` sends ``post_save`` with ``Signal.send``, which calls the sync receivers and
then ``async_to_sync(asend)()`` for the async ones (5.0+; 4.2 calls every receiver as a
function). ``asgiref.sync.AsyncToSync.__call__`` in a thread that ``SyncToAsync`` started
schedules the coroutine on that ``SyncToAsync``'s loop (``SyncToAsync.threadlocal.
main_event_loop``) and parks the thread until it has finished.
"""

import pytest

from harness.spec import (
    never_awaited,
    ASGI_SERVERS,
    Claim,
    Statement,
    When,
    asgi_get,
    by_version,
    fire,
    handler,
    serving,
)

NEVER_RUNS = "Signal.send calls every receiver like a function before 5.0"
PATH = "/signal-receivers/acreate/"
RECEIVER_NEVER_AWAITED = never_awaited("acreate.<locals>.async_receiver")

CLAIM = Claim(
    id="async-signal-receiver-blocks",
    source="django-q-signals, README (Getting Started)",
    url="https://github.com/joshuadavidthomas/django-q-signals",
    claim="Even async handlers, which Django's signals support, still block the request",
    statements=[
        Statement(
            "request-waits",
            "An async post_save receiver runs to completion before await acreate() returns in "
            "the async view: the request waits for it.",
            "holds",
            when=[When("refuted", django="<5.0", why=NEVER_RUNS)],
            reality=(
                "Django 4.2 never runs it: Signal.send calls it like a function and drops the "
                "coroutine unawaited (RuntimeWarning: coroutine ... was never awaited); acreate "
                "returns without it."
            ),
        ),
        Statement(
            "blocks-the-loop",
            "While an async post_save receiver awaits, the server's event loop serves nothing "
            "else.",
            "refuted",
            reality=(
                "From Django 5.0 it runs on the server's event loop, handed there by "
                "async_to_sync from the request's worker thread (which waits), and the loop "
                "keeps serving: the async receivers of two concurrent requests meet. Django 4.2 "
                "never runs it."
            ),
            claimed=False,
        ),
        Statement(
            "sync-receiver-same-thread",
            "A sync post_save receiver runs on the thread that called save(): under await "
            "acreate(), the request's worker thread, not the event loop's.",
            "holds",
            claimed=False,
        ),
        Statement(
            "async-receiver-same-thread",
            "An async post_save receiver runs on the thread that called save().",
            "refuted",
            reality=(
                "From Django 5.0 it runs on the event loop's thread, the async view's, while the "
                "worker thread that called save() waits for it. Django 4.2 never runs it."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.db.models.query.QuerySet.acreate = sync_to_async(create); "
        "django.db.models.base.Model.save_base -> post_save.send; "
        "django.dispatch.dispatcher.Signal.send (sync receivers, then async_to_sync(asend)() "
        "from 5.0; every receiver called as a function in 4.2); asgiref.sync.AsyncToSync."
        "__call__ (SyncToAsync.threadlocal.main_event_loop)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/signals/#connecting-receiver-functions",
    question="Does an async signal receiver still make the request wait for it?",
    topic="helpers",
    code=("project.views.signal_receivers.acreate",),
    instead=(),
)
request_waits = CLAIM.statement("request-waits")
blocks_the_loop = CLAIM.statement("blocks-the-loop")
sync_receiver_same_thread = CLAIM.statement("sync-receiver-same-thread")
async_receiver_same_thread = CLAIM.statement("async-receiver-same-thread")

in_test_db = pytest.mark.django_db(transaction=True)
RUNS_ASYNC_RECEIVERS = by_version({"4.2": False, "5.0": True})


def thread_of(place):
    return place["thread"], place["thread_name"]


async def served(recwarn):
    hit = await asgi_get(handler("asgi"), PATH)
    assert hit.status == 200, hit.body[:2000]
    answer = hit.json()
    never_awaited = [
        str(w.message) for w in recwarn.list
        if w.category is RuntimeWarning and "was never awaited" in str(w.message)
    ]  # fmt: skip
    return answer, [e["event"] for e in answer["events"]], never_awaited


@request_waits
@in_test_db
@pytest.mark.interface("asgi")
async def test_acreate_returns_after_the_async_receiver(recwarn):
    _, events, never_awaited = await served(recwarn)
    if CLAIM.expected("request-waits") == "holds":
        assert events == [
            "sync receiver", "async receiver enter", "async receiver exit", "acreate returned",
        ]  # fmt: skip
        assert never_awaited == []
    else:
        assert events == ["sync receiver", "acreate returned"]
        assert never_awaited == [RECEIVER_NEVER_AWAITED]


@sync_receiver_same_thread
@in_test_db
@pytest.mark.interface("asgi")
async def test_the_sync_receiver_runs_on_the_worker_thread(recwarn):
    answer, _, _ = await served(recwarn)
    [sync] = [e for e in answer["events"] if e["event"] == "sync receiver"]
    # The request's thread-sensitive thread, where acreate() ran save(); no event loop there.
    assert thread_of(sync) == thread_of(answer["sensitive"])
    assert sync["loop"] is None and sync["thread"] != answer["view"]["thread"]


@async_receiver_same_thread
@in_test_db
@pytest.mark.interface("asgi")
async def test_the_async_receiver_runs_on_the_event_loops_thread(recwarn):
    answer, _, _ = await served(recwarn)
    ran = [e for e in answer["events"] if e["event"].startswith("async receiver")]
    if RUNS_ASYNC_RECEIVERS:
        view = answer["view"]
        assert [e["event"] for e in ran] == ["async receiver enter", "async receiver exit"]
        for event in ran:
            assert (event["thread"], event["loop"]) == (view["thread"], view["loop"])
            assert thread_of(event) != thread_of(answer["sensitive"])
    else:
        assert ran == []


@blocks_the_loop
@serving(*ASGI_SERVERS)
def test_async_receivers_of_two_requests_meet(server, meeting, evidence):
    volley = fire(server.url, PATH, 2, meeting=meeting)
    assert volley.statuses == [200, 200]
    answers = [hit.json() for hit in volley.hits]
    exits = [[e for e in a["events"] if e["event"] == "async receiver exit"] for a in answers]
    if RUNS_ASYNC_RECEIVERS:
        # Each request's receiver waited at the meeting point, awaiting, while the other's did.
        assert [[e["meeting"] for e in x] for x in exits] == [["met"], ["met"]]
        assert meeting.max_waiting(volley.group) == 2
        # Both on one event loop of one process: that loop served the other request meanwhile.
        assert len({(a["view"]["pid"], a["view"]["loop"]) for a in answers}) == 1
        for a, [exit_] in zip(answers, exits):
            assert (exit_["thread"], exit_["loop"]) == (a["view"]["thread"], a["view"]["loop"])
    else:
        assert exits == [[], []]
    evidence(server.name, receivers=[len(x) for x in exits])
