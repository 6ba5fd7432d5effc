"""Real servers as subprocesses: started on 127.0.0.1 and a free port, checked, always stopped.

A ``ServerKind`` says how to launch one server program; ``SERVERS`` lists the ones the spec
serves on. ``ServerProcess`` runs one instance:

- the port comes from the kernel (bind to port 0), so a port another program listens on is never
  chosen; if another program grabs it in the instant before the server binds, the start is
  retried on a new port;
- the process is forked from a preloaded zygote (harness/zygote.py) and then runs the server's own
  command line, so a start costs a fraction of an import of Django;
- readiness is a real HTTP request to ``/__spec__/ready/`` whose answer must carry this
  instance's token, so an answer from anything else on that port is never mistaken for ours;
- the wait for readiness is bounded by the server's progress (harness/progress.py): a server still
  starting on a loaded machine is waited for as long as it keeps running or wanting to run (up to
  ``start_cap``); one that exits, or sits idle without answering for ``start_quiet``, raises
  ``ServerStartError`` carrying its own output;
- the server runs in a session of its own (its own process group, so the terminal's Ctrl-C does
  not reach it half-way) with ``PR_SET_PDEATHSIG``, so it gets SIGTERM even if pytest is killed;
  ``stop`` terminates the whole group and kills it if it lingers; ``atexit`` stops whatever is
  still running.
"""

import atexit
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness import ROOT, progress
from harness.env import server_env
from harness.zygote import Zygote


class ServerStartError(RuntimeError):
    pass


# How the servers (runserver: "That port is already in use") and Python say a port is taken.
_BIND_FAILURE = re.compile(
    r"\[Errno 98\]|Connection in use|address already in use|port is already in use", re.I
)


_TIMED_OUT = object()  # a readiness request that got no answer in time


class ServerMissing(RuntimeError):
    """The server's package is not installed; tests that need it are skipped with this text."""


