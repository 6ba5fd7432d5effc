"""The benchmark's own arithmetic (response parsing, the medians/spread over repeated runs), its
report, and its PostgreSQL part: a skip that says why where PostgreSQL is missing, and, where it
is installed, views that wait in pg_sleep and backends counted as PostgreSQL sees them."""

import asyncio
import threading

import pytest

from bench import __main__ as bench_main
from bench import postgres as pg
from bench import report
from bench.__main__ import postgresql_status, summarize
from bench.load import _read_response
from harness import postgres, progress
from harness.probe import get
from harness.servers import ServerConfig, ServerPool, postgres_cluster

needs_postgres = pytest.mark.skipif(bool(postgres.missing_reason()), reason=postgres.missing_reason())


def parse(raw):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(reader), await reader.read()

    return asyncio.run(go())


def test_reads_exactly_one_response_of_either_framing():
    fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokNEXT"
    chunked = b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nNEXT"
    assert parse(fixed) == (200, b"NEXT")
    assert parse(chunked) == (500, b"NEXT")


def test_summary_is_the_median_with_half_range_spread():
    def run(rps):
        point = {"server": "s", "kind": "k", "concurrency": 1, "rps": rps, "p50_ms": 1.0,
                 "p99_ms": 2.0, "client_cpu": 0.1, "errors": 0}  # fmt: skip
        return {"points": [point], "peak_rss_mb": {"s": 50.0}, "adaptation": {"x": 1.0}}

    [point] = summarize([run(90), run(100), run(110)])["points"]
    assert point["rps"] == 100
    assert point["rps_spread_pct"] == 10.0


def _point(server, kind, concurrency, rps=100.0):
    return {"server": server, "kind": kind, "concurrency": concurrency, "rps": rps,
            "p50_ms": 60.0, "p99_ms": 80.0, "client_cpu": 0.1, "errors": 0}  # fmt: skip


def _connection_row(setting, kind, most, left, rps=300.0):
    return {"setting": setting, "kind": kind, "server": "uvicorn", "concurrency": 64, "rps": rps,
            "p50_ms": 170.0, "p99_ms": 250.0, "client_cpu": 0.05, "errors": 0,
            "backends_before": 0, "backends_most": most, "backends_left": left}  # fmt: skip


def _run(postgresql=True, most=60, rps=300.0):
    kinds = bench_main.KINDS + (pg.KINDS if postgresql else [])
    run = {
        "points": [_point(server, kind, c) for server in bench_main.SERVED for kind in kinds
                   for c in (1, 8)],
        "peak_rss_mb": {server: 60.0 for server in bench_main.SERVED},
        "adaptation": {"asgi_noop_ms": 1.0, "asgi_one_sync_middleware_ms": 1.2,
                       "one_sync_middleware_ratio": 1.2, "wsgi_sync_view_ms": 0.3,
                       "wsgi_async_view_ms": 0.9, "async_view_under_wsgi_ratio": 3.0},
    }  # fmt: skip
    if postgresql:
        run["connections"] = [
            _connection_row(setting, kind, most, most if "60" in setting else 0, rps)
            for setting, kind in pg.comparisons()
        ]
    return run


def _result(runs, postgresql):
    return {"mode": "quick", "repeats": len(runs), "elapsed_s": 1.0,
            "machine": {"cpus": 2, "python": "3.11", "load_average_before": [0.5, 0.4, 0.3],
                        "load_average_after": [1.5, 0.6, 0.4]},
            "settings": {"wait_ms": 50, "cpu_ms": 5, "gunicorn_threads": 16,
                         "concurrency": [1, 8], "seconds": 0.25, "warmup": 0.1},
            "versions": {"django": "5.2"}, "postgresql": postgresql,
            **summarize(runs), "runs": runs}  # fmt: skip


STATUS = {"version": "15.18", "max_connections": 300, "server": "uvicorn", "concurrency": 64,
          "pool": pg.POOL, "settings": list(pg.SETTINGS), "settings_skipped": {},
          "sample_every_s": 0.02}  # fmt: skip


def test_connection_figures_are_medians_over_the_runs():
    runs = [_run(most=most, rps=rps) for most, rps in ((60, 270.0), (64, 300.0), (70, 330.0))]
    rows = {(row["setting"], row["kind"]): row for row in summarize(runs)["connections"]}
    row = rows[("CONN_MAX_AGE=60", "db-async@postgresql")]
    assert (row["backends_most"], row["backends_left"], row["rps"]) == (64, 64, 300.0)
    assert row["rps_spread_pct"] == 10.0
    assert "connections" not in summarize([_run(postgresql=False)])


