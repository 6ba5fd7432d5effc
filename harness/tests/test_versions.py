"""The one version helper."""

import pytest

from harness.versions import by_version, in_range


def test_in_range_is_half_open():
    assert in_range("5.0", "6.0", current=(5, 0))
    assert not in_range("5.0", "6.0", current=(6, 0))
    assert not in_range("5.0", None, current=(4, 2))


def test_by_version_takes_the_latest_applicable_entry():
    table = {"4.2": "old", "6.1": "new"}
    assert by_version(table, current=(6, 0)) == "old"
    assert by_version(table, current=(6, 1)) == "new"
    with pytest.raises(LookupError):
        by_version({"5.0": "x"}, current=(4, 2))
