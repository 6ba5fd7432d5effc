"""Waits bounded by progress (harness/progress.py, harness/meeting.py).

The two promises: a process that keeps running (or wants to) is never taken for a stuck one, so
a slow machine only makes a wait longer; and a set of processes that cannot go on is recognised
within a fraction of a second, so a wait that cannot succeed ends fast.
"""

import socket
import subprocess
import sys
import threading
import time

import pytest

from harness import progress
from harness.meeting import MeetingPoint
from harness.probe import fire
from harness.protocol import meet_line
from harness.servers import SERVERS, ServerConfig

pytestmark = pytest.mark.skipif(not progress.SUPPORTED, reason="needs Linux's /proc")

SLEEPER = "import time; time.sleep(30)"
SPINNER = "while True: pass"


@pytest.fixture
def spawn():
    started = []

    def start(code):
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def quiet_after(activity, limit):
    """Seconds until ``activity`` was quiet for QUIET, or None if it never was within ``limit``."""
    watch = progress.Quiet(activity)
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if watch.stalled():
            return time.monotonic() - start
        time.sleep(progress.SAMPLE)
    return None


FRACTION = 10 * progress.QUIET  # "within a fraction of a second": a second is 10 x QUIET


def test_a_sleeping_process_is_quiet_within_a_fraction_of_a_second(spawn):
    sleeper = spawn(SLEEPER)
    time.sleep(0.3)  # past its start-up
    took = quiet_after(progress.Activity(pids=[sleeper.pid], include_self=False), limit=2)
    # QUIET (0.1 s) and ten looks in a row, stretched by a loaded machine (0.31 s seen while
    # tox ran 12 environments on 2 cores): a fraction of a second, never a time-out.
    assert took is not None and took < FRACTION


def test_a_busy_process_is_never_quiet(spawn):
    spinner = spawn(SPINNER)
    assert quiet_after(progress.Activity(pids=[spinner.pid], include_self=False), limit=0.5) is None


def test_watching_this_process_does_not_count_as_its_progress():
    took = quiet_after(progress.Activity(), limit=2)
    assert took is not None and took < FRACTION


def call(point, group, n, answers, delay=0.0, pid=None):
    time.sleep(delay)
    with socket.create_connection(("127.0.0.1", point.port)) as conn:
        conn.sendall(meet_line(group, n, pid=pid))
        answer = conn.makefile().readline().strip()
        answers.append((time.monotonic(), answer))


def test_a_caller_that_comes_late_still_meets_while_the_others_keep_running(spawn):
    # Two callers wait, one of them speaking for a process that is busy all the while (as a
    # server on a loaded machine is); the third arrives long after QUIET: they meet.
    spinner = spawn(SPINNER)
    late = 5 * progress.QUIET
    with MeetingPoint() as point:
        answers = []
        callers = [
            threading.Thread(target=call, args=(point, "late", 3, answers, 0, spinner.pid)),
            threading.Thread(target=call, args=(point, "late", 3, answers)),
            threading.Thread(target=call, args=(point, "late", 3, answers, late)),
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(10)
        assert [a for _, a in answers] == ["met"] * 3
        assert point.given_up("late") == ""


def test_callers_that_cannot_meet_are_told_so_fast():
    with MeetingPoint() as point:
        answers = []
        started = time.monotonic()
        call(point, "stuck", 2, answers)
        assert answers[0][1] == "alone"
        assert answers[0][0] - started < 5 * progress.QUIET
        assert point.given_up("stuck") == "quiet"
        call(point, "stuck", 2, answers)  # the group has given up: at once
        assert answers[1][1] == "alone" and answers[1][0] - answers[0][0] < progress.QUIET


def test_the_cap_bounds_a_wait_that_keeps_running(spawn):
    spinner = spawn(SPINNER)
    with MeetingPoint() as point:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", point.port)) as conn:
            conn.sendall(meet_line("capped", 2, cap_ms=500, pid=spinner.pid))
            assert conn.makefile().readline().strip() == "alone"
        assert 0.5 <= time.monotonic() - started < 3
        assert point.given_up("capped") == "cap"


@pytest.mark.parametrize("name", ["uvicorn", "gunicorn-gthread"])
def test_progressing_rendezvous_never_pause_anywhere_near_quiet(server_pool, meeting, name):
    # The margin QUIET rests on: in rendezvous that do happen, through real servers, the longest
    # span with nothing running stays a small fraction of it.
    app = ServerConfig(app=f"harness.tests.apps:concurrent_{SERVERS[name].interface}")
    server = server_pool.get(name, app)
    pauses = []
    for _ in range(5):
        volley = fire(server.url, "/x/", 4, meeting=meeting)
        assert volley.meetings == ["met"] * 4
        pauses.append(meeting.longest_pause(volley.group))
    assert max(pauses) < progress.QUIET / 3, pauses