def test_the_report_has_the_postgresql_kinds_and_the_connection_columns():
    text = report.markdown(_result([_run()], STATUS)) + report.method(_result([_run()], STATUS))
    assert "| uvicorn | async view, async ORM query (PostgreSQL) | 100 | 100 |" in text
    assert "| gunicorn-gthread | sync view, sync ORM query (PostgreSQL) | 60.0 | 80.0 | 0 |" in text
    header = ("| setting | view | req/s | p50 (ms) | p99 (ms) | errors | backends before | most "
              "backends during the load | backends left after |")  # fmt: skip
    assert header in text
    rows = [line for line in text.splitlines() if line.startswith(("| CONN_MAX_AGE=", "| pool |"))]
    assert rows == [
        "| CONN_MAX_AGE=0 | async view, async ORM query (PostgreSQL) | 300 | 170.0 | 250.0 | 0 | 0 | 60 | 0 |",
        "| CONN_MAX_AGE=0 | sync view, sync ORM query (PostgreSQL) | 300 | 170.0 | 250.0 | 0 | 0 | 60 | 0 |",
        "| CONN_MAX_AGE=60 | async view, async ORM query (PostgreSQL) | 300 | 170.0 | 250.0 | 0 | 0 | 60 | 60 |",
        "| CONN_MAX_AGE=60 | sync view, sync ORM query (PostgreSQL) | 300 | 170.0 | 250.0 | 0 | 0 | 60 | 60 |",
        "| pool | async view, async ORM query (PostgreSQL) | 300 | 170.0 | 250.0 | 0 | 0 | 60 | 0 |",
        "| pool | sync view, sync ORM query (PostgreSQL) | 300 | 170.0 | 250.0 | 0 | 0 | 60 | 0 |",
    ]  # fmt: skip
    assert "‡" not in text
    crowded = _result([_run(most=290)], STATUS)
    assert "| CONN_MAX_AGE=60 | async view, async ORM query (PostgreSQL) | 300 | 170.0 | 250.0 | 0 " \
           "| 0 | 290 ‡ | 290 |" in report.markdown(crowded)  # fmt: skip
    assert "‡ at least 90% of the cluster's max_connections (300)" in report.markdown(crowded)
    flowing = " ".join(text.split())  # the method's paragraphs are wrapped
    assert """The pool is `OPTIONS['pool'] = {"min_size": 0, "max_size": 8}`""" in flowing
    assert "so 8 connections serve at most 160 requests/s" in flowing
    assert "load average (1, 5, 15 min) 0.5 / 0.4 / 0.3 when the run started" in flowing


def test_missing_postgresql_is_a_printed_skip_and_the_run_goes_on(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(postgres, "binaries", lambda: None)
    monkeypatch.setattr("harness.servers._CLUSTER", {})

    def no_cluster():
        raise AssertionError("the PostgreSQL part started a cluster although PostgreSQL is missing")

    monkeypatch.setattr(pg, "postgres_cluster", no_cluster)
    asked = []

    async def run_once(mode, label, done, total, postgresql=True):
        asked.append((postgresql, total))
        return _run(postgresql=False)

    monkeypatch.setattr(bench_main, "run_once", run_once)
    monkeypatch.setattr(report, "plot", lambda *args, **kwargs: None)  # matplotlib: bench only
    assert bench_main.main(["--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"skipped: the benchmark's PostgreSQL part: {postgres.MISSING}\n" in printed
    per_run = len(bench_main.SERVED) * len(bench_main.KINDS) * len(bench_main.QUICK["concurrency"])
    assert asked == [(False, per_run)]
    text = (tmp_path / "README.md").read_text()
    assert f"Skipped in this run: {postgres.MISSING}." in text
    assert "(PostgreSQL)" not in text.split("## Method")[0]
    assert postgresql_status() == {"skipped": postgres.MISSING}


def test_the_pool_is_compared_only_where_django_has_one(monkeypatch):
    import django

    monkeypatch.setattr(django, "VERSION", (5, 0, 9, "final", 0))
    assert pg.setting_reason("pool").startswith("Django 5.0.9 has no connection pool")
    assert [setting for setting, _ in pg.comparisons()] == (
        ["CONN_MAX_AGE=0"] * 2 + ["CONN_MAX_AGE=60"] * 2
    )
    monkeypatch.setattr(django, "VERSION", (5, 1, 0, "final", 0))
    assert {setting for setting, _ in pg.comparisons()} == set(pg.SETTINGS)


@needs_postgres
def test_on_postgresql_the_query_waits_in_pg_sleep_and_backends_are_counted():
    pool = ServerPool()
    try:
        plain = pool.get("uvicorn", ServerConfig(db="postgresql"))
        cluster = postgres_cluster()
        assert get(plain.url, "/bench/setup/").status == 200
        with pg.Backends(cluster, plain) as idle:
            # The set-up request's connection closes at its end, right after its response: wait
            # for that, or the count below could start with it.
            assert idle.settled() == 0
        hits = []
        with pg.Backends(cluster, plain, every=0.005) as seen:
            request = threading.Thread(target=lambda: hits.append(
                get(plain.url, "/bench/db-async/", {"ms": 300})))  # fmt: skip
            request.start()
            activity = progress.Activity(groups=[plain.proc.pid, cluster.proc.pid],
                                         include_self=False)  # fmt: skip

            def sleeping():
                with cluster.connect() as conn:
                    return conn.execute(
                        "SELECT wait_event, query FROM pg_stat_activity WHERE datname = %s "
                        "AND wait_event = 'PgSleep'", (plain.dbname,)).fetchall()  # fmt: skip

            # PostgreSQL itself is waiting in pg_sleep for the view's query.
            assert progress.wait_until(lambda: sleeping(), activity, cap=10)
            [(_, query)] = sleeping()
            assert "FROM pg_sleep(0.3)" in query
            request.join()
            seen.stop()
            assert seen.before == 0
            assert seen.most == 1  # the request's own connection, seen while it waited
            assert seen.settled() == 0  # CONN_MAX_AGE 0: closed at the request's end
        [hit] = hits
        assert (hit.status, hit.json()) == (200, {"waited": 300})
        if not pg.setting_reason("pool"):
            pooled = pool.get("uvicorn", ServerConfig(db="postgresql", env=pg.SETTINGS["pool"]))
            assert get(pooled.url, "/bench/setup/").status == 200
            with pg.Backends(cluster, pooled) as idle:
                # As above, the set-up request gives its connection back after its response: a
                # request sent before that finds the pool empty and opens a second connection.
                assert idle.settled() == 1  # given back to the pool, kept open
            assert get(pooled.url, "/bench/db-sync/", {"ms": 1}).json() == {"waited": 1}
            with pg.Backends(cluster, pooled) as seen:
                assert seen.settled() == 1  # kept open, idle, by the pool
    finally:
        pool.stop()
