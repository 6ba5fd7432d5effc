"""The probe must tell serial from concurrent, or every concurrency verdict is vacuous.

Known-serial and known-concurrent synthetic apps (harness/tests/apps.py) are served by the same
real servers the spec uses, and the probe must classify each correctly.
"""

import socket
import threading

import pytest

from harness.meeting import MeetingPoint
from harness import meeting as meeting_module
from harness.protocol import hold_line, meet_line
from harness.probe import fire, max_in_flight, union_ns
from harness.servers import ServerConfig


@pytest.mark.parametrize(
    "intervals, expected",
    [
        ([], 0),
        ([(0, 10)], 1),
        ([(0, 10), (10, 20), (20, 30)], 1),  # touching ends do not overlap
        ([(0, 10), (5, 15), (9, 30)], 3),
        ([(0, 10), (5, 15), (12, 30)], 2),
    ],
)
def test_max_in_flight(intervals, expected):
    assert max_in_flight(intervals) == expected


def test_union_counts_overlap_once():
    assert union_ns([(0, 10), (5, 15), (20, 30)]) == 25


def ask(point, line):
    with socket.create_connection(("127.0.0.1", point.port)) as conn:
        conn.sendall(line)
        return conn.makefile().readline().strip()


def test_a_hold_says_whether_it_was_released(monkeypatch):
    # A view must never take a hold that ran out for a release (it would report "completed").
    monkeypatch.setattr(meeting_module, "MEET_CAP_MS", 50)
    with MeetingPoint() as point:
        assert ask(point, hold_line("never")) == "cap"
        point.release("freed")
        assert ask(point, hold_line("freed")) == "go"


def call_meeting(point, group, n, cap_ms, answers):
    with socket.create_connection(("127.0.0.1", point.port)) as conn:
        conn.sendall(meet_line(group, n, cap_ms))
        answers.append(conn.makefile().readline().strip())


def test_meeting_point_meets_only_callers_waiting_together():
    with MeetingPoint() as point:
        together = []
        threads = [
            threading.Thread(target=call_meeting, args=(point, "g1", 3, 2000, together))
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        apart = []
        for _ in range(2):  # one after another: the first waits until nothing runs, the second
            # finds the group given up
            call_meeting(point, "g2", 2, 2000, apart)
        assert together == ["met"] * 3
        assert point.max_waiting("g1") == 3
        assert apart == ["alone"] * 2
        assert point.max_waiting("g2") == 1
        assert point.given_up("g2") == "quiet"


SYNTHETIC = [
    ("uvicorn", "asgi"),
    ("gunicorn-gthread", "wsgi"),
]


@pytest.mark.parametrize("server_name, interface", SYNTHETIC)
def test_probe_sees_a_known_serial_app_as_serial(server_pool, meeting, server_name, interface):
    server = server_pool.get(server_name, ServerConfig(app=f"harness.tests.apps:serial_{interface}"))
    volley = fire(server.url, "/x/", 3, meeting=meeting)
    assert volley.meetings == ["alone"] * 3
    assert volley.max_in_flight == 1
    assert meeting.max_waiting(volley.group) == 1


@pytest.mark.parametrize("server_name, interface", SYNTHETIC)
def test_probe_sees_a_known_concurrent_app_as_concurrent(server_pool, meeting, server_name, interface):
    server = server_pool.get(
        server_name, ServerConfig(app=f"harness.tests.apps:concurrent_{interface}")
    )
    volley = fire(server.url, "/x/", 3, meeting=meeting)
    assert volley.meetings == ["met"] * 3
    assert volley.max_in_flight == 3
    assert meeting.max_waiting(volley.group) == 3
