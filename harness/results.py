"""Committed results, the drift check, and the cross-version matrix.

Every tox environment writes a fresh results file (``pytest --results .results/ENV.json``). The
committed copies live in ``results/``. Three commands:

- ``python -m harness.results check``  compare fresh with committed; exit 1 on any difference,
  naming the environment (Django and Python version) and the claim. Timing figures are left out of
  the comparison (they differ on every run); verdicts, statuses, per-server outcomes and each
  test's outcome are compared exactly.
- ``python -m harness.results update`` copy fresh results over the committed ones (after a change
  you mean), then render.
- ``python -m harness.results render`` build ``results/README.md`` and ``results/matrix.html``
  from the committed results.
"""

import argparse
import html
import json
import shutil
import sys
from pathlib import Path

from harness import ROOT

FRESH = ROOT / ".results"
COMMITTED = ROOT / "results"
PROJECTED_CLAIM_FIELDS = ("verdict", "condition", "outcomes", "status", "counts", "per_server")


def series(version):
    return ".".join(version.split(".")[:2])


def stable(payload):
    """What must not change between two runs on the same versions (no timing figures)."""
    versions = payload["versions"]
    return {
        "django": series(versions["django"]),
        "python": series(versions["python"]),
        "asgiref": versions["asgiref"],
        "servers": versions["servers"],
        "claims": {
            claim["id"]: {
                **{name: claim[name] for name in PROJECTED_CLAIM_FIELDS},
                "tests": {test["test"]: test["outcome"] for test in claim["tests"]},
            }
            for claim in payload["claims"]
        },
    }


def _differences(env, fresh, committed):
    fresh, committed = stable(fresh), stable(committed)
    where = f"{env} (Django {fresh['django']}, Python {fresh['python']})"
    found = []
    for key in ("django", "python", "asgiref", "servers"):
        if fresh[key] != committed[key]:
            found.append(f"{where}: {key} is {fresh[key]!r}, committed {committed[key]!r}")
    for claim_id in sorted(set(fresh["claims"]) | set(committed["claims"])):
        new, old = fresh["claims"].get(claim_id), committed["claims"].get(claim_id)
        if new is None or old is None:
            state = "is new" if old is None else "is gone"
            found.append(f"{where}: claim {claim_id!r} {state} (not in the committed results)"
                         if old is None else f"{where}: claim {claim_id!r} {state}")  # fmt: skip
            continue
        for name in (*PROJECTED_CLAIM_FIELDS, "tests"):
            if new[name] != old[name]:
                found.append(
                    f"{where}: claim {claim_id!r}: {name} is {_show(new[name], old[name])}"
                )
    return found


def _show(new, old):
    if isinstance(new, dict) and isinstance(old, dict):
        changed = {k: (old.get(k), new.get(k)) for k in set(new) | set(old) if new.get(k) != old.get(k)}
        return "changed: " + "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
    return f"{new!r}, committed {old!r}"


def check(fresh_dir=FRESH, committed_dir=COMMITTED, out=print):
    fresh_files = sorted(Path(fresh_dir).glob("*.json"))
    if not fresh_files:
        out(f"drift check: no fresh results in {fresh_dir} (did any tox environment run?)")
        return 1
    problems = []
    for path in fresh_files:
        committed = Path(committed_dir) / path.name
        if not committed.exists():
            problems.append(f"{path.stem}: no committed results (python -m harness.results update)")
            continue
        problems += _differences(path.stem, _load(path), _load(committed))
    not_run = sorted({p.stem for p in Path(committed_dir).glob("*.json")} - {p.stem for p in fresh_files})
    for env in not_run:
        out(f"drift check: {env} did not run here; its committed results were not re-checked")
    if problems:
        out("drift check FAILED: fresh results differ from the committed ones:")
        for problem in problems:
            out(f"  - {problem}")
        out("If the change is intended: python -m harness.results update, then commit results/.")
        return 1
    out(f"drift check: {len(fresh_files)} environment(s) match the committed results")
    return 0


def update(fresh_dir=FRESH, committed_dir=COMMITTED):
    Path(committed_dir).mkdir(exist_ok=True)
    for path in sorted(Path(fresh_dir).glob("*.json")):
        shutil.copyfile(path, Path(committed_dir) / path.name)
    render(committed_dir)


