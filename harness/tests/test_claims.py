"""Claim records: statements, outcomes as data, verdicts derived; the one status rule."""

import inspect

import pytest

from harness import status
from harness.claims import Claim, ClaimError, Statement, When, Where

DOCS = "https://docs.djangoproject.com/en/5.2/topics/async/#async-views"
UVICORN, GUNICORN = Where("uvicorn", "asgi"), Where("gunicorn-gthread", "wsgi")


def claim(*statements, **fields):
    return Claim(**{"id": "c", "source": "s", "claim": "c", "mechanism": "m", "docs": DOCS,
                    "statements": statements, **fields})  # fmt: skip


def test_an_outcome_is_a_default_and_rules_the_first_match_wins():
    cancelled = Statement(
        "cancelled", "The view is cancelled.", "holds", reality="It runs to the end.",
        when=[When("refuted", interface="wsgi"), When("refuted", django="<5.0")],
    )  # fmt: skip
    assert cancelled.outcome_at(UVICORN, "5.0") == "holds"
    assert cancelled.outcome_at(UVICORN, "4.2.30") == "refuted"
    assert cancelled.outcome_at(GUNICORN, "6.1") == "refuted"
    assert cancelled.outcome_at(Where("", "asgi"), "6.1") == "holds"  # in process, ASGI handler
    assert cancelled.verdict() == "conditional"
    assert cancelled.condition() == "refuted under WSGI; refuted on Django <5.0; holds otherwise"


def test_a_claim_is_refuted_when_one_statement_is_refuted_everywhere():
    sync = Statement("sync", "get() is synchronous.", "holds")
    wrap = Statement("wrap", "It must be wrapped.", "refuted", reality="aget() exists.")
    both = claim(sync, wrap)
    assert (sync.verdict(), wrap.verdict(), both.verdict) == ("holds", "refuted", "refuted")
    assert claim(sync).verdict == "holds"
    maybe = Statement("maybe", "x", "holds", when=[When("refuted", servers=["uvicorn"])], reality="r")
    assert claim(sync, maybe).verdict == "conditional"


def test_expected_reads_the_rules_where_a_test_runs():
    from types import SimpleNamespace

    from harness.servers import SERVERS, ServerConfig

    cancelled = Statement("c", "Cancelled.", "holds", reality="r", when=[
        When("refuted", interface="wsgi"), When("refuted", django="<5.0.2")])  # fmt: skip
    record = claim(cancelled)
    uvicorn = SimpleNamespace(name="uvicorn", kind=SERVERS["uvicorn"], config=ServerConfig())
    assert record.expected("c", uvicorn, django="5.0.2") == "holds"
    assert record.expected("c", uvicorn, django="5.0.1") == "refuted"
    assert record.expected("c", interface="wsgi", django="6.1") == "refuted"
    assert record.expected("c", django="6.1") == "holds"  # Django's ASGI handler in process


def test_a_verdict_says_how_much_of_a_claim_that_fails_still_holds():
    sync = Statement("sync", "get() is synchronous.", "holds")
    wrap = Statement("wrap", "It must be wrapped.", "refuted", reality="aget() exists.")
    implied = Statement("aget", "aget() works.", "holds", claimed=False)
    assert claim(sync, wrap, implied).verdict_text == "refuted in part: 1 of its 2 statements holds"
    assert claim(wrap).verdict_text == "refuted"  # nothing of it holds
    assert claim(sync, implied).verdict_text == "holds"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Statement("Bad", "t", "holds"), "lowercase slug"),
        (lambda: Statement("s", "t", "maybe"), "is not one of"),
        (lambda: Statement("s", "t", "refuted"), "must say what is true"),
        (lambda: Statement("s", "t", "holds", when=[When("refuted", interface="wsgi")]),
         "must say what is true"),
        (lambda: When("holds"), "needs a condition"),
        (lambda: When("holds", django="five"), "bad version range"),
        (lambda: When("holds", interface="http"), "interface"),
        (lambda: claim(), "at least one statement"),
        (lambda: claim(Statement("s", "t", "holds"), Statement("s", "u", "holds")), "repeat"),
        (lambda: claim(Statement("s", "t", "holds"), docs="https://example.org/"), "docs anchor"),
        (lambda: claim(Statement("s", "t", "holds"), url="http://x"), "https"),
    ],
)  # fmt: skip
def test_bad_records_are_rejected(make, message):
    with pytest.raises(ClaimError, match=message):
        make()


def test_a_mark_names_a_statement_that_exists():
    record = claim(Statement("s", "t", "holds"))
    assert record.statement("s").args == (record, "s")
    with pytest.raises(ClaimError, match="no statement 'x'"):
        record.statement("x")


@pytest.mark.parametrize(
    "phases, expected",
    [
        ({"setup": "passed", "call": "passed", "teardown": "passed"}, status.PASSED),
        ({"setup": "passed", "call": "failed", "teardown": "passed"}, status.CONTRADICTED),
        ({"setup": "failed"}, status.ERROR),  # a server that would not start
        ({"setup": "passed", "call": "passed", "teardown": "failed"}, status.ERROR),
        ({"setup": "skipped"}, status.NOT_RUN),
        ({}, status.NOT_RUN),  # deselected
    ],
)
def test_one_status_rule_and_an_error_is_never_contradicted(phases, expected):
    assert status.status_of_test(phases) == expected


def test_a_group_takes_the_worst_status():
    assert status.combine([status.PASSED, status.ERROR]) == status.ERROR
    assert status.combine([status.ERROR, status.CONTRADICTED]) == status.CONTRADICTED
    assert status.combine([status.NOT_RUN, status.PASSED]) == status.PASSED
    assert status.combine([]) == status.NOT_RUN


def test_results_round_trip_and_refuse_another_schema(tmp_path):
    test = {"test": "specs/t.py::t", "statement": "s", "where": "uvicorn", "expected": "holds",
            "status": status.PASSED, "evidence": [{"label": "x", "met": 3}]}  # fmt: skip
    payload = status.run_payload({"django": "5.2.19"}, {"c": {"record": {}, "tests": [test]}})
    status.write(tmp_path / "r.json", payload)
    assert status.read(tmp_path / "r.json") == payload
    (tmp_path / "old.json").write_text('{"schema": 1}')
    with pytest.raises(status.SchemaError, match="schema 1"):
        status.read(tmp_path / "old.json")
    with pytest.raises(status.SchemaError, match="unknown status"):
        status.run_payload({}, {"c": {"record": {}, "tests": [{**test, "status": "failed"}]}})


def test_every_claim_asks_its_question_in_a_topic_and_names_code_that_exists():
    """The site (sitegen/) opens each claim's page with its question and shows its code."""
    from harness.claims import TOPICS, load_all, resolve

    for record in load_all().values():
        assert record.question and record.topic in TOPICS and record.code, record.module
        for name in (*record.code, *record.instead):
            found = resolve(name)
            assert inspect.getsource(inspect.unwrap(found) if callable(found) else found), name
