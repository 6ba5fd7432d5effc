"""Results per claim, the drift check and the matrix, on small results made here; and the
committed matrix read against the committed results."""


import pytest

from harness import results, status


def an_entry(name, statement="s", where="uvicorn", expected="holds", outcome=status.PASSED):
    return {"test": f"specs/t.py::{name}[{where}]", "statement": statement, "where": where,
            "expected": expected, "status": outcome, "evidence": [{"label": "x", "wall_s": 0.4}]}


def record(claim_id="some-claim"):
    return {"id": claim_id, "claim": "c", "verdict": "conditional", "source": "s", "url": "",
            "statements": [{"id": "s", "text": "The view is cancelled.", "verdict": "conditional",
                            "condition": "refuted on Django <5.0; holds otherwise",
                            "reality": "r", "claimed": True}]}  # fmt: skip


def run(django="5.2.19", python="3.11.7", claims=None, wall=0.4):
    claims = claims or {"some-claim": {"record": record(), "tests": [an_entry("t")]}}
    for claim in claims.values():
        for test in claim["tests"]:
            test["evidence"] = [{"label": "x", "wall_s": wall}]
    environment = {"django": django, "python": python, "asgiref": "3.13.0",
                   "servers": {"uvicorn": "0.54.0"}}  # fmt: skip
    return status.run_payload(environment, claims)


@pytest.fixture
def dirs(tmp_path):
    fresh, committed = tmp_path / "fresh", tmp_path / "committed"
    fresh.mkdir()
    committed.mkdir()
    return fresh, committed


def write_run(folder, env, payload):
    status.write(folder / f"{env}.json", payload)


def run_check(dirs):
    lines = []
    code = results.check(*dirs, out=lines.append)
    return code, "\n".join(lines)


def test_update_writes_one_file_per_claim_and_touches_only_the_claims_that_ran(dirs):
    fresh, committed = dirs
    other = {"other-claim": {"record": record("other-claim"), "tests": [an_entry("o")]}}
    write_run(fresh, "dj52-py311", run(claims=other))
    results.update(fresh, committed)
    before = (committed / "claims" / "other-claim.json").read_text()
    (fresh / "dj52-py311.json").unlink()
    write_run(fresh, "dj42-py311", run(django="4.2.30"))
    write_run(fresh, "dj52-py311", run())
    assert results.update(fresh, committed) == ["some-claim"]
    assert (committed / "claims" / "other-claim.json").read_text() == before
    saved = status.read(committed / "claims" / "some-claim.json")
    assert sorted(saved["environments"]) == ["dj42-py311", "dj52-py311"]
    cell = saved["environments"]["dj42-py311"]["cells"]["s"]["uvicorn"]
    assert cell == {"expected": "holds", "status": status.PASSED, "tests": 1}


def test_an_environments_postgresql_run_adds_its_in_process_tests_to_it(dirs):
    fresh, committed = dirs
    write_run(fresh, "dj42-py311", run(django="4.2.30", claims={"some-claim": {
        "record": record(), "tests": [an_entry("t"), an_entry("i", where="in process (asgi)")]}}))
    # The second run repeats what the first ran (a server test) and adds the in-process ones.
    write_run(fresh, "dj42-py311-pg", run(django="4.2.30", claims={"some-claim": {
        "record": record(), "tests": [an_entry("t"),
                                      an_entry("i", where="in process (asgi) on postgresql")]}}))
    results.update(fresh, committed)
    saved = status.read(committed / "claims" / "some-claim.json")
    assert sorted(saved["environments"]) == ["dj42-py311"]
    entry = saved["environments"]["dj42-py311"]
    assert sorted(entry["cells"]["s"]) == ["in process (asgi)", "in process (asgi) on postgresql",
                                           "uvicorn"]  # fmt: skip
    assert sorted(entry["tests"]) == [
        "specs/t.py::i[in process (asgi) on postgresql] (on postgresql)",
        "specs/t.py::i[in process (asgi)]", "specs/t.py::t[uvicorn]",
    ]  # fmt: skip
    assert run_check(dirs)[0] == 0
    (fresh / "dj42-py311.json").unlink()
    with pytest.raises(ValueError, match="dj42-py311-pg.json has no dj42-py311.json to belong to"):
        results.update(fresh, committed)


def test_same_results_but_for_evidence_pass(dirs):
    write_run(dirs[0], "dj52-py311", run(wall=0.97))
    results.update(*dirs)
    write_run(dirs[0], "dj52-py311", run(wall=0.41, django="5.2.20"))
    assert run_check(dirs) == (
        0, "drift check: 1 claim result(s) in 1 environment(s) match the committed results"
    )  # fmt: skip


