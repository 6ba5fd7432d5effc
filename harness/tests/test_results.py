"""The drift check and the matrix, on small results files made here."""

import json

import pytest

from harness import results


def payload(django="5.2.19", python="3.11.7", status="confirmed", wall=0.4):
    return {
        "versions": {"django": django, "python": python, "asgiref": "3.13.0",
                     "servers": {"uvicorn": "0.54.0"}},
        "claims": [{
            "id": "some-claim", "claim": "c", "verdict": "conditional", "condition": "when",
            "outcomes": {"uvicorn": "holds"}, "status": status,
            "counts": {"passed": 1, "failed": 0, "error": 0, "skipped": 0},
            "per_server": {"uvicorn": {"expected": "holds", "passed": 1, "failed": 0,
                                       "error": 0, "skipped": 0}},
            "tests": [{"test": "specs/t.py::test[uvicorn]", "outcome": "passed",
                       "servers": ["uvicorn"], "evidence": [{"label": "x", "wall_s": wall}]}],
        }],
    }  # fmt: skip


@pytest.fixture
def dirs(tmp_path):
    fresh, committed = tmp_path / "fresh", tmp_path / "committed"
    fresh.mkdir()
    committed.mkdir()
    return fresh, committed


def write(folder, env, data):
    (folder / f"{env}.json").write_text(json.dumps(data))


def run_check(dirs):
    lines = []
    code = results.check(*dirs, out=lines.append)
    return code, "\n".join(lines)


def test_same_results_but_for_timings_pass(dirs):
    write(dirs[0], "dj52-py311", payload(wall=0.41, django="5.2.20"))
    write(dirs[1], "dj52-py311", payload(wall=0.97))
    assert run_check(dirs) == (0, "drift check: 1 environment(s) match the committed results")


def test_a_changed_result_names_the_claim_and_the_version(dirs):
    write(dirs[0], "dj52-py311", payload())
    edited = payload()
    edited["claims"][0]["tests"][0]["outcome"] = "failed"
    write(dirs[1], "dj52-py311", edited)
    code, text = run_check(dirs)
    assert code == 1
    assert "dj52-py311 (Django 5.2, Python 3.11): claim 'some-claim': tests is changed" in text
    assert "'passed'" in text and "'failed'" in text


def test_a_missing_committed_file_fails_and_a_skipped_environment_is_said(dirs):
    write(dirs[0], "dj61-py313", payload(django="6.1.3", python="3.13.0"))
    write(dirs[1], "dj42-py311", payload(django="4.2.30"))
    code, text = run_check(dirs)
    assert code == 1
    assert "dj61-py313: no committed results" in text
    assert "dj42-py311 did not run here" in text


def test_matrix_has_a_row_per_claim_and_per_server(dirs):
    write(dirs[1], "dj52-py311", payload())
    write(dirs[1], "dj42-py311", payload(django="4.2.30", status="contradicted"))
    contradicted = json.loads((dirs[1] / "dj42-py311.json").read_text())
    contradicted["claims"][0]["per_server"]["uvicorn"]["failed"] = 1
    write(dirs[1], "dj42-py311", contradicted)
    results.render(dirs[1])
    table = (dirs[1] / "README.md").read_text()
    assert "| Claim | Django 4.2<br>Python 3.11 | Django 5.2<br>Python 3.11 |" in table
    assert "| `some-claim` | ✗ CONTRADICTED (conditional expected) | ✓ conditional |" in table
    assert "| `some-claim` on uvicorn | ✗ CONTRADICTED (holds expected) | ✓ holds |" in table
    page = (dirs[1] / "matrix.html").read_text()
    assert page.startswith("<!doctype html>") and "✓ holds" in page and "<script" not in page


def test_committed_matrix_is_fresh():
    committed = results.COMMITTED
    if not list(committed.glob("*.json")):
        pytest.skip("no committed results yet")
    markdown, page = results.render_texts(committed)
    assert (committed / "README.md").read_text() == markdown, "stale: python -m harness.results render"
    assert (committed / "matrix.html").read_text() == page, "stale: python -m harness.results render"
