"""The pytest plugin: claims in, verdicts out.

- ``@pytest.mark.claim(id)`` (usually ``pytestmark = CLAIM.mark``) attaches tests to a claim.
- ``evidence(label, **figures)`` records figures for the current test's claim.
- ``server`` (with ``serving(...)``) gives a running real server; ``meeting`` the rendezvous point.
- At the end of every run: the verdict table; with ``--results PATH`` a JSON results file.
- A failed test that used a server gets that server's output in its report.

A claim with a failed test is reported as CONTRADICTED: the record says one thing, Django did
another. That is the spec's loudest result.
"""

import json
import platform
import sys
import textwrap
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from harness import claims as claims_module
from harness.env import pin_process_env
from harness.meeting import MeetingPoint
from harness.servers import SERVERS, ServerConfig, ServerMissing, ServerPool

_SERVERS_USED = pytest.StashKey()
# nodeid -> (claim id, outcome, evidence list, servers used); filled from test reports, so it also works on the
# controller of a pytest-xdist run.
_OUTCOMES = {}


def pytest_addoption(parser):
    group = parser.getgroup("django-async-spec")
    group.addoption(
        "--server",
        metavar="NAMES",
        help="comma-separated servers to serve on, or 'all' (the default; a server whose package "
        f"is missing is skipped): {', '.join(SERVERS)}",
    )
    group.addoption(
        "--results",
        metavar="PATH",
        help="write the run's claims, verdicts, test outcomes and evidence as JSON to PATH",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "claim(id): the test is evidence for the claim `id`")
    _OUTCOMES.clear()


# --- attaching tests to claims ---------------------------------------------------------------


_NEEDED_SERVERS = pytest.StashKey()