def _load(path):
    return json.loads(Path(path).read_text())


# --- the matrix ------------------------------------------------------------------------------


def _env_order(name):
    # dj42-py311 -> (4, 2, 311)
    dj, py = name.split("-")
    return (int(dj[2]), int(dj[3:]), int(py[2:]))


def matrix(committed_dir=COMMITTED):
    """Rows: a claim, or a claim on one server; columns: environments; cells: what was observed."""
    runs = {p.stem: _load(p) for p in sorted(Path(committed_dir).glob("*.json"), key=lambda p: _env_order(p.stem))}
    columns = [
        (env, f"Django {series(run['versions']['django'])}", f"Python {series(run['versions']['python'])}")
        for env, run in runs.items()
    ]
    rows = {}
    for env, run in runs.items():
        for claim in run["claims"]:
            base = rows.setdefault((claim["id"], ""), {})
            base[env] = _cell(claim["status"], claim["verdict"])
            for server, entry in claim["per_server"].items():
                failed = entry["failed"] + entry["error"]
                status = "contradicted" if failed else "confirmed" if entry["passed"] else "not run"
                rows.setdefault((claim["id"], server), {})[env] = _cell(status, entry["expected"])
    return columns, rows


def _cell(status, outcome):
    return {"confirmed": f"✓ {outcome}", "contradicted": f"✗ CONTRADICTED ({outcome} expected)",
            "error": "! error", "not run": "– not run"}[status]  # fmt: skip


def render_texts(committed_dir=COMMITTED):
    """The matrix as Markdown and as a self-contained HTML page."""
    columns, rows = matrix(committed_dir)
    head = ["Claim", *(f"{dj}<br>{py}" for _, dj, py in columns)]
    lines = [
        "# Cross-version results",
        "",
        "Generated by `python -m harness.results render` from the committed results files in this",
        "folder (one per tox environment). ✓ means every test of the claim (or of the claim on that",
        "server) passed, so the recorded outcome was observed; ✗ means Django did something else.",
        "The same table as a page: [matrix.html](matrix.html).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for (claim_id, server), cells in rows.items():
        label = f"`{claim_id}`" + (f" on {server}" if server else "")
        lines.append("| " + " | ".join([label, *(cells.get(env, "") for env, _, _ in columns)]) + " |")
    return "\n".join(lines) + "\n", _html(columns, rows)


def render(committed_dir=COMMITTED):
    markdown, page = render_texts(committed_dir)
    Path(committed_dir, "README.md").write_text(markdown)
    Path(committed_dir, "matrix.html").write_text(page)


def _html(columns, rows):
    def td(text):
        kind = "ok" if text.startswith("✓") else "bad" if text.startswith(("✗", "!")) else ""
        return f'<td class="{kind}">{html.escape(text)}</td>'

    header = "".join(f"<th>{html.escape(dj)}<br>{html.escape(py)}</th>" for _, dj, py in columns)
    body = "".join(
        f"<tr><th class=claim>{html.escape(claim_id)}"
        + (f' <span class=server>on {html.escape(server)}</span>' if server else "")
        + "</th>" + "".join(td(cells.get(env, "")) for env, _, _ in columns) + "</tr>"
        for (claim_id, server), cells in rows.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>django-async-spec: cross-version results</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; }}
th.claim {{ font-family: monospace; font-weight: normal; }}
.server {{ color: #555; font-family: system-ui, sans-serif; }}
td.ok {{ background: #e8f5e9; }} td.bad {{ background: #ffebee; font-weight: bold; }}
</style></head><body>
<h1>django-async-spec: cross-version results</h1>
<p>Generated by <code>python -m harness.results render</code> from the committed results.
✓: the recorded outcome was observed (all tests passed). ✗: Django did something else.</p>
<table><tr><th>Claim</th>{header}</tr>{body}</table>
</body></html>
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description="committed results: check, update, render")
    parser.add_argument("command", choices=["check", "update", "render"])
    args = parser.parse_args(argv)
    if args.command == "check":
        return check()
    if args.command == "update":
        update()
    else:
        render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
