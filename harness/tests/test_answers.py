"""The derived answers (harness/answers.py): yes, no, or yes when, with the condition, from the statements."""

from harness.claims import Claim, Statement, When, Where, all_places
from harness.answers import answer, answer_at, describe_places, places_tested, version_points


def claim(*statements):
    return Claim(id="x", source="s", claim="c", statements=statements, mechanism="m",
                 docs="https://docs.djangoproject.com/en/5.2/#x", question="Does it?")


def test_a_claim_that_holds_everywhere_is_answered_yes():
    assert answer(claim(Statement("a", "A.", "holds"))).text == (
        "Yes: everywhere the spec looks, on Django 4.2–6.1.")


def test_a_claim_is_answered_no_when_one_claimed_statement_never_holds():
    found = answer(claim(Statement("a", "A.", "holds"), Statement("b", "B.", "refuted", reality="R.")))
    assert found.word == "No"
    assert (found.instead, found.holding, found.claimed) == (("R.",), 1, 2)


def test_a_statement_the_claim_only_implies_does_not_change_the_answer():
    found = answer(claim(Statement("a", "A.", "holds"),
                         Statement("b", "B.", "refuted", reality="R.", claimed=False)))
    assert found.word == "Yes"


def test_an_interface_condition_is_named_with_its_servers():
    found = answer(claim(Statement("a", "A.", "holds", when=[When("refuted", interface="wsgi")],
                                   reality="R.")))
    assert found.parts == (
        ("yes", "under ASGI (uvicorn, daphne, hypercorn, granian, runserver-daphne, ASGIHandler in process)"),
        ("no", "under WSGI (gunicorn-gthread, runserver, WSGIHandler in process)"),
    )


def test_a_patch_release_named_by_a_rule_is_a_version_point():
    found = claim(Statement("a", "A.", "holds", when=[When("refuted", django="<5.0.3")], reality="R."))
    assert version_points(found) == ["4.2", "5.0", "5.0.3", "5.1", "5.2", "6.0", "6.1"]
    assert answer(found).parts == (("no", "on Django < 5.0.3"), ("yes", "on Django ≥ 5.0.3"))


def test_version_and_place_conditions_together():
    found = answer(claim(Statement("a", "A.", "holds", reality="R.", when=[
        When("refuted", django="<5.0"), When("refuted", interface="wsgi")])))
    assert [yes for yes, _ in found.parts] == ["no", "yes", "no"]
    assert found.parts[0] == ("no", "on Django < 5.0")
    assert found.parts[1][1].startswith("on Django ≥ 5.0 under ASGI (uvicorn")
    assert found.badges == ["Django < 5.0", "Django ≥ 5.0 · WSGI"]


def test_a_server_that_holds_on_both_databases_is_named_once():
    places = all_places()
    chosen = [p for p in places if p.server == "uvicorn"]
    assert describe_places(chosen, places) == "on uvicorn"
    assert describe_places([Where("uvicorn", "asgi", "postgresql")], places) == "on uvicorn on PostgreSQL"


def test_the_answer_at_one_server_and_version():
    found = claim(Statement("a", "A.", "holds", when=[When("refuted", servers=["runserver"])],
                            reality="R."))
    assert answer_at(found, Where("runserver", "wsgi"), "5.2.1") == "no"
    assert answer_at(found, Where("uvicorn", "asgi"), "5.2.1") == "yes"
    on_postgresql = claim(Statement("a", "A.", "holds", reality="R.",
                                    when=[When("refuted", database="postgresql")]))
    assert answer_at(on_postgresql, Where("uvicorn", "asgi", "postgresql"), "5.2.1") == "no"


def test_a_patch_release_of_the_newest_series_is_a_version_point_too():
    found = claim(Statement("a", "A.", "holds", when=[When("refuted", django=">=6.1.2")], reality="R."))
    assert version_points(found)[-2:] == ["6.1", "6.1.2"]
    assert answer(found).parts == (("yes", "on Django < 6.1.2"), ("no", "on Django ≥ 6.1.2"))


def results(*labels):
    return {"environments": {"dj52-py311": {"cells": {"a": {label: {} for label in labels}}}}}


def test_the_answer_names_only_the_places_the_results_show_tested():
    wsgi_refuted = claim(Statement("a", "A.", "holds", when=[When("refuted", interface="wsgi")],
                                   reality="R."))
    places = places_tested(results("in process (asgi)", "in process (wsgi) on postgresql"))
    assert places == [Where("", "asgi"), Where("", "wsgi")]
    assert answer(wsgi_refuted, places).parts == (
        ("yes", "under ASGI (ASGIHandler in process)"), ("no", "under WSGI (WSGIHandler in process)"))
    places = places_tested(results("uvicorn", "gunicorn-gthread on postgresql"))
    assert places == [Where("uvicorn", "asgi"), Where("gunicorn-gthread", "wsgi", "postgresql")]
    # A test that drives neither handler stands for both.
    assert places_tested(results("in process")) == [Where("", "asgi"), Where("", "wsgi")]
