"""``python -m bench``: throughput and latency of each kind of view on real servers.

    python -m bench                 full mode (about 3 minutes), writes docs/benchmarks/
    python -m bench --repeat 3      full mode three times: medians and spread
    python -m bench --quick         a smoke run (about 30 s) into a temporary folder

The db-* views run on SQLite and, where PostgreSQL is installed, on PostgreSQL too, with a
comparison of CONN_MAX_AGE 0, 60 and Django's pool on uvicorn (bench/postgres.py); without it
that part is skipped, saying why.

See docs/benchmarks/README.md for what is measured and why.
"""

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT
from harness.env import pin_process_env
from harness.servers import SERVERS, ServerConfig, ServerProcess

from bench import postgres as pg
from bench.load import measure

KINDS = ["api-async", "api-sync", "db-async", "db-sync", "cpu-async", "cpu-sync", "blocking-async"]
FULL = dict(concurrency=[1, 2, 4, 8, 16, 32, 64], seconds=1.0, warmup=0.2)
QUICK = dict(concurrency=[1, 8], seconds=0.25, warmup=0.1)
WAIT_MS = 50  # how long the upstream API and the database query wait
CPU_MS = 5  # pure-Python work per CPU-bound request
# gunicorn as a user would size it for I/O-bound Django on this 2-core machine: one process (the
# comparison is per process, like uvicorn's one worker), 16 threads.
GUNICORN_THREADS = 16
SERVED = {
    "uvicorn": ServerConfig(),
    "gunicorn-gthread": ServerConfig(threads=GUNICORN_THREADS),
}


def target(kind, upstream_port=None):
    kind = pg.base_kind(kind)  # the same view, served on PostgreSQL
    if kind.startswith("api"):
        return f"/bench/{kind}/?upstream={upstream_port}&ms={WAIT_MS}"
    if kind.startswith("cpu"):
        return f"/bench/{kind}/?cpu_ms={CPU_MS}"
    return f"/bench/{kind}/?ms={WAIT_MS}"


def peak_rss_mb(server):
    """Peak resident memory (VmHWM) of the server's processes, summed, in MB."""
    total = 0
    for pid in server.running_pids():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def progress(text):
    sys.stderr.write(f"\r\033[K{text}" if sys.stderr.isatty() else f"{text}\n")
    sys.stderr.flush()


async def sweep(server, upstream, mode, label, done, total, kinds=KINDS):
    rows = []
    for kind in kinds:
        for concurrency in mode["concurrency"]:
            point = await measure(server.port, target(kind, upstream and upstream.port),
                                  concurrency, mode["seconds"], mode["warmup"])  # fmt: skip
            done[0] += 1
            progress(f"[{done[0]}/{total}] {label} {server.name:<16} {kind:<19} c={concurrency:<3}"
                     f" {point.rps:8.1f} req/s  p99 {point.percentile(0.99) * 1000:7.1f} ms")  # fmt: skip
            rows.append({
                "server": server.name, "kind": kind, "concurrency": concurrency,
                "rps": round(point.rps, 2), "requests": point.requests, "errors": point.errors,
                "p50_ms": round(point.percentile(0.5) * 1000, 2),
                "p99_ms": round(point.percentile(0.99) * 1000, 2),
                "client_cpu": round(point.client_cpu, 2),
            })  # fmt: skip
    return rows


async def adaptation(servers, mode):
    """Per-request cost of Django's sync/async adaptation, as latency ratios at concurrency 1."""
    async def p50(server, kind):
        point = await measure(server.port, f"/bench/{kind}/", 1, mode["seconds"], mode["warmup"])
        return point.percentile(0.5) * 1000

    plain = await p50(servers["uvicorn"], "noop-async")
    adapted = await p50(servers["uvicorn-sync-mw"], "noop-async")
    wsgi_sync = await p50(servers["gunicorn-gthread"], "noop-sync")
    wsgi_async = await p50(servers["gunicorn-gthread"], "noop-async")
    return {
        "asgi_noop_ms": round(plain, 3),
        "asgi_one_sync_middleware_ms": round(adapted, 3),
        "one_sync_middleware_ratio": round(adapted / plain, 2),
        "wsgi_sync_view_ms": round(wsgi_sync, 3),
        "wsgi_async_view_ms": round(wsgi_async, 3),
        "async_view_under_wsgi_ratio": round(wsgi_async / wsgi_sync, 2),
    }