_HANDED_OUT = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port():
    """A port nothing listens on now, and that this process has not handed out before (the kernel
    may hand a port it just freed to the next caller: two servers starting at once must not get
    the same one)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with _HANDED_OUT_LOCK:
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


@dataclass(frozen=True)
class ServerConfig:
    """What may differ between two instances of one server kind."""

    workers: int = 1
    threads: int = 4
    # gunicorn: connections one worker holds at once (None: gunicorn's default, 1000). With 1, a
    # worker whose only thread is busy stops accepting, so an idle worker gets the next request.
    worker_connections: int = None
    stack: str = "none"  # project.middleware.STACKS
    debug: bool = False
    app: str = ""  # "module:attr" to serve instead of the project (the harness's own tests)
    # Every server gets its own copy of a migrated SQLite database (SPEC_DB_PATH), made once per
    # session, so views that query work through any server; False skips the copy.
    database: bool = True
    # Which database: "sqlite" (the embedded default), or "postgresql": a database of this
    # server's own in the session's cluster (harness/postgres.py), copied from a migrated one.
    db: str = "sqlite"
    # Extra environment variables, as ((name, value), ...), e.g. DJANGO_ALLOW_ASYNC_UNSAFE,
    # SPEC_CONN_MAX_AGE, SPEC_DB_POOL (project/settings.py).
    env: tuple = ()


# What warnings.showwarning can be in a server (ServerKind.warnings_to).
PYTHONS_SHOWWARNING = "warnings.showwarning"
TWISTED_SHOWWARNING = "twisted.logger._global.LogBeginner.showwarning"


@dataclass(frozen=True)
class ServerKind:
    name: str
    interface: str  # "asgi" or "wsgi"
    module: str  # what must be importable
    package: str  # what to pip install
    description: str
    build_argv: object  # (ServerKind, ServerConfig, port) -> list[str]
    # The signal for a prompt shutdown: nothing is in flight when the spec stops a server.
    stop_signal: int = signal.SIGTERM
    # Extra environment for the server (project/settings.py reads SPEC_* switches).
    env: tuple = ()
    # False for Django's runserver: it serves the project's settings, never another app.
    serves_any_app: bool = True
    # Does one worker serve at most ServerConfig.threads requests at once? (gunicorn gthread yes;
    # runserver starts a thread per connection, without limit.)
    thread_bound: bool = False
    # What warnings.showwarning is in the server, so where a warning goes: Python's own prints it
    # on stderr; daphne starts Twisted's logging (daphne.server.Server.run ->
    # globalLogBeginner.beginLoggingTo), which puts LogBeginner.showwarning in its place and, at
    # daphne's default verbosity, sends warnings to an observer that drops them.
    warnings_to: str = PYTHONS_SHOWWARNING

    @property
    def prints_warnings(self):
        return self.warnings_to == PYTHONS_SHOWWARNING

    def app(self, config):
        return config.app or f"project.{self.interface}:application"

    def missing_reason(self):
        if importlib.util.find_spec(self.module) is None:
            return (
                f"server {self.name!r} needs the package {self.package!r}, which is not "
                f"installed (pip install {self.package})"
            )
        return None

    def version(self):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.package)
        except PackageNotFoundError:
            return None


# Each launcher pins what the server would otherwise pick by itself (event loop implementation,
# HTTP parser, worker count), so that an optional extra installed on one machine cannot change
# what is measured.


def _uvicorn_argv(kind, config, port):
    return [
        sys.executable, "-m", "uvicorn", kind.app(config),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(config.workers),
        "--loop", "asyncio", "--http", "h11",
        # Its WebSocket protocol too: "auto" would switch to the websockets package wherever it
        # happens to be installed, and that one rejects a handshake with other bytes.
        "--ws", "wsproto",
        "--no-access-log",
        # With several workers the supervisor kills a child that does not answer its health check
        # within 5 s (the default) — which a child still importing Django on a loaded machine
        # may not: give it time, so start-up load never turns into a dead worker.
        *(["--timeout-worker-healthcheck", "30"] if config.workers > 1 else []),
    ]  # fmt: skip


def _daphne_argv(kind, config, port):
    _single_process(kind, config)
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), kind.app(config)]


def _hypercorn_argv(kind, config, port):
    return [
        sys.executable, "-m", "hypercorn", kind.app(config),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(config.workers), "--worker-class", "asyncio",
    ]  # fmt: skip


def _granian_argv(kind, config, port):
    return [
        sys.executable, "-m", "granian", "--interface", "asgi",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(config.workers), "--loop", "asyncio", "--no-ws",
        kind.app(config),
    ]  # fmt: skip


def _gunicorn_argv(kind, config, port):
    # No --config: gunicorn reads ./gunicorn.conf.py by default, and the working directory is a
    # fresh empty one (ServerProcess.workdir), so no stray config file is ever read.
    return [
        sys.executable, "-m", "gunicorn", kind.app(config),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(config.workers),
        "--worker-class", "gthread", "--threads", str(config.threads),
        "--graceful-timeout", "1",
        "--no-control-socket",  # gunicorn >= 25: a management socket the spec has no use for
        *(["--worker-connections", str(config.worker_connections)]
          if config.worker_connections else []),
    ]  # fmt: skip


def _runserver_argv(kind, config, port):
    _single_process(kind, config)
    if config.app:
        raise ValueError(f"{kind.name} serves the project only, not {config.app!r}")
    # --noreload: the autoreloader would run the server in a child process of its own.
    return [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"]


def _single_process(kind, config):
    if config.workers != 1:
        raise ValueError(f"{kind.name} has no worker processes to configure")


SERVERS = {
    kind.name: kind
    for kind in [
        ServerKind(
            "uvicorn", "asgi", "uvicorn", "uvicorn",
            "uvicorn (ASGI), one worker, asyncio loop, h11, wsproto", _uvicorn_argv,
        ),
        ServerKind(
            "daphne", "asgi", "daphne", "daphne",
            "daphne (ASGI, Twisted), one process", _daphne_argv,
            warnings_to=TWISTED_SHOWWARNING,
        ),
        ServerKind(
            "hypercorn", "asgi", "hypercorn", "hypercorn",
            "hypercorn (ASGI), one worker, asyncio worker class", _hypercorn_argv,
        ),
        ServerKind(
            "granian", "asgi", "granian", "granian",
            "granian (Rust HTTP server), ASGI interface, one worker, asyncio loop", _granian_argv,
        ),
        ServerKind(
            "runserver-daphne", "asgi", "daphne", "daphne",
            "Django's runserver with daphne in INSTALLED_APPS (ASGI), --noreload",
            _runserver_argv, env=(("SPEC_RUNSERVER", "daphne"),), serves_any_app=False,
            warnings_to=TWISTED_SHOWWARNING,
        ),
        ServerKind(
            "gunicorn-gthread", "wsgi", "gunicorn", "gunicorn",
            "gunicorn (WSGI), gthread worker, one process, 4 threads", _gunicorn_argv,
            # gunicorn's quick shutdown (QUIT) still waits up to --graceful-timeout for a worker
            # whose thread pool is blocked; it has nothing to clean up (its worker heartbeat
            # files are unlinked when made), so the group is killed outright.
            stop_signal=signal.SIGKILL,
            thread_bound=True,
        ),
        ServerKind(
            "runserver", "wsgi", "django", "Django",
            "Django's runserver (WSGI, a thread per connection), --noreload",
            _runserver_argv, serves_any_app=False,
        ),
    ]
}  # fmt: skip

ASGI_SERVERS = [name for name, kind in SERVERS.items() if kind.interface == "asgi"]
WSGI_SERVERS = [name for name, kind in SERVERS.items() if kind.interface == "wsgi"]


_LIVE = set()
_LIVE_LOCK = threading.Lock()
_ZYGOTE = {}


@atexit.register
def stop_all():
    with _LIVE_LOCK:
        live = list(_LIVE)
    stop_servers(live)
    zygote = _ZYGOTE.pop("running", None)
    if zygote is not None:
        zygote.close()
        shutil.rmtree(_ZYGOTE.pop("session"), ignore_errors=True)


def zygote():
    """The test process's zygote, started on first use (harness/zygote.py).

    Everything the servers leave on disk (the zygote's log, the migrated database, each server's
    working directory and log) lives in one session folder, removed at exit; should the test
    process be killed, the zygote removes it once the servers it started have stopped."""
    with _LIVE_LOCK:
        if "running" not in _ZYGOTE:
            session = tempfile.mkdtemp(prefix="spec-session-")
            try:
                _ZYGOTE["running"] = Zygote(session_env(session), session)
            except BaseException:
                shutil.rmtree(session, ignore_errors=True)
                raise
            _ZYGOTE["session"] = session
        return _ZYGOTE["running"]


def session_dir():
    return Path(zygote().workdir)


def session_env(session, **extra):
    """A server's environment (harness/env.py), with its temporary files and its home in the
    session folder: whatever a server writes there (gunicorn's control socket, say) goes when the
    session ends, and never meets another run's."""
    return server_env(TMPDIR=session, HOME=session, **extra)


@dataclass(eq=False)
class ServerProcess:
    kind: ServerKind
    config: ServerConfig = field(default_factory=ServerConfig)
    # A starting server that has been idle this long without answering is stuck (a busy one, on
    # a loaded machine, is waited for up to start_cap).
    start_quiet: float = 3.0
    start_cap: float = 120.0
    extra_env: dict = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen = None
    workdir: Path = None
    started_at: float = 0.0
    _token: str = ""
    _fixed_port: int = None  # a port the caller insisted on (no retry elsewhere)
    dbname: str = None  # its PostgreSQL database (config.db == "postgresql")

    @property
    def name(self):
        return self.kind.name

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self):
        return self.workdir / "server.log"

    def output(self):
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, TypeError):
            return ""

    def start(self):
        self.launch()
        return self.wait_ready()

    def launch(self):
        """Start the process (not yet ready)."""
        reason = self.kind.missing_reason()
        if reason:
            raise ServerMissing(reason)
        self.workdir = self.workdir or Path(
            tempfile.mkdtemp(prefix=f"{self.kind.name}-", dir=session_dir())
        )
        self._fixed_port = self._fixed_port if self._fixed_port is not None else self.port
        self._launch_once(port=self._fixed_port or free_port())
        return self

    def wait_ready(self, retry=True):
        """Wait until the server answers; a port taken meanwhile is retried on a new one
        (``retry=False`` from a short-lived thread: a relaunch must come from a lasting one)."""
        for attempt in range(3 if retry else 1):
            try:
                self._wait_ready(self._token)
                return self
            except ServerStartError as error:
                # A server stuck in start-up (gunicorn retrying a bind) may not act on its stop
                # signal until it gives up: kill it outright.
                self.stop(prompt=False)
                port_taken = bool(_BIND_FAILURE.search(str(error)))
                if not port_taken or self._fixed_port or not retry or attempt == 2:
                    raise
                self._launch_once(port=free_port())
            except BaseException:
                self.stop(prompt=False)
                raise
        raise AssertionError("unreachable")

    def _launch_once(self, port):
        self.port = port
        if self.config.db == "postgresql":
            if self.dbname is None:
                self.dbname = postgres_cluster().new_database(self.kind.name, _migrate_with)
            database = postgres_cluster().settings(self.dbname)
        else:
            if self.config.database and not (self.workdir / "db.sqlite3").exists():
                shutil.copyfile(migrated_database(), self.workdir / "db.sqlite3")
            database = {"SPEC_DB_PATH": self.workdir / "db.sqlite3"}
        self._token = token = uuid.uuid4().hex
        env = session_env(
            session_dir(),
            SPEC_TOKEN=token,
            SPEC_MIDDLEWARE=self.config.stack,
            SPEC_DEBUG="1" if self.config.debug else "0",
            **database,
            **dict(self.kind.env),
            **dict(self.config.env),
            **self.extra_env,
        )
        argv = self.kind.build_argv(self.kind, self.config, port)
        # A relaunch starts a log of its own (the failed launch's is kept beside it): what a test
        # reads of a server's output is its current process's only.
        if self.log_path.exists():
            attempts = len(list(self.workdir.glob("server.log*")))
            self.log_path.rename(self.workdir / f"server.log.{attempts}")
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
        self.started_at = time.monotonic()
        self.proc = zygote().spawn(argv, env, self.workdir, self.log_path, self.kind.stop_signal)
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _wait_ready(self, token):
        deadline = time.monotonic() + self.start_cap
        # The server's own process group only: our polling is not its progress.
        quiet = progress.Quiet(progress.Activity(groups=[self.proc.pid], include_self=False),
                               self.start_quiet)  # fmt: skip
        patience = 0.1  # per readiness request; grows, for a server slowed by a loaded machine
        pause = 0.01  # between readiness requests; grows, so dozens of waits stay cheap
        foreign, stuck, next_check = None, False, 0.0
        while True:
            if _BIND_FAILURE.search(self.output()):
                # Seen in the server's own words: fail now rather than after its bind retries.
                raise ServerStartError(
                    f"{self.kind.name} could not bind 127.0.0.1:{self.port} (address already in "
                    f"use); its output:\n{self.output()}"
                )
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"{self.kind.name} exited with code {self.proc.returncode} before it "
                    f"answered; its output:\n{self.output()}"
                )
            answer = self._ready_answer(patience)
            if answer is _TIMED_OUT:
                patience, answer = min(2.0, patience * 2), None
            if answer is not None:
                # Our project answers with our token. A stack that makes every request fail
                # (the seed's middleware) answers 500 instead; then the listening socket itself
                # must belong to our process. Anything else may be a server still warming up:
                # ask again until the deadline, and only then call it foreign.
                if answer.get("token") == token or self._owns_port():
                    return
                foreign = answer.get("_answer", "an answer without our token")
            # Sampled now and then: dozens of servers may be starting at once.
            if time.monotonic() >= next_check:
                stuck, next_check = quiet.stalled(), time.monotonic() + 0.2
            if stuck or time.monotonic() > deadline:
                waited = time.monotonic() - self.started_at
                if foreign:
                    raise ServerStartError(
                        f"something else answered on 127.0.0.1:{self.port} (not "
                        f"{self.kind.name}): {foreign}; server output:\n{self.output()}"
                    )
                why = (f"it has been idle for {self.start_quiet:.0f}s" if stuck
                       else f"it was still busy after {self.start_cap:.0f}s")  # fmt: skip
                raise ServerStartError(
                    f"{self.kind.name} did not answer on {self.url} after {waited:.1f}s: {why}; "
                    f"its output:\n{self.output()}"
                )
            time.sleep(pause)
            pause = min(0.05, pause * 1.5)

    def _ready_answer(self, timeout):
        """None while nothing answers HTTP; else the JSON answer ({} when it is not ours)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/__spec__/ready/")
            response = conn.getresponse()
            body = response.read()
        except TimeoutError:
            return _TIMED_OUT
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        seen = f"HTTP {response.status}, {body[:120]!r}"
        try:
            answer = json.loads(body) if response.status == 200 else {}
        except ValueError:
            answer = {}
        return {**answer, "_answer": seen} if isinstance(answer, dict) else {"_answer": seen}

    def _owns_port(self):
        """Linux: is the socket listening on our port held by a process of the server's group?

        (The group, not just the process we started: granian's and hypercorn's workers hold the
        listening socket themselves.)
        """
        wanted = f"0100007F:{self.port:04X}"
        try:
            rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return False
        inodes = {
            row.split()[9] for row in rows
            if row.split()[1] == wanted and row.split()[3] == "0A"  # LISTEN
        }  # fmt: skip
        links = set()
        for pid in self._group_pids():
            try:
                fds = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    links.add(os.readlink(fd))
                except OSError:  # closed while we looked
                    pass
        return any(f"socket:[{inode}]" in links for inode in inodes)

    def _group_pids(self):
        return progress.group_members(self.proc.pid, fresh=True)

    def stop(self, prompt=True):
        stop_servers([self], prompt)

    def running_pids(self):
        """Processes of the server's group that still run (zombies, awaiting reaping, do not)."""
        return running_groups([self.proc.pid]).get(self.proc.pid, [])

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self):
        """Stop, then remove the working directory (its log goes with it)."""
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def stop_servers(servers, prompt=True):
    """Stop servers, all at once: each gets its prompt-shutdown signal (so it removes what it
    made, e.g. hypercorn's semaphores in /dev/shm), up to 3 s to exit, then SIGKILL for whatever
    of its group is left. Returns once no process of any of their groups runs any more."""
    servers = [s for s in servers if s.proc is not None]
    if prompt:
        for server in servers:
            if server.proc.poll() is None:
                server._signal_group(server.kind.stop_signal)
        deadline = time.monotonic() + 3
        for server in servers:
            try:
                server.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    # Workers (and multiprocessing's helper processes) may outlive their master for a moment;
    # the group goes in every case.
    for server in servers:
        server._signal_group(signal.SIGKILL)
    deadline = time.monotonic() + 3
    groups = [server.proc.pid for server in servers]
    while running_groups(groups) and time.monotonic() < deadline:
        time.sleep(0.01)
    for server in servers:  # and its exit has been reported (poll() says so from here on)
        try:
            server.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    with _LIVE_LOCK:
        _LIVE.difference_update(servers)


