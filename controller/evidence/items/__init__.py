"""The Definition of Done, item by item, and the checks that judge each item (pure).

    (1) one workflow on sanctioned tools with SSO              items/sso.py
    (2) data boundaries published and enforced                 items/boundaries.py
    (3) an audit trail for prompts, context and outputs        items/audit_trail.py
    (4) a documented review step and a kill switch             items/review_and_kill_switch.py
    (5) a minimal eval harness used before changes             items/eval_before_changes.py

An item is judged by its ``CHECKS``: functions ``Evidence -> list[Check]`` run in order, each
deciding one piece of evidence (``items/common.py`` has the helpers they share, including the
UNKNOWN/FAIL answer for missing or unreadable evidence; ``items/provisioned.py`` compares a stack
export with the bundle). To judge more evidence, add a function to the item's ``CHECKS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.evidence.facts import Evidence
from controller.evidence.items import audit_trail, boundaries, eval_before_changes, review_and_kill_switch, sso
from controller.evidence.items.common import ItemCheck
from controller.evidence.model import Item

__all__ = ["ITEMS", "ItemRule", "judge"]


@dataclass(frozen=True)
class ItemRule:
    """One Definition-of-Done item and the checks, in order, that decide it."""

    number: int
    key: str
    title: str
    checks: tuple[ItemCheck, ...]

    def judge(self, evidence: Evidence) -> Item:
        return Item(self.number, self.key, self.title, tuple(c for check in self.checks for c in check(evidence)))


ITEMS = (
    ItemRule(1, "sso", "One workflow on sanctioned tools with SSO", sso.CHECKS),
    ItemRule(2, "boundaries", "Data boundaries published and enforced", boundaries.CHECKS),
    ItemRule(3, "audit-trail", "An audit trail for prompts, context and outputs", audit_trail.CHECKS),
    ItemRule(4, "review-and-kill-switch", "A documented review step and a kill switch", review_and_kill_switch.CHECKS),
    ItemRule(5, "eval-before-changes", "A minimal eval harness used before changes", eval_before_changes.CHECKS),
)


def judge(evidence: Evidence) -> tuple[Item, ...]:
    """Every item of the Definition of Done, judged on ``evidence``."""
    return tuple(rule.judge(evidence) for rule in ITEMS)
