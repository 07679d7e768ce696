"""Stack configuration: the few values that are about *this deployment*, not the workflow.

Everything about the workflow (retention, models, IdP, groups) comes from the bundle named by
``ai-rollout:workflow``; stack config only says where that bundle is, where the Lambda archive
is, which region and SSO instance to use, and operational limits (throttling, schedule).

    aws:region                         must equal the bundle's surface.endpoint.region
    ai-rollout:workflow                bundle directory, relative to the project root (required)
    ai-rollout:lambdaArchive           built by `python -m infra.build_archive` (build/lambda.zip)
    ai-rollout:gatewayThrottleBurst    API stage burst limit (20)
    ai-rollout:gatewayThrottleRate     API stage steady-state requests/second (10)
    ai-rollout:reconcileSchedule       EventBridge schedule for auto-rollback (rate(15 minutes))
    ai-rollout:ssoInstanceArn          IAM Identity Center instance (looked up when absent)
    ai-rollout:identityStoreId         its identity store (looked up when absent)
    ai-rollout:ssoGroupId              group to assign (else looked up by ssoGroupName)
    ai-rollout:ssoGroupName            display name (default: the internal cohort's first group)
    ai-rollout:ssoAccountId            account the permission set is assigned in (this account)
    ai-rollout:ssoSessionDuration      ISO-8601 session length of the permission set (PT1H)
    ai-rollout:operatorGroupId         group given the operators' permission set (rollout CLI)
    ai-rollout:operatorGroupName       ... looked up by display name (neither: not assigned)
    ai-rollout:identityCenterRoleArn   role in the Identity Center admin account to manage the
                                       permission sets with (absent: this account's credentials)
    ai-rollout:identityCenterRegion    region of the Identity Center instance (aws:region)
    ai-rollout:bedrockInvocationLogging  manage (default): this stack owns the account/region's
                                       Bedrock invocation logging (replacing any existing one);
                                       external: it is configured elsewhere to deliver to the
                                       stack's raw bucket (output buckets.raw_invocation_logs)
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from controller.bundle.models import EndpointKind, Workflow
from controller.core import provisioning as derive

__all__ = ["InvalidStackConfig", "StackConfig", "check", "problems"]

NAMESPACE = "ai-rollout"
PLACEHOLDER_MARK = "EXAMPLE"
# Longest workflow id that keeps auto-named buckets (<= 63 chars) and functions (<= 64) valid.
MAX_WORKFLOW_ID = 24
INVOCATION_LOGGING_MODES = ("manage", "external")
IAM_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]+")


class InvalidStackConfig(Exception):
    """The stack config and the bundle do not fit together; lists every problem at once."""

    def __init__(self, found: list[str]):
        self.problems = tuple(found)
        lines = "\n".join(f" - {p}" for p in found)
        super().__init__(f"Invalid stack configuration ({len(found)} problems):\n{lines}")


@dataclass(frozen=True)
class StackConfig:
    project_root: Path
    """Directory holding Pulumi.yaml; relative paths below are resolved against it."""
    workflow: str
    """Bundle directory relative to the project root, e.g. ``workflows/internal-docs-qa``."""
    region: str
    """``aws:region``; must be the bundle's Bedrock region (invocation logging is regional)."""
    lambda_archive: str = "build/lambda.zip"
    """The deployment archive built by ``python -m infra.build_archive`` before ``pulumi up``."""
    gateway_throttle_burst: int = 20
    """API Gateway stage burst limit (requests)."""
    gateway_throttle_rate: float = 10.0
    """API Gateway stage steady-state limit (requests per second)."""
    reconcile_schedule: str = "rate(15 minutes)"
    """How often the reconcile Lambda checks evals and rolls back a failing release."""
    sso_instance_arn: str | None = None
    """IAM Identity Center instance ARN; None: ``aws.ssoadmin.get_instances()``."""
    identity_store_id: str | None = None
    """Identity store id; None: from ``aws.ssoadmin.get_instances()``."""
    sso_group_id: str | None = None
    """Identity-store group id to assign; None: looked up by ``sso_group_name``."""
    sso_group_name: str | None = None
    """Group display name; None: the first group of the bundle's internal cohort."""
    sso_account_id: str | None = None
    """Account the permission set is assigned in; None: the deploying account."""
    sso_session_duration: str = "PT1H"
    """Permission-set session length (ISO 8601), matching the IdP's one-hour tokens."""
    operator_group_id: str | None = None
    """Identity-store group id given the operators' permission set."""
    operator_group_name: str | None = None
    """... or its display name; with neither, the operators' permission set is not assigned."""
    identity_center_role_arn: str | None = None
    """Role in the Identity Center administrator (management or delegated-admin) account that
    creates the permission sets and assignments; None: the deploying credentials do."""
    identity_center_region: str | None = None
    """The Identity Center instance's region; None: ``aws:region``."""
    bedrock_invocation_logging: str = "manage"
    """``manage``: create the account/region-wide Bedrock invocation logging configuration (it
    *replaces* whatever configuration the region had: check first, docs/infra.md); ``external``:
    leave it to whoever owns it, who must point it at this stack's raw bucket."""

    @property
    def workflow_dir(self) -> Path:
        return (self.project_root / self.workflow).resolve()

    @property
    def workflow_in_archive(self) -> str:
        """The bundle's path inside the Lambda archive (the archive mirrors the project)."""
        return PurePosixPath(Path(self.workflow).as_posix()).as_posix().strip("/")

    @property
    def archive_path(self) -> Path:
        path = Path(self.lambda_archive)
        return path if path.is_absolute() else self.project_root / path

    @classmethod
    def from_pulumi(cls, project_root: Path) -> StackConfig:
        """Read ``ai-rollout:*`` and ``aws:region`` once (the only place that touches config)."""
        import pulumi

        cfg = pulumi.Config(NAMESPACE)
        aws = pulumi.Config("aws")
        defaults = cls(project_root=project_root, workflow="", region="")

        def opt(key: str, default: Any, read: Any = cfg.get) -> Any:
            value = read(key)
            return default if value is None else value

        return cls(
            project_root=project_root,
            workflow=cfg.require("workflow"),
            region=aws.require("region"),
            lambda_archive=opt("lambdaArchive", defaults.lambda_archive),
            gateway_throttle_burst=opt(
                "gatewayThrottleBurst", defaults.gateway_throttle_burst, cfg.get_int
            ),
            gateway_throttle_rate=opt(
                "gatewayThrottleRate", defaults.gateway_throttle_rate, cfg.get_float
            ),
            reconcile_schedule=opt("reconcileSchedule", defaults.reconcile_schedule),
            sso_instance_arn=cfg.get("ssoInstanceArn"),
            identity_store_id=cfg.get("identityStoreId"),
            sso_group_id=cfg.get("ssoGroupId"),
            sso_group_name=cfg.get("ssoGroupName"),
            sso_account_id=cfg.get("ssoAccountId"),
            sso_session_duration=opt("ssoSessionDuration", defaults.sso_session_duration),
            operator_group_id=cfg.get("operatorGroupId"),
            operator_group_name=cfg.get("operatorGroupName"),
            identity_center_role_arn=cfg.get("identityCenterRoleArn"),
            identity_center_region=cfg.get("identityCenterRegion"),
            bedrock_invocation_logging=opt("bedrockInvocationLogging", defaults.bedrock_invocation_logging),
        )

    def group_name(self, workflow: Workflow) -> str:
        return self.sso_group_name or workflow.rollout.cohort("internal").groups[0]


