"""Signal.asend(): where and in what order do sync and async receivers run?

Claimed (the docstring of ``Signal.asend`` in Django 5.0, published with its source on
docs.djangoproject.com; ``asend_robust`` says the same): "If any receivers are synchronous, they
are grouped and called behind a sync_to_async() adaption before executing any asynchronous
receivers. If any receivers are asynchronous, they are grouped and executed concurrently with
asyncio.gather()." The sentence stays in Django 6.1's docstring, with ``asyncio.TaskGroup()``.

What is true:

- Django 4.2 has no ``Signal.asend`` nor ``asend_robust`` (AttributeError).
- From 5.0, ``asend`` runs the sync receivers one after another in one ``sync_to_async`` call:
  on one worker thread (inside a ``ThreadSensitiveContext``, that context's thread), never the
  event loop's; two sync receivers cannot overlap.
- "before executing any asynchronous receivers" holds only from Django 6.1. Django 5.0 to 6.0
  run the sync group and the async receivers at the same time (one ``asyncio.gather`` of the
  two): a sync receiver and an async receiver of one ``asend`` meet at the meeting point. From
  6.1 the async receivers start only once the sync group has returned: neither can meet the
  other, and the sync receiver has finished before the async one starts. ``asend_robust`` does
  the same in each version.
- The async receivers run concurrently, on the caller's event loop and thread: two of them meet
  (from 5.0.3; on 5.0.0-5.0.2 ``asend`` with only async receivers connected raises
  ``TypeError: unhashable type: 'list'``, ticket #35174: see specs/test_asend_receiver_kinds.py).
- Plain ``send()`` (what ``Model.save()`` sends ``post_save`` with) runs async receivers too from
  5.0, through ``async_to_sync``, and returns once they have finished; Django 4.2 calls an async
  receiver like a function and returns its coroutine unawaited: its body never runs. Called on
  a thread with a running event loop (an async view calling ``send()``), 5.0+ runs the sync
  receivers there, on the loop's thread, then raises asgiref's RuntimeError ("You cannot use
  AsyncToSync in the same thread as an async event loop ...") before any async receiver runs.

Why: ``django.dispatch.dispatcher.Signal.asend``: up to 6.0 ``await asyncio.gather(sync_send(),
asyncio.gather(*async receivers))`` where ``sync_send`` is ``sync_to_async`` around a loop over
the sync receivers; from 6.1 ``responses = await sync_send()`` and only then ``await
_run_parallel(*async receivers)`` (an ``asyncio.TaskGroup``). ``Signal.send`` calls the sync
receivers, then ``async_to_sync(asend)()`` for the async ones (5.0+);
``asgiref.sync.AsyncToSync.__call__`` refuses to run on a thread with a running loop.
"""

import asyncio
import inspect
import uuid

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.dispatch import Signal

from harness.spec import (
    no_attribute,
    ASYNC_TO_SYNC_IN_LOOP,
    Claim,
    UNHASHABLE_LIST,
    Statement,
    When,
    each_proves,
    requires_django,
)
from project.evidence import ameet, meet, where

NO_ASEND = "Signal has no asend() before Django 5.0"
ONLY_ASYNC = "with no sync receiver, sync_send = list: asyncio.gather([], ...) raises, ticket #35174"
CALLED_LIKE_A_FUNCTION = "Signal.send calls every receiver like a function before 5.0"

