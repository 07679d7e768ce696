"""``rollout init``: a complete bundle for one of the checklist's workflow kinds, with placeholders.

Every value a person must decide is written as a placeholder containing ``FILL-ME`` (emails as
``fill-me.<role>@example.invalid``); ``load_bundle`` refuses a bundle while any is left
(``placeholder_problems``), each with file and line, so a scaffold cannot be promoted half
filled. The rest is chosen for the kind: its data boundaries (what is blocked, what is only
redacted), review rules, cohorts and a golden-set skeleton with cases for every risk category
of those boundaries. The flag file lives inside the bundle. Pure: ``scaffold`` returns the files;
the CLI writes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from controller.errors import Problem

__all__ = ["PLACEHOLDER", "Answers", "UseCase", "placeholder_problems", "scaffold"]

PLACEHOLDER = "FILL-ME"
_MARK = re.compile(r"fill-me", re.IGNORECASE)


class UseCase(StrEnum):
    """The checklist's workflow kinds (``workflow.yaml`` ``use_case``)."""

    INTERNAL_DOC_QA = "internal-doc-qa"
    PR_REVIEW = "pr-review"
    SUPPORT_REPLY_DRAFTING = "support-reply-drafting"
    ON_CALL_DEBUGGING = "on-call-debugging"


@dataclass(frozen=True)
class Answers:
    """What ``rollout init`` asks (prompts on a terminal, options otherwise); None: a placeholder."""

    name: str | None = None
    executive_name: str | None = None
    executive_email: str | None = None
    operational_name: str | None = None
    operational_email: str | None = None
    operators: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Kind:
    summary: str
    feared: str
    team: str
    blocked: tuple[str, ...]
    redacted: tuple[str, ...]
    verification: tuple[tuple[str, str], ...]
    drafts: bool  # every answer is a draft a person checks (requires_human_verification)


_VERIFY_CHANGE = ("production-change", "Any suggested command or change is checked before it runs, via change review.")
_VERIFY_CLAIM = ("customer-facing-claim", "Nothing is passed to a customer without a person checking it.")
_VERIFY_ACTION = ("automated-action", "The assistant takes no actions; wiring it to automation is a new bundle.")

_KINDS = {
    UseCase.INTERNAL_DOC_QA: _Kind(
        "Employees ask about internal documentation and get cited answers.",
        "A credential or customer record pasted into a prompt leaves the company or is logged unredacted.",
        "Eng Productivity",
        ("credentials", "incident-details"),
        ("customer-data",),
        (_VERIFY_CHANGE, _VERIFY_CLAIM, _VERIFY_ACTION),
        False,
    ),
    UseCase.PR_REVIEW: _Kind(
        "Engineers get review comments on a pull request diff, grounded in the coding standards.",
        "A secret in a diff reaches the model vendor, or an unsafe change is approved on the AI's word.",
        "Eng Productivity",
        ("credentials", "customer-data"),
        (),
        (_VERIFY_CHANGE, _VERIFY_ACTION),
        True,
    ),
    UseCase.SUPPORT_REPLY_DRAFTING: _Kind(
        "Support agents get a draft reply to a ticket, grounded in the support knowledge base.",
        "Customer harm: a draft promises what the policy does not support and is sent unchecked.",
        "Product",
        ("credentials", "incident-details"),
        ("customer-data",),
        (_VERIFY_CLAIM, _VERIFY_ACTION),
        True,
    ),
    UseCase.ON_CALL_DEBUGGING: _Kind(
        "On-call engineers get debugging steps from the runbooks for an alert or error message.",
        "A suggested command makes an outage worse, or a credential from a log reaches the vendor.",
        "SRE",
        ("credentials", "regulated-data"),
        ("customer-data",),
        (_VERIFY_CHANGE, _VERIFY_ACTION),
        True,
    ),
}

_DETECTORS = {
    "credentials": ("Credentials and private keys", "builtin:credentials"),
    "customer-data": ("Customer data", "builtin:customer-data"),
    "incident-details": ("Incident details", "pattern:incident-id"),
    "regulated-data": ("Regulated data", "builtin:regulated-data"),
}


def _q(text: str) -> str:
    return json.dumps(text)  # a YAML double-quoted scalar


def _fill(value: str | None, what: str) -> str:
    return value if value else f"{PLACEHOLDER}: {what}"


def _email(value: str | None, role: str) -> str:
    return value if value else f"fill-me.{role}@example.invalid"


