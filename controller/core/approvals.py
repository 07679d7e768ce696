"""Approvals as authenticated acts, and who may operate: the pure rules.

A ``Principal`` is who the control plane was told is acting, and how it knows: ``oidc`` (a
token of the bundle's IdP, signature checked), ``sts`` (an AWS caller identity the bundle's
``access.aws_principals`` lists) or ``asserted`` (a free-text ``--operator``, accepted only when
the local dev IdP is the issuer; never enough to approve). An approval is the audit record of a
``rollout approve`` by an authenticated approver: the approver's identity (issuer, subject,
email), the release digest, the cohort, when it was given and when it stops counting.

``count_approvals`` decides which recorded approvals count for one promotion: exactly that digest
and cohort, unexpired at ``now``, by an authenticated principal the bundle lists as an approver
today, other than the operator, each approver once. It returns every reason an approval did not
count when too few do (``("approver-invalid" | "approvals", message)``, the gate's reason codes).

Pure: no I/O, the clock passed in; the gate (``controller.core.gates``) and the service call it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from controller.bundle.access import Access
from controller.bundle.models import COHORT_ORDER
from controller.core.timefmt import iso, parse_time

__all__ = [
    "APPROVE_ACTION",
    "AUTHENTICATED",
    "Approval",
    "Principal",
    "approval_from_record",
    "approvals_in",
    "approver_problems",
    "count_approvals",
    "operator_problems",
]

APPROVE_ACTION = "approve"
AUTHENTICATED = frozenset({"oidc", "sts"})
# An approval stamped later than this after "now" comes from a wrong clock: it never counts.
_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Principal:
    """Who is acting. ``issuer`` + ``subject`` identify a person; ``email`` is the IdP-verified
    address (the STS mapping's, for ``sts``); ``source`` says how it was established."""

    issuer: str
    subject: str
    email: str | None
    groups: tuple[str, ...] = ()
    source: str = "oidc"  # "oidc" | "sts" | "asserted"
    arn: str | None = None  # the STS caller ARN (source "sts")

    @property
    def authenticated(self) -> bool:
        return self.source in AUTHENTICATED

    @property
    def name(self) -> str:
        """What the audit record's ``operator`` says: the verified email, else the subject."""
        return self.email or self.subject

    def same_person(self, other: Principal) -> bool:
        """Same issuer + subject, or same email; a bare ``asserted`` name also matches the local
        part of the other's email (``dana.whitfield`` is ``dana.whitfield@corp.example``)."""
        if (self.issuer, self.subject) == (other.issuer, other.subject):
            return True
        if self.email is not None and other.email is not None and self.email.lower() == other.email.lower():
            return True
        for bare, full in ((self, other), (other, self)):
            if bare.source == "asserted":
                names = {
                    full.subject.casefold(),
                    (full.email or "").casefold(),
                    (full.email or "").split("@")[0].casefold(),
                }
                if bare.subject.casefold() in names:
                    return True
        return False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "issuer": self.issuer,
            "subject": self.subject,
            "email": self.email,
            "groups": list(self.groups),
            "source": self.source,
        }
        if self.arn:
            out["arn"] = self.arn
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Principal:
        if not isinstance(data, dict):
            raise ValueError("a principal is a JSON object")
        groups = data.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError("principal groups must be a list of strings")
        for name in ("issuer", "subject", "source"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ValueError(f"principal {name} must be a non-empty string")
        email = data.get("email")
        if email is not None and not isinstance(email, str):
            raise ValueError("principal email must be a string or null")
        return cls(data["issuer"], data["subject"], email, tuple(groups), data["source"], data.get("arn"))


@dataclass(frozen=True)
class Approval:
    """One recorded ``rollout approve``: ``seq`` is its audit record."""

    approver: Principal
    release: str
    cohort: str
    approved_at: dt.datetime
    expires_at: dt.datetime
    reason: str | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """What the audit record's ``evidence.approval`` holds."""
        return {
            "approver": self.approver.to_dict(),
            "release": self.release,
            "cohort": self.cohort,
            "approved_at": iso(self.approved_at),
            "expires_at": iso(self.expires_at),
        }

    def summary(self) -> dict[str, Any]:
        return {**self.to_dict(), "seq": self.seq}


def approval_from_record(record: Any) -> Approval | None:
    """The approval an audit record holds (``None``: the record is not an approval, or its
    evidence is malformed, which never counts)."""
    if getattr(record, "action", None) != APPROVE_ACTION:
        return None
    evidence = getattr(record, "evidence", None)
    data = evidence.get("approval") if isinstance(evidence, dict) else None
    if not isinstance(data, dict):
        return None
    try:
        return Approval(
            approver=Principal.from_dict(data["approver"]),
            release=str(data["release"]),
            cohort=str(data["cohort"]),
            approved_at=parse_time(str(data["approved_at"])),
            expires_at=parse_time(str(data["expires_at"])),
            reason=getattr(record, "reason", None),
            seq=getattr(record, "seq", None),
        )
    except (KeyError, TypeError, ValueError):
        return None


def approvals_in(records: Iterable[Any]) -> tuple[Approval, ...]:
    """Every approval in a chain (as ``read_chain`` returns it), oldest first."""
    return tuple(a for a in (approval_from_record(r) for r in records) if a is not None)


def operator_problems(access: Access, principal: Principal | None) -> list[str]:
    """Why ``principal`` may not operate this workflow (empty: it may)."""
    if principal is None or not principal.authenticated:
        return [
            "the operator is not authenticated: give --token (or ROLLOUT_TOKEN, `rollout login`) or --operator-from-sts"
        ]
    if not access.operators.admits(principal.email, principal.groups):
        return [f"{principal.name} is not an operator (access.operators)"]
    return []


def approver_problems(access: Access, principal: Principal | None) -> list[str]:
    """Why ``principal`` may not approve (empty: it may)."""
    if principal is None or not principal.authenticated:
        return ["an approval needs an authenticated approver (an IdP token or a listed AWS principal), not a name"]
    if not access.approvers.admits(principal.email, principal.groups):
        return [f"{principal.name} is not an approver (access.approvers)"]
    return []


def _later_or_unknown(given: str, target: str) -> bool:
    order = list(COHORT_ORDER)
    return given not in order or target not in order or order.index(given) > order.index(target)


def count_approvals(
    approvals: Sequence[Approval],
    *,
    access: Access,
    release: str,
    cohort: str,
    operator: Principal | None,
    needed: int,
    now: dt.datetime,
) -> tuple[list[tuple[str, str]], list[Approval]]:
    """The approvals that count for promoting ``release`` to ``cohort`` now, and, when fewer
    than ``needed`` do, every reason (``(code, message)``) that the near misses did not."""
    valid: list[Approval] = []
    problems: list[tuple[str, str]] = []
    short = release[:12]

    def miss(a: Approval, why: str) -> None:
        problems.append(("approver-invalid", f"the approval at audit seq {a.seq} by {a.approver.name} {why}"))

    for a in approvals:
        if a.release != release:
            if a.cohort == cohort and a.expires_at > now:
                miss(a, f"is for release {a.release[:12]}, not {short}")
            continue
        if a.cohort != cohort:
            if _later_or_unknown(a.cohort, cohort):  # one for an earlier cohort is history, not a miss
                miss(a, f"is for cohort {a.cohort}, not {cohort}")
            continue
        if a.expires_at <= now:
            miss(a, f"expired at {iso(a.expires_at)}")
            continue
        if a.approved_at > now + _SKEW:
            miss(a, f"is dated in the future ({iso(a.approved_at)})")
            continue
        who = approver_problems(access, a.approver)
        if who:
            miss(a, f"does not count: {who[0]}")
            continue
        if operator is not None and a.approver.same_person(operator):
            miss(a, "is the operator's own; an approval must come from someone else")
            continue
        if any(a.approver.same_person(v.approver) for v in valid):
            miss(a, "repeats an approver who already approved; each approver counts once")
            continue
        valid.append(a)
    if len(valid) >= needed:
        return [], valid
    problems.append(
        (
            "approvals",
            f"cohort {cohort} needs {needed} approval{'s' if needed != 1 else ''} of release {short} from "
            f"approvers other than the operator (`rollout approve --release {short} --cohort {cohort}`); "
            f"{len(valid)} count",
        )
    )
    return problems, valid
