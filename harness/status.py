"""The one status rule, and the results schema: used by the plugin, the results files, the drift
check and every renderer, so that a status means the same everywhere.

A test's status:

- ``passed``: Django did what the statement's record says;
- ``contradicted``: an assertion about Django failed (in the test's body): the record is wrong;
- ``error``: the evidence could not be gathered (a fixture failed: a server did not start, a
  set-up request failed, a time-out in set-up or tear-down); says nothing about Django;
- ``not run``: skipped (version-gated, a server's package missing) or deselected.

An error is never shown as contradicted. A group of tests (a statement on one server, say) takes
the worst status: contradicted, then error, then passed, then not run.

Two kinds of JSON file, with one versioned schema, written and read only here:

- a run's results (``pytest --results PATH``): the environment, and per claim its record and each
  test's statement, place, expected outcome, status and evidence;
- a claim's committed results (``results/claims/ID.json``): its record, and per tox environment
  the cells (statement × place: expected outcome, status), each test's status, and the evidence.
"""

import json
from pathlib import Path

PASSED, CONTRADICTED, ERROR, NOT_RUN = "passed", "contradicted", "error", "not run"
STATUSES = (PASSED, CONTRADICTED, ERROR, NOT_RUN)
_WORST_FIRST = (CONTRADICTED, ERROR, PASSED, NOT_RUN)

SCHEMA = 2


class SchemaError(ValueError):
    pass


def status_of_test(phases):
    """A test's status from its phases' pytest outcomes: {"setup": "passed", "call": "failed"}."""
    if phases.get("call") == "failed":
        return CONTRADICTED
    if "failed" in (phases.get("setup"), phases.get("teardown")):
        return ERROR
    if phases.get("call") == "passed":
        return PASSED
    return NOT_RUN


def combine(statuses):
    """The status of a group of tests."""
    statuses = set(statuses)
    for status in _WORST_FIRST:
        if status in statuses:
            return status
    return NOT_RUN


def counts(statuses):
    statuses = list(statuses)
    return {status: statuses.count(status) for status in STATUSES}


def cell_text(expected, status):
    """What a matrix cell says: the outcome expected there, and whether it was observed."""
    return {
        PASSED: f"✓ {expected}",
        CONTRADICTED: f"✗ {expected} expected, not observed",
        ERROR: f"! {expected} expected, no evidence (error)",
        NOT_RUN: f"– {expected} expected, not run",
    }[status]


LEGEND = {
    PASSED: "✓ the outcome shown was expected there and observed (every test of it passed)",
    CONTRADICTED: "✗ Django did something else than the outcome expected there",
    ERROR: "! the evidence could not be gathered there (set-up failed); nothing is known",
    NOT_RUN: "– not run there (version-gated, skipped or deselected)",
}


# --- the results of one run -------------------------------------------------------------------


def run_payload(environment, claims):
    """``claims``: {claim id: {"record": Claim.as_dict(), "tests": [test entries]}}; each test
    entry: {"test", "statement", "where", "expected", "status", "evidence"}."""
    for claim_id, claim in claims.items():
        for test in claim["tests"]:
            if test["status"] not in STATUSES:
                raise SchemaError(f"{claim_id}: {test['test']}: unknown status {test['status']!r}")
    return {"schema": SCHEMA, "environment": environment, "claims": claims}


def cells(tests):
    """{statement: {where: {"expected", "status", "tests"}}} from a claim's test entries."""
    grouped = {}
    for test in tests:
        key = (test["statement"], test["where"], test["expected"])
        grouped.setdefault(key, []).append(test["status"])
    result = {}
    for (statement, where, expected), statuses in sorted(grouped.items()):
        result.setdefault(statement, {})[where] = {
            "expected": expected, "status": combine(statuses), "tests": len(statuses),
        }
    return result


def environment_entry(run, claim_id):
    """What a claim's committed file keeps of one run: cells, test statuses, evidence."""
    tests = run["claims"][claim_id]["tests"]
    return {
        "environment": run["environment"],
        "cells": cells(tests),
        "tests": {t["test"]: {k: t[k] for k in ("statement", "where", "expected", "status")}
                  for t in tests},
        "evidence": {t["test"]: t["evidence"] for t in tests if t["evidence"]},
    }  # fmt: skip


def claim_payload(record, environments):
    return {"schema": SCHEMA, "claim": record, "environments": dict(sorted(environments.items()))}


def stable(entry):
    """What must not change between two runs of one environment: no timing, no evidence."""
    environment = entry["environment"]
    return {
        "django": ".".join(environment["django"].split(".")[:2]),
        "python": ".".join(environment["python"].split(".")[:2]),
        "asgiref": environment["asgiref"],
        "servers": environment["servers"],
        "cells": entry["cells"],
        "tests": entry["tests"],
    }


def write(path, payload):
    if payload.get("schema") != SCHEMA:
        raise SchemaError(f"refusing to write schema {payload.get('schema')!r}, not {SCHEMA}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def read(path):
    payload = json.loads(Path(path).read_text())
    if payload.get("schema") != SCHEMA:
        raise SchemaError(
            f"{path}: results schema {payload.get('schema')!r}, this harness reads {SCHEMA}"
        )
    return payload


def verdict_text(record):
    """A claim's verdict (from its record, ``Claim.as_dict()``), saying when a claim that does not
    hold is still right in part: a reader who sees only "refuted" takes every word of it to be
    wrong."""
    claimed = [s for s in record["statements"] if s["claimed"]]
    holding = sum(s["verdict"] == "holds" for s in claimed)
    if record["verdict"] == "holds" or not holding:
        return record["verdict"]
    verb = "holds" if holding == 1 else "hold"
    return f"{record['verdict']} in part: {holding} of its {len(claimed)} statements {verb}"