def test_a_changed_status_names_the_environment_claim_statement_and_place(dirs):
    write_run(dirs[0], "dj52-py311", run())
    results.update(*dirs)
    failing = {"some-claim": {"record": record(), "tests": [an_entry("t", outcome="contradicted")]}}
    write_run(dirs[0], "dj52-py311", run(claims=failing))
    code, text = run_check(dirs)
    assert code == 1
    assert ("dj52-py311 (Django 5.2, Python 3.11): claim 'some-claim', statement 's' on uvicorn: "
            "contradicted (holds expected), committed passed (holds expected)") in text


def test_a_claim_that_did_not_run_is_not_a_failure_and_a_new_one_is(dirs):
    skipped = {"some-claim": {"record": record(), "tests": [an_entry("t", outcome="not run")]}}
    write_run(dirs[0], "dj42-py311", run(django="4.2.30", claims=skipped))
    assert run_check(dirs)[0] == 0
    write_run(dirs[0], "dj52-py311", run())
    code, text = run_check(dirs)
    assert code == 1 and "claim 'some-claim' has no committed results" in text


def test_the_matrix_shows_the_outcome_expected_in_each_version_and_what_changed(dirs):
    fresh, committed = dirs
    old = {"some-claim": {"record": record(), "tests": [an_entry("t", expected="refuted")]}}
    write_run(fresh, "dj42-py311", run(django="4.2.30", claims=old))
    write_run(fresh, "dj52-py311", run())
    stable = {"some-claim": {"record": record(), "tests": [an_entry("t"), an_entry("u", statement="s", where="in process (asgi)")]}}  # fmt: skip
    write_run(fresh, "dj61-py313", run(django="6.1.3", python="3.13.0", claims=stable))
    results.update(fresh, committed)
    table = (committed / "README.md").read_text()
    assert ("| conditional: The view is cancelled. | uvicorn | ✓ refuted | ✓ holds | ✓ holds |"
            in table)  # fmt: skip
    changed = table.split("## What changes between versions")[1].split("## Every statement")[0]
    assert "| uvicorn |" in changed and "in process (asgi)" not in changed
    assert "| in process (asgi) |  |  | ✓ holds |" in table.split("## Every statement")[1]
    page = (committed / "matrix.html").read_text()
    assert page.startswith("<!doctype html>") and "✓ refuted" in page and "<script" not in page


def test_cells_say_an_error_is_not_a_contradiction(dirs):
    broken = {"some-claim": {"record": record(), "tests": [an_entry("t", outcome="error")]}}
    write_run(dirs[0], "dj52-py311", run(claims=broken))
    results.update(*dirs)
    table = (dirs[1] / "README.md").read_text()
    assert "! holds expected, no evidence (error)" in table and "✗" not in table.split("Legend")[1].split("## What")[1]


# --- the committed results ---------------------------------------------------------------------


def committed_cells():
    return {
        (claim_id, statement, place, env): cell
        for claim_id, claim in results.committed_claims().items()
        for env, entry in claim["environments"].items()
        for statement, places in entry["cells"].items()
        for place, cell in places.items()
    }


@pytest.fixture
def committed():
    cells = committed_cells()
    if not cells:
        pytest.skip("no committed results yet")
    return cells


def test_committed_matrix_is_fresh(committed):
    markdown, page = results.render_texts()
    assert (results.COMMITTED / "README.md").read_text() == markdown, "stale: python -m harness.results render"
    assert (results.COMMITTED / "matrix.html").read_text() == page, "stale: python -m harness.results render"


def test_every_cell_of_the_matrix_says_what_its_results_say(committed):
    # The legend's promise, cell by cell: "✓ X" only where X was expected there and observed.
    _, columns, rows = results.matrix()
    text = (results.COMMITTED / "README.md").read_text().split("## Every statement")[1]
    lines = [line for line in text.splitlines() if line.startswith("| ") and "**`" not in line][1:]
    assert len(lines) == len(rows)
    for line, ((claim_id, statement, place), cells) in zip(lines, rows.items()):
        shown = [c.strip() for c in line.strip("|").split(" | ")][2:]
        for (env, _, _), text_shown in zip(columns, shown):
            cell = committed.get((claim_id, statement, place, env))
            expected = status.cell_text(cell["expected"], cell["status"]) if cell else ""
            assert text_shown == expected, (claim_id, statement, place, env)


def test_the_django_42_disconnect_cells_read_refuted(committed):
    for place in ("uvicorn", "daphne", "hypercorn", "granian", "runserver-daphne", "in process (asgi)"):
        cell = committed[("disconnect-cancels-async-view", "async-view-cancelled", place, "dj42-py311")]
        assert cell == {**cell, "expected": "refuted", "status": status.PASSED}, place
        later = committed[("disconnect-cancels-async-view", "async-view-cancelled", place, "dj50-py311")]
        assert later["expected"] == "holds"