def _selected_servers(config):
    option = config.getoption("--server")
    if not option or option == "all":
        return None
    names = [name.strip() for name in option.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown:
        raise pytest.UsageError(
            f"--server: unknown {', '.join(unknown)}; known: {', '.join(SERVERS)}"
        )
    return set(names)


def _server_request(item):
    callspec = getattr(item, "callspec", None)
    wanted = callspec.params.get("server") if callspec else None
    return wanted if isinstance(wanted, ServerRequest) else None


def pytest_collection_modifyitems(session, config, items):
    selected = _selected_servers(config)
    if selected is not None:
        dropped = [i for i in items if _server_request(i) and _server_request(i).name not in selected]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [i for i in items if i not in set(dropped)]
    # What the session will serve on, so the pool can start it all at once (harness/servers.py).
    config.stash[_NEEDED_SERVERS] = sorted(
        {(r.name, r.config) for r in map(_server_request, items) if r}, key=repr
    )
    registry = claims_module.REGISTRY
    for item in items:
        marks = list(item.iter_markers("claim"))
        if not marks:
            continue
        claim_id = marks[0].args[0]
        if claim_id not in registry:
            raise pytest.UsageError(f"{item.nodeid}: no claim with id {claim_id!r}")
        item.user_properties.append(("claim", claim_id))


@pytest.fixture(autouse=True)
def _pinned_env():
    """The calling shell's DJANGO_ALLOW_ASYNC_UNSAFE & co. never reach a test (harness/env.py)."""
    pin_process_env()
    yield
    pin_process_env()


class Evidence:
    def __init__(self, item):
        self._item = item

    def __call__(self, label, figures=None, **more):
        figures = {**(figures or {}), **more}
        self._item.user_properties.append(("evidence", {"label": label, **figures}))


@pytest.fixture
def evidence(request):
    return Evidence(request.node)


# --- observing Django from inside the test process --------------------------------------------


@pytest.fixture
def query_threads(monkeypatch):
    """The thread on which each SQL query of the test was executed (or attempted)."""
    import threading

    from django.db.models.sql.compiler import SQLCompiler

    threads = []
    original = SQLCompiler.execute_sql

    def execute_sql(self, *args, **kwargs):
        threads.append(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "execute_sql", execute_sql)
    return threads


@pytest.fixture
def request_log(caplog):
    """The django.request records from here on, as (logger, level, message), opened to DEBUG as
    a LOGGING setting would."""
    import logging

    caplog.set_level(logging.DEBUG, logger="django.request")
    caplog.clear()

    def records():
        return [(r.name, r.levelname, r.getMessage()) for r in caplog.records
                if r.name == "django.request"]  # fmt: skip

    return records


# --- servers and the meeting point -----------------------------------------------------------


@dataclass(frozen=True)
class ServerRequest:
    name: str
    config: ServerConfig = ServerConfig()


def serving(*servers, config=ServerConfig()):
    """Parametrize a test over real servers: ``@serving("uvicorn", "gunicorn-gthread")``, or
    with a config each: ``@serving(ServerRequest("uvicorn", ServerConfig(workers=2)), ...)``."""
    wanted = [s if isinstance(s, ServerRequest) else ServerRequest(s, config) for s in servers]
    for request in wanted:
        if request.name not in SERVERS:
            raise ValueError(f"unknown server {request.name!r}; known: {', '.join(SERVERS)}")
    return pytest.mark.parametrize(
        "server", [pytest.param(r, id=_param_id(r, config)) for r in wanted], indirect=True
    )


def _param_id(request, common):
    """The server's name, plus what its config changes beyond the test's common one."""
    changed = [
        f"{name}={getattr(request.config, name)}"
        for name in ("workers", "threads", "worker_connections")
        if getattr(request.config, name) != getattr(common, name)
    ]
    return request.name + (f"({','.join(changed)})" if changed else "")


@pytest.fixture(scope="session")
def server_pool(request):
    pool = ServerPool()
    # Start-up is most of a served test's cost: start every server this session needs side by
    # side, once, on first use.
    pool.prewarm(request.config.stash.get(_NEEDED_SERVERS, []))
    yield pool
    pool.stop()


@pytest.fixture
def server(request, server_pool):
    wanted = request.param
    try:
        running = server_pool.get(wanted.name, wanted.config)
    except ServerMissing as missing:
        pytest.skip(str(missing))
    request.node.stash.setdefault(_SERVERS_USED, []).append(running)
    request.node.user_properties.append(("server", wanted.name))
    return running


@pytest.fixture(scope="session")
def meeting():
    with MeetingPoint() as point:
        yield point


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for running in item.stash.get(_SERVERS_USED, []):
            tail = "\n".join(running.output().splitlines()[-80:])
            report.sections.append((f"output of server {running.name} ({running.url})", tail))
    return report


# --- collecting outcomes ---------------------------------------------------------------------


def pytest_runtest_logreport(report):
    props = dict(p for p in report.user_properties if p[0] == "claim")
    if "claim" not in props:
        return
    _, previous, _, _ = _OUTCOMES.get(report.nodeid, (None, "passed", [], []))
    # A failure in the test body contradicts the claim; one in set-up or tear-down (a server
    # that would not start, say) means the evidence could not be gathered: an error.
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
    elif report.skipped:
        outcome = "skipped"
    else:
        outcome = "passed" if report.when == "call" else previous
    if previous in ("failed", "error"):
        outcome = previous
    found = [value for key, value in report.user_properties if key == "evidence"]
    servers = [value for key, value in report.user_properties if key == "server"]
    _OUTCOMES[report.nodeid] = (props["claim"], outcome, found, servers)


def _versions():
    import asgiref
    import django

    servers = {name: kind.version() for name, kind in SERVERS.items()}
    return {
        "django": django.get_version(),
        "python": platform.python_version(),
        "asgiref": asgiref.__version__,
        "pytest_django": version("pytest-django"),
        "servers": servers,
    }


OUTCOMES = ("passed", "failed", "error", "skipped")


def claim_results():
    registry = claims_module.load_all()
    by_claim = {claim_id: [] for claim_id in registry}
    for nodeid, (claim_id, outcome, found, servers) in _OUTCOMES.items():
        by_claim[claim_id].append(
            {"test": nodeid, "outcome": outcome, "servers": servers, "evidence": found}
        )
    results = []
    for claim_id, tests in by_claim.items():
        counts = {k: sum(t["outcome"] == k for t in tests) for k in OUTCOMES}
        if counts["failed"]:
            status = "contradicted"
        elif counts["error"]:
            status = "error"
        elif counts["passed"]:
            status = "confirmed"
        else:
            status = "not run"
        record = registry[claim_id].as_dict()
        record.pop("module")
        results.append({**record, "status": status, "counts": counts,
                        "per_server": _per_server(registry[claim_id], tests), "tests": tests})  # fmt: skip
    return results


def _per_server(claim, tests):
    """For each server a test ran on: the recorded outcome there, and how its tests went."""
    per_server = {}
    for test in tests:
        for name in test["servers"]:
            entry = per_server.setdefault(
                name, {"expected": claim.outcomes.get(name, claim.verdict), "passed": 0,
                       "failed": 0, "error": 0, "skipped": 0},
            )  # fmt: skip
            entry[test["outcome"]] += 1
    return dict(sorted(per_server.items()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    results = claim_results()
    ran = [r for r in results if r["tests"]]
    if not ran:
        return
    write = terminalreporter.write_line
    terminalreporter.section("django-async-spec verdicts")
    v = _versions()
    write(f"Django {v['django']} · Python {v['python']} · asgiref {v['asgiref']}")
    for result in ran:
        counts = result["counts"]
        tally = f"{counts['passed']} passed" + "".join(
            f", {counts[k]} {k}" for k in OUTCOMES[1:] if counts[k]
        )
        verdict = result["verdict"]
        marker = {"confirmed": "", "not run": "  [NOT RUN]"}.get(result["status"], "")
        if result["status"] == "contradicted":
            terminalreporter.write_line(
                f"{result['id']}: CONTRADICTED — the record says {verdict!r}, but {counts['failed']}"
                " test(s) failed: Django did not behave as recorded",
                red=True, bold=True,
            )  # fmt: skip
        elif result["status"] == "error":
            terminalreporter.write_line(
                f"{result['id']}: ERROR — {counts['error']} test(s) could not gather their "
                f"evidence (set-up or tear-down failed); record says {verdict!r}  ({tally})",
                red=True, bold=True,
            )  # fmt: skip
        else:
            write(f"{result['id']}: {verdict.upper()}{marker}  ({tally})")
        detail = result["condition"] or ""
        outcome = claims_module.REGISTRY[result["id"]].outcome_text()
        if outcome:
            detail = f"{detail} [{outcome}]" if detail else outcome
        if detail:
            write(textwrap.fill(detail, 100, initial_indent="    ", subsequent_indent="    "))
        for line in _evidence_lines(result["tests"]):
            write(f"    · {line}")


def _evidence_lines(tests, limit=6):
    lines = []
    for test in tests:
        for item in test["evidence"]:
            figures = " ".join(f"{k}={_fmt(v)}" for k, v in item.items() if k != "label")
            lines.append(f"{item['label']}: {figures}")
    return lines[:limit] + ([f"(+{len(lines) - limit} more in the results file)"]
                            if len(lines) > limit else [])  # fmt: skip


def _fmt(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    path = config.getoption("--results")
    if not path or hasattr(config, "workerinput"):
        return
    payload = {
        "versions": _versions(),
        "platform": sys.platform,
        "claims": claim_results(),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
