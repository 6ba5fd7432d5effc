"""The benchmark's PostgreSQL part: the db-* views on the session's cluster, and how many
connections CONN_MAX_AGE 0, CONN_MAX_AGE 60 and Django's pool hold open on it.

- **The db-* kinds on PostgreSQL** (``db-async@postgresql``, ``db-sync@postgresql``): the same
  views as on SQLite (project/views/bench.py), whose query waits in ``pg_sleep`` instead of the
  SQLite function, for the same 50 ms, on the same servers and concurrencies as the SQLite kinds,
  so the two compare. Django's defaults (CONN_MAX_AGE 0, no pool).
- **The connection comparison**: uvicorn at concurrency 64, one server per setting and view, so
  that each starts from its own database and no other server's connections. Besides throughput
  and latency, PostgreSQL's own count of the server's client backends (pg_stat_activity, filtered
  by the server's database): before the load, the most seen while it runs (sampled from this
  process every ``SAMPLE_EVERY`` seconds), and what is left once the server and PostgreSQL have
  gone quiet after it (harness/progress.py: no CPU, nothing runnable, for ``progress.QUIET``).

The cluster is the harness's (harness/postgres.py via ``harness.servers.postgres_cluster``): one
per run, a database per server copied from a migrated template, stopped with the servers at exit.
Where PostgreSQL or psycopg is missing, the part is skipped and says why (``missing_reason``).
"""

import dataclasses
import json
import threading

from harness import postgres, progress
from harness.servers import SERVERS, ServerConfig, ServerProcess, postgres_cluster

SUFFIX = "@postgresql"
DB_KINDS = ["db-async", "db-sync"]
KINDS = [kind + SUFFIX for kind in DB_KINDS]
# The pool: at most 8 connections for 64 concurrent requests. A pool is there to bound what one
# server process holds (PostgreSQL's max_connections, 100 by default, is shared by every process
# of every server); 8 makes both the bound and its price visible: a request holds its connection
# at least for its 50 ms query (Django gives it back when the request ends), so 8 connections
# serve at most 8 / 0.05 = 160 requests/s and the other requests queue in the pool. min_size 0:
# connections are opened on demand, as without a pool.
POOL = {"min_size": 0, "max_size": 8}
COMPARED_ON = "uvicorn"
CONCURRENCY = 64
SETTINGS = {
    "CONN_MAX_AGE=0": (),
    "CONN_MAX_AGE=60": (("SPEC_CONN_MAX_AGE", "60"),),
    "pool": (("SPEC_DB_POOL", json.dumps(POOL, separators=(",", ":"))),),
}
SAMPLE_EVERY = 0.02
# The same question as harness.postgres.Cluster.connections, asked on one lasting connection: a
# new connection per sample would fork a backend 50 times a second beside the server under test.
_BACKENDS = ("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
             "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")  # fmt: skip


def missing_reason():
    """Why the PostgreSQL part cannot run here, or ""."""
    return postgres.missing_reason()


def setting_reason(setting):
    """Why a setting of the comparison cannot run on this Django, or ""."""
    import django

    if setting == "pool" and django.VERSION < (5, 1):
        return f"Django {django.get_version()} has no connection pool (OPTIONS['pool'] needs 5.1)"
    return ""


def base_kind(kind):
    return kind.removesuffix(SUFFIX)


def server_facts():
    """The session cluster's version and max_connections (it starts the cluster)."""
    with postgres_cluster().connect() as conn:
        [version] = conn.execute("SHOW server_version").fetchone()
        [most] = conn.execute("SHOW max_connections").fetchone()
    return {"version": version, "max_connections": int(most)}


def start_all(servers):
    """Start servers side by side (each launched, then each waited for); all or none."""
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers


def sweep_servers(served):
    """The served servers (name -> ServerConfig) again, each on a PostgreSQL database."""
    return {name: ServerProcess(SERVERS[name], dataclasses.replace(config, db="postgresql"))
            for name, config in served.items()}  # fmt: skip


def comparisons():
    """The (setting, kind) pairs the comparison measures: every view, for each setting this
    Django has."""
    return [(setting, kind) for setting in SETTINGS if not setting_reason(setting)
            for kind in KINDS]  # fmt: skip


def comparison_servers():
    """{(setting, kind): ServerProcess}: a server of its own for each pair."""
    return {(setting, kind): ServerProcess(SERVERS[COMPARED_ON],
                                           ServerConfig(db="postgresql", env=SETTINGS[setting]))
            for setting, kind in comparisons()}  # fmt: skip


class Backends:
    """PostgreSQL's count of a server's client backends, on one connection of its own (opened
    before the load: a server that fills max_connections must not keep the count from being
    taken). ``before`` is the count on entering; then a thread counts every ``every`` seconds
    until ``stop()`` (``counts``, ``most``); ``settled()`` is the count once the server and
    PostgreSQL have both gone quiet (what a server closes at a request's end, it closes right
    after the response has gone)."""

    def __init__(self, cluster, server, every=SAMPLE_EVERY):
        self.cluster, self.server, self.every = cluster, server, every
        self.counts = []
        self._stop = threading.Event()
        self._conn = None
        self._thread = None

    def count(self):
        return self._conn.execute(_BACKENDS, (self.server.dbname,)).fetchone()[0]

    def __enter__(self):
        self._conn = self.cluster.connect()
        self.before = self.count()
        self.counts.append(self.before)
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-backends")
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every):
            self.counts.append(self.count())

    def stop(self):
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.counts.append(self.count())

    @property
    def most(self):
        return max(self.counts)

    def settled(self):
        self.stop()
        activity = progress.Activity(groups=[self.server.proc.pid, self.cluster.proc.pid],
                                     include_self=False)  # fmt: skip
        progress.wait_until(lambda: False, activity, cap=10.0)
        return self.count()

    def __exit__(self, *exc):
        self.stop()
        self._conn.close()
