"""Item 1, one workflow on sanctioned tools with SSO: the bundle's SSO and surface, the served
releases' models, the verified subjects and answering models in the request log, and the
provisioned JWT authorizer and SSO permission set."""

from __future__ import annotations

import datetime as dt

from controller.evidence.facts import Evidence, RequestFacts
from controller.evidence.items.common import (
    ItemCheck,
    bundle_valid,
    duration,
    model_text,
    plural,
    release_sanctioned,
    served_digests,
    short,
    with_requests,
)
from controller.evidence.items.provisioned import gateway_checks
from controller.evidence.model import BUNDLE, REQUESTS, STACK, STATE, Check, failed, passed, unknown

__all__ = ["CHECKS"]


def sso_policy(ev: Evidence) -> list[Check]:
    wf = ev.workflow
    if wf is None:
        return []
    idp = wf.sso.idp
    return [
        passed(
            BUNDLE,
            f"SSO required through {idp.name} (issuer {idp.issuer}, audience {idp.audience}, tokens at "
            f"most {duration(idp.max_token_lifetime)}); domains {', '.join(wf.sso.allowed_email_domains)}; groups "
            f"{', '.join(wf.sso.allowed_groups)}; personal accounts not allowed; sanctioned surface: "
            f"{wf.surface.vendor} {wf.surface.endpoint.kind.value}, models "
            f"{', '.join(m.id for m in wf.surface.models)}; approved tools: "
            f"{', '.join(t.name for t in wf.surface.approved_tools)}.",
        )
    ]


def expired_exceptions(ev: Evidence) -> list[Check]:
    if ev.workflow is None:
        return []
    today = dt.date.fromisoformat(ev.generated_at[:10])
    expired = [e for e in ev.workflow.personal_accounts.exceptions if e.expires < today]
    if not expired:
        return []
    names = ", ".join(f"{e.subject} (expired {e.expires.isoformat()})" for e in expired)
    return [failed(BUNDLE, f"personal-account exceptions past their expiry: {names}.")]


def served_releases(ev: Evidence) -> list[Check]:
    """Every release served to a cohort names a model its bundle sanctions."""
    if ev.state_error:
        return [failed(STATE, f"the rollout state cannot be read: {ev.state_error}")]
    if ev.state is None:
        return [unknown(STATE, "there is no rollout state: nothing has been released to anyone.")]
    digests = served_digests(ev)
    if not digests:
        return [unknown(STATE, "no release is served to any cohort, so no sanctioned use is shown yet.")]
    problems = [c for d in digests if (c := release_sanctioned(ev.releases.get(d), d))]
    if problems:
        return problems
    served = "; ".join(f"{c} -> {short(d)}" for c, d in ev.state.served.items())
    models = "; ".join(model_text(ev.releases[d], ev.workflow) for d in digests)
    return [passed(STATE, f"served: {served}. Every served release names a model its bundle sanctions: {models}.")]


def _verified_subjects(req: RequestFacts) -> Check:
    unverified = sum(
        int(r["without_subject"]) for r in req.decisions if not r["is_eval"] and r["decision"] != "refused"
    )
    if unverified:
        return failed(REQUESTS, f"{plural(unverified, 'request')} past the identity check carry no verified subject.")
    refused = ", ".join(f"{r['reason']} x{r['requests']}" for r in req.refusals) or "none"
    past = req.count(is_eval=False) - req.count(is_eval=False, decision="refused")
    return passed(
        REQUESTS,
        f"every one of {plural(past, 'user request')} past the identity check "
        f"carries a verified, pseudonymous subject; refused identities: {refused}.",
    )


def _answering_models(ev: Evidence, req: RequestFacts) -> list[Check]:
    """Answers came only from the model their release names, and that model is sanctioned."""
    bad = []
    used = []
    for row in req.models:
        rel = ev.releases.get(str(row["release_digest"]))
        if rel is None or rel.error:
            bad.append(f"release {short(row['release_digest'])} answered {row['requests']} but cannot be verified")
        elif (row["adapter"], row["model_id"]) != (rel.adapter, rel.model_id):
            bad.append(
                f"{row['requests']} answers of release {short(rel.digest)} came from {row['model_id']} "
                f"({row['adapter']}), not the release's {rel.model_id} ({rel.adapter})"
            )
        elif (problem := release_sanctioned(rel, rel.digest)) is not None:
            bad.append(problem.summary)
        else:
            used.append(f"{model_text(rel, ev.workflow)} x{row['requests']}")
    if bad:
        return [failed(REQUESTS, "; ".join(bad) + ".")]
    if used:
        return [
            passed(
                REQUESTS,
                f"answered user requests came only from the model their release sanctions: {'; '.join(used)}.",
            )
        ]
    return []


def logged_identities_and_models(ev: Evidence) -> list[Check]:
    return with_requests(ev, lambda req: [_verified_subjects(req), *_answering_models(ev, req)])


def provisioned_gateway(ev: Evidence) -> list[Check]:
    if ev.provisioned is None:
        return [
            unknown(
                STACK,
                "no `pulumi stack export` was given (--stack-export), so the JWT authorizer and "
                "the SSO permission set are not shown.",
            )
        ]
    if ev.workflow is None:
        return [unknown(STACK, "without the bundle the provisioned gateway cannot be compared with it.")]
    return gateway_checks(ev.provisioned, ev.workflow)


CHECKS: tuple[ItemCheck, ...] = (
    bundle_valid,
    sso_policy,
    expired_exceptions,
    served_releases,
    logged_identities_and_models,
    provisioned_gateway,
)
