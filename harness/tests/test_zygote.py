"""The zygote (harness/zygote.py): a forked server must be the process its command line makes.

A probe program (harness/tests/zygote_probe.py) reports what it can see of how it was started;
forked from the zygote and started as a fresh interpreter, with the same command line,
environment and working directory, it must see the same.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from harness.env import server_env
from harness.servers import zygote

PROBE = [sys.executable, "-m", "harness.tests.zygote_probe"]


def forked(tmp_path, args=(), **env):
    log = tmp_path / "forked.log"
    child = zygote().spawn([*PROBE, *args], server_env(**env), tmp_path, log)
    code = child.wait(timeout=30)
    return code, json.loads(log.read_text().splitlines()[0])


def default_signals():
    # A shell that runs pytest in the background makes it ignore SIGINT and SIGQUIT, and a child
    # inherits that; a server must not (the zygote gives its children the defaults back).
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def fresh(tmp_path, args=(), **env):
    with open(tmp_path / "fresh.log", "wb") as log:
        done = subprocess.run(
            [*PROBE, *args], env=server_env(**env), cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, timeout=30,
            preexec_fn=default_signals,
        )  # fmt: skip
    return done.returncode, json.loads((tmp_path / "fresh.log").read_text().splitlines()[0])


def test_a_forked_program_sees_what_a_fresh_interpreter_sees(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    code, seen = forked(tmp_path / "a", ["7"], SPEC_SOMETHING="x")
    fresh_code, expected = fresh(tmp_path / "b", ["7"], SPEC_SOMETHING="x")
    assert (code, fresh_code) == (7, 7)
    assert seen["cwd"].endswith("/a") and expected["cwd"].endswith("/b")
    assert seen["path0"] == seen["cwd"] and expected["path0"] == expected["cwd"]
    for key in ("cwd", "path0"):
        del seen[key], expected[key]
    assert seen == expected
    assert seen["environ"]["SPEC_SOMETHING"] == "x" and seen["own_session"]


def test_a_crash_is_reported_with_its_exit_code_and_output(tmp_path):
    log = tmp_path / "crash.log"
    child = zygote().spawn([sys.executable, "-m", "no_such_module_xyz"], server_env(), tmp_path, log)
    assert child.wait(timeout=30) == 1
    assert "No module named no_such_module_xyz" in log.read_text()


def test_python_start_up_variables_cannot_differ_from_the_zygotes(tmp_path):
    with pytest.raises(ValueError, match="PYTHON\\* variables are read at interpreter start"):
        zygote().spawn(PROBE, server_env(PYTHONWARNINGS="ignore"), tmp_path, tmp_path / "x.log")


def test_a_report_to_a_test_process_that_is_gone_is_not_a_crash(monkeypatch):
    # Seen: a server exited just as pytest was killed; the zygote's report of it raised
    # BrokenPipeError, and the zygote died before stopping the rest and removing the session.
    from harness import zygote as module

    read, write = os.pipe()
    os.close(read)
    monkeypatch.setitem(module._PROTOCOL, "fd", write)
    try:
        assert module._send({"exited": 1, "code": 0}) is False
    finally:
        os.close(write)
