"""A real PostgreSQL for the session: one cluster, started on first use, a database per server.

The cluster is Debian's (or any) PostgreSQL binaries run on a throwaway data directory inside the
session folder (harness/servers.py ``session_dir``), listening on a Unix socket in that folder
only: no TCP port to collide with, nothing reachable from elsewhere. fsync and friends are off:
the data is thrown away. ``initdb`` runs once per session (about 0.7 s here); each server that
wants PostgreSQL gets its own database, copied from a migrated template (``CREATE DATABASE ...
TEMPLATE``), so no server sees another's rows or connections.

Stopping: the postmaster is a child of the zygote like every server (harness/zygote.py), started
in a process group of its own with SIGINT (PostgreSQL's "fast" shutdown) as its stop signal. So it
stops with the servers at the end of the session, on a failed or interrupted run, and when pytest
is killed (the zygote stops every child's group, then removes the session folder and the data
directory in it).

PostgreSQL refuses to run as root. Run as root (CI), the cluster's processes run as the
``postgres`` user (Debian's package makes it), else as ``nobody``; ``python -m harness.postgres``
is the small launcher, forked by the zygote, that drops to that user and execs ``postgres``.

Not pytest-postgresql: it starts PostgreSQL with ``pg_ctl`` as a child of the test process, so a
killed pytest leaves the cluster running and its data directory behind, and it has no way to run
as another user when the tests run as root. The zygote already guarantees both.
"""

import ctypes
import glob
import os
import pwd
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from harness import progress

# How to get it, said wherever PostgreSQL is missing.
MISSING = (
    "PostgreSQL is not installed: `apt-get install postgresql` (Debian; initdb and postgres "
    "are then under /usr/lib/postgresql/<version>/bin), or put initdb and postgres on PATH"
)
NO_DRIVER = "psycopg is not installed: `pip install \"psycopg[binary]\" psycopg-pool`"
USER = "postgres"  # the database role the project connects as (initdb -U)
TEMPLATE = "spec_template"
# Start-up waits on progress, like the servers': stuck only once idle this long.
START_QUIET = 3.0
START_CAP = 60.0

PR_SET_PDEATHSIG = 1


def binaries():
    """{"initdb": path, "postgres": path}, from PATH or the newest /usr/lib/postgresql/<v>/bin;
    None where either is missing."""
    found = {}
    for name in ("initdb", "postgres"):
        for folder in os.environ.get("PATH", "").split(os.pathsep):
            if folder and os.access(os.path.join(folder, name), os.X_OK):
                found[name] = os.path.join(folder, name)
                break
    if len(found) == 2:
        return found
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p)],
        reverse=True,
    )
    for folder in versions:
        paths = {name: os.path.join(folder, name) for name in ("initdb", "postgres")}
        if all(os.access(path, os.X_OK) for path in paths.values()):
            return paths
    return None


def missing_reason():
    """Why PostgreSQL cannot be used here, or "" when it can."""
    if binaries() is None:
        return MISSING
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return NO_DRIVER
    return ""


