"""Signal.asend() with only async receivers, only sync ones, or none for the sender.

Claimed (Django 5.0 release notes, "Signals"): "Signal receivers may be synchronous or
asynchronous, and will be automatically adapted to the correct calling style." Django 5.0.3's
release notes take part of it back for the first releases: "Fixed a bug in Django 5.0 that caused
a crash of ``Signal.asend()`` and ``asend_robust()`` when all receivers were asynchronous
functions (:ticket:`35174`)." (https://docs.djangoproject.com/en/5.0/releases/5.0.3/)

What is true:

- Django 4.2 has no ``Signal.asend`` nor ``asend_robust`` (AttributeError).
- Only async receivers connected: from Django 5.0.3, ``asend()``/``asend_robust()`` run them on
  the caller's loop and return ``[(receiver, response)]``. Django 5.0.0, 5.0.1 and 5.0.2 raise
  ``TypeError: unhashable type: 'list'`` instead (ticket #35174: the crash is with all receivers
  async, not with all sync). The async receivers were scheduled before the error, and still run
  after ``asend`` has raised, their results lost.
- Only sync receivers connected: every version from 5.0.0 runs them, behind ``sync_to_async``, on
  a worker thread, not the loop's (where and in what order: specs/test_signal_asend.py).
- No receiver at all: ``[]`` in every version from 5.0.0 (``asend`` returns early). Receivers
  connected for other senders only: ``[]`` from 5.0.3; 5.0.0 to 5.0.2 raise the same TypeError
  (no live receiver of either kind is the same empty async case), every time, or, for a signal
  with ``use_caching`` (the model signals), only the first time for a sender: ``_live_receivers``
  has cached "no receivers" for it before the raise.

Why: ``django.dispatch.dispatcher.Signal.asend`` (and ``asend_robust``) in 5.0.0-5.0.2 set
``sync_send = list`` when there are no sync receivers, then ``await asyncio.gather(sync_send(),
asyncio.gather(*async receivers))``: ``sync_send()`` is the list ``[]``, which
``asyncio.tasks.gather`` looks up in a dict of the futures it has made (``arg not in
arg_to_fut``) and cannot hash; the inner ``gather``, evaluated first, has already wrapped the
receivers' coroutines in tasks. 5.0.3 made ``sync_send`` an ``async def`` returning ``[]``.
``asend`` returns ``[]`` before any of this when ``self.receivers`` is empty. From Django 6.1
there is no ``asyncio.gather`` any more: ``asend`` (and ``asend_robust``) first ``await
sync_send()`` (the sync receivers behind ``sync_to_async``, or the ``async def`` returning
``[]``), then run the async receivers with ``django.dispatch.dispatcher._run_parallel``, tasks of
an ``asyncio.TaskGroup`` on the caller's loop sharing one copied context, and append their
``(receiver, response)`` pairs.
"""

import asyncio
import threading

import pytest
from django.dispatch import Signal

from harness.spec import (
    Claim,
    Statement,
    UNHASHABLE_LIST,
    When,
    each_proves,
    no_attribute,
    requires_django,
)
from project.evidence import where

NO_ASEND = "Signal has no asend() before Django 5.0"
TICKET = "sync_send = list when no sync receiver is live: asyncio.gather([], ...) raises, ticket #35174"

