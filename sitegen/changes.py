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
                        moved.setdefault((was, now), []).append(where)
                for (was, now), wheres in moved.items():
                    found.append({"claim": claim, "statement": statement, "was": was, "now": now,
                                  "where": describe_places(wheres, places)})
        releases.append({"version": version, "before": before, "changes": found})
    return releases