async def run_once(mode, label, done, total, postgresql=True):
    upstream = ServerProcess(SERVERS["uvicorn"], ServerConfig(app="bench.upstream:app")).start()
    servers = {}
    try:
        for name, config in SERVED.items():
            servers[name] = ServerProcess(SERVERS[name], config).start()
        servers["uvicorn-sync-mw"] = ServerProcess(SERVERS["uvicorn"], ServerConfig(stack="bench-one-sync")).start()
        for name in SERVED:
            await measure(servers[name].port, "/bench/setup/", 1, 0.05, 0)
        rows, memory = [], {}
        for name in SERVED:
            rows += await sweep(servers[name], upstream, mode, label, done, total)
            memory[name] = peak_rss_mb(servers[name])
        run = {"points": rows, "peak_rss_mb": memory, "adaptation": await adaptation(servers, mode)}
    finally:
        for server in [upstream, *servers.values()]:
            server.close()
    if postgresql:
        run["points"] += await postgresql_sweep(mode, label, done, total)
        run["connections"] = await connection_comparison(mode, label, done, total)
    return run


async def setup(server):
    await measure(server.port, "/bench/setup/", 1, 0.05, 0)


async def postgresql_sweep(mode, label, done, total):
    """The db-* kinds on PostgreSQL, on the same servers and concurrencies as on SQLite."""
    servers = pg.start_all(list(pg.sweep_servers(SERVED).values()))
    try:
        rows = []
        for server in servers:
            await setup(server)
            rows += await sweep(server, None, mode, label, done, total, kinds=pg.KINDS)
        return rows
    finally:
        for server in servers:
            server.close()


async def connection_comparison(mode, label, done, total):
    """CONN_MAX_AGE 0 vs 60 vs the pool on uvicorn at concurrency 64, with PostgreSQL's count of
    the server's client backends: before, the most while the load runs, left once it is over."""
    cluster = pg.postgres_cluster()
    servers = pg.comparison_servers()
    pg.start_all(list(servers.values()))
    rows = []
    try:
        for (setting, kind), server in servers.items():
            await setup(server)
            with pg.Backends(cluster, server) as seen:
                point = await measure(server.port, target(kind), pg.CONCURRENCY, mode["seconds"],
                                      mode["warmup"])  # fmt: skip
                seen.stop()  # the count during the load ends with it
                before, left = seen.before, seen.settled()
            server.close()  # its connections go with it: none is left for the next server's count
            done[0] += 1
            progress(f"[{done[0]}/{total}] {label} {pg.COMPARED_ON:<16} {kind:<19} "
                     f"c={pg.CONCURRENCY:<3} {setting}: {point.rps:8.1f} req/s  p99 "
                     f"{point.percentile(0.99) * 1000:7.1f} ms  backends {before} -> most "
                     f"{seen.most} -> left {left}")  # fmt: skip
            rows.append({
                "setting": setting, "kind": kind, "server": pg.COMPARED_ON,
                "concurrency": pg.CONCURRENCY, "rps": round(point.rps, 2),
                "requests": point.requests, "errors": point.errors,
                "p50_ms": round(point.percentile(0.5) * 1000, 2),
                "p99_ms": round(point.percentile(0.99) * 1000, 2),
                "client_cpu": round(point.client_cpu, 2),
                "backends_before": before, "backends_most": seen.most, "backends_left": left,
                "backend_samples": len(seen.counts),
            })  # fmt: skip
        return rows
    finally:
        for server in servers.values():
            server.close()


def _medians(rows_of, keys, fields):
    """Per key, the median of each field over the runs, its spread as ± half the range in % of
    the median, and the errors summed."""
    keyed = {}
    for rows in rows_of:
        for row in rows:
            keyed.setdefault(tuple(row[key] for key in keys), []).append(row)
    entries = []
    for key, rows in keyed.items():
        entry = dict(zip(keys, key))
        for field in fields:
            values = [row[field] for row in rows]
            median = statistics.median(values)
            entry[field] = median
            if len(values) > 1 and median:
                entry[f"{field}_spread_pct"] = round(50 * (max(values) - min(values)) / median, 1)
        entry["errors"] = sum(row["errors"] for row in rows)
        entries.append(entry)
    return entries


