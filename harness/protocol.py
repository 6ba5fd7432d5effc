"""The wire protocol between the project's views and the harness, defined once.

Standard library only: the servers import it too (through project/evidence.py).

- Stamps: a stamped view (project/evidence.py) reports in response headers named
  ``STAMP_PREFIX + name`` when its body started and ended, on which thread, process and loop.
- Meeting point (harness/meeting.py): a view connects and sends one line,
  ``meet GROUP N CAP_MS PID``; the answer is ``met`` or ``alone``. PID is the caller's process, so
  the meeting point can watch that process's group for progress (harness/progress.py). CAP_MS
  bounds the wait only while the watched processes keep making progress; when they go quiet the
  answer comes at once.
- ``quiet PID``: wait, as a caller of a rendezvous nobody else joins, until every watched process
  has gone quiet; the answer is ``quiet``. A view holds with it until whatever could still
  happen to it (a cancellation, a queued call) has had every chance to.
- ``announce LABEL``: "I am inside now"; the answer is ``ok``.
"""

import os

STAMP_PREFIX = "X-Spec-"

# The longest a caller may wait at the meeting point while everything it depends on keeps
# running. A rendezvous that happens costs nothing, so this can be long: a loaded machine only
# makes it wait longer, never answer ``alone``. (Clients of the views wait longer still:
# harness/probe.py's timeouts.)
MEET_CAP_MS = 10_000


def meet_line(group, n, cap_ms=MEET_CAP_MS, pid=None):
    return f"meet {group} {int(n)} {int(cap_ms)} {pid or os.getpid()}\n".encode()


def quiet_line(pid=None):
    return f"quiet {pid or os.getpid()}\n".encode()


def parse_meet(words):
    """``["meet", group, n, cap_ms, pid]`` -> (group, n, cap in seconds, pid)."""
    _, group, n, cap_ms, pid = words
    return group, int(n), int(cap_ms) / 1000, int(pid)
