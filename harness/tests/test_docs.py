"""Generated and quoted text stays true: the README table, the quotes, README's commands."""

import re

import pytest

from harness import ROOT
from harness.claims import SEED, Claim, ClaimError, load_all
from harness.render import rendered


def test_readme_verdict_table_is_fresh():
    current = (ROOT / "README.md").read_text()
    assert rendered(current) == current, "stale: run `python -m harness.render`"


@pytest.mark.parametrize("claim", [c for c in load_all().values() if c.source == SEED], ids=str)
def test_seed_claims_are_quoted_exactly(claim):
    assert claim.claim in (ROOT / SEED).read_text()


def test_every_seed_claim_has_a_record():
    seed_claims = [c for c in load_all().values() if c.source == SEED]
    assert len(seed_claims) == 5


def commands_in_readme():
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_readmes_test_command():
    spec_command, test_command = commands_in_readme()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
    assert spec_command.endswith(".venv/bin/pytest")


RECORD = dict(
    source="test", claim="c", reality="r", mechanism="m",
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
)  # fmt: skip


@pytest.fixture
def scratch_registry(monkeypatch):
    """Records made here must not join the real registry (and the verdict table)."""
    from harness import claims

    monkeypatch.setattr(claims, "REGISTRY", {})


@pytest.mark.usefixtures("scratch_registry")
@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(id="Bad Id", verdict="holds"), "must be a lowercase slug"),
        (dict(id="x-1", verdict="maybe"), "is not one of"),
        (dict(id="x-2", verdict="conditional"), "must spell out its condition"),
        (dict(id="x-3", verdict="holds", outcomes={"a": "holds", "b": "refuted"}), "is conditional"),
        (dict(id="x-4", verdict="refuted", outcomes={"a": "holds"}), "contradicts its outcomes"),
        (dict(id="x-5", verdict="holds", docs="https://example.org/"), "Django docs anchor"),
    ],
)
def test_bad_records_are_rejected(fields, message):
    with pytest.raises(ClaimError, match=message):
        Claim(**{**RECORD, **fields})


@pytest.mark.usefixtures("scratch_registry")
def test_one_id_cannot_name_two_claims():
    Claim(id="twice-defined", verdict="holds", **RECORD)
    with pytest.raises(ClaimError, match="defined twice"):
        Claim(id="twice-defined", verdict="refuted", **RECORD)
