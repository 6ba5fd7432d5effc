"""Whole pytest runs in a subprocess: the plugin's report, and what a run leaves behind.

Each run uses a small generated test module (with synthetic claims) and the real plugin. The
module records the pid and port of the servers it used, so that after the run we can check that
they are gone and their ports free: after a run with a passing and a failing claim, after Ctrl-C,
and after pytest itself is killed.
"""

import shutil
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from harness import ROOT, postgres, status
from harness.servers import running_groups

MODULE = '''
import os, sys, time
import pytest
from harness.claims import Claim, Statement
from harness.plugin import serving
from harness.servers import SERVERS, ServerKind, migrated_database, session_dir, zygote
from harness import postgres
from harness.servers import postgres_cluster
from harness.probe import get

def synthetic(claim_id, text):
    return Claim(
        id=claim_id, source="harness self-test", claim=text,
        statements=[Statement("it", text, "holds")], mechanism="harness.servers",
        docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    )

CLAIM = synthetic("synthetic-claim", "The server answers.")
WRONG = synthetic("synthetic-wrong", "The server answers 418.")
BROKEN = synthetic("synthetic-broken", "A server that cannot start answers.")
SERVERS["ghost"] = ServerKind("ghost", "asgi", "no_such_module_xyz", "ghost-server", "-", None)
SERVERS["broken"] = ServerKind(
    "broken", "asgi", "json", "json", "-",
    lambda kind, config, port: [sys.executable, "-m", "no_such_module_xyz"],
)

@CLAIM.statement("it")
@serving("uvicorn", "gunicorn-gthread")
def test_server(server, server_pool, evidence):
    with open(os.environ["SPEC_RECORD"], "a") as record:  # every server the run has started
        for running in server_pool.running():
            record.write(f"{running.proc.pid} {running.port} {running.workdir}\\n")
        record.write(f"db - {migrated_database().parent}\\n")
        record.write(f"zygote {zygote().pid} -\\n")
        record.write(f"session - {session_dir()}\\n")
        if not postgres.missing_reason():  # the session's PostgreSQL must go the same way
            cluster = postgres_cluster()
            record.write(f"postgres {cluster.proc.pid} {cluster.folder}\\n")
    assert get(server.url, "/__spec__/ping/").status == 200
    evidence(server.name, answered=True)
    if os.environ["SPEC_MODE"] == "hang":
        with open(os.environ["SPEC_RECORD"] + ".hanging", "w"):
            pass
        time.sleep(60)

@WRONG.statement("it")
@serving("uvicorn")
def test_wrong(server):
    assert get(server.url, "/__spec__/ping/").status == 418, "failing on purpose"

@CLAIM.statement("it")
@serving("ghost")
def test_ghost(server):
    pass

@BROKEN.statement("it")
@serving("broken")
def test_broken(server):
    pass

if os.environ["SPEC_MODE"] == "unmarked":
    def test_forgotten():
        pass
'''


def start_pytest(run_dir, mode, extra_env=None):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SPEC_MODE": mode,
        "SPEC_RECORD": str(run_dir / "servers.txt"),
        **(extra_env or {}),
    }
    run_dir.mkdir(parents=True)
    (run_dir / "test_synthetic.py").write_text(MODULE)
    argv = [
        sys.executable, "-m", "pytest", "-p", "harness.plugin", "--ds=project.settings",
        "-p", "no:cacheprovider", "--rootdir", str(run_dir), "-c", os.devnull,
        "--results", str(run_dir / "results.json"), str(run_dir / "test_synthetic.py"), "-rs",
    ]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=_default_sigint,
    )  # fmt: skip


def _default_sigint():
    # When this suite itself runs in the background (CI, `cmd &`), the shell made it ignore
    # SIGINT, and the child would inherit that: a Ctrl-C would then be lost on the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def servers_used(run_dir):
    """(pid, port) of each server the run started, the folders it wrote to (its session folder,
    and the servers' and database's folders in it), and its zygote's pid."""
    used, folders, zygotes = [], set(), set()
    for line in sorted(set((run_dir / "servers.txt").read_text().splitlines())):
        what, number, folder = line.split()
        if folder != "-":
            folders.add(folder)
        if what in ("zygote", "postgres"):  # process groups that must end, with no port
            zygotes.add(int(number))
        elif what not in ("db", "session"):
            used.append((int(what), int(number)))
    return used, folders, zygotes


def remove_session(folder):
    """Remove a session folder a failed run left (and nothing that is not one)."""
    if os.path.basename(folder).startswith("spec-session-"):
        shutil.rmtree(folder, ignore_errors=True)


