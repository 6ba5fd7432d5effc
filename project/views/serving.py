"""Seed claims 1 and 2: the kinds of view whose serving the spec compares.

"External I/O" here is real network I/O: the view calls the harness's meeting point
(``harness/meeting.py``) on 127.0.0.1, which answers ``met`` only once ``n`` callers of the same
group are waiting at the same time (a rendezvous), and ``alone`` once nobody else can arrive.
A request that gets ``met`` was therefore provably in flight together with the others.

The ``*-meet-then-cpu`` kinds first meet the others (blocking in the sync one, awaited in the
async one), then burn CPU: every request of a volley is in flight before any of them burns, so
their CPU work can only be serialized by what runs them, never by when they arrived. (Async
views that share one event loop's thread also share its CPU clock: each one's thread CPU time
then counts the others' work too, so the async kind measures CPU only where each request has a
thread of its own, as under WSGI.)

Query parameters: ``meet`` (the meeting point's port), ``group``, ``n`` for the I/O kinds
(project/evidence.py); ``cpu_ms`` (thread CPU time to burn) for the CPU-bound kinds.
"""

import time

from django.http import JsonResponse

from project.evidence import ameet, meet, meeting_args


def _burn_cpu(request):
    # Burn a fixed amount of this thread's CPU time, not of wall time: on a loaded machine the
    # work stays the same, only its wall duration grows.
    budget = int(request.GET.get("cpu_ms", 100)) * 1_000_000
    start = time.thread_time_ns()
    spins = 0
    while time.thread_time_ns() - start < budget:
        sum(i * i for i in range(1000))
        spins += 1
    return spins


async def async_await_io(request):
    return JsonResponse({"meeting": await ameet(*meeting_args(request))})


async def async_blocking_io(request):
    return JsonResponse({"meeting": meet(*meeting_args(request))})


async def async_cpu(request):
    return JsonResponse({"spins": _burn_cpu(request)})


async def async_meet_then_cpu(request):
    meeting = await ameet(*meeting_args(request))
    return JsonResponse({"meeting": meeting, "spins": _burn_cpu(request)})


def sync_blocking_io(request):
    return JsonResponse({"meeting": meet(*meeting_args(request))})


def sync_cpu(request):
    return JsonResponse({"spins": _burn_cpu(request)})


def sync_meet_then_cpu(request):
    meeting = meet(*meeting_args(request))
    return JsonResponse({"meeting": meeting, "spins": _burn_cpu(request)})


KINDS = {
    "async-await-io": async_await_io,
    "async-blocking-io": async_blocking_io,
    "async-cpu": async_cpu,
    "async-meet-then-cpu": async_meet_then_cpu,
    "sync-blocking-io": sync_blocking_io,
    "sync-cpu": sync_cpu,
    "sync-meet-then-cpu": sync_meet_then_cpu,
}
