"""Approvals are authenticated acts bound to one digest and cohort; forged ones never count.

The pure rule (``controller.core.approvals.count_approvals``) is table-tested with a fixed clock;
the CLI tests drive ``rollout approve`` / ``promote`` in-process with tokens of the real local dev
IdP (the bundle's issuer), against a real local store, and check every refusal names its reason.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from controller.bundle.access import Access
from controller.bundle.models import Workflow
from controller.bundle.yamlio import load_yaml
from controller.core.approvals import Approval, Principal, count_approvals, operator_problems
from tests.test_cli_rollout import (  # the CLI helpers
    AUDIENCE,
    ISSUER,
    OP,
    create_release,
    rollout,
    rollout_json,
    store_eval,
)

REPO = Path(__file__).resolve().parent.parent
WF = Workflow.model_validate(load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data)
ACCESS: Access = WF.access  # type: ignore[assignment]
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
A, B = "a" * 64, "b" * 64

DANA = Principal(ISSUER, "dev-dana", "dana.whitfield@corp.example", ("ai-rollout-approvers",))
SAM = Principal(ISSUER, "dev-sam", "sam.okafor@corp.example", ())
ALICE = Principal(ISSUER, "dev-alice", "alice.moreau@corp.example", ("eng",))
PRIYA = Principal(ISSUER, "dev-priya", "priya.natarajan@corp.example", ())


def approval(who: Principal, release: str = A, cohort: str = "limited", at: dt.datetime = T0, seq: int = 1) -> Approval:
    return Approval(who, release, cohort, at, at + ACCESS.approval_ttl, None, seq)


def count(
    approvals: list[Approval],
    *,
    operator: Principal | None = PRIYA,
    cohort: str = "limited",
    now: dt.datetime = T0,
    needed: int = 1,
) -> tuple[list[tuple[str, str]], list[Approval]]:
    return count_approvals(
        approvals, access=ACCESS, release=A, cohort=cohort, operator=operator, needed=needed, now=now
    )


@pytest.fixture
def state(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """As in tests/test_cli_rollout.py: no bake time, the OS user is nobody in particular."""
    from tests.conftest import edit_yaml

    def no_bake(data: Any) -> None:
        for cohort in data["rollout"]["cohorts"]:
            cohort["bake_time"] = "0h"

    edit_yaml(project / "workflow.yaml", no_bake)
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    monkeypatch.delenv("ROLLOUT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("ROLLOUT_TOKEN", raising=False)
    return tmp_path / "state"


# --- the pure rule -----------------------------------------------------------------------------------


def test_an_approval_of_exactly_this_digest_and_cohort_counts() -> None:
    problems, valid = count([approval(DANA)], now=T0 + dt.timedelta(hours=1))
    assert problems == [] and [a.approver for a in valid] == [DANA]


@pytest.mark.parametrize(
    ("given", "operator", "fragment"),
    [
        ([approval(DANA, release=B)], PRIYA, "is for release bbbbbbbbbbbb, not aaaaaaaaaaaa"),
        ([approval(DANA, cohort="general")], PRIYA, "is for cohort general, not limited"),
        ([approval(DANA, at=T0 - dt.timedelta(hours=25))], PRIYA, "expired at 2026-03-01T08:00:00"),
        ([approval(SAM)], SAM, "is the operator's own"),
        ([approval(DANA)], Principal("asserted", "dana.whitfield", None, (), "asserted"), "is the operator's own"),
        ([approval(ALICE)], PRIYA, "alice.moreau@corp.example is not an approver"),
        (
            [approval(Principal("asserted", "dana", "dana.whitfield@corp.example", (), "asserted"))],
            PRIYA,
            "needs an authenticated approver",
        ),
        ([approval(DANA, at=T0 + dt.timedelta(hours=1))], PRIYA, "is dated in the future"),
    ],
    ids=[
        "other-digest",
        "other-cohort",
        "expired",
        "self-approval",
        "self-approval-by-name",
        "not-an-approver",
        "a-bare-name",
        "from-the-future",
    ],
)
def test_forged_or_stale_approvals_do_not_count_and_say_why(
    given: list[Approval], operator: Principal, fragment: str
) -> None:
    problems, valid = count(given, operator=operator)
    assert valid == []
    codes = [code for code, _ in problems]
    assert codes == ["approver-invalid", "approvals"], problems
    assert fragment in problems[0][1], problems
    assert "needs 1 approval of release aaaaaaaaaaaa" in problems[1][1]


def test_each_approver_counts_once_and_earlier_cohorts_are_history() -> None:
    given = [
        approval(DANA, cohort="limited", seq=1),
        approval(DANA, cohort="general", seq=2),
        approval(DANA, cohort="general", seq=3),
    ]
    problems, valid = count(given, cohort="general", needed=2)
    assert [a.seq for a in valid] == [2]
    assert [m for _, m in problems][0].startswith("the approval at audit seq 3 by dana.whitfield@corp.example repeats")
    assert len(problems) == 2  # the limited approval is history, not a near miss
    problems, valid = count([*given, approval(SAM, cohort="general", seq=4)], cohort="general", needed=2)
    assert problems == [] and [a.seq for a in valid] == [2, 4]


def test_operators_must_be_authenticated_and_listed() -> None:
    assert operator_problems(ACCESS, PRIYA) == []
    assert operator_problems(ACCESS, Principal(ISSUER, "x", "x@corp.example", ("ai-rollout-operators",))) == []
    assert "is not an operator" in operator_problems(ACCESS, ALICE)[0]
    assert "not authenticated" in operator_problems(ACCESS, Principal("asserted", OP, None, (), "asserted"))[0]


def test_an_assumed_role_session_of_a_listed_role_is_that_principal() -> None:
    listed = ACCESS.aws_principal("arn:aws:sts::123456789012:assumed-role/ci-release-bot/build-881")
    assert listed is not None and listed.email == "ci-release-bot@corp.example"
    assert ACCESS.aws_principal("arn:aws:sts::999999999999:assumed-role/ci-release-bot/x") is None
    assert ACCESS.aws_principal("arn:aws:sts::123456789012:assumed-role/other/x") is None


# --- through the CLI, with real dev IdP tokens --------------------------------------------------------


def token(state: Path, email: str, groups: list[str] | None = None, **kw: Any) -> str:
    from controller.adapters.devidp import DevIdp
    from controller.service.compose import StatePaths

    idp = DevIdp(StatePaths(state).idp)
    return idp.mint(email, groups or [], issuer=ISSUER, audience=AUDIENCE, **kw)


def at_internal(state: Path) -> str:
    digest = create_release(state)
    store_eval(state, digest, "PASS")
    result = rollout(
        state, "promote", "--cohort", "internal", "--adapter", "local", "--operator", OP, "--reason", "pilot"
    )
    assert result.exit_code == 0, result.output
    return digest


def promote_limited(state: Path, digest: str, *who: str) -> tuple[int, Any]:
    return rollout_json(state, "promote", "--cohort", "limited", "--release", digest, *who)


def test_an_authenticated_second_person_approves_and_the_promotion_counts_it(state: Path) -> None:
    digest = at_internal(state)
    code, doc = rollout_json(
        state,
        "approve",
        "--release",
        digest[:12],
        "--cohort",
        "limited",
        "--reason",
        "read the eval",
        "--token",
        token(state, "dana.whitfield@corp.example", ["ai-rollout-approvers"]),
    )
    assert code == 0, doc
    assert doc["action"] == "approve" and doc["state"]["candidate"]["reached"][0]["cohort"] == "internal"
    code, doc = promote_limited(state, digest, "--token", token(state, "priya.natarajan@corp.example"))
    assert code == 0, doc
    assert doc["served"]["limited"] == digest
    code, history = rollout_json(state, "history")
    promote = history["records"][-1]
    assert promote["operator"] == "priya.natarajan@corp.example"
    assert promote["evidence"]["approved_by"] == ["dana.whitfield@corp.example"]
    assert promote["evidence"]["approvals"][0]["approver"]["subject"].startswith("dev-")


def test_approve_refuses_free_names_other_users_foreign_and_expired_tokens(state: Path) -> None:
    digest = at_internal(state)

    def approve(*who: str) -> tuple[int, Any]:
        return rollout_json(state, "approve", "--release", digest, "--cohort", "limited", *who)

    code, doc = approve("--operator", "dana.whitfield")  # a free name
    assert code == 3 and doc["reasons"][0]["code"] == "approver-invalid"
    assert "needs an authenticated approver" in doc["reasons"][0]["message"]
    code, doc = approve("--token", token(state, "alice.moreau@corp.example", ["eng"]))  # a user who is no approver
    assert code == 3 and "alice.moreau@corp.example is not an approver" in doc["reasons"][0]["message"]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    code, doc = approve("--token", token(state, "dana.whitfield@corp.example", now=old))  # expired
    assert code == 3 and "expired" in doc["error"]["message"]
    from controller.adapters.devidp import DevIdp

    other = DevIdp(state / "another-idp")  # right claims, a key the IdP does not publish
    forged = other.mint("dana.whitfield@corp.example", ["ai-rollout-approvers"], issuer=ISSUER, audience=AUDIENCE)
    code, doc = approve("--token", forged)
    assert code == 3 and "does not publish" in doc["error"]["message"]
    code, doc = approve("--token", "not-a-jwt")
    assert code == 3 and "not a compact JWS" in doc["error"]["message"]
    legacy = rollout(
        state,
        "promote",
        "--cohort",
        "limited",
        "--release",
        digest,
        "--approved-by",
        "dana.whitfield",
        "--operator",
        OP,
    )
    assert legacy.exit_code == 2  # --approved-by is gone
    code, history = rollout_json(state, "history")
    assert [r["action"] for r in history["records"]] == ["promote"]  # nothing refused was recorded
    code, doc = promote_limited(state, digest, "--operator", OP)
    assert code == 3 and {r["code"] for r in doc["reasons"]} == {"approvals"}


def test_promote_refuses_approvals_for_another_digest_or_cohort_and_self_approval(state: Path) -> None:
    digest = at_internal(state)
    sam = token(state, "sam.okafor@corp.example")
    dana = token(state, "dana.whitfield@corp.example", ["ai-rollout-approvers"])
    other = create_release_of_another_digest(state)
    assert rollout(state, "approve", "--release", other, "--cohort", "limited", "--token", dana).exit_code == 0
    assert rollout(state, "approve", "--release", digest, "--cohort", "general", "--token", dana).exit_code == 0
    assert rollout(state, "approve", "--release", digest, "--cohort", "limited", "--token", sam).exit_code == 0
    code, doc = promote_limited(state, digest, "--token", sam)  # sam approved, and sam operates
    assert code == 3, doc
    messages = " | ".join(r["message"] for r in doc["reasons"])
    assert f"is for release {other[:12]}, not {digest[:12]}" in messages
    assert "is for cohort general, not limited" in messages
    assert "is the operator's own" in messages
    assert "needs 1 approval" in messages
    code, doc = promote_limited(state, digest, "--operator", "sam.okafor")  # the same person by bare name
    assert code == 3 and "is the operator's own" in " ".join(r["message"] for r in doc["reasons"])
    code, doc = promote_limited(state, digest, "--token", token(state, "priya.natarajan@corp.example"))
    assert code == 0, doc  # sam's approval counts for someone else
    assert doc["served"]["limited"] == digest


def create_release_of_another_digest(state: Path) -> str:
    code, doc = rollout_json(state, "release", "create", "--adapter", "local", "--workflow", str(_other_bundle(state)))
    assert code == 0, doc
    return doc["digest"]


def _other_bundle(state: Path) -> Path:
    from tests.conftest import copy_project

    dest = state.parent / "other-project"
    bundle = dest / "workflows" / "internal-docs-qa"
    if not bundle.exists():
        copy_project(dest)
        prompt = bundle / "prompts" / "answer.v1.md"
        prompt.write_text(prompt.read_text() + "\n<!-- another release -->\n")
    return bundle


def test_a_real_idp_refuses_bare_names(state: Path) -> None:
    from controller.adapters.devidp import DevIdp
    from controller.service.compose import StatePaths

    idp = DevIdp(StatePaths(state).idp)
    idp.ensure()
    code, doc = rollout_json(state, "status", "--jwks", str(idp.jwks_path), "--operator", OP)
    assert code == 2 and "a bare --operator name proves nothing" in doc["error"]["message"]
    code, doc = rollout_json(
        state,
        "whoami",
        "--jwks",
        str(idp.jwks_path),
        "--token",
        token(state, "dana.whitfield@corp.example", ["ai-rollout-approvers"]),
    )
    assert code == 0 and doc["authenticated"] is True and doc["not_allowed"]["approve"] == []
    assert doc["not_allowed"]["operate"] == ["dana.whitfield@corp.example is not an operator (access.operators)"]