CLAIM = Claim(
    id="signal-asend-receiver-kinds",
    source="Django 5.0 release notes, Signals",
    url="https://docs.djangoproject.com/en/5.0/releases/5.0/#signals",
    claim=(
        "Signal receivers may be synchronous or asynchronous, and will be automatically adapted "
        "to the correct calling style."
    ),
    question=(
        "Does Signal.asend() work whatever kind of receivers are connected: only async ones, "
        "only sync ones?"
    ),
    topic="helpers",
    code=("specs.test_asend_receiver_kinds.test_only_async_receivers",),
    instead=(),
    statements=[
        Statement(
            "all-async",
            "With only async receivers connected, Signal.asend() and asend_robust() run them on "
            "the caller's event loop and return [(receiver, response)].",
            "holds",
            when=[When("refuted", django="<5.0", why=NO_ASEND),
                  When("refuted", django="<5.0.3", why=TICKET)],
            reality=(
                "Django 5.0.0, 5.0.1 and 5.0.2 raise TypeError: unhashable type: 'list' (ticket "
                "#35174, fixed in 5.0.3); the async receivers, already scheduled, still run after "
                "asend has raised, their results lost. Django 4.2 has no asend."
            ),
        ),
        Statement(
            "all-sync",
            "With only sync receivers connected, Signal.asend() and asend_robust() run them behind "
            "sync_to_async, on a worker thread (not the event loop's), and return their "
            "responses.",
            "holds",
            when=[When("refuted", django="<5.0", why=NO_ASEND)],
            reality="Django 4.2 has no Signal.asend() nor asend_robust() (AttributeError).",
        ),
        Statement(
            "no-receiver",
            "With no receiver for the sender (none at all, or only receivers of other senders), "
            "Signal.asend() and asend_robust() return [].",
            "holds",
            when=[When("refuted", django="<5.0", why=NO_ASEND),
                  When("refuted", django="<5.0.3", why=TICKET)],
            reality=(
                "Django 5.0.0 to 5.0.2 return [] only for a signal with no receiver at all; with "
                "receivers of other senders only they raise TypeError: unhashable type: 'list' "
                "(a signal with use_caching, as the model signals are, on the first asend for a "
                "sender only). Django 4.2 has no asend."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.dispatch.dispatcher.Signal.asend/asend_robust: 5.0.0-5.0.2 set sync_send = list "
        "when no sync receiver is live and await asyncio.gather(sync_send(), "
        "asyncio.gather(*async receivers)); asyncio.tasks.gather hashes each argument; 5.0.3 "
        "made sync_send an async def returning []; from 6.1, asend/asend_robust await "
        "sync_send() first, then run the async receivers with "
        "django.dispatch.dispatcher._run_parallel (an asyncio.TaskGroup on the caller's loop); "
        "an early return [] when self.receivers is empty."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/signals/#sending-signals",
)
all_async = CLAIM.statement("all-async")
all_sync = CLAIM.statement("all-sync")
no_receiver = CLAIM.statement("no-receiver")

SENDS = pytest.mark.parametrize("send", ["asend", "asend_robust"])


def connected(*receivers, sender=None, use_caching=False):
    signal = Signal(use_caching=use_caching)
    for receiver in receivers:
        signal.connect(receiver, sender=sender, weak=False)
    return signal


def assert_unhashable_list(raised):
    assert type(raised.value) is TypeError
    assert str(raised.value) == UNHASHABLE_LIST
    # Raised by asyncio.gather, called by Signal.asend / asend_robust.
    entries = [(entry.path.as_posix(), entry.frame.code.name) for entry in raised.traceback]
    assert entries[-1][0].endswith("asyncio/tasks.py") and entries[-1][1] == "gather"
    assert entries[-2][0].endswith("django/dispatch/dispatcher.py")
    assert entries[-2][1] in ("asend", "asend_robust")


@each_proves("statement", {
    "all-async": all_async, "all-sync": all_sync, "no-receiver": no_receiver,
})  # fmt: skip
@requires_django(until="5.0")
def test_no_asend_before_5_0(statement):
    for name in ("asend", "asend_robust"):
        with pytest.raises(AttributeError) as raised:
            getattr(Signal(), name)
        assert str(raised.value) == no_attribute("Signal", name)


@all_async
@requires_django(since="5.0")
@SENDS
async def test_only_async_receivers(send):
    ran = []
    finished = asyncio.Event()

    async def receiver(**kwargs):
        ran.append(where())
        finished.set()
        return "done"

    caller = where()
    signal = connected(receiver)
    if CLAIM.expected("all-async") == "holds":
        assert await getattr(signal, send)(sender=None) == [(receiver, "done")]
        [place] = ran
        assert (place["thread"], place["loop"]) == (caller["thread"], caller["loop"])
        return
    with pytest.raises(TypeError) as raised:
        await getattr(signal, send)(sender=None)
    assert_unhashable_list(raised)
    assert ran == []  # not yet: the receiver's task was only scheduled
    # ... and it runs once the caller lets the loop go on (an event: it happens, no window).
    await asyncio.wait_for(finished.wait(), timeout=10)
    [place] = ran
    assert (place["thread"], place["loop"]) == (caller["thread"], caller["loop"])


@all_sync
@requires_django(since="5.0")
@SENDS
async def test_only_sync_receivers(send):
    ran = []

    def receiver(**kwargs):
        ran.append(where())
        return "done"

    responses = await getattr(connected(receiver), send)(sender=None)
    assert responses == [(receiver, "done")]
    [place] = ran
    assert place["loop"] is None and place["thread"] != threading.get_ident()


@no_receiver
@requires_django(since="5.0")
@SENDS
async def test_no_receiver_for_the_sender(send):
    ran = []

    def sync_receiver(**kwargs):
        ran.append("sync")

    async def async_receiver(**kwargs):
        ran.append("async")

    # No receiver at all: [] in every version.
    assert await getattr(Signal(), send)(sender=None) == []
    # Receivers of another sender only, asked twice.
    signal = connected(sync_receiver, async_receiver, sender="another")
    caching = connected(sync_receiver, async_receiver, sender="another", use_caching=True)
    if CLAIM.expected("no-receiver") == "holds":
        for _ in range(2):
            assert await getattr(signal, send)(sender=None) == []
            assert await getattr(caching, send)(sender=object) == []
    else:
        for _ in range(2):
            with pytest.raises(TypeError) as raised:
                await getattr(signal, send)(sender=None)
            assert_unhashable_list(raised)
        # A caching signal (as the model signals are) stores "no receivers" for the sender
        # before it raises: only the first asend for that sender raises.
        with pytest.raises(TypeError) as raised:
            await getattr(caching, send)(sender=object)
        assert_unhashable_list(raised)
        assert await getattr(caching, send)(sender=object) == []
    assert ran == []