CLAIM = Claim(
    id="signal-asend-order",
    source="Django 5.0, docstring of Signal.asend (django/dispatch/dispatcher.py)",
    url="https://docs.djangoproject.com/en/5.0/_modules/django/dispatch/dispatcher/",
    claim=(
        "If any receivers are synchronous, they are grouped and called behind a sync_to_async() "
        "adaption before executing any asynchronous receivers. If any receivers are "
        "asynchronous, they are grouped and executed concurrently with asyncio.gather()."
    ),
    statements=[
        Statement(
            "sync-grouped-in-a-thread",
            "Signal.asend() calls the sync receivers one after another in one sync_to_async "
            "call: on one worker thread, not the event loop's.",
            "holds",
            when=[When("refuted", django="<5.0", why=NO_ASEND)],
            reality="Django 4.2 has no Signal.asend() nor asend_robust() (AttributeError).",
        ),
        Statement(
            "sync-before-async",
            "Signal.asend() (and asend_robust()) has called every sync receiver before any "
            "async receiver starts.",
            "holds",
            when=[
                When("refuted", django="<5.0", why=NO_ASEND),
                When("refuted", django="<6.1",
                     why="asend gathers the sync group and the async receivers together"),
            ],
            reality=(
                "Django 5.0 to 6.0 run the sync receivers (in their thread) at the same time as "
                "the async receivers (asyncio.gather of both): a sync and an async receiver of "
                "one asend meet. Django 4.2 has no asend."
            ),
        ),
        Statement(
            "async-concurrently",
            "Signal.asend() runs the async receivers concurrently, on the caller's event loop.",
            "holds",
            when=[
                When("refuted", django="<5.0", why=NO_ASEND),
                When("refuted", django="<5.0.3", why=ONLY_ASYNC),
            ],
            reality=(
                "Django 4.2 has no Signal.asend() nor asend_robust() (AttributeError). On "
                "5.0.0-5.0.2, with only async receivers connected, asend() and asend_robust() "
                "raise TypeError: unhashable type: 'list' (ticket #35174, fixed in 5.0.3)."
            ),
        ),
        Statement(
            "send-runs-async-receivers",
            "Plain Signal.send() from sync code runs an async receiver to completion and "
            "returns its result.",
            "holds",
            when=[When("refuted", django="<5.0", why=CALLED_LIKE_A_FUNCTION)],
            reality=(
                "Django 4.2 calls the async receiver like a function: send() returns its "
                "coroutine, never started, so the receiver's body never runs."
            ),
            claimed=False,
        ),
        Statement(
            "send-on-the-loop-raises",
            "Plain Signal.send() called on the event loop's thread with an async receiver "
            "connected runs the sync receivers there, then raises RuntimeError('You cannot use "
            "AsyncToSync in the same thread as an async event loop - just await the async "
            "function directly.') before the async receiver runs.",
            "holds",
            when=[When("refuted", django="<5.0", why=CALLED_LIKE_A_FUNCTION)],
            reality=(
                "Django 4.2 raises nothing: it returns the async receiver's coroutine, never "
                "started."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.dispatch.dispatcher.Signal.asend/asend_robust: sync_send = sync_to_async(loop "
        "over the sync receivers); up to 6.0 asyncio.gather(sync_send(), asyncio.gather(*async "
        "receivers)), from 6.1 await sync_send() then _run_parallel (asyncio.TaskGroup); "
        "Signal.send: sync receivers, then async_to_sync(asend)() (5.0+); "
        "asgiref.sync.AsyncToSync.__call__ (no running loop allowed)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/signals/#sending-signals",
    question=(
        "Does Signal.asend() run sync receivers first, in a thread, then async ones concurrently?"
    ),
    topic="helpers",
    code=(
        "specs.test_signal_asend.test_a_sync_and_an_async_receiver",
        "specs.test_signal_asend.test_sync_receivers_run_one_after_another_on_one_worker_thread",
        "specs.test_signal_asend.test_async_receivers_meet_on_the_callers_loop",
    ),
    instead=(),
)
sync_grouped_in_a_thread = CLAIM.statement("sync-grouped-in-a-thread")
sync_before_async = CLAIM.statement("sync-before-async")
async_concurrently = CLAIM.statement("async-concurrently")
send_runs_async_receivers = CLAIM.statement("send-runs-async-receivers")
send_on_the_loop_raises = CLAIM.statement("send-on-the-loop-raises")

SENDS = ("asend", "asend_robust")


def thread_of(place):
    return place["thread"], place["thread_name"]


def connected(*receivers):
    signal = Signal()
    for receiver in receivers:
        signal.connect(receiver, weak=False)
    return signal


@each_proves("statement", {
    "sync-grouped-in-a-thread": sync_grouped_in_a_thread,
    "sync-before-async": sync_before_async,
    "async-concurrently": async_concurrently,
})  # fmt: skip
@requires_django(until="5.0")
def test_no_asend_before_5_0(statement):
    for name in SENDS:
        with pytest.raises(AttributeError) as raised:
            getattr(Signal(), name)
        assert str(raised.value) == no_attribute("Signal", name)


@sync_grouped_in_a_thread
@requires_django(since="5.0")
@pytest.mark.parametrize("send", SENDS)
async def test_sync_receivers_run_one_after_another_on_one_worker_thread(send, meeting):
    group = f"sync-{send}-{uuid.uuid4().hex[:12]}"  # the meeting outlives a test

    def first(**kwargs):
        return where(), meet(meeting.port, group, 2)

    def second(**kwargs):
        return where(), meet(meeting.port, group, 2)

    caller = where()
    async with ThreadSensitiveContext():
        responses = await getattr(connected(first, second), send)(sender=None)
        sensitive = await sync_to_async(where)()
    (first_where, first_answer), (second_where, second_answer) = [r for _, r in responses]
    # Never both waiting: the second started only once the first had returned.
    assert (first_answer, second_answer) == ("alone", "alone")
    assert meeting.given_up(group) == "quiet" and meeting.max_waiting(group) == 1
    # One thread, the context's thread-sensitive one, with no event loop.
    for place in (first_where, second_where):
        assert thread_of(place) == thread_of(sensitive)
        assert place["loop"] is None and place["thread"] != caller["thread"]


@sync_before_async
@requires_django(since="5.0")
@pytest.mark.parametrize("send", SENDS)
async def test_a_sync_and_an_async_receiver(send, meeting, evidence):
    group = f"mixed-{send}-{uuid.uuid4().hex[:12]}"  # the meeting outlives a test
    events = []

    def sync_receiver(**kwargs):
        events.append("sync enter")
        answer = meet(meeting.port, group, 2)
        events.append("sync exit")
        return answer

    async def async_receiver(**kwargs):
        events.append("async enter")
        answer = await ameet(meeting.port, group, 2)
        events.append("async exit")
        return answer

    responses = await getattr(connected(sync_receiver, async_receiver), send)(sender=None)
    answers = [(receiver.__name__, answer) for receiver, answer in responses]
    if CLAIM.expected("sync-before-async") == "holds":
        # Neither could meet the other: the async receiver started after the sync one returned.
        assert answers == [("sync_receiver", "alone"), ("async_receiver", "alone")]
        assert events == ["sync enter", "sync exit", "async enter", "async exit"]
        assert meeting.given_up(group) == "quiet"
    else:
        # Both were waiting at the meeting point at the same time.
        assert answers == [("sync_receiver", "met"), ("async_receiver", "met")]
        assert meeting.max_waiting(group) == 2
        assert events.index("async enter") < events.index("sync exit")
    evidence(f"{send} in process", answers=dict(answers))


@async_concurrently
@requires_django(since="5.0")
@pytest.mark.parametrize("send", SENDS)
async def test_async_receivers_meet_on_the_callers_loop(send, meeting):
    group = f"async-{send}-{uuid.uuid4().hex[:12]}"  # the meeting outlives a test

    finished = []

    async def first(**kwargs):
        finished.append((where(), await ameet(meeting.port, group, 2)))
        return finished[-1]

    async def second(**kwargs):
        finished.append((where(), await ameet(meeting.port, group, 2)))
        return finished[-1]

    caller = where()
    signal = connected(first, second)
    if CLAIM.expected("async-concurrently") == "holds":
        responses = await getattr(signal, send)(sender=None)
        assert [response for _, response in responses] == finished
    else:  # 5.0.0-5.0.2, ticket #35174: asend raises; the receivers' tasks go on regardless
        with pytest.raises(TypeError) as raised:
            await getattr(signal, send)(sender=None)
        assert str(raised.value) == UNHASHABLE_LIST

        async def both_finished():
            while len(finished) < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(both_finished(), timeout=10)
    assert [answer for _, answer in finished] == ["met", "met"]
    assert meeting.max_waiting(group) == 2
    for place, _ in finished:
        assert (place["thread"], place["loop"]) == (caller["thread"], caller["loop"])


# --- plain send() ------------------------------------------------------------------------------


@send_runs_async_receivers
def test_send_from_sync_code():
    ran = []

    async def receiver(**kwargs):
        await asyncio.sleep(0)
        ran.append(where())
        return "done"

    caller = where()
    assert caller["loop"] is None
    [(_, response)] = connected(receiver).send(sender=None)
    if CLAIM.expected("send-runs-async-receivers") == "holds":
        assert response == "done"
        [place] = ran
        assert place["loop"] is not None  # async_to_sync ran it on an event loop of its own
    else:
        # The receiver was called like a function: its coroutine, never started.
        assert inspect.iscoroutine(response)
        assert inspect.getcoroutinestate(response) == inspect.CORO_CREATED
        response.close()
        assert ran == []


@send_on_the_loop_raises
async def test_send_on_the_event_loops_thread():
    ran = []

    def sync_receiver(**kwargs):
        ran.append(("sync", where()))

    async def async_receiver(**kwargs):
        ran.append(("async", where()))

    caller = where()
    signal = connected(sync_receiver, async_receiver)
    if CLAIM.expected("send-on-the-loop-raises") == "holds":
        with pytest.raises(RuntimeError) as raised:
            signal.send(sender=None)
        assert type(raised.value) is RuntimeError
        assert str(raised.value) == ASYNC_TO_SYNC_IN_LOOP
        assert raised.traceback[-1].path.as_posix().endswith("asgiref/sync.py")
    else:
        responses = signal.send(sender=None)
        [(_, coroutine)] = [(r, value) for r, value in responses if r is async_receiver]
        assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED
        coroutine.close()
    # The sync receiver ran, on the loop's own thread; the async one never did.
    assert [name for name, _ in ran] == ["sync"]
    assert (ran[0][1]["thread"], ran[0][1]["loop"]) == (caller["thread"], caller["loop"])
