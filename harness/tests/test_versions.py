"""The one version helper: ranges down to the patch release."""

import pytest

from harness import messages
from harness.versions import by_version, in_range, in_spec


def test_in_range_is_half_open():
    assert in_range("5.0", "6.0", current="5.0")
    assert not in_range("5.0", "6.0", current="6.0")
    assert not in_range("5.0", None, current="4.2.30")


@pytest.mark.parametrize(
    "spec, version, inside",
    [
        (">=5.0.2", "5.0.1", False),
        (">=5.0.2", "5.0.2", True),
        (">=5.0.2", "5.1", True),  # a series means its .0 release
        (">=4.2,<5.0", "4.2.30", True),
        (">=4.2,<5.0", "5.0", False),
        ("<5.0", "4.2", True),
        ("==6.1", "6.1.0", True),
    ],
)
def test_ranges_compare_down_to_the_patch_release(spec, version, inside):
    assert in_spec(spec, version) is inside


def test_a_malformed_range_is_an_error():
    with pytest.raises(ValueError, match="bad version range"):
        in_spec("> = 5", "5.0")


def test_by_version_takes_the_latest_applicable_entry():
    table = {"4.2": "old", "6.1": "new"}
    assert by_version(table, current="6.0.3") == "old"
    assert by_version(table, current="6.1") == "new"
    with pytest.raises(LookupError):
        by_version({"5.0": "x"}, current="4.2")


def test_python_wordings_cover_exactly_the_pythons_tox_runs():
    import configparser
    import re

    config = configparser.ConfigParser()
    config.read("tox.ini")
    factors = set(re.findall(r"-py3(\d+)", config["tox"]["env_list"]))
    assert sorted(f"3.{minor}" for minor in factors) == list(messages.PYTHONS)


def test_by_python_takes_the_wording_of_the_latest_release_before_it():
    table = {"3.11": "old", "3.13": "new"}
    assert messages.by_python(table, current="3.12") == "old"
    assert messages.by_python(table, current="3.13") == "new"


def test_a_python_nobody_recorded_is_an_error_not_a_guess():
    with pytest.raises(LookupError, match=r"no wording recorded for Python 3\.14 "):
        messages.by_python({"3.11": "old"}, current="3.14")
    with pytest.raises(LookupError):
        messages.by_python({"3.11": "old"}, current="3.10")
