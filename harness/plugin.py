"""The pytest plugin: claims in, verdicts out.

- ``@CLAIM.statement("id")`` (harness/claims.py) makes a test evidence for one statement of a
  claim. Every test of a spec module must have one: a test without is a collection error naming
  its module, and so is a statement without tests.
- ``evidence(label, **figures)`` records figures for the current test.
- ``server`` (with ``serving(...)``) gives a running real server; ``meeting`` the rendezvous point.
- At the end of every run: the verdict table (each claim, its statements, where they were
  observed in this run); with ``--results PATH`` the run as JSON (harness/status.py's schema).
- A failed test that used a server gets that server's output in its report.

Statuses (passed, contradicted, error, not run) come from the one rule in harness/status.py. A
statement with a contradicted test is printed as CONTRADICTED: the record says one thing, Django
did another. That is the spec's loudest result; an error (evidence not gathered) never is.
"""

import platform
import sys
import textwrap
from dataclasses import dataclass, replace
from importlib.metadata import version

import pytest

from harness import status as statuses
from harness.status import verdict_text
from harness.claims import DATABASES, Claim, Where
from harness.env import pin_process_env
from harness.meeting import MeetingPoint
from harness.servers import SERVERS, ServerConfig, ServerMissing, ServerPool
from harness.versions import django_version_text

_SERVERS_USED = pytest.StashKey()
_NEEDED_SERVERS = pytest.StashKey()
_PROPERTY = "django-async-spec"  # the one user property the plugin uses: {"where"/"evidence": ...}


class Run:
    """What this session learns. It is filled from test reports only (which pytest-xdist's
    workers send to the controller), so a parallel run reports like a plain one."""

    def __init__(self):
        # nodeid -> {"claim": record, "statement", "where", "expected", "phases", "evidence"}
        self.tests = {}


def pytest_addoption(parser):
    group = parser.getgroup("django-async-spec")
    group.addoption(
        "--server",
        metavar="NAMES",
        help="comma-separated servers to serve on, or 'all' (the default; a server whose package "
        f"is missing is skipped): {', '.join(SERVERS)}",
    )
    group.addoption(
        "--db",
        metavar="NAMES",
        default="sqlite,postgresql",
        help="comma-separated databases for the tests that serve on several: sqlite (embedded), "
        "postgresql (a cluster the session starts; its tests are skipped, with the reason, where "
        "PostgreSQL or psycopg is missing). Default: both. With postgresql alone, the in-process "
        "tests query PostgreSQL too",
    )
    group.addoption(
        "--results",
        metavar="PATH",
        help="write the run's claims, statements, test statuses and evidence as JSON to PATH",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "statement(claim, id): the test is evidence for statement `id` of `claim`"
    )
    config.addinivalue_line(
        "markers", "interface(name): an in-process test drives Django's 'asgi' or 'wsgi' handler"
    )
    config.stash[_RUN] = Run()


_RUN = pytest.StashKey()


# --- attaching tests to statements -----------------------------------------------------------


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


def _selected_databases(config):
    names = [name.strip() for name in config.getoption("--db").split(",") if name.strip()]
    unknown = [name for name in names if name not in DATABASES]
    if unknown or not names:
        raise pytest.UsageError(f"--db: unknown {', '.join(unknown) or 'nothing'}; known: "
                                f"{', '.join(DATABASES)}")  # fmt: skip
    return set(names)


def process_database(config):
    """The database of the in-process tests: PostgreSQL when ``--db`` names it alone, else SQLite
    (servers each have their own, whatever this is)."""
    return "postgresql" if _selected_databases(config) == {"postgresql"} else "sqlite"


def in_process_database(config):
    """Switch the in-process database to PostgreSQL where ``--db postgresql`` asks; skip the tests
    that need it, with the reason, where PostgreSQL is missing."""
    if process_database(config) != "postgresql":
        return
    from harness import postgres
    from harness.servers import use_postgresql_in_process

    reason = postgres.missing_reason()
    if reason:
        pytest.skip(reason)
    use_postgresql_in_process()


def _server_request(item):
    callspec = getattr(item, "callspec", None)
    wanted = callspec.params.get("server") if callspec else None
    return wanted if isinstance(wanted, ServerRequest) else None


