"""Committed results, one file per claim; the drift check; the cross-version matrix.

Every tox environment writes a fresh results file for its run (``pytest --results
.results/ENV.json``, harness/status.py's schema). What is committed is one file per claim,
``results/claims/ID.json``, holding that claim's results in every environment. Commands:

- ``python -m harness.results collect specs/test_x.py``: run one spec module in every tox spec
  environment and write its claim's file, touching no other claim's file (for a new claim, or
  after changing one);
- ``python -m harness.results update [--claim ID ...]``: copy the fresh results of the claims that
  ran (or only those named) into their committed files, then render;
- ``python -m harness.results check``: compare the fresh results with the committed ones; exit 1
  on any difference, naming the environment (Django and Python version), the claim and the
  statement. Evidence figures are left out (they differ on every run); expected outcomes and
  statuses of every cell and test are compared exactly. A claim that did not run in an
  environment is "not run" there, not a failure;
- ``python -m harness.results render``: build ``results/README.md`` and ``results/matrix.html``.
"""

import argparse
import configparser
import html
import re
import subprocess
import sys
from pathlib import Path

from harness import ROOT
from harness import status as statuses
from harness.status import verdict_text

FRESH = ROOT / ".results"
COMMITTED = ROOT / "results"


def _claims_dir(committed_dir):
    return Path(committed_dir) / "claims"


# An environment's second run, with the in-process tests on PostgreSQL (tox.ini: `--db
# postgresql`), is written beside its first as <env>-pg.json and read as part of it.
IN_PROCESS_ON_POSTGRESQL = "-pg"


def _fresh_runs(fresh_dir):
    runs = {path.stem: statuses.read(path) for path in sorted(Path(fresh_dir).glob("*.json"))}
    for name in [name for name in runs if name.endswith(IN_PROCESS_ON_POSTGRESQL)]:
        second, base = runs.pop(name), name[: -len(IN_PROCESS_ON_POSTGRESQL)]
        if base not in runs:
            raise ValueError(f"{name}.json has no {base}.json to belong to")
        merge_in_process_postgresql(runs[base], second)
    return runs


def merge_in_process_postgresql(run, second):
    """Add ``second``'s in-process tests on PostgreSQL to ``run`` (its other tests, served ones,
    ``run`` has already). A test keeps its id, marked with the database."""
    for claim_id, result in second["claims"].items():
        tests = [{**test, "test": f"{test['test']} (on postgresql)"} for test in result["tests"]
                 if test["where"].startswith("in process") and test["where"].endswith(" on postgresql")]  # fmt: skip
        if tests:
            run["claims"].setdefault(claim_id, {**result, "tests": []})["tests"].extend(tests)


def _ran(run, claim_id):
    """Did any of the claim's tests run in this run (rather than being skipped or deselected)?"""
    return any(t["status"] != statuses.NOT_RUN for t in run["claims"][claim_id]["tests"])


def committed_claims(committed_dir=COMMITTED):
    return {
        path.stem: statuses.read(path)
        for path in sorted(_claims_dir(committed_dir).glob("*.json"))
    }


# --- update and check ------------------------------------------------------------------------


def update(fresh_dir=FRESH, committed_dir=COMMITTED, only=(), envs=None):
    """Write the fresh results of the claims that ran (or of ``only``; from the environments
    ``envs``, default all) into their files."""
    runs = {env: run for env, run in _fresh_runs(fresh_dir).items() if envs is None or env in envs}
    touched = {}
    for env, run in runs.items():
        for claim_id, result in run["claims"].items():
            if only and claim_id not in only:
                continue
            path = _claims_dir(committed_dir) / f"{claim_id}.json"
            current = touched.get(claim_id)
            if current is None:
                current = statuses.read(path) if path.exists() else {"environments": {}}
            environments = dict(current["environments"])
            environments[env] = statuses.environment_entry(run, claim_id)
            touched[claim_id] = statuses.claim_payload(result["record"], environments)
    for claim_id, payload in touched.items():
        statuses.write(_claims_dir(committed_dir) / f"{claim_id}.json", payload)
    render(committed_dir)
    return sorted(touched)


