"""The one place where a Django version decides anything.

Statements say where their outcome changes as a version range (``When(django=">=5.0")``, see
harness/claims.py); a test that only applies to some versions uses ``requires_django``; a value
that differs by version comes from ``by_version``. Nothing else in the spec reads
``django.VERSION``.

Ranges are comma-separated comparisons, down to the patch release where that is where
behaviour changed: ``">=5.0.2"``, ``">=4.2,<5.0"``.
"""

import re

import django
import pytest

# The Django series the spec runs on (tox.ini's environments); a statement's verdict is taken
# over all of them.
SUPPORTED = ("4.2", "5.0", "5.1", "5.2", "6.0", "6.1")

_COMPARISON = re.compile(r"(>=|<=|==|!=|<|>)(\d+(?:\.\d+){0,2})")


def parse(version):
    """"5.0.2" -> (5, 0, 2); "5.0" -> (5, 0, 0)."""
    parts = tuple(int(part) for part in version.split("."))
    return (parts + (0, 0, 0))[:3]


def django_version_text():
    return ".".join(str(part) for part in django.VERSION[:3])


def in_spec(spec, version):
    """Is ``version`` (e.g. "5.0.2" or "5.0") inside ``spec`` (e.g. ">=5.0,<5.0.2")?"""
    current = parse(version)
    for part in spec.split(","):
        match = _COMPARISON.fullmatch(part.strip())
        if not match:
            raise ValueError(f"bad version range {spec!r}: {part!r}")
        op, bound = match.group(1), parse(match.group(2))
        ok = {
            ">=": current >= bound, "<=": current <= bound, "==": current == bound,
            "!=": current != bound, "<": current < bound, ">": current > bound,
        }[op]  # fmt: skip
        if not ok:
            return False
    return True


def in_range(since=None, until=None, current=None):
    """True when ``since <= current < until`` (either bound optional)."""
    spec = ",".join(filter(None, [since and f">={since}", until and f"<{until}"]))
    return in_spec(spec, current or django_version_text()) if spec else True


def by_version(expectations, current=None):
    """Per-version expectations as data: ``{"4.2": old, "6.1": new}`` gives ``new`` from 6.1 on."""
    current = parse(current or django_version_text())
    applicable = [v for v in expectations if parse(v) <= current]
    if not applicable:
        raise LookupError(f"no expectation for Django {current} in {sorted(expectations)}")
    return expectations[max(applicable, key=parse)]


def requires_django(since=None, until=None):
    label = f"Django >= {since}" if since else ""
    if until:
        label = f"{label}, < {until}" if label else f"Django < {until}"
    return pytest.mark.skipif(
        not in_range(since, until), reason=f"behaviour applies to {label} only"
    )
