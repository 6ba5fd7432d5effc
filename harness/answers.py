"""The one-line answer to a claim's question, derived from its statements' outcomes.

A claim's question is worded so that "yes" is the claim holding (harness/claims.py). Its answer
is "Yes", "No", or "Yes when ..." with the condition spelled out: where (which servers, which
interface, which database) and on which Django versions the claimed statements all hold. Nothing
here is typed by hand; it reads ``Statement.outcome_at`` at the places where the claim's committed
results show it tested (``places_tested``) and at the version points below.

Versions are points: each supported series (read as its .0 release, as ``Claim.verdict`` reads
them) and every patch release a statement's rule names as a bound (``When(django="<5.0.2")``
makes 5.0.2 a point), so a change inside a series is seen.
"""

import re
from dataclasses import dataclass

from harness.claims import DATABASE_NAMES, HOLDS, Where, all_places
from harness.versions import SUPPORTED, _COMPARISON, parse

INTERFACE_NAMES = {"asgi": "ASGI", "wsgi": "WSGI"}


def version_points(claim):
    """The supported series and every bound a rule of the claim names, in order."""
    points = {parse(v): v for v in SUPPORTED}
    lowest, highest = parse(SUPPORTED[0]), parse(SUPPORTED[-1])
    for statement in claim.statements:
        for rule in statement.when:
            for part in filter(None, rule.django.split(",")):
                bound = _COMPARISON.fullmatch(part.strip()).group(2)
                if lowest <= parse(bound) <= highest[:2] + (99,):  # any patch of the last
                    points.setdefault(parse(bound), bound)
    return [points[key] for key in sorted(points)]


def holds_at(claim, where, version):
    return all(s.outcome_at(where, version) == HOLDS for s in claim.statements if s.claimed)


def place_name(where):
    if where.server:
        name = where.server
    else:
        name = f"{INTERFACE_NAMES[where.interface]}Handler in process"
    return f"{name} on {DATABASE_NAMES[where.database]}" if where.database else name


def describe_places(chosen, places):
    """Words for a set of places, as short as the set allows."""
    chosen, places = set(chosen), list(places)
    if chosen == set(places):
        return "everywhere"

    def having(**kw):
        return {p for p in places if all(getattr(p, k) == v for k, v in kw.items())}

    for interface in INTERFACE_NAMES:
        if chosen == having(interface=interface):
            return f"under {INTERFACE_NAMES[interface]} ({_servers(chosen)})"
    if chosen == having(database="postgresql"):
        return "on PostgreSQL"
    if chosen == having(database=""):
        return "on SQLite"
    for interface in INTERFACE_NAMES:
        if chosen == having(interface=interface, database=""):
            return f"under {INTERFACE_NAMES[interface]} on SQLite ({_servers(chosen)})"
        if chosen == having(interface=interface, database="postgresql"):
            return f"under {INTERFACE_NAMES[interface]} on PostgreSQL ({_servers(chosen)})"
    # A server named once stands for both databases when it holds on both.
    words = []
    for place in places:
        if place not in chosen:
            continue
        twin = Where(place.server, place.interface, "postgresql" if not place.database else "")
        if twin in chosen and (twin in places or not place.server):
            if place.database:
                continue  # said with its SQLite twin
            words.append(place_name(Where(place.server, place.interface)))
        else:
            words.append(place_name(place))
    return "on " + ", ".join(words)


def _servers(chosen):
    names = []
    for place in chosen:
        name = place.server or f"{INTERFACE_NAMES[place.interface]}Handler in process"
        if name not in names:
            names.append(name)
    order = [p.server or f"{INTERFACE_NAMES[p.interface]}Handler in process" for p in all_places()]
    return ", ".join(sorted(names, key=order.index))


def describe_versions(group, points):
    """Words for a run of consecutive version points."""
    first, last = points.index(group[0]), points.index(group[-1])
    if first == 0 and last == len(points) - 1:
        return ""
    if first == 0:
        return f"on Django < {points[last + 1]}"
    if last == len(points) - 1:
        return f"on Django ≥ {points[first]}"
    return f"on Django ≥ {points[first]}, < {points[last + 1]}"


