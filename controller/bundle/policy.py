"""The one-page published policy and approved-tools list, rendered from the bundle alone.

"Publish a one-page policy + an approved tools list": publishing a rendering of the same file
the gateway enforces means the published words and the enforced rules cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from controller.bundle.models import Bundle

__all__ = ["policy_document", "render_markdown"]


def policy_document(bundle: Bundle) -> dict[str, Any]:
    """The policy as plain data (the ``--format json`` view and the markdown's only input)."""
    wf = bundle.workflow
    retention = wf.logging.retention
    return {
        "workflow": {"id": wf.id, "name": wf.name, "use_case": wf.use_case, "summary": wf.summary},
        "failure_feared_most": wf.failure_feared_most,
        "owners": wf.owners.model_dump(mode="json"),
        "sanctioned_surface": {
            "description": wf.surface.description,
            "vendor": wf.surface.vendor,
            "endpoint_kind": wf.surface.endpoint.kind.value,
            "models": [m.id for m in wf.surface.models],
            "approved_tools": [t.model_dump(mode="json") for t in wf.surface.approved_tools],
        },
        "access": {
            "sso_required": wf.sso.required,
            "identity_provider": wf.sso.idp.name,
            "allowed_email_domains": wf.sso.allowed_email_domains,
            "allowed_groups": wf.sso.allowed_groups,
            "personal_accounts_allowed": wf.personal_accounts.allowed,
            "exceptions": [e.model_dump(mode="json") for e in wf.personal_accounts.exceptions],
            "offboarding": wf.sso.offboarding,
        },
        "forbidden_inputs": [
            {
                "category": f.category.value,
                "title": f.title,
                "description": f.description,
                "examples": f.examples,
                "enforcement": f.action.value,
            }
            for f in wf.data_boundaries.forbidden
        ],
        "allowed_inputs": [a.model_dump(mode="json") for a in wf.data_boundaries.allowed],
        "human_verification": [h.model_dump(mode="json") for h in wf.review.human_verification],
        "accountability": wf.review.accountability,
        "logging": {
            "fields": wf.logging.required_fields,
            "redaction": wf.logging.redaction.description,
            "retention": {
                which: {
                    "posture": getattr(retention, which),
                    "days": retention.posture(which).days,
                    "source": retention.posture(which).source,
                }
                for which in ("audit_log", "raw_invocation_logs", "control_plane")
            },
        },
        "fallback": wf.fallback.model_dump(mode="json", exclude={"runbook"}),
        "kill_switch": {"who_may_pull": wf.kill_switch.who_may_pull},
        "broader_access_rule": wf.ongoing.broader_access_rule,
    }


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def render_markdown(bundle: Bundle) -> str:
    """One page, in plain language, for every employee who may use the workflow."""
    doc = policy_document(bundle)
    wf, access, logging = doc["workflow"], doc["access"], doc["logging"]
    owners = doc["owners"]
    tools = "\n".join(
        f"| {t['name']} | {t['vendor']} | {t['use']} |" for t in doc["sanctioned_surface"]["approved_tools"]
    )
    forbidden = "\n\n".join(
        f"**{f['title']}** ({'blocked' if f['enforcement'] == 'block' else 'redacted'}). "
        f"{f['description']}\n"
        f"Examples: {'; '.join(f['examples'])}."
        for f in doc["forbidden_inputs"]
    )
    allowed = "\n".join(
        f"- **{a['title']}**, for example: {'; '.join(a['examples'])}" for a in doc["allowed_inputs"]
    )
    verification = "\n".join(f"- **{h['kind']}**: {h['rule']}" for h in doc["human_verification"])
    retention = "\n".join(
        f"- {which.replace('_', ' ')}: {r['days']} days, posture `{r['posture']}` ({r['source']})"
        for which, r in logging["retention"].items()
    )
    exceptions = (
        _bullets([f"{e['subject']} (owner {e['owner']}, until {e['expires']}): {e['reason']}"
                  for e in access["exceptions"]])
        if access["exceptions"]
        else "None."
    )
    return f"""# AI use policy: {wf['name']}

{wf['summary']}

**The failure we fear most:** {doc['failure_feared_most']}

**Owners:** {owners['executive']['name']} ({owners['executive'].get('title') or 'executive owner'}, \
accountable executive); {owners['operational']['name']} ({owners['operational']['team']}, operational owner).

## Approved tools

This is the only sanctioned way to use AI for this workflow. {doc['sanctioned_surface']['description']}

| Tool | Vendor | Use |
|---|---|---|
{tools}

Sanctioned models: {', '.join(f'`{m}`' for m in doc['sanctioned_surface']['models'])}.

## Access

- Sign in with {access['identity_provider']} single sign-on; accounts in \
{', '.join(access['allowed_email_domains'])} only, in groups {', '.join(access['allowed_groups'])}.
- Personal accounts are {'allowed' if access['personal_accounts_allowed'] else 'not allowed'}. \
Exceptions: {exceptions}
- Offboarding: {access['offboarding']}

## Never paste these (forbidden inputs)

{forbidden}

## What you may ask (allowed inputs)

{allowed}

## Check before you act (human verification)

{verification}

**Accountability:** {doc['accountability']}

## What is logged, and for how long

Every request logs: {', '.join(logging['fields'])}. {logging['redaction']}

{retention}

## When it is unavailable

{doc['fallback']['message']} Contact: {doc['fallback']['contact']}.
The kill switch may be pulled by: {doc['kill_switch']['who_may_pull']}

## Broader access

{doc['broader_access_rule']}
"""