def check(fresh_dir=FRESH, committed_dir=COMMITTED, out=print):
    runs = _fresh_runs(fresh_dir)
    if not runs:
        out(f"drift check: no fresh results in {fresh_dir} (did any tox environment run?)")
        return 1
    committed = committed_claims(committed_dir)
    problems, compared = [], 0
    for env, run in runs.items():
        environment = run["environment"]
        # The drift check compares series (harness/status.py stable()): a patch environment's
        # pinned release is its series here.
        django = environment["django"] if is_patch_env(env) else _series(environment["django"])
        where = f"{env} (Django {django}, Python {_series(environment['python'])})"
        for claim_id in sorted(run["claims"]):
            if not _ran(run, claim_id):
                continue  # not run here: a state, not a failure
            if claim_id not in committed:
                problems.append(f"{where}: claim {claim_id!r} has no committed results "
                                "(python -m harness.results update --claim " + claim_id + ")")
                continue
            old = committed[claim_id]["environments"].get(env)
            if old is None:
                problems.append(f"{where}: claim {claim_id!r} has no committed results for {env}")
                continue
            compared += 1
            problems += _differences(where, claim_id, statuses.environment_entry(run, claim_id), old)
    if problems:
        out("drift check FAILED: fresh results differ from the committed ones:")
        for problem in problems:
            out(f"  - {problem}")
        out("If the change is intended: python -m harness.results update, then commit results/.")
        return 1
    out(f"drift check: {compared} claim result(s) in {len(runs)} environment(s) match the "
        "committed results")  # fmt: skip
    return 0


def _differences(where, claim_id, new, old):
    new, old = statuses.stable(new), statuses.stable(old)
    found = []
    for key in ("django", "python", "asgiref", "servers"):
        if new[key] != old[key]:
            found.append(f"{where}: {key} is {new[key]!r}, committed {old[key]!r}")
    for statement in sorted(set(new["cells"]) | set(old["cells"])):
        a, b = new["cells"].get(statement, {}), old["cells"].get(statement, {})
        for place in sorted(set(a) | set(b)):
            if a.get(place) != b.get(place):
                found.append(
                    f"{where}: claim {claim_id!r}, statement {statement!r} on {place}: "
                    f"{_cell_words(a.get(place))}, committed {_cell_words(b.get(place))}"
                )
    for test in sorted(set(new["tests"]) | set(old["tests"])):
        a, b = new["tests"].get(test), old["tests"].get(test)
        if a != b:
            found.append(f"{where}: claim {claim_id!r}: {test}: {a!r}, committed {b!r}")
    return found


def _cell_words(cell):
    return "absent" if cell is None else f"{cell['status']} ({cell['expected']} expected)"


def _series(version):
    return ".".join(version.split(".")[:2])


# --- one claim across every environment --------------------------------------------------------


def spec_environments(tox_ini=ROOT / "tox.ini"):
    parser = configparser.ConfigParser()
    parser.read(tox_ini)
    envs = parser["tox"]["env_list"].split()
    return [env for env in envs if env.startswith("dj")]


def patch_env_modules(tox_ini=ROOT / "tox.ini"):
    """The spec modules tox's patch-release environments run (tox.ini's [testenv:dj{...}])."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tox_ini)
    section = next((name for name in parser.sections() if name.startswith("testenv:dj{")), None)
    return set(re.findall(r"specs/test_\w+\.py", parser[section]["commands"])) if section else set()


def collect(module, fresh_dir=FRESH, committed_dir=COMMITTED):
    """Run ``module`` in every tox spec environment that runs it (the patch-release ones only for
    the modules they list), then write its claim's file only."""
    patch_modules = patch_env_modules()
    envs = [env for env in spec_environments()
            if not is_patch_env(env) or Path(module).as_posix() in patch_modules]  # fmt: skip
    for env in envs:
        (Path(fresh_dir) / f"{env}.json").unlink(missing_ok=True)
    command = [sys.executable, "-m", "tox", "p", "-e", ",".join(envs), "--", module]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT)
    # Only what this run wrote: .results/ may still hold other environments' files from an
    # earlier run, whose claims are not this module's to rewrite.
    runs = {env: run for env, run in _fresh_runs(fresh_dir).items() if env in envs}
    claim_ids = sorted({cid for run in runs.values() for cid in run["claims"]})
    if done.returncode != 0 or not claim_ids:
        print(f"not written: tox ended with {done.returncode}; claims that ran: {claim_ids}")
        return done.returncode or 1
    written = update(fresh_dir, committed_dir, only=claim_ids, envs=envs)
    print(f"written: {', '.join(f'results/claims/{cid}.json' for cid in written)} "
          f"({len(runs)} environments); commit them with results/README.md and matrix.html")
    return 0


