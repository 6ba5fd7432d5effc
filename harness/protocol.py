"""The wire protocol between the project's views and the harness, defined once.

Standard library only: the servers import it too (through project/evidence.py, the project's side
of it).

- Stamps: a stamped view reports in response headers named ``STAMP_PREFIX + name`` when its body
  started and ended, on which thread, process and loop.
- The meeting point (harness/meeting.py) takes one line per connection and answers one line:

  ``meet GROUP N CAP_MS PID``  wait until N callers of GROUP wait together (``met``), or until
                               nothing watched can make progress any more (``alone``). PID is the
                               caller's process: the meeting point watches its process group.
  ``quiet PID``                a rendezvous nobody else joins: ``quiet`` once nothing watched can
                               make progress any more (``cap`` if the cap ran out first).
  ``tell GROUP EVENT``         record EVENT (no spaces) in GROUP's ordered log; ``ok``.
  ``hold GROUP``               wait until the test releases GROUP: ``go``; ``cap`` if the cap ran
                               out first, ``stopping`` if the session ends (a view must never
                               take either for a release).
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


def tell_line(group, event):
    if " " in event or " " in group:
        raise ValueError(f"no spaces in a group or an event: {group!r} {event!r}")
    return f"tell {group} {event}\n".encode()


def hold_line(group):
    return f"hold {group}\n".encode()


def parse_meet(words):
    """``["meet", group, n, cap_ms, pid]`` -> (group, n, cap in seconds, pid)."""
    _, group, n, cap_ms, pid = words
    return group, int(n), int(cap_ms) / 1000, int(pid)