def where_of(item):
    """Where a test observes: its server, or the in-process handler it drives (its ``interface``
    parameter, or an ``@pytest.mark.interface("asgi")`` mark)."""
    request = _server_request(item)
    if request:
        database = "" if request.config.db == "sqlite" else request.config.db
        return Where(request.name, SERVERS[request.name].interface, database)
    callspec = getattr(item, "callspec", None)
    interface = callspec.params.get("interface", "") if callspec else ""
    if interface not in ("asgi", "wsgi"):
        marked = item.get_closest_marker("interface")
        interface = marked.args[0] if marked else ""
    if interface not in ("", "asgi", "wsgi"):
        raise pytest.UsageError(f"{item.nodeid}: interface must be 'asgi' or 'wsgi', not {interface!r}")
    database = process_database(item.config)
    return Where("", interface, "" if database == "sqlite" else database)


def statement_of(item):
    """(claim, statement id) from the test's statement mark; None outside spec modules."""
    marks = list(item.iter_markers("statement"))
    in_spec_module = isinstance(getattr(item.module, "CLAIM", None), Claim) if hasattr(item, "module") else False
    if not marks:
        if in_spec_module:
            raise pytest.UsageError(
                f"{item.nodeid}: this test of {item.module.__name__} is evidence for no statement; "
                "mark it with @CLAIM.statement(\"...\") (or set pytestmark = CLAIM.statement(...))"
            )
        return None
    claim, statement_id = marks[0].args
    return claim, statement_id


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    # Before -k/--server deselect anything: every statement of every collected claim has tests.
    claims, owned = {}, {}
    django = django_version_text()
    for item in items:
        found = statement_of(item)
        if found:
            claim, statement_id = found
            claims[claim.id] = claim
            owned.setdefault(claim.id, set()).add(statement_id)
            where = where_of(item)
            item.user_properties.append((_PROPERTY, {"test": {
                "claim": claim.as_dict(), "statement": statement_id, "where": where.label,
                "expected": claim.statement_named(statement_id).outcome_at(where, django),
            }}))  # fmt: skip
    # (Only when whole modules were collected: naming single tests is how one works on one.)
    whole_modules = not any("::" in str(arg) for arg in config.args)
    for claim_id, claim in claims.items() if whole_modules else ():
        missing = [s.id for s in claim.statements if s.id not in owned.get(claim_id, set())]
        if missing:
            raise pytest.UsageError(
                f"claim {claim_id!r} ({claim.module or 'its module'}): statement(s) {missing} have "
                "no tests; every statement needs evidence"
            )
    selected = _selected_servers(config)
    databases = _selected_databases(config)
    dropped = [i for i in items if _server_request(i) and _server_request(i).database_axis
               and _server_request(i).config.db not in databases]  # fmt: skip
    if selected is not None:
        dropped += [i for i in items if _server_request(i) and _server_request(i).name not in selected]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in set(dropped)]
    # What the session will serve on, so the pool can start it all at once (harness/servers.py).
    config.stash[_NEEDED_SERVERS] = sorted(
        {(r.name, r.config) for r in map(_server_request, items) if r}, key=repr
    )

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
        self._item.user_properties.append((_PROPERTY, {"evidence": {"label": label, **figures}}))


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
def runtime_warnings():
    """The RuntimeWarnings of the test so far, once garbage collection has run.

    Python reports an un-awaited coroutine when it is destroyed, and something may hold it a
    moment longer than the request (a traceback in a finished task, an executor thread that has
    not moved on): when none is reported yet, collect and look again, for up to half a second,
    rather than let this test's coroutine be reported during the next one. ``expected=False``
    (nothing should come) looks once."""
    import gc
    import time
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def seen(expected=True):
            for attempt in range(50):
                found = [str(w.message) for w in caught if w.category is RuntimeWarning]
                if found or (not expected and attempt):
                    return found
                # The young generations first: a full collection walks all of Django too.
                gc.collect(1 if attempt < 2 else 2)
                if attempt:
                    time.sleep(0.01)
            return found

        yield seen


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
    database_axis: bool = False  # served on each of several databases: --db picks


def each_proves(argname, statements):
    """Parametrize a test over ``argname`` where each value is evidence for its own statement:
    ``@each_proves("form", {"lazy": CLAIM.statement("lazy"), "prefetched": ...})``."""
    return pytest.mark.parametrize(
        argname, [pytest.param(value, id=str(value), marks=mark) for value, mark in statements.items()]
    )