# --- the matrix ------------------------------------------------------------------------------


def _env_order(name):
    # dj42-py311 -> (4, 2, PATCH_LATEST, 311); dj502-py311 (a patch release) -> (5, 0, 2, 311):
    # a series' latest patch comes after the patch releases pinned in the same series.
    dj, py = name.split("-")
    return (int(dj[2]), int(dj[3]), int(dj[4:]) if is_patch_env(name) else PATCH_LATEST, int(py[2:]))


PATCH_LATEST = 10**6


def is_patch_env(name):
    """dj502-py311 runs Django 5.0.2 exactly; dj50-py311 the latest 5.0.x."""
    return len(name.split("-")[0]) > 4


def matrix(committed_dir=COMMITTED):
    """Columns: environments; rows: (claim, statement, place); cells: {"expected", "status"}."""
    claims = committed_claims(committed_dir)
    envs = sorted({env for c in claims.values() for env in c["environments"]}, key=_env_order)
    columns = []
    for env in envs:
        environment = next(c["environments"][env]["environment"] for c in claims.values()
                           if env in c["environments"])  # fmt: skip
        # The release the environment ran (5.0.14 for dj50), never a bare series, which readers
        # take for its first release.
        columns.append((env, f"Django {environment['django']}",
                        f"Python {_series(environment['python'])}"))  # fmt: skip
    rows = {}
    for claim_id, claim in claims.items():
        for statement in claim["claim"]["statements"]:
            for env, entry in claim["environments"].items():
                for place, cell in entry["cells"].get(statement["id"], {}).items():
                    rows.setdefault((claim_id, statement["id"], place), {})[env] = cell
    return claims, columns, dict(sorted(rows.items(), key=_row_order(claims)))


def _row_order(claims):
    order = {cid: i for i, cid in enumerate(claims)}

    def key(item):
        (claim_id, statement_id, place), _ = item
        ids = [s["id"] for s in claims[claim_id]["claim"]["statements"]]
        in_process = place.startswith("in process")
        return (order[claim_id], ids.index(statement_id), in_process, place)

    return key


def changed_between_versions(rows):
    """The rows whose expected outcome is not the same in every environment where they ran."""
    return {key: cells for key, cells in rows.items()
            if len({cell["expected"] for cell in cells.values()}) > 1}  # fmt: skip


def _text(cell):
    return statuses.cell_text(cell["expected"], cell["status"]) if cell else ""


def render_texts(committed_dir=COMMITTED):
    """The matrix as Markdown and as a self-contained HTML page."""
    claims, columns, rows = matrix(committed_dir)
    head = ["Statement", "Where", *(f"{dj}<br>{py}" for _, dj, py in columns)]
    lines = [
        "# Cross-version results",
        "",
        "Generated by `python -m harness.results render` from the committed results, one file per",
        "claim in [claims/](claims/). Each cell is the outcome the record expects for that",
        "statement there (that server, or Django's handler in process, on that Django version),",
        "and whether the tests observed it. Legend:",
        "",
        *(f"- {text}" for text in statuses.LEGEND.values()),
        "",
        "The same tables as a page: [matrix.html](matrix.html).",
        "",
        "## What changes between versions",
        "",
    ]
    changed = changed_between_versions(rows)
    lines += _markdown_table(head, changed, claims, columns) if changed else ["Nothing.", ""]
    lines += ["## Every statement", ""]
    lines += _markdown_table(head, rows, claims, columns)
    return "\n".join(lines), _html(claims, columns, rows, changed)


