"""What the infrastructure must be, derived from the workflow bundle alone (pure, no Pulumi).

The program (``infra.stack``) builds resources from these values and the policy pack
(``infra.policy``) checks resources against the same values, so the two cannot disagree about
a retention period, an Object Lock mode or a model ARN. Nothing here reads stack config.

Log classes: every bucket the program creates carries the tag ``ai-rollout:log-class`` naming
which rules apply to it:

    audit_log            redacted invocation logs + gateway request records  (posture audit_log)
    raw_invocation_logs  Bedrock's unredacted invocation logs, drained at once (raw_invocation_logs)
    control_plane        flags, releases, evals, state and the control-plane audit chain
    s3_access_logs       S3 server access logs of the buckets above (posture audit_log; SSE-S3 and
                         no Object Lock, because S3 cannot deliver access logs otherwise)
    lambda_code          the Lambda deployment archive, uploaded once for every function (posture
                         audit_log: the code that ran is kept as long as its records; SSE-S3)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.bundle.models import Workflow

__all__ = [
    "ABORT_INCOMPLETE_MULTIPART_DAYS",
    "CLOUDWATCH_RETENTION_DAYS",
    "LOG_CLASS_TAG",
    "POSTURE_TAG",
    "SSE_KMS",
    "SSE_S3",
    "WORKFLOW_TAG",
    "BucketRules",
    "Expiry",
    "LogClass",
    "bucket_rules",
    "expiry",
    "cloudwatch_retention_days",
    "foundation_model_arn",
    "guardrail_arn",
    "guardrail_identifier",
    "guardrail_problems",
    "is_guardrail_arn",
    "is_sanctioned_model_arn",
    "model_arns",
    "retention_outputs",
    "retention_problems",
]

LOG_CLASS_TAG = "ai-rollout:log-class"
POSTURE_TAG = "ai-rollout:retention-posture"
WORKFLOW_TAG = "ai-rollout:workflow"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy); 0 = never expire.
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip

SSE_KMS = "aws:kms"
SSE_S3 = "AES256"

# Incomplete multipart uploads (never evidence: a part is not an object) are cleaned up after a
# day; the writers (Lambdas, the CLI) put small objects in one request.
ABORT_INCOMPLETE_MULTIPART_DAYS = 1


class LogClass(StrEnum):
    AUDIT_LOG = "audit_log"
    RAW_INVOCATION_LOGS = "raw_invocation_logs"
    CONTROL_PLANE = "control_plane"
    S3_ACCESS_LOGS = "s3_access_logs"
    LAMBDA_CODE = "lambda_code"


@dataclass(frozen=True)
class BucketRules:
    """How one class of bucket must be configured, with where each number came from."""

    log_class: LogClass
    posture: str
    """Name of the retention posture in ``workflow.yaml`` (``logging.retention.postures``)."""
    source: str
    """The standard the posture cites (e.g. an ISS section): what an auditor checks against."""
    days: int
    """How long an object lives in total (``expiry``), and the Object Lock default retention."""
    object_lock_mode: str | None
    """``GOVERNANCE`` / ``COMPLIANCE`` as S3 spells it, or None when the bucket is not locked."""
    sse_algorithm: str
    """``aws:kms`` (a dedicated customer-managed key) or ``AES256`` (access logs, Lambda code)."""
    versioned: bool = True
    """Whether the bucket keeps object versions. The raw bucket does not: it is drained as
    objects land, holds nothing an auditor needs, and a versioned bucket cannot keep an object
    for exactly one day (a current version lives at least a day, then its noncurrent one another)."""

    @property
    def expiry(self) -> Expiry:
        return expiry(self.days, versioned=self.versioned)

    @property
    def retained_on_destroy(self) -> bool:
        """Evidence outlives the stack: ``pulumi destroy`` leaves these buckets, their
        configuration and their KMS key in place (an Object-Locked bucket cannot be deleted
        anyway, and a deleted key would make what it holds unreadable). The raw bucket is not
        evidence: destroy empties and deletes it and schedules its key for deletion."""
        return self.log_class is not LogClass.RAW_INVOCATION_LOGS


@dataclass(frozen=True)
class Expiry:
    """Lifecycle days under which an object lives exactly the posture's days in total.

    In a versioned bucket, expiring the current version only hides it behind a delete marker;
    the data lives on as a noncurrent version until ``noncurrent_days`` later. So the posture is
    split: current versions expire a day early and noncurrent ones a day after that. Object Lock
    (default retention = the posture's days from creation) keeps every version at least that
    long anyway, so nothing goes early; an overwritten version in an unlocked bucket goes a day
    after it was overwritten.
    """

    current_days: int
    """``Expiration.Days`` of current versions."""
    noncurrent_days: int | None
    """``NoncurrentVersionExpiration.NoncurrentDays``; None in an unversioned bucket."""
    abort_multipart_days: int = ABORT_INCOMPLETE_MULTIPART_DAYS
    """``AbortIncompleteMultipartUpload.DaysAfterInitiation``."""

    @property
    def total_days(self) -> int:
        return self.current_days + (self.noncurrent_days or 0)


def expiry(days: int, *, versioned: bool) -> Expiry:
    """The lifecycle that keeps an object ``days`` days in total (see ``Expiry``)."""
    if days < 1:
        raise ValueError(f"retention must be at least one day, got {days}")
    if not versioned:
        return Expiry(current_days=days, noncurrent_days=None)
    if days < 2:
        raise ValueError(
            f"a versioned bucket keeps an object at least 2 days (1 current + 1 noncurrent); "
            f"the posture says {days}"
        )
    return Expiry(current_days=days - 1, noncurrent_days=1)


def bucket_rules(workflow: Workflow) -> dict[LogClass, BucketRules]:
    """The rules for every log class, from ``workflow.logging.retention``."""
    retention = workflow.logging.retention

    def rules(log_class: LogClass, which: Any, *, lock: bool, sse: str, versioned: bool = True) -> BucketRules:
        posture = retention.posture(which)
        mode = posture.object_lock_mode.upper() if lock and posture.object_lock_mode else None
        return BucketRules(
            log_class=log_class,
            posture=getattr(retention, which),
            source=posture.source,
            days=posture.days,
            object_lock_mode=mode,
            sse_algorithm=sse,
            versioned=versioned,
        )

    return {
        LogClass.AUDIT_LOG: rules(LogClass.AUDIT_LOG, "audit_log", lock=True, sse=SSE_KMS),
        # Drained (deleted) right after redaction, so neither locked nor versioned; short posture.
        LogClass.RAW_INVOCATION_LOGS: rules(
            LogClass.RAW_INVOCATION_LOGS, "raw_invocation_logs", lock=False, sse=SSE_KMS, versioned=False
        ),
        LogClass.CONTROL_PLANE: rules(LogClass.CONTROL_PLANE, "control_plane", lock=True, sse=SSE_KMS),
        # S3 server access logging delivers only to SSE-S3 buckets without default retention.
        LogClass.S3_ACCESS_LOGS: rules(LogClass.S3_ACCESS_LOGS, "audit_log", lock=False, sse=SSE_S3),
        # The deployment archives the functions ran, kept as long as the records they produced.
        LogClass.LAMBDA_CODE: rules(LogClass.LAMBDA_CODE, "audit_log", lock=False, sse=SSE_S3),
    }


def retention_problems(workflow: Workflow) -> list[str]:
    """Every posture the buckets cannot keep exactly (a versioned class with a one-day posture)."""
    found = []
    for rules in bucket_rules(workflow).values():
        try:
            rules.expiry  # noqa: B018 -- computing it is the check
        except ValueError as exc:
            found.append(
                f"logging.retention.postures.{rules.posture} ({rules.log_class.value} buckets are "
                f"versioned): {exc}"
            )
    return found


def cloudwatch_retention_days(days: int) -> int:
    """The smallest retention CloudWatch Logs accepts that keeps logs at least ``days`` days.

    A posture longer than CloudWatch's longest finite period (3653 days) maps to 0, which
    CloudWatch reads as "never expire": keeping longer than asked is the safe side.
    """
    if days < 1:
        raise ValueError(f"retention must be at least one day, got {days}")
    return next((allowed for allowed in CLOUDWATCH_RETENTION_DAYS if allowed >= days), 0)


def foundation_model_arn(region: str, model_id: str) -> str:
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


def _bedrock_region(workflow: Workflow) -> str:
    region = workflow.surface.endpoint.region
    if not region:
        raise ValueError("the workflow's surface.endpoint has no region; Bedrock needs one")
    return region


def model_arns(workflow: Workflow) -> tuple[str, ...]:
    """The sanctioned models (``surface.models``) as foundation-model ARNs, in bundle order."""
    region = _bedrock_region(workflow)
    return tuple(foundation_model_arn(region, m.id) for m in workflow.surface.models)


# Bedrock's own patterns (API reference: GuardrailConfiguration / GuardrailSummary).
GUARDRAIL_ARN = re.compile(r"arn:aws(-[^:]+)?:bedrock:(?P<region>[a-z0-9-]{1,20}):[0-9]{12}:guardrail/[a-z0-9]+")
GUARDRAIL_VERSION = re.compile(r"[1-9][0-9]{0,7}|DRAFT")


def guardrail_problems(workflow: Workflow) -> list[str]:
    """Why the bundle's guardrail cannot be enforced as written (empty when it can).

    The gateway sends ``surface.guardrail.id`` as Converse's ``guardrailIdentifier`` and its
    version as ``guardrailVersion``; IAM's ``bedrock:GuardrailIdentifier`` condition (on the
    gateway role and the permission set) compares ``<guardrail ARN>:<version>``. So the id must
    be the guardrail's full ARN -- a bare id would be sent as-is and never equal the condition --
    and both must match Bedrock's patterns, or every call is refused.
    """
    guardrail = workflow.surface.guardrail
    if guardrail is None:
        return []
    found = []
    match = GUARDRAIL_ARN.fullmatch(guardrail.id)
    if match is None:
        found.append(
            f"surface.guardrail.id {guardrail.id!r} is not a Bedrock guardrail ARN "
            "(arn:aws:bedrock:<region>:<account>:guardrail/<id>, the id lowercase letters and digits): "
            "the gateway sends it as guardrailIdentifier and IAM compares <ARN>:<version>"
        )
    elif match["region"] != workflow.surface.endpoint.region:
        found.append(
            f"surface.guardrail.id is in {match['region']!r} but surface.endpoint.region is "
            f"{workflow.surface.endpoint.region!r}; a guardrail applies in its own region only"
        )
    if GUARDRAIL_VERSION.fullmatch(guardrail.version) is None:
        found.append(
            f"surface.guardrail.version {guardrail.version!r} is not a Bedrock guardrail version "
            "(a number from 1, or DRAFT)"
        )
    return found


# System-defined cross-region inference profiles are named "<geography>.<foundation model id>".
INFERENCE_PROFILE_GEOGRAPHIES = ("us", "us-gov", "eu", "apac", "global")


def _profile_base(model_id: str) -> str | None:
    """The foundation model a system-defined inference profile id routes to, or None."""
    geography, _, rest = model_id.partition(".")
    return rest if geography in INFERENCE_PROFILE_GEOGRAPHIES and "." in rest else None


def is_sanctioned_model_arn(workflow: Workflow, arn: str) -> bool:
    """Whether ``arn`` is a resource a grant for the bundle's models may name.

    A foundation-model id in ``surface.models`` -> its foundation-model ARN in the endpoint's
    region. An inference-profile id (``eu.anthropic...``, which some models in some regions can
    only be called through) -> the profile's ARN in the endpoint's region (any account: the pack
    has none) and the underlying foundation model in every region the profile may route to.
    """
    region = _bedrock_region(workflow)
    for model in workflow.surface.models:
        if arn == foundation_model_arn(region, model.id):
            return True
        base = _profile_base(model.id)
        if base is None:
            continue
        profile = rf"arn:aws:bedrock:{re.escape(region)}:\d{{12}}:inference-profile/{re.escape(model.id)}"
        routed = rf"arn:aws:bedrock:[a-z0-9-]+::foundation-model/{re.escape(base)}"
        if re.fullmatch(profile, arn) or re.fullmatch(routed, arn):
            return True
    return False


def guardrail_arn(workflow: Workflow, account_id: str) -> str | None:
    """The guardrail's ARN (the resource ``bedrock:ApplyGuardrail`` is granted on), or None."""
    guardrail = workflow.surface.guardrail
    if guardrail is None:
        return None
    if guardrail.id.startswith("arn:"):
        return guardrail.id
    return f"arn:aws:bedrock:{_bedrock_region(workflow)}:{account_id}:guardrail/{guardrail.id}"