def run_as():
    """The OS user the cluster runs as: ourselves, or, as root, ``postgres`` (else ``nobody``)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


class Cluster:
    """One PostgreSQL cluster in ``folder`` (inside the session folder), started by ``start``."""

    def __init__(self, folder, spawn):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.socket_dir = self.folder  # short: a Unix socket path is limited to 107 bytes
        self._spawn = spawn  # the zygote's spawn (harness/servers.py)
        self.proc = None
        self.log_path = self.folder / "postgres.log"
        self.started_in = None
        self._lock = threading.Lock()
        self._template = False
        self._monitor = None

    def output(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, env):
        paths = binaries()
        if paths is None:
            raise RuntimeError(MISSING)
        user = run_as()
        began = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chown(self.folder, user.pw_uid, user.pw_gid)
        if os.geteuid() == 0:
            # The session folder is mkdtemp's 0700: let the cluster's user through to its own.
            os.chmod(self.folder.parent, 0o711)
        initdb = subprocess.run(
            [paths["initdb"], "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, env=env, user=user.pw_uid, group=user.pw_gid,
            extra_groups=[], cwd=self.folder,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}{initdb.stderr}")
        argv = [
            sys.executable, "-m", "harness.postgres", user.pw_name, paths["postgres"],
            "-D", str(self.data), "-k", str(self.socket_dir), "-c", "listen_addresses=",
            # Throwaway data: nothing needs to reach the disk.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            # Room for the connection claims' concurrent requests on every server at once.
            "-c", "max_connections=300",
        ]  # fmt: skip
        self.proc = self._spawn(argv, env, self.folder, self.log_path, signal.SIGINT)
        self._wait_ready(began)
        self.started_in = time.monotonic() - began
        return self

    def _wait_ready(self, began):
        quiet = progress.Quiet(progress.Activity(groups=[self.proc.pid], include_self=False),
                               START_QUIET)  # fmt: skip
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with code {self.proc.returncode} before it "
                                   f"accepted connections; its output:\n{self.output()}")  # fmt: skip
            try:
                self.connect().close()
                return
            except Exception as error:  # psycopg.OperationalError until it accepts
                last = error
            if quiet.stalled() or time.monotonic() - began > START_CAP:
                raise RuntimeError(f"postgres did not accept connections ({last}); its "
                                   f"output:\n{self.output()}")  # fmt: skip
            time.sleep(0.02)

    def settings(self, dbname):
        """What project/settings.py needs to reach ``dbname`` (environment variables)."""
        return {"SPEC_DB": "postgresql", "SPEC_PG_HOST": str(self.socket_dir),
                "SPEC_PG_USER": USER, "SPEC_PG_NAME": dbname}  # fmt: skip

    def connect(self, dbname="postgres"):
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), user=USER, dbname=dbname,
                               autocommit=True, connect_timeout=5)  # fmt: skip

    def migrated_template(self, migrate):
        """Make the migrated template database once: ``migrate(env)`` runs Django's migrate with
        the given settings."""
        with self._lock:
            if not self._template:
                with self.connect() as conn:
                    conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
                migrate(self.settings(TEMPLATE))
                self._template = True

    def new_database(self, prefix, migrate):
        """A new database, a copy of the migrated template, for one server; returns its name."""
        self.migrated_template(migrate)
        name = f"spec_{re.sub(r'[^a-z0-9]', '_', prefix.lower())}_{uuid.uuid4().hex[:8]}"
        with self._lock, self.connect() as conn:  # one copy at a time: a template in use fails
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        return name

    def connections(self, dbname):
        """The client backends connected to ``dbname`` now, as (pid, state) pairs. Asked on one
        lasting connection: a new one per look would be a new backend per look, and a wait on
        the cluster's progress would never see it quiet."""
        with self._lock:
            if self._monitor is None or self._monitor.closed:
                self._monitor = self.connect()
            rows = self._monitor.execute(
                "SELECT pid, state FROM pg_stat_activity WHERE datname = %s "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
        return sorted(rows)


def pool_waiting(server):
    """How many requests wait in the server's Django connection pool for a connection now (asked
    of the server: /postgresql/pool-waiting/)."""
    from harness.probe import get

    return get(server.url, "/postgresql/pool-waiting/").json()["waiting"]


def connections_once(cluster, server, expected):
    """The server's connections to its database, once there are ``expected`` of them or nothing
    can change any more (the backend of a closed connection takes a moment to go)."""
    activity = progress.Activity(groups=[server.proc.pid, cluster.proc.pid])
    progress.wait_until(lambda: len(cluster.connections(server.dbname)) == expected, activity)
    return cluster.connections(server.dbname)


def _become_postgres(user_name, postgres, args):
    """In the zygote's forked child: drop to the cluster's user and exec postgres."""
    user = pwd.getpwnam(user_name)
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    # Changing credentials clears the parent-death signal: ask again, so that a killed zygote
    # takes the cluster with it (SIGINT: fast shutdown).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    os.environ["HOME"] = str(Path.cwd())
    os.execv(postgres, [postgres, *args])


if __name__ == "__main__":
    _become_postgres(sys.argv[1], sys.argv[2], sys.argv[3:])


class AdvisoryLock:
    """A PostgreSQL advisory lock the test holds (exclusive) in a server's database, for the
    evidence PostgreSQL keeps itself: every query of /postgresql/locked/ (project/views/
    postgresql.py) waits for it (shared), visible in ``pg_stat_activity`` (wait_event
    'advisory'), so how many wait at once is how many queries are in flight, with no clock.
    Advisory locks are per database, and each server has its own."""

    KEY = 7203
    PATH = "/postgresql/locked/"

    def __init__(self, cluster, server):
        self.cluster, self.server = cluster, server
        self.holder = cluster.connect(server.dbname)
        self.holder.execute("SELECT pg_advisory_lock(%s)", (self.KEY,))
        # What can move while queries wait: the server and the cluster (the test's own looks,
        # on this one connection, stay below what counts as progress).
        self.activity = progress.Activity(groups=[server.proc.pid, cluster.proc.pid])

    def waiting(self):
        """The backends whose query waits for the lock now."""
        rows = self.holder.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
            "AND wait_event = 'advisory'",
            (self.server.dbname,),
        ).fetchall()
        return sorted(pid for (pid,) in rows)

    def settle(self, predicate):
        """Until ``predicate()``, or until nothing can run any more."""
        progress.wait_until(predicate, self.activity)

    def others(self):
        """The server's connections to its database, the holder's left out."""
        mine = self.holder.info.backend_pid
        return {pid for pid, _ in self.cluster.connections(self.server.dbname)} - {mine}

    def release(self):
        self.holder.execute("SELECT pg_advisory_unlock(%s)", (self.KEY,))

    def close(self):
        self.holder.close()  # releases it too: no view is left waiting

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