def _markdown_table(head, rows, claims, columns):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    current = None
    for (claim_id, statement_id, place), cells in rows.items():
        if claim_id != current:
            current = claim_id
            record = claims[claim_id]["claim"]
            lines.append(f"| **`{claim_id}`**: {verdict_text(record)} |" + " |" * (len(head) - 1))
        text = _statement(claims, claim_id, statement_id)
        label = f"{text['verdict']}: {_md(text['text'])}"
        lines.append("| " + " | ".join(
            [label, place, *(_text(cells.get(env)) for env, _, _ in columns)]) + " |")  # fmt: skip
    return lines + [""]


def _statement(claims, claim_id, statement_id):
    return next(s for s in claims[claim_id]["claim"]["statements"] if s["id"] == statement_id)


def _md(text):
    return " ".join(text.split()).replace("|", "\\|").replace("_", "\\_")


def render(committed_dir=COMMITTED):
    markdown, page = render_texts(committed_dir)
    Path(committed_dir, "README.md").write_text(markdown)
    Path(committed_dir, "matrix.html").write_text(page)


def _html(claims, columns, rows, changed):
    def td(cell):
        kind = {statuses.PASSED: "ok", statuses.CONTRADICTED: "bad", statuses.ERROR: "bad"}.get(
            cell["status"] if cell else "", ""
        )
        return f'<td class="{kind}">{html.escape(_text(cell))}</td>'

    def table(selected):
        header = "".join(f"<th>{html.escape(dj)}<br>{html.escape(py)}</th>" for _, dj, py in columns)
        body, current = [], None
        for (claim_id, statement_id, place), cells in selected.items():
            if claim_id != current:
                current = claim_id
                verdict = html.escape(verdict_text(claims[claim_id]["claim"]))
                body.append(f'<tr class=claim><th colspan="{len(columns) + 2}">'
                            f"<code>{html.escape(claim_id)}</code>: {verdict}</th></tr>")  # fmt: skip
            text = _statement(claims, claim_id, statement_id)
            body.append(
                f"<tr><th class=statement>{html.escape(text['verdict'])}: "
                f"{html.escape(text['text'])}</th><th class=place>{html.escape(place)}</th>"
                + "".join(td(cells.get(env)) for env, _, _ in columns) + "</tr>"
            )
        return (f"<table><tr><th>Statement</th><th>Where</th>{header}</tr>"
                f"{''.join(body)}</table>")  # fmt: skip

    legend = "".join(f"<li>{html.escape(text)}</li>" for text in statuses.LEGEND.values())
    changed_part = table(changed) if changed else "<p>Nothing.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>django-async-spec: cross-version results</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }}
th.statement {{ font-weight: normal; max-width: 36em; }}
th.place {{ font-weight: normal; white-space: nowrap; }}
tr.claim th {{ background: #f3f3f3; }}
td.ok {{ background: #e8f5e9; }} td.bad {{ background: #ffebee; font-weight: bold; }}
</style></head><body>
<h1>django-async-spec: cross-version results</h1>
<p>Generated by <code>python -m harness.results render</code> from the committed results. Each
cell is the outcome expected there and whether it was observed.</p>
<ul>{legend}</ul>
<h2>What changes between versions</h2>
{changed_part}
<h2>Every statement</h2>
{table(rows)}
</body></html>
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description="committed results: collect, update, check, render")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    sub.add_parser("render")
    updater = sub.add_parser("update")
    updater.add_argument("--claim", action="append", default=[], help="only this claim (repeatable)")
    collector = sub.add_parser("collect")
    collector.add_argument("module", help="a spec module, e.g. specs/test_x.py")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check()
    if args.command == "update":
        update(only=tuple(args.claim))
        return 0
    if args.command == "collect":
        return collect(args.module)
    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
