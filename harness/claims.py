"""The claim record (DESIGN.md §1) and the registry of every claim.

A spec module defines its claim once, at the top::

    CLAIM = Claim(id="...", source="...", claim="...", verdict="refuted", ...)
    pytestmark = CLAIM.mark

and every test in the module becomes evidence for it. Everything else (the verdict table, the
results file, the README table) is generated from these records.

``outcomes`` records, per server, whether the claim holds there; a claim whose outcome differs
between servers must say ``verdict="conditional"`` and spell out the condition. Tests choose their
servers from it (``servers_where``), so the expectation lives in the record, not in test bodies.
"""

import importlib
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from harness import ROOT

VERDICTS = ("holds", "refuted", "conditional")
SEED = "seed/000_5a8fd5ed91702aba.txt"

REGISTRY = {}


class ClaimError(ValueError):
    pass


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    claim: str
    verdict: str
    reality: str
    mechanism: str
    docs: str
    condition: str = ""
    outcomes: dict = field(default_factory=dict)
    since: str = ""
    until: str = ""
    module: str = field(default="", compare=False)

    def __post_init__(self):
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", self.id):
            raise ClaimError(f"claim id {self.id!r} must be a lowercase slug")
        if self.verdict not in VERDICTS:
            raise ClaimError(f"{self.id}: verdict {self.verdict!r} is not one of {VERDICTS}")
        for field_name in ("source", "claim", "reality", "mechanism", "docs"):
            if not getattr(self, field_name).strip():
                raise ClaimError(f"{self.id}: {field_name} is empty")
        if not self.docs.startswith("https://docs.djangoproject.com/") or "#" not in self.docs:
            raise ClaimError(f"{self.id}: docs must link a Django docs anchor, got {self.docs!r}")
        bad = {k: v for k, v in self.outcomes.items() if v not in ("holds", "refuted")}
        if bad:
            raise ClaimError(f"{self.id}: outcomes must be 'holds' or 'refuted', got {bad}")
        mixed = len(set(self.outcomes.values())) > 1
        if self.verdict == "conditional" and not self.condition:
            raise ClaimError(f"{self.id}: a conditional verdict must spell out its condition")
        if mixed and self.verdict != "conditional":
            raise ClaimError(f"{self.id}: outcomes differ by server, so the verdict is conditional")
        if self.outcomes and not mixed and self.verdict not in self.outcomes.values():
            raise ClaimError(f"{self.id}: verdict {self.verdict!r} contradicts its outcomes")
        if not self.module:
            # The module that wrote Claim(...): two frames up, past the generated __init__.
            caller = sys._getframe(2).f_globals.get("__name__", "")
            object.__setattr__(self, "module", caller)
        known = REGISTRY.get(self.id)
        if known is not None and known != self:
            raise ClaimError(f"claim {self.id!r} is defined twice ({known.module}, {self.module})")
        REGISTRY[self.id] = self

    @property
    def mark(self):
        return pytest.mark.claim(self.id)

    def servers_where(self, outcome):
        """The servers on which this claim has ``outcome`` ("holds" or "refuted")."""
        return [server for server, value in self.outcomes.items() if value == outcome]

    def outcome_text(self):
        """E.g. 'holds: uvicorn; refuted: gunicorn-gthread' (empty when not per server)."""
        parts = []
        for outcome in ("holds", "refuted"):
            servers = self.servers_where(outcome)
            if servers:
                parts.append(f"{outcome}: {', '.join(servers)}")
        return "; ".join(parts)

    def as_dict(self):
        return asdict(self)


def load_all(spec_dir=ROOT / "specs"):
    """Import every spec module so that every claim is registered; return the registry."""
    for path in sorted(Path(spec_dir).glob("test_*.py")):
        importlib.import_module(f"specs.{path.stem}")
    return REGISTRY