def guardrail_identifier(workflow: Workflow, account_id: str) -> str | None:
    """The value of the ``bedrock:GuardrailIdentifier`` condition key: ``<guardrail ARN>:<version>``."""
    arn = guardrail_arn(workflow, account_id)
    guardrail = workflow.surface.guardrail
    return None if arn is None or guardrail is None else f"{arn}:{guardrail.version}"


def is_guardrail_arn(workflow: Workflow, value: str, *, with_version: bool = False) -> bool:
    """Whether ``value`` is the bundle's guardrail ARN in any account (the pack has no account)."""
    guardrail = workflow.surface.guardrail
    if guardrail is None:
        return False
    if guardrail.id.startswith("arn:"):
        expected = re.escape(guardrail.id)
    else:
        expected = (
            rf"arn:aws:bedrock:{re.escape(_bedrock_region(workflow))}:\d{{12}}:guardrail/"
            rf"{re.escape(guardrail.id)}"
        )
    if with_version:
        expected += rf":{re.escape(guardrail.version)}"
    return re.fullmatch(expected, value) is not None


def retention_outputs(workflow: Workflow) -> dict[str, dict[str, Any]]:
    """Per log class: posture name, source, days, Object Lock mode and CloudWatch equivalent."""
    return {
        rules.log_class.value: {
            "posture": rules.posture,
            "source": rules.source,
            "days": rules.days,
            "object_lock_mode": rules.object_lock_mode,
            "encryption": rules.sse_algorithm,
            "versioned": rules.versioned,
            "lifecycle": {
                "current_days": rules.expiry.current_days,
                "noncurrent_days": rules.expiry.noncurrent_days,
                "abort_multipart_days": rules.expiry.abort_multipart_days,
            },
        }
        for rules in bucket_rules(workflow).values()
    }