def running_groups(pgids):
    """{pgid: [pids still running]} for those of ``pgids`` with a process that has not ended.

    A process has ended when every one of its threads has: the main thread of a killed
    multi-threaded process (gunicorn's worker) is a zombie while the others still exit, and the
    process's sockets close only when the last one is gone."""
    wanted, running = set(pgids), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            pgid = os.getpgid(int(entry))
        except OSError:
            continue
        if pgid in wanted and _any_thread_alive(entry):
            running.setdefault(pgid, []).append(int(entry))
    return running


def _any_thread_alive(pid):
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                    return True
        except (OSError, IndexError):
            pass
    return False


_TEMPLATE = {}
_TEMPLATE_LOCK = threading.Lock()


def migrated_database():
    """A migrated SQLite file, made once per process and copied for each server that needs it."""
    with _TEMPLATE_LOCK:
        if "path" not in _TEMPLATE:
            folder = Path(tempfile.mkdtemp(prefix="db-", dir=session_dir()))
            path, log = folder / "template.sqlite3", folder / "migrate.log"
            argv = [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"]
            migrate = zygote().spawn(argv, session_env(session_dir(), SPEC_DB_PATH=path), folder, log)
            if migrate.wait(timeout=120) != 0:
                raise RuntimeError(f"migrate failed; its output:\n{log.read_text()}")
            _TEMPLATE["path"] = path
        return _TEMPLATE["path"]


_CLUSTER = {}


def postgres_cluster():
    """The session's PostgreSQL cluster (harness/postgres.py), started on first use."""
    from harness import postgres

    with _TEMPLATE_LOCK:
        if "running" not in _CLUSTER:
            reason = postgres.missing_reason()
            if reason:
                raise ServerMissing(reason)
            cluster = postgres.Cluster(session_dir() / "postgresql", zygote().spawn)
            _CLUSTER["running"] = cluster.start(session_env(session_dir()))
        return _CLUSTER["running"]


def use_postgresql_in_process():
    """Point this process's default database (the one pytest-django makes its test database from,
    and that in-process tests query) at the session's PostgreSQL. Called before the test databases
    are set up (the root conftest's ``django_db_modify_db_settings``)."""
    from harness import postgres
    from django.conf import settings
    from django.db import connections

    cluster = postgres_cluster()
    settings.DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": str(cluster.socket_dir),
        "USER": postgres.USER,
        "NAME": "spec_in_process",
        "TEST": {"NAME": "test_spec_in_process"},
    }
    # The handler computed its settings (with their defaults) from the old entry: again.
    connections.__dict__.pop("settings", None)
    # A wrapper made before (pytest-django looks at the databases while it collects) is SQLite's.
    if hasattr(connections._connections, "default"):
        connections._connections.default.close()
        del connections._connections.default


