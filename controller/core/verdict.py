"""The one verdict of an eval, as the gate, the CLI and the report read it.

Like an Argo Rollouts analysis run, an eval has three outcomes, each with one consequence:

    PASS          every category met its threshold        may promote (when fresh)     exit 0
    FAIL          the cases that ran prove it fails       rolls a live release back    exit 3
    INCONCLUSIVE  the model or a dependency was           neither: no fresh evidence;  exit 5
                  unavailable for some cases after        never passes a gate, never
                  bounded retries                         rolls anything back

Anything else read from a stored result is not a verdict (``parse_verdict`` returns None) and
is treated like INCONCLUSIVE: it never passes and never forces a rollback.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["NO_FRESH_EVIDENCE", "VERDICT_COLOURS", "Verdict", "exit_code", "parse_verdict"]

# How status, reconcile and the report name an INCONCLUSIVE latest result.
NO_FRESH_EVIDENCE = "no fresh evidence"


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"

    @property
    def conclusive(self) -> bool:
        """Whether the verdict is evidence about the release (PASS or FAIL)."""
        return self is not Verdict.INCONCLUSIVE


def parse_verdict(value: object) -> Verdict | None:
    """The verdict ``value`` spells exactly, or None (unknown values never pass)."""
    try:
        return Verdict(value) if isinstance(value, str) else None
    except ValueError:
        return None


_EXIT = {Verdict.PASS: 0, Verdict.FAIL: 3, Verdict.INCONCLUSIVE: 5}


def exit_code(verdict: Verdict) -> int:
    """The CLI's exit code for an eval with this verdict (README "Exit codes")."""
    return _EXIT[verdict]


# How the CLI's rich tables colour a verdict (anything unknown: red).
VERDICT_COLOURS = {Verdict.PASS.value: "green", Verdict.FAIL.value: "red", Verdict.INCONCLUSIVE.value: "yellow"}