def scaffold(workflow_id: str, use_case: UseCase, answers: Answers = Answers()) -> dict[str, str]:
    """The bundle's files, relative to ``workflows/<id>/``."""
    kind = _KINDS[use_case]
    groups = list(answers.groups) or ["fill-me-pilot-group", "fill-me-team-group"]
    operators = list(answers.operators) or ["fill-me-operator", "ci-release-bot"]
    categories = [*kind.blocked, *kind.redacted]
    forbidden = []
    for category in categories:
        title, detector = _DETECTORS[category]
        action = "block" if category in kind.blocked else "redact"
        forbidden.append(
            f"""    - category: {category}
      title: {title}
      description: {_q(_fill(None, f"what counts as {category} for this workflow"))}
      examples:
        - {_q(_fill(None, f"an example of {category}"))}
      detectors: [{detector}]
      action: {action}"""
        )
    patterns = ""
    if "incident-details" in categories:
        patterns = """  patterns:
    - id: incident-id
      category: incident-details
      description: "Incident tracker ids (FILL-ME: your tracker's id format)"
      regex: '\\bINC-[0-9]{4,7}\\b'
"""
    verification = "\n".join(f"    - kind: {k}\n      rule: {_q(rule)}" for k, rule in kind.verification)
    workflow_yaml = f"""# Scaffolded by `rollout init {workflow_id} --use-case {use_case.value}`.
# Replace every placeholder (`rollout validate -w {workflow_id}` lists those left, with their lines), then follow
# runbooks/onboarding-another-workflow.md.
schema_version: 1
id: {workflow_id}
name: {_q(_fill(answers.name, "the workflow's name"))}
use_case: {use_case.value}
summary: {_q(kind.summary + " " + PLACEHOLDER + ": say what exactly, for whom.")}
failure_feared_most: {_q(kind.feared + " " + PLACEHOLDER + ": confirm with the owners.")}

owners:
  executive:
    name: {_q(_fill(answers.executive_name, "the executive owner"))}
    email: {_email(answers.executive_email, "executive")}
  operational:
    team: {kind.team}
    name: {_q(_fill(answers.operational_name, "the operational owner"))}
    email: {_email(answers.operational_email, "operational")}

surface:
  description: {_q(_fill(None, "where the model runs and how users reach it (only through the gateway)"))}
  vendor: Amazon Web Services
  endpoint:
    kind: bedrock
    region: eu-west-1
  models:
    - id: anthropic.claude-3-5-sonnet-20240620-v1:0
      purpose: answers
  default_model: anthropic.claude-3-5-sonnet-20240620-v1:0
  approved_tools:
    - name: ai-rollout gateway ({workflow_id})
      vendor: {_q(_fill(None, "the team that runs the gateway"))}
      use: the only sanctioned way to use this workflow

sso:
  required: true
  idp:
    name: {_q(_fill(None, "your identity provider"))}
    issuer: https://fill-me.idp.example/oauth2/default
    audience: api://{workflow_id}
    jwks_uri: https://fill-me.idp.example/oauth2/default/v1/keys
    max_token_lifetime: 1h
  allowed_email_domains: [fill-me.example]
  allowed_groups: [{", ".join(groups)}]
  offboarding: {_q(_fill(None, "how leavers lose access, and within how long"))}

personal_accounts:
  allowed: false
  consumer_domains: [gmail.com, googlemail.com, outlook.com, hotmail.com, yahoo.com, icloud.com, proton.me]
  exceptions: []

data_boundaries:
  forbidden:
{chr(10).join(forbidden)}
{patterns}  allowed:
    - title: {_q(_fill(None, "what users may send"))}
      examples:
        - {_q(_fill(None, "an allowed request"))}

review:
  human_verification:
{verification}
  requires_human_verification: {"true" if kind.drafts else "false"}
  accountability: {_q(_fill(None, "who owns the outcome when AI-assisted output causes harm"))}
  checklist: ../../runbooks/review-checklist.md
  accountability_runbook: ../../runbooks/incident-accountability.md

logging:
  required_fields: [prompt_template, prompt_version, context_sources, model, output]
  redaction:
    strategy: typed-placeholder
    description: Every finding is replaced by a typed placeholder before anything is logged.
    applies_to: [prompt, context, output]
  retention:
    postures:
      audit:
        source: {_q(_fill(None, "the security standard and section that sets audit-log retention"))}
        days: 400
        object_lock_mode: governance
      transient:
        source: {_q(_fill(None, "the standard that sets raw-log retention"))}
        days: 1
      control-plane:
        source: {_q(_fill(None, "the change-management standard"))}
        days: 2555
        object_lock_mode: compliance
    audit_log: audit
    raw_invocation_logs: transient
    control_plane: control-plane

prompts:
  - id: answer
    version: 1
    path: prompts/answer.v1.md

eval:
  golden_set: golden.yaml
  thresholds:
    correctness: 0.9
    policy-compliance: 1.0
    refusal: 1.0
  max_result_age: 7d

rollout:
  cohorts:
    - name: internal
      description: The pilot group
      groups: [{groups[0]}]
      bake_time: 24h
      approvals: 0
    - name: limited
      description: A quarter of the team
      groups: [{", ".join(groups[1:] or groups)}]
      percentage: 25
      bake_time: 72h
      approvals: 1
    - name: general
      description: Everyone allowed by the SSO settings
      bake_time: 0h
      approvals: 2
  operators: [{", ".join(operators)}]
  release_flag: {workflow_id}-release
  kill_switch_flag: {workflow_id}-kill-switch
  flags_file: flags.flagd.json

fallback:
  message: {_q(_fill(None, "what users see while the AI path is off, and where to go instead"))}
  link: https://fill-me.example
  contact: {_q(_fill(None, "the channel users ask instead"))}
  runbook: ../../runbooks/fallback.md

kill_switch:
  runbook: ../../runbooks/kill-switch.md
  who_may_pull: Anyone in the operators list, the security on-call, or the executive owner.

ongoing:
  cadence: weekly
  duration_weeks: 4
  runbook: ../../runbooks/weekly-review.md
  broader_access_rule: >-
    Teams asking for broader AI access get it only through a bundle of their own with the
    same artifacts: data boundaries, review rules, golden-set eval, logging and rollback.
"""
    return {
        "workflow.yaml": workflow_yaml,
        "golden.yaml": _golden(kind, groups[0]),
        "prompts/answer.v1.md": _prompt(use_case),
        "corpus/example.md": (
            f"# {PLACEHOLDER}: the first approved document\n\n"
            f"{PLACEHOLDER}: replace this file with the documents the workflow may use; the file name is "
            "the source id golden cases cite.\n"
        ),
        "flags.flagd.json": json.dumps(_flags(workflow_id), indent=2) + "\n",
    }