def problems(config: StackConfig, workflow: Workflow) -> list[str]:
    """Every way the config, the bundle and the built archive fail to fit together."""
    found: list[str] = []
    endpoint = workflow.surface.endpoint
    if endpoint.kind is not EndpointKind.BEDROCK:
        found.append(
            f"the workflow's surface.endpoint.kind is {str(endpoint.kind)!r}; this program "
            "provisions Amazon Bedrock only"
        )
    elif endpoint.region != config.region:
        found.append(
            f"aws:region is {config.region!r} but the workflow's Bedrock endpoint is in "
            f"{endpoint.region!r}; set aws:region to {endpoint.region!r} (invocation logging and "
            "model ARNs are regional)"
        )
    if len(workflow.id) > MAX_WORKFLOW_ID:
        found.append(
            f"workflow id {workflow.id!r} is longer than {MAX_WORKFLOW_ID} characters; AWS "
            "bucket and function names derived from it would be too long"
        )
    if config.bedrock_invocation_logging not in INVOCATION_LOGGING_MODES:
        found.append(
            f"ai-rollout:bedrockInvocationLogging is {config.bedrock_invocation_logging!r}; use "
            "'manage' (this stack configures the region's Bedrock invocation logging, replacing any "
            "existing configuration) or 'external' (configured elsewhere, delivering to this stack)"
        )
    if config.gateway_throttle_burst < 1:
        found.append("ai-rollout:gatewayThrottleBurst must be at least 1")
    if config.gateway_throttle_rate <= 0:
        found.append("ai-rollout:gatewayThrottleRate must be positive")
    for key, value in (
        ("ssoInstanceArn", config.sso_instance_arn),
        ("identityStoreId", config.identity_store_id),
        ("ssoGroupId", config.sso_group_id),
        ("ssoAccountId", config.sso_account_id),
        ("operatorGroupId", config.operator_group_id),
        ("identityCenterRoleArn", config.identity_center_role_arn),
    ):
        if value and PLACEHOLDER_MARK in value:
            found.append(
                f"ai-rollout:{key} is still the placeholder {value!r}; set the real value or "
                "remove the key to look it up"
            )
    if config.identity_center_role_arn and not IAM_ROLE_ARN.fullmatch(config.identity_center_role_arn):
        found.append(
            f"ai-rollout:identityCenterRoleArn {config.identity_center_role_arn!r} is not an IAM role ARN "
            "(arn:aws:iam::<management or delegated-admin account>:role/<name>)"
        )
    if config.identity_center_region and not config.identity_center_role_arn:
        found.append("ai-rollout:identityCenterRegion is set without ai-rollout:identityCenterRoleArn")
    found.extend(derive.retention_problems(workflow))
    found.extend(derive.guardrail_problems(workflow))
    found.extend(_archive_problems(config))
    return found


def _archive_problems(config: StackConfig) -> list[str]:
    archive = config.archive_path
    build = "python -m infra.build_archive --out " + config.lambda_archive
    if not archive.is_file():
        return [f"Lambda archive {archive} does not exist; build it first: {build}"]
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
    except zipfile.BadZipFile:
        return [f"Lambda archive {archive} is not a zip file; rebuild it: {build}"]
    needed = [
        f"{config.workflow_in_archive}/workflow.yaml",
        "controller/bundle/models.py",
        "infra/handlers/redaction.py",
    ]
    missing = [n for n in needed if n not in names]
    if missing:
        return [f"Lambda archive {archive} lacks {', '.join(missing)}; rebuild it: {build}"]
    return []


def check(config: StackConfig, workflow: Workflow) -> None:
    """Raise ``InvalidStackConfig`` listing every problem, or return."""
    found = problems(config, workflow)
    if found:
        raise InvalidStackConfig(found)
