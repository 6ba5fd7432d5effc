"""Generated and quoted text stays true: the README table, the quotes, README's commands."""

import re

import pytest

from harness import ROOT
from harness.claims import SEED, load_all
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
