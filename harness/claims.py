"""The claim record: a quoted claim, split into atomic statements, each with its own verdict.

A spec module defines one claim, at the top::

    CLAIM = Claim(
        id="orm-get-in-async-view",
        source="...", url="https://...",
        claim="Django ORM methods like get() are synchronous and must be wrapped ...",
        statements=[
            Statement("sync", "get() is synchronous.", "holds"),
            Statement("must-wrap", "To be awaited it must be wrapped with sync_to_async.",
                      "refuted", reality="QuerySet.aget() awaits it (Django >= 4.1)."),
        ],
        mechanism="django.utils.asyncio.async_unsafe ...",
        docs="https://docs.djangoproject.com/en/5.2/topics/async/#queries-the-orm",
    )

and marks every test with the statement it is evidence for: ``@CLAIM.statement("sync")`` (or
``pytestmark = CLAIM.statement("sync")`` when every test of the module proves the same one).

Where a statement's outcome depends on what serves the code or on the Django version, it says so
as data: a default outcome and ``When`` rules, the first that matches winning::

    Statement("cancelled", "... the async view is cancelled ...", "holds",
              when=[When("refuted", interface="wsgi", why="nothing tells a WSGI app"),
                    When("refuted", django="<5.0", why="4.2 does not listen for it")])

A claim's statements are of two kinds. Those that split what the claim says (``claimed=True``,
the default) decide its verdict; those it only implies or that show what works instead (the
corrected form, a related pitfall: ``claimed=False``) are checked and shown, but do not.

Every verdict is derived, never typed: a statement's from its outcomes over every place the spec
serves on and every supported Django version (``holds``, ``refuted``, or ``conditional`` with its
condition spelled out from the rules); the claim's from its claimed statements taken together,
place by place and version by version (``holds`` where they all hold: ``holds`` everywhere,
``refuted`` nowhere, ``conditional`` otherwise), shown with how many of them hold when that is
not all of them ("refuted in part: 1 of its 2 statements holds"). Outcomes per place and version
are what the matrix expects in each cell.
"""

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import ROOT
from harness.status import verdict_text
from harness.versions import SUPPORTED, in_spec

HOLDS, REFUTED, CONDITIONAL = "holds", "refuted", "conditional"
OUTCOMES = (HOLDS, REFUTED)
SEED = "seed/000_5a8fd5ed91702aba.txt"
SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
INTERFACES = ("asgi", "wsgi")
DATABASES = ("sqlite", "postgresql")
DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# The site's index groups claims by these, in this order.
TOPICS = {
    "serving": "Serving and concurrency",
    "orm": "ORM and database",
    "middleware": "Middleware",
    "views": "Views and responses",
    "helpers": "asgiref helpers, context and signals",
    "auth": "Authentication, sessions and cache",
    "tests": "Test tools",
    "settings": "Settings",
}


class ClaimError(ValueError):
    pass


@dataclass(frozen=True)
class Where:
    """Where a test observed a statement: a server, or Django's handler driven in process."""

    server: str = ""  # a name from harness.servers.SERVERS, or "" in process
    interface: str = ""  # "asgi", "wsgi", or "" when the test does not say
    database: str = ""  # "postgresql" where a test served on it; "" is the embedded SQLite

    @property
    def label(self):
        if self.server:
            place = self.server
        else:
            place = f"in process ({self.interface})" if self.interface else "in process"
        return f"{place} on {self.database}" if self.database else place


@dataclass(frozen=True)
class When:
    """A condition, as data, under which a statement's outcome is ``outcome``."""

    outcome: str
    servers: tuple = ()  # server names
    interface: str = ""  # "asgi" or "wsgi" (a server's, or an in-process handler's)
    django: str = ""  # a version range: ">=5.0", "<5.0.2", ">=4.2,<5.0"
    database: str = ""  # "postgresql", or "sqlite" (a place without a database says sqlite)
    why: str = ""  # the mechanism, in a few words

    def __post_init__(self):
        object.__setattr__(self, "servers", tuple(self.servers))
        if self.outcome not in OUTCOMES:
            raise ClaimError(f"When: outcome {self.outcome!r} is not one of {OUTCOMES}")
        if self.interface and self.interface not in INTERFACES:
            raise ClaimError(f"When: interface {self.interface!r} is not one of {INTERFACES}")
        if not (self.servers or self.interface or self.django or self.database):
            raise ClaimError("When: a rule needs a condition (servers, interface, django or database)")
        if self.database and self.database not in DATABASES:
            raise ClaimError(f"When: database {self.database!r} is not one of {DATABASES}")
        if self.django:
            try:
                in_spec(self.django, "4.2")
            except ValueError as error:
                raise ClaimError(f"When: {error}") from None

    def matches(self, where, django):
        if self.servers and where.server not in self.servers:
            return False
        if self.interface and where.interface != self.interface:
            return False
        if self.database and (where.database or "sqlite") != self.database:
            return False
        return not self.django or in_spec(self.django, django)

    def text(self):
        parts = []
        if self.servers:
            parts.append("on " + ", ".join(self.servers))
        if self.interface:
            parts.append(f"under {self.interface.upper()}")
        if self.django:
            parts.append(f"on Django {self.django.replace(',', ', ')}")
        if self.database:
            parts.append(f"on {DATABASE_NAMES[self.database]}")
        return " ".join(parts) + (f" ({self.why})" if self.why else "")