def summarize(runs):
    """Medians over the runs, with each figure's spread as ± half the range, in % of the median."""
    points = _medians([run["points"] for run in runs], ("server", "kind", "concurrency"),
                      ("rps", "p50_ms", "p99_ms", "client_cpu"))  # fmt: skip
    memory = {name: statistics.median(run["peak_rss_mb"][name] for run in runs)
              for name in runs[0]["peak_rss_mb"]}  # fmt: skip
    adaptation = {key: statistics.median(run["adaptation"][key] for run in runs)
                  for key in runs[0]["adaptation"]}  # fmt: skip
    summary = {"points": points, "peak_rss_mb": memory, "adaptation": adaptation}
    if any("connections" in run for run in runs):
        summary["connections"] = _medians(
            [run.get("connections", []) for run in runs],
            ("setting", "kind", "server", "concurrency"),
            ("rps", "p50_ms", "p99_ms", "client_cpu", "backends_before", "backends_most",
             "backends_left"),
        )  # fmt: skip
    return summary


def postgresql_status():
    """What the run does on PostgreSQL: {"skipped": reason} where it cannot, else the server's
    version, the pool and the settings this Django cannot compare (each with its reason). Every
    skip is printed."""
    reason = pg.missing_reason()
    if reason:
        print(f"skipped: the benchmark's PostgreSQL part: {reason}", flush=True)
        return {"skipped": reason}
    status = {**pg.server_facts(), "server": pg.COMPARED_ON, "concurrency": pg.CONCURRENCY,
              "pool": pg.POOL, "settings": list(pg.SETTINGS), "settings_skipped": {},
              "sample_every_s": pg.SAMPLE_EVERY}  # fmt: skip
    for setting in pg.SETTINGS:
        why = pg.setting_reason(setting)
        if why:
            print(f"skipped: {setting} on PostgreSQL: {why}", flush=True)
            status["settings_skipped"][setting] = why
    return status


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 concurrencies, short")
    parser.add_argument("--repeat", type=int, default=1, help="run the sweep N times (medians)")
    parser.add_argument("--out", type=Path, help="output folder (default: docs/benchmarks, or a "
                        "temporary folder with --quick)")  # fmt: skip
    args = parser.parse_args(argv)
    pin_process_env()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    mode = QUICK if args.quick else FULL
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-")) if args.quick
                       else ROOT / "docs" / "benchmarks")  # fmt: skip
    load_before, started = load_average(), time.monotonic()
    postgresql = postgresql_status()
    on_postgresql = "skipped" not in postgresql
    per_run = len(SERVED) * len(KINDS) * len(mode["concurrency"])
    if on_postgresql:
        per_run += len(SERVED) * len(pg.KINDS) * len(mode["concurrency"])
        per_run += len(pg.comparisons())
    total = args.repeat * per_run
    done, runs = [0], []
    for index in range(args.repeat):
        runs.append(asyncio.run(run_once(mode, f"run {index + 1}/{args.repeat}", done, total,
                                         postgresql=on_postgresql)))  # fmt: skip
    elapsed = time.monotonic() - started
    progress(f"done: {total} points in {elapsed:.0f} s\n")
    result = {
        "mode": "quick" if args.quick else "full", "repeats": args.repeat,
        "elapsed_s": round(elapsed, 1), "machine": {"cpus": os.cpu_count(),
        "python": platform.python_version(), "load_average_before": load_before,
        "load_average_after": load_average()}, "settings": {"wait_ms": WAIT_MS, "cpu_ms": CPU_MS,
        "gunicorn_threads": GUNICORN_THREADS, **{k: v for k, v in mode.items()}},
        "versions": {name: SERVERS[name].version() for name in SERVED},
        "postgresql": postgresql, **summarize(runs), "runs": runs,
    }  # fmt: skip
    from bench.report import write

    write(result, out)
    print(f"benchmark written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
