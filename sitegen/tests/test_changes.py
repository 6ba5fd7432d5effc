"""What changed between versions (sitegen/changes.py), read from the records' rules."""

from harness.claims import Claim, Statement, When
from sitegen.changes import between_versions


def claim(*statements):
    return Claim(id="x", source="s", claim="c", statements=statements, mechanism="m",
                 docs="https://docs.djangoproject.com/en/5.2/#x", question="Does it?")


def test_what_changed_names_the_release_the_statement_and_the_places():
    found = claim(Statement("a", "A.", "holds", when=[When("refuted", django="<5.0", interface="asgi")],
                            reality="R."))
    releases = between_versions([found])
    changed = [r for r in releases if r["changes"]]
    assert [r["version"] for r in changed] == ["5.0.0"]
    (change,) = changed[0]["changes"]
    assert (change["was"], change["now"]) == ("refuted", "holds")
    assert change["where"].startswith("under ASGI (")