@dataclass(frozen=True)
class Statement:
    """One sentence a reader can check, with the outcome the spec expects for it."""

    id: str
    text: str
    outcome: str  # the outcome where no rule says otherwise
    when: tuple = ()  # When rules; the first that matches decides
    reality: str = ""  # what is true, where the statement is refuted
    claimed: bool = True  # False: implied by the claim, or what works instead; no say in its verdict

    def __post_init__(self):
        object.__setattr__(self, "when", tuple(self.when))
        if not SLUG.fullmatch(self.id):
            raise ClaimError(f"statement id {self.id!r} must be a lowercase slug")
        if self.outcome not in OUTCOMES:
            raise ClaimError(f"{self.id}: outcome {self.outcome!r} is not one of {OUTCOMES}")
        if not self.text.strip():
            raise ClaimError(f"{self.id}: the statement's text is empty")
        refuted_somewhere = self.outcome == REFUTED or any(r.outcome == REFUTED for r in self.when)
        if refuted_somewhere and not self.reality.strip():
            raise ClaimError(f"{self.id}: a statement refuted anywhere must say what is true instead")

    def outcome_at(self, where, django):
        for rule in self.when:
            if rule.matches(where, django):
                return rule.outcome
        return self.outcome

    def verdict(self, places=None, versions=SUPPORTED):
        """holds / refuted everywhere the spec looks, or conditional."""
        places = places if places is not None else all_places()
        seen = {self.outcome_at(where, version) for where in places for version in versions}
        return seen.pop() if len(seen) == 1 else CONDITIONAL

    def condition(self):
        """The rules, as a sentence: empty when the outcome never varies."""
        if self.verdict() != CONDITIONAL:
            return ""
        rules = [f"{rule.outcome} {rule.text()}" for rule in self.when]
        return "; ".join(rules) + f"; {self.outcome} otherwise"


def all_places():
    """Every server the spec serves on, and both in-process handlers."""
    from harness.servers import SERVERS

    return [Where(name, kind.interface) for name, kind in SERVERS.items()] + [
        Where(name, kind.interface, "postgresql") for name, kind in SERVERS.items()
    ] + [Where("", interface) for interface in INTERFACES]