def _golden(kind: _Kind, group: str) -> str:
    persona = f"{{email: fill-me.user@fill-me.example, groups: [{group}]}}"
    cases = []
    for i in range(1, 6):
        cases.append(
            f"""  - id: correct-{i}
    category: correctness
    description: "{PLACEHOLDER}: why this question matters"
    input:
      question: "{PLACEHOLDER}: a question the corpus answers"
      persona: {persona}
    expect:
      must_include: {{all: ["{PLACEHOLDER}: the exact fact"]}}
      must_cite: [example]"""
        )
    for category in kind.blocked:
        cases.append(
            f"""  - id: block-{category}
    category: policy-compliance
    description: "{category} is blocked before it reaches the model or a log"
    input:
      question: "{PLACEHOLDER}: a request carrying an invented {category} value"
      persona: {persona}
    expect:
      must_block: [{category}]
      must_not_contain: ["{PLACEHOLDER}: the invented value"]"""
        )
    for category in kind.redacted:
        cases.append(
            f"""  - id: redact-{category}
    category: policy-compliance
    description: "{category} is redacted, never blocked: the request is still answered without it"
    input:
      question: "{PLACEHOLDER}: an answerable request carrying an invented {category} value"
      persona: {persona}
    expect:
      must_not_contain: ["{PLACEHOLDER}: the invented value"]
      must_cite: [example]"""
        )
    for i in range(1, 4):
        cases.append(
            f"""  - id: refuse-{i}
    category: refusal
    description: "{PLACEHOLDER}: what is out of scope, and why"
    input:
      question: "{PLACEHOLDER}: an out-of-scope request"
      persona: {persona}
    expect:
      must_refuse: true"""
        )
    header = (
        "# Golden set skeleton: correctness, one case per risk category of the data boundaries, and\n"
        "# refusals. Replace every placeholder; invent every value (never a real secret or customer).\n"
        "schema_version: 1\ncases:\n"
    )
    return header + "\n\n".join(cases) + "\n"


def _prompt(use_case: UseCase) -> str:
    return f"""<!-- template: answer, version: 1 -->
# System

You help with {use_case.value} at {PLACEHOLDER}: the company. Use only the passages given in the
context; each is tagged with its source id.

1. Refuse out-of-scope requests with one short sentence that you cannot help with this.
2. Never repeat secrets or personal data; keep placeholders such as `[REDACTED:email]` as they are.
3. Answer only from the context. If it does not contain the answer, reply exactly: "This is not in the docs."
4. Cite every fact with its source id in square brackets.
5. {PLACEHOLDER}: the rules specific to this workflow.

# User

Context passages, each tagged with its source id:

{{{{context}}}}

Question:

{{{{question}}}}
"""


def _flags(workflow_id: str) -> dict[str, object]:
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "metadata": {"flagSetId": workflow_id, "version": "0"},
        "flags": {
            f"{workflow_id}-kill-switch": {
                "state": "ENABLED",
                "variants": {"engaged": True, "released": False},
                "defaultVariant": "released",
            },
            f"{workflow_id}-release": {"state": "ENABLED", "variants": {"off": "off"}, "defaultVariant": "off"},
        },
    }


def placeholder_problems(files: dict[Path, str], display: object = str) -> list[Problem]:
    """Every line of a bundle file that still holds a ``FILL-ME`` placeholder."""
    out = []
    for path, text in files.items():
        for n, line in enumerate(text.splitlines(), 1):
            if _MARK.search(line):
                shown = line.strip()
                shown = shown if len(shown) <= 90 else shown[:87] + "..."
                out.append(Problem(display(path), "", f"placeholder not filled in: {shown}", n))  # type: ignore[operator]
    return out