def serving(*servers, config=ServerConfig(), databases=None):
    """Parametrize a test over real servers: ``@serving("uvicorn", "gunicorn-gthread")``, or
    with a config each: ``@serving(ServerRequest("uvicorn", ServerConfig(workers=2)), ...)``.
    ``databases=("sqlite", "postgresql")`` serves each on each database (``--db`` picks)."""
    wanted = [s if isinstance(s, ServerRequest) else ServerRequest(s, config) for s in servers]
    if databases:
        wanted = [ServerRequest(r.name, replace(r.config, db=db), database_axis=True)
                  for db in databases for r in wanted]  # fmt: skip
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
    on = "" if request.config.db == "sqlite" else f"@{request.config.db}"
    return request.name + (f"({','.join(changed)})" if changed else "") + on


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
    config = _CONFIG.get("config")
    if config is None:
        return
    run = config.stash[_RUN]
    mine = [value for key, value in report.user_properties if key == _PROPERTY]
    info = next((value["test"] for value in mine if "test" in value), None)
    if info is None:
        return
    test = run.tests.setdefault(report.nodeid, {**info, "phases": {}, "evidence": []})
    test["phases"][report.when] = report.outcome
    if report.when == "call":
        test["evidence"] = [value["evidence"] for value in mine if "evidence" in value]


_CONFIG = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _CONFIG["config"] = session.config


def _environment():
    import asgiref

    return {
        "django": django_version_text(),
        "python": platform.python_version(),
        "asgiref": asgiref.__version__,
        "pytest_django": version("pytest-django"),
        "servers": {name: kind.version() for name, kind in SERVERS.items()},
        "platform": sys.platform,
    }


def claim_results(run):
    """{claim id: {"record", "tests"}} in harness/status.py's schema."""
    results = {}
    for nodeid, test in sorted(run.tests.items()):
        record = test["claim"]
        entry = results.setdefault(record["id"], {"record": record, "tests": []})
        entry["tests"].append({
            "test": nodeid, "statement": test["statement"], "where": test["where"],
            "expected": test["expected"], "status": statuses.status_of_test(test["phases"]),
            "evidence": test["evidence"],
        })  # fmt: skip
    return results


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    results = claim_results(config.stash[_RUN])
    ran = {cid: r for cid, r in results.items()
           if any(t["status"] != statuses.NOT_RUN for t in r["tests"])}  # fmt: skip
    if not ran:
        return
    write = terminalreporter.write_line
    terminalreporter.section("django-async-spec verdicts")
    env = _environment()
    write(f"Django {env['django']} · Python {env['python']} · asgiref {env['asgiref']}")
    for claim_id, result in ran.items():
        record = result["record"]
        tests = result["tests"]
        overall = statuses.combine(t["status"] for t in tests)
        tally = ", ".join(f"{n} {s}" for s, n in statuses.counts(t["status"] for t in tests).items() if n)
        if overall == statuses.CONTRADICTED:
            terminalreporter.write_line(
                f"{claim_id}: CONTRADICTED — Django did not behave as recorded ({tally})",
                red=True, bold=True,
            )  # fmt: skip
        elif overall == statuses.ERROR:
            terminalreporter.write_line(
                f"{claim_id}: ERROR — evidence could not be gathered (set-up failed); record says "
                f"{verdict_text(record)!r} ({tally})", red=True, bold=True,
            )  # fmt: skip
        else:
            write(f"{claim_id}: {record['verdict'].upper()}{verdict_text(record)[len(record['verdict']):]}  ({tally})")
        for statement in record["statements"]:
            mine = [t for t in tests if t["statement"] == statement["id"]]
            status = statuses.combine(t["status"] for t in mine)
            places = _places(mine)
            line = f"{statement['verdict']}: {statement['text']}"
            if statement["condition"]:
                line += f" [{statement['condition']}]"
            if places:
                line += f" — observed here: {places}"
            if status in (statuses.CONTRADICTED, statuses.ERROR):
                line = f"{status.upper()}: {line}"
            write(textwrap.fill(line, 100, initial_indent="    · ", subsequent_indent="      "))
        for line in _evidence_lines(tests):
            write(f"      {line}")


def _places(tests):
    """'holds on uvicorn, daphne; refuted on gunicorn-gthread' for the places that really ran."""
    by_outcome = {}
    for test in tests:
        if test["status"] == statuses.PASSED:
            by_outcome.setdefault(test["expected"], [])
            if test["where"] not in by_outcome[test["expected"]]:
                by_outcome[test["expected"]].append(test["where"])
    return "; ".join(f"{outcome} on {', '.join(places)}" for outcome, places in by_outcome.items())


def _evidence_lines(tests, limit=4):
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
    # tox's second pass (`--db postgresql -m django_db`) over a module none of whose tests touch
    # the database selects nothing: that is a pass with nothing to do there, not a failure.
    if (exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and config.option.markexpr == "django_db"
            and process_database(config) == "postgresql"):
        session.exitstatus = pytest.ExitCode.OK
    path = config.getoption("--results")
    if not path or hasattr(config, "workerinput"):
        return
    payload = statuses.run_payload(_environment(), claim_results(config.stash[_RUN]))
    statuses.write(path, payload)
