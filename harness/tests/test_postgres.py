"""The session's PostgreSQL (harness/postgres.py): a database of its own per server, a clear
skip where PostgreSQL is missing. (That a run leaves no cluster and no data directory behind,
after a pass, a failure, Ctrl-C or a kill, is harness/tests/test_runs.py's.)"""

import pytest

from harness import postgres
from harness.plugin import _selected_databases
from harness.servers import ServerConfig, ServerMissing, ServerPool, postgres_cluster
from harness.probe import get

needs_postgres = pytest.mark.skipif(bool(postgres.missing_reason()), reason=postgres.missing_reason())


def test_missing_postgresql_is_a_skip_that_names_the_package(monkeypatch):
    monkeypatch.setattr(postgres, "binaries", lambda: None)
    monkeypatch.setattr("harness.servers._CLUSTER", {})
    with pytest.raises(ServerMissing, match=r"^PostgreSQL is not installed: `apt-get install postgresql`"):
        ServerPool().get("uvicorn", ServerConfig(db="postgresql"))


def test_db_option_names_only_known_databases():
    class Options:
        def __init__(self, value):
            self.value = value

        def getoption(self, name):
            return self.value

    assert _selected_databases(Options("sqlite, postgresql")) == {"sqlite", "postgresql"}
    with pytest.raises(pytest.UsageError, match="--db: unknown mysql; known: sqlite, postgresql"):
        _selected_databases(Options("sqlite,mysql"))


@needs_postgres
def test_each_server_gets_a_database_of_its_own_on_the_sessions_cluster():
    pool = ServerPool()
    try:
        first = pool.get("uvicorn", ServerConfig(db="postgresql"))
        second = pool.get("gunicorn-gthread", ServerConfig(db="postgresql"))
        cluster = postgres_cluster()
        # Local only: no TCP listener, the socket in the session folder.
        with cluster.connect() as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert cluster.folder.parent == first.workdir.parent  # the session folder
        assert first.dbname != second.dbname
        for server in (first, second):
            # The server's own database, migrated: a query through it works.
            hit = get(server.url, "/orm-async/seed/")
            assert (hit.status, hit.json()) == (200, {"seeded": "probe"})
            with cluster.connect(server.dbname) as conn:
                assert conn.execute("SELECT count(*) FROM library_author").fetchone() == (1,)
    finally:
        pool.stop()