def assert_nothing_left(run_dir):
    used, folders, zygotes = servers_used(run_dir)
    assert len(used) == 2
    # With PostgreSQL installed, the run started a cluster: its processes and data are checked too.
    assert len(zygotes) == (1 if postgres.missing_reason() else 2), zygotes
    deadline = time.monotonic() + 5
    for pid in zygotes:
        while group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group_alive(pid), f"the zygote (or postgres) {pid} is still running"
    for pid, port in used:
        while group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group_alive(pid), f"server process group {pid} is still running"
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is still bound"
    # The session folder, and the servers' and the database template's folders in it.
    assert any(os.path.basename(f).startswith("spec-session-") for f in folders), folders
    while any(map(os.path.exists, folders)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [f for f in sorted(folders) if os.path.exists(f)] == []


def group_alive(pgid):
    """Does a process of the group still run? (A zombie has ended: it only waits to be reaped.)"""
    return bool(running_groups([pgid]))


HOSTILE = {
    "DJANGO_ALLOW_ASYNC_UNSAFE": "1",
    "WEB_CONCURRENCY": "4",
    "PYTHONWARNINGS": "ignore",
    "DJANGO_SETTINGS_MODULE": "no.such.settings",
    "SPEC_MIDDLEWARE": "seed",
    "GUNICORN_CMD_ARGS": "--threads 1",
}
HOSTILE_TESTS = [
    "specs/test_orm_in_async_view.py::test_get_raises_before_any_query_where_a_loop_runs",
    "specs/test_unawaited_sleep.py",
    "specs/test_blocking_call_in_async_view.py::test_quiz_view_serializes_requests",
    "specs/test_blocking_call_in_async_view.py::test_quiz_view_requests_overlap_on_threads",
]


def start_runs(base):
    """Every run of this module, started at once: they are independent and mostly wait."""
    started = {mode: (base / mode, start_pytest(base / mode, mode.split("-")[0]))
               for mode in ("report", "unmarked", "hang-ctrl-c", "hang-kill")}  # fmt: skip
    started["hostile"] = (base, subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *HOSTILE_TESTS],
        cwd=ROOT, env={**os.environ, **HOSTILE}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    ))  # fmt: skip
    return started


EARLY = {}  # runs started when the session's collection ended (harness/tests/conftest.py)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    started = EARLY.pop("runs", None) or start_runs(tmp_path_factory.mktemp("runs"))
    yield started
    for run_dir, proc in started.values():
        if proc.poll() is None:  # a run no test waited for (e.g. its tests went to another worker)
            os.killpg(proc.pid, signal.SIGINT)  # lets it stop its servers and clean up
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        if (run_dir / "servers.txt").exists():  # a run that failed its checks: tidy up after it
            for folder in servers_used(run_dir)[1]:
                remove_session(folder)


def test_a_run_reports_verdicts_tells_contradiction_from_error_and_leaves_nothing(runs):
    run_dir, proc = runs["report"]
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out  # one claim was contradicted, one could not be checked
    assert "synthetic-claim: HOLDS  (2 passed, 1 not run)" in out
    assert "holds: The server answers. — observed here: holds on gunicorn-gthread, uvicorn" in out
    assert "uvicorn: answered=True" in out
    # A server whose package is missing: skipped, and the reason names the package.
    assert "server 'ghost' needs the package 'ghost-server'" in out
    assert "synthetic-wrong: CONTRADICTED" in out
    assert "output of server uvicorn" in out  # the failing test's report shows the server's output
    # A server that cannot start: an error, never a contradiction.
    assert "synthetic-broken: ERROR — evidence could not be gathered" in out
    assert "synthetic-broken: CONTRADICTED" not in out
    assert "broken exited with code 1 before it answered" in out
    results = status.read(run_dir / "results.json")
    assert set(results["environment"]) >= {"django", "python", "asgiref"}
    claims = results["claims"]
    tests = claims["synthetic-claim"]["tests"]
    assert {(t["where"], t["status"]) for t in tests} == {
        ("uvicorn", "passed"), ("gunicorn-gthread", "passed"), ("ghost", "not run"),
    }  # fmt: skip
    assert claims["synthetic-claim"]["record"]["claim"] == "The server answers."
    labels = {e["label"] for t in tests for e in t["evidence"]}
    assert labels == {"uvicorn", "gunicorn-gthread"}
    assert [t["status"] for t in claims["synthetic-wrong"]["tests"]] == ["contradicted"]
    assert [t["status"] for t in claims["synthetic-broken"]["tests"]] == ["error"]
    assert_nothing_left(run_dir)


def test_a_test_that_proves_no_statement_is_a_clear_error(runs):
    run_dir, proc = runs["unmarked"]
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 4, out  # a usage error: nothing ran
    assert "test_synthetic.py::test_forgotten: this test of test_synthetic is evidence for no statement" in out
    assert "CONTRADICTED" not in out


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_an_interrupted_run_leaves_nothing(runs, how):
    run_dir, proc = runs[f"hang-{how}"]
    hanging = run_dir / "servers.txt.hanging"
    deadline = time.monotonic() + 30
    while not hanging.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 2, out  # pytest: interrupted
    else:
        proc.kill()  # SIGKILL: no clean-up code runs; PR_SET_PDEATHSIG is what stops the server
        proc.communicate(timeout=30)
    assert_nothing_left(run_dir)  # both servers had started (side by side, at session start)


def test_the_spec_ignores_a_hostile_calling_shell(runs):
    """DJANGO_ALLOW_ASYNC_UNSAFE, WEB_CONCURRENCY, PYTHONWARNINGS etc. must not change a verdict."""
    _, proc = runs["hostile"]
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "7 passed" in out
