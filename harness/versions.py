"""The one place where a Django version decides anything (DESIGN.md §5).

Claims carry ``since``/``until``; tests that only apply to some versions use ``requires_django``.
Nothing else in the spec reads ``django.VERSION``.
"""

import django
import pytest


def parse(version):
    return tuple(int(part) for part in version.split("."))


def django_version():
    return django.VERSION[:2]


def in_range(since=None, until=None, current=None):
    """True when ``since <= current < until`` (either bound optional)."""
    current = current or django_version()
    if since and current < parse(since):
        return False
    if until and current >= parse(until):
        return False
    return True


def by_version(expectations, current=None):
    """Per-version expectations as data: ``{"4.2": old, "6.1": new}`` gives ``new`` from 6.1 on."""
    current = current or django_version()
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
