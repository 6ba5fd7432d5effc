"""What changed between Django versions: for each release, the statements whose outcome somewhere
differs from the release before, read from the records' rules (the same rules the matrix's
expected cells come from)."""

from harness.claims import all_places
from harness.versions import parse
from harness.answers import describe_places, version_points


def release_points(claims):
    points = {}
    for claim in claims:
        for version in version_points(claim):
            points.setdefault(parse(version), version)
    return [points[key] for key in sorted(points)]


def release(point):
    """"5.0" -> "5.0.0": a point is a release, and a bare series reads as any of its releases."""
    return ".".join(str(part) for part in parse(point))


def _why(statement, where, version):
    """The reason the rule that decides ``statement`` at ``where`` on ``version`` gives."""
    for rule in statement.when:
        if rule.matches(where, version):
            return rule.why
    return ""


def between_versions(claims):
    """[{"version", "before", "changes": [{"claim", "statement", "was", "now", "where"}]}]."""
    places = all_places()
    points = release_points(claims)
    releases = []
    for before, version in zip(points, points[1:]):
        found = []
        for claim in claims:
            for statement in claim.statements:
                moved = {}
                for where in places:
                    was = statement.outcome_at(where, before)
                    now = statement.outcome_at(where, version)
                    if was != now:
                        why = _why(statement, where, before) or _why(statement, where, version)
                        moved.setdefault((was, now, why), []).append(where)
                for (was, now, why), wheres in moved.items():
                    found.append({"claim": claim, "statement": statement, "was": was, "now": now,
                                  "why": why, "where": describe_places(wheres, places)})
        releases.append({"version": release(version), "before": release(before), "changes": found})
    return releases