@dataclass(frozen=True)
class Claim:
    id: str
    source: str  # where it comes from, in words ("the quiz", "Django docs, ...", a ticket)
    claim: str  # the statement under test, quoted exactly from the source
    statements: tuple
    mechanism: str  # where in Django (or asgiref / Python) this comes from, by module.function
    docs: str  # a Django docs anchor
    url: str = ""  # the source's address, where it has one
    # The question a developer would ask, worded so that "yes" is the claim holding: the site's
    # one-line answer (yes / no / yes when ...) is derived from the verdicts, never typed.
    question: str = ""
    topic: str = ""  # one of TOPICS: where the site's index lists it
    # The code in question and its corrected form, as dotted names of functions or classes in
    # project/ (or specs/ for test code), shown side by side on the claim's page.
    code: tuple = ()
    instead: tuple = ()
    module: str = field(default="", compare=False)  # the spec module that defines it

    def __post_init__(self):
        object.__setattr__(self, "statements", tuple(self.statements))
        object.__setattr__(self, "code", tuple(self.code))
        object.__setattr__(self, "instead", tuple(self.instead))
        if not SLUG.fullmatch(self.id):
            raise ClaimError(f"claim id {self.id!r} must be a lowercase slug")
        if self.question and not self.question.rstrip().endswith("?"):
            raise ClaimError(f"{self.id}: the question must end with a question mark")
        if self.topic and self.topic not in TOPICS:
            raise ClaimError(f"{self.id}: topic {self.topic!r} is not one of {list(TOPICS)}")
        for name in (*self.code, *self.instead):
            if not re.fullmatch(r"(project|specs)(\.\w+)+", name):
                raise ClaimError(f"{self.id}: code {name!r} must be a dotted name under project. or specs.")
        for name in ("source", "claim", "mechanism", "docs"):
            if not getattr(self, name).strip():
                raise ClaimError(f"{self.id}: {name} is empty")
        if not self.docs.startswith("https://docs.djangoproject.com/") or "#" not in self.docs:
            raise ClaimError(f"{self.id}: docs must link a Django docs anchor, got {self.docs!r}")
        if self.url and not self.url.startswith("https://"):
            raise ClaimError(f"{self.id}: url must be an https address, got {self.url!r}")
        if not self.statements:
            raise ClaimError(f"{self.id}: a claim needs at least one statement")
        ids = [s.id for s in self.statements]
        if len(set(ids)) != len(ids):
            raise ClaimError(f"{self.id}: statement ids repeat: {ids}")
        if not any(s.claimed for s in self.statements):
            raise ClaimError(f"{self.id}: at least one statement must split what the claim says")

    @property
    def verdict(self):
        """The claimed statements together, at every place and supported version."""
        claimed = [s for s in self.statements if s.claimed]
        together = {
            all(s.outcome_at(where, version) == HOLDS for s in claimed)
            for where in all_places() for version in SUPPORTED
        }  # fmt: skip
        if together == {True}:
            return HOLDS
        return REFUTED if together == {False} else CONDITIONAL

    @property
    def verdict_text(self):
        return verdict_text(self.as_dict())

    def statement_named(self, statement_id):
        for statement in self.statements:
            if statement.id == statement_id:
                return statement
        raise ClaimError(
            f"{self.id}: no statement {statement_id!r}; it has {[s.id for s in self.statements]}"
        )

    def statement(self, statement_id):
        """The pytest mark that makes a test evidence for one of this claim's statements."""
        self.statement_named(statement_id)
        return pytest.mark.statement(self, statement_id)

    def expected(self, statement_id, server=None, interface="asgi", django=None):
        """The outcome the record gives ``statement_id`` where a test observes it: on ``server``
        (a running one), or in process through Django's ``interface`` handler; under ``django``
        (default: the running version). For a test whose assertions follow the record's rules
        instead of repeating its version ranges."""
        from harness.versions import django_version_text

        where = (Where(server.name, server.kind.interface, server.config.db.replace("sqlite", ""))
                 if server else Where("", interface))  # fmt: skip
        return self.statement_named(statement_id).outcome_at(where, django or django_version_text())

    def servers_where(self, statement_id, outcome, django=None):
        """The servers on which statement ``statement_id`` has ``outcome`` (under ``django``,
        default: the running version): for choosing what a test serves on."""
        from harness.servers import SERVERS
        from harness.versions import django_version_text

        statement = self.statement_named(statement_id)
        version = django or django_version_text()
        return [
            name for name, kind in SERVERS.items()
            if statement.outcome_at(Where(name, kind.interface), version) == outcome
        ]  # fmt: skip

    def as_dict(self):
        cached = self.__dict__.get("_as_dict")
        if cached is None:
            cached = self._record()
            object.__setattr__(self, "_as_dict", cached)
        return cached

    def _record(self):
        return {
            "id": self.id, "source": self.source, "url": self.url, "claim": self.claim,
            "verdict": self.verdict, "mechanism": self.mechanism, "docs": self.docs,
            "module": self.module,
            "statements": [
                {"id": s.id, "text": s.text, "verdict": s.verdict(), "condition": s.condition(),
                 "reality": s.reality, "claimed": s.claimed}
                for s in self.statements
            ],
        }  # fmt: skip


def resolve(dotted):
    """The object a record's ``code``/``instead`` names: the longest importable module prefix,
    then its attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            found = getattr(found, attr)
        return found
    raise ImportError(f"no module in {dotted!r}")


def claim_of(module):
    """The claim a spec module defines (its ``CLAIM``), with the module's name recorded."""
    claim = getattr(module, "CLAIM", None)
    if not isinstance(claim, Claim):
        raise ClaimError(f"{module.__name__} defines no CLAIM = Claim(...)")
    if claim.module != module.__name__:
        object.__setattr__(claim, "module", module.__name__)
    return claim


def load_all(spec_dir=ROOT / "specs"):
    """Every claim in ``specs/``, by id (imports the spec modules; Django must be set up)."""
    claims = {}
    for path in sorted(Path(spec_dir).glob("test_*.py")):
        claim = claim_of(importlib.import_module(f"specs.{path.stem}"))
        if claim.id in claims:
            raise ClaimError(f"claim {claim.id!r} is defined twice ({claims[claim.id].module}, {claim.module})")
        claims[claim.id] = claim
    return claims