def _migrate_with(settings):
    folder = Path(tempfile.mkdtemp(prefix="migrate-", dir=session_dir()))
    log = folder / "migrate.log"
    argv = [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"]
    migrate = zygote().spawn(argv, session_env(session_dir(), **settings), folder, log)
    if migrate.wait(timeout=120) != 0:
        raise RuntimeError(f"migrate failed; its output:\n{log.read_text()}")


class ServerPool:
    """One running instance per (kind, config), started on first use, all stopped at the end.

    Start-up is the expensive part of a served test, so tests that need the same server share it.
    """

    def __init__(self):
        self._servers = {}
        self._failures = {}
        self._starting = {}  # key -> the thread starting it (prewarm)

    def get(self, name, config=ServerConfig()):
        kind = SERVERS[name]
        reason = kind.missing_reason()
        if reason:
            raise ServerMissing(reason)
        key = (name, config)
        starting = self._starting.pop(key, None)
        if starting is not None:
            starting.join()
        if key not in self._servers and key not in self._failures:
            self._start(key)
        if key in self._failures:
            raise ServerStartError(self._failures[key])
        return self._servers[key]

    def running(self):
        """The servers this pool has started and not yet stopped (once those still starting
        have started)."""
        for thread in list(self._starting.values()):
            thread.join()
        return list(self._servers.values())

    def prewarm(self, keys):
        """Start these (name, config) servers side by side, in the background: each test waits
        only for its own (``get``), so tests run while the rest are still starting. Errors
        surface in ``get``. (The zygote is every server's parent, so any thread may start one.)
        """
        for key in keys:
            name, _ = key
            if key in self._servers or key in self._starting or SERVERS[name].missing_reason():
                continue
            thread = threading.Thread(target=self._start, args=(key,), daemon=True,
                                      name=f"start-{name}")  # fmt: skip
            self._starting[key] = thread
            thread.start()

    def _start(self, key):
        name, config = key
        server = ServerProcess(SERVERS[name], config)
        try:
            self._servers[key] = server.start()
        except (ServerStartError, ValueError) as error:
            server.close()
            self._failures[key] = str(error)

    def stop(self):
        for thread in list(self._starting.values()):
            thread.join()
        self._starting.clear()
        servers = list(self._servers.values())
        stop_servers(servers)
        for server in servers:
            server.close()  # stopped already: removes its working directory
        self._servers.clear()
