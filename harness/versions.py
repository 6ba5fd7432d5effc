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


def requires_django(since=None, until=None):
    label = f"Django >= {since}" if since else ""
    if until:
        label = f"{label}, < {until}" if label else f"Django < {until}"
    return pytest.mark.skipif(
        not in_range(since, until), reason=f"behaviour applies to {label} only"
    )