@dataclass(frozen=True)
class Answer:
    word: str  # "Yes", "No" or "Yes when"
    parts: tuple  # (("yes"|"no", "where and when"), ...) for "Yes when"
    versions: str  # the Django series the answer covers, e.g. "Django 4.2–6.1"
    # For a "No": what is true instead, from each claimed statement refuted everywhere (its
    # reality), and how many of the claimed statements hold nonetheless.
    instead: tuple = ()
    holding: int = 0
    claimed: int = 0

    @property
    def text(self):
        if self.word != "Yes when":
            return f"{self.word}: everywhere the spec looks, on {self.versions}."
        said = "; ".join(f"{yes_no} {where}" for yes_no, where in self.parts)
        return f"Yes when …: {said}."

    @property
    def badges(self):
        """Short labels for where the answer is "no" while elsewhere it is "yes": the servers,
        interfaces and Django versions where it differs ("WSGI", "Django < 5.0")."""
        if self.word != "Yes when":
            return []
        return [_short(where) for yes_no, where in self.parts if yes_no == "no"]


def _short(where):
    """"on Django ≥ 5.0 under WSGI (gunicorn-gthread, ...)" -> "Django ≥ 5.0 · WSGI"."""
    text = re.sub(r" \([^)]*\)", "", where)  # the servers an interface stands for
    text = text.replace("under ", "").replace("on ", "").strip()
    found = re.match(r"(Django [<≥] [\d.]+(?:, < [\d.]+)?)\s*(.*)$", text)
    return " · ".join(filter(None, found.groups())) if found else text


def places_tested(payload):
    """The places (of ``all_places()``) where a claim's committed results (``payload``, one
    results/claims/<id>.json) have a cell: its answer names no server its tests did not serve
    on. An in-process test on PostgreSQL stands for its handler; one that drives neither handler
    ("in process") for both."""
    by_label = {place.label: [place] for place in all_places()}
    handlers = [place for place in all_places() if not place.server]
    for place in handlers:
        by_label[f"{place.label} on postgresql"] = [place]
    by_label["in process"] = by_label["in process on postgresql"] = handlers
    labels = {label for env in payload["environments"].values()
              for cells in env["cells"].values() for label in cells}  # fmt: skip
    found = {place for label in labels for place in by_label[label]}
    return [place for place in all_places() if place in found]


def answer_as_tested(claim, results):
    """The answer over the places where ``results`` (committed_claims()) show the claim tested."""
    return answer(claim, places_tested(results[claim.id]))


def answer(claim, places=None):
    """``places``: where the claim was tested (``places_tested``); by default every place."""
    places = places if places is not None else all_places()
    points = version_points(claim)
    span = f"Django {SUPPORTED[0]}–{SUPPORTED[-1]}"
    table = {v: frozenset(p for p in places if holds_at(claim, p, v)) for v in points}
    every = set(table.values())
    if every == {frozenset(places)}:
        return Answer("Yes", (), span)
    if every == {frozenset()}:
        claimed = [s for s in claim.statements if s.claimed]
        instead = tuple(s.reality for s in claimed if s.verdict(places) == "refuted")
        holding = sum(s.verdict(places) == HOLDS for s in claimed)
        return Answer("No", (), span, instead, holding, len(claimed))
    # Consecutive versions with the same places where the claim holds form one group.
    groups = []
    for version in points:
        if groups and table[groups[-1][-1]] == table[version]:
            groups[-1].append(version)
        else:
            groups.append([version])
    parts = []
    if len(groups) == 1:
        chosen = table[points[0]]
        rest = frozenset(places) - chosen
        parts.append(("yes", describe_places(chosen, places)))
        parts.append(("no", describe_places(rest, places)))
    elif all(table[g[0]] in (frozenset(places), frozenset()) for g in groups):
        for group in groups:
            yes = "yes" if table[group[0]] else "no"
            parts.append((yes, describe_versions(group, points)))
    else:
        for group in groups:
            chosen = table[group[0]]
            when = describe_versions(group, points)
            if not chosen:
                parts.append(("no", f"{when}"))
            elif chosen == frozenset(places):
                parts.append(("yes", f"{when}"))
            else:
                rest = frozenset(places) - chosen
                parts.append(("yes", f"{when} {describe_places(chosen, places)}"))
                parts.append(("no", f"{when} {describe_places(rest, places)}"))
    return Answer("Yes when", tuple(parts), span)


def answer_at(claim, where, version):
    """Yes or no at one place (a ``Where``), at one Django version."""
    return "yes" if holds_at(claim, where, version) else "no"
