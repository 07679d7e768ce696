"""What a ``pulumi stack export`` says is deployed, read into plain data (pure, no Pulumi).

The report compares this with the bundle (``controller.evidence.items.provisioned``). Values
come from a resource's outputs (what the provider reported), else its inputs; pulumi's secret
envelopes become the marker ``SECRET`` (an export without ``--show-secrets``), which the checks
treat as UNKNOWN rather than compare. Buckets are recognised by the tags the infra program puts
on them (``controller.core.provisioning``), resources by their type tokens (``TYPE_TOKENS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.core.provisioning import LOG_CLASS_TAG, POSTURE_TAG, WORKFLOW_TAG
from controller.errors import InvalidInput

__all__ = [
    "REDACTION_HANDLER",
    "SECRET",
    "TYPE_TOKENS",
    "Authorizer",
    "Bucket",
    "Function",
    "PermissionSet",
    "Provisioned",
    "Route",
    "Schedule",
    "read_stack_export",
]

_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # pulumi's marker of a secret value
SECRET = "(secret)"

TYPE_TOKENS = {
    # pulumi-aws 7 tokens (what infra/ creates), then the 6.x names of the same resources
    "bucket": ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"),
    "object_lock": (
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
    ),
    "lifecycle": (
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    ),
    "sse": (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    ),
    "versioning": ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"),
    "authorizer": ("aws:apigatewayv2/authorizer:Authorizer",),
    "route": ("aws:apigatewayv2/route:Route",),
    "permission_set": ("aws:ssoadmin/permissionSet:PermissionSet",),
    "permission_set_policy": ("aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy",),
    "function": ("aws:lambda/function:Function",),
    "schedule": ("aws:cloudwatch/eventRule:EventRule",),
    "stack": ("pulumi:pulumi:Stack",),
}
REDACTION_HANDLER = "infra.handlers.redaction.handler"


def _unsecret(value: Any) -> Any:
    """Replace pulumi's secret envelopes with a marker (an export without --show-secrets)."""
    if isinstance(value, Mapping):
        if _SECRET_SIG in value:
            return SECRET
        return {k: _unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsecret(v) for v in value]
    return value


def _prop(resource: Mapping[str, Any], *path: str) -> Any:
    """A property from the resource's outputs (what the provider reports), else its inputs."""
    for side in ("outputs", "inputs"):
        value: Any = resource.get(side) or {}
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return _unsecret(value)
    return None


def _number(value: Any) -> Any:
    """JSON numbers from state are floats (400.0): show and compare them as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Bucket:
    """One S3 bucket of the stack and the configuration resources that name it."""

    urn: str
    name: str
    log_class: str | None
    posture: str | None
    workflow: str | None
    object_lock_enabled: Any = None
    lock_config: bool = False
    lock_mode: Any = None
    lock_days: Any = None
    lock_years: Any = None
    lifecycle: bool = False
    current_days: tuple[Any, ...] = ()
    noncurrent_days: tuple[Any, ...] = ()
    sse: bool = False
    sse_algorithm: Any = None
    kms_key: Any = None
    versioning: Any = None


@dataclass(frozen=True)
class Authorizer:
    urn: str
    kind: Any
    issuer: Any
    audiences: tuple[Any, ...]


@dataclass(frozen=True)
class Route:
    urn: str
    route_key: Any
    authorization_type: Any
    authorizer_id: Any


@dataclass(frozen=True)
class PermissionSet:
    urn: str
    name: Any
    arn: Any
    session_duration: Any
    inline_policy: Any = None


@dataclass(frozen=True)
class Function:
    urn: str
    name: Any
    handler: Any


@dataclass(frozen=True)
class Schedule:
    urn: str
    expression: Any


@dataclass(frozen=True)
class Provisioned:
    """What a ``pulumi stack export`` says is deployed (resource outputs, else inputs)."""

    source: str
    sha256: str
    stack: str | None
    project: str | None
    pulumi_version: str | None
    time: str | None
    resources: int
    buckets: tuple[Bucket, ...] = ()
    authorizers: tuple[Authorizer, ...] = ()
    routes: tuple[Route, ...] = ()
    permission_sets: tuple[PermissionSet, ...] = ()
    functions: tuple[Function, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def buckets_of(self, log_class: str, workflow: str) -> list[Bucket]:
        return [b for b in self.buckets if b.log_class == log_class and b.workflow in (workflow, None)]


def read_stack_export(doc: Any, *, source: str = "stack export", sha256: str = "") -> Provisioned:
    """Parse the JSON of ``pulumi stack export``; ``InvalidInput`` if it is not one. Pure."""
    deployment = doc.get("deployment") if isinstance(doc, Mapping) else None
    resources = deployment.get("resources") if isinstance(deployment, Mapping) else None
    if not isinstance(resources, list):
        raise InvalidInput(
            f'{source}: not a `pulumi stack export` document (expected {{"version": 3, "deployment": '
            '{"resources": [...]}}).'
        )
    live = _Resources([r for r in resources if isinstance(r, Mapping) and not r.get("delete")])
    stack = next(iter(live.of("stack")), None)
    manifest = deployment.get("manifest") if isinstance(deployment.get("manifest"), Mapping) else {}
    stack_name, project = _stack_and_project(stack)
    return Provisioned(
        source=source,
        sha256=sha256,
        stack=stack_name,
        project=project,
        pulumi_version=manifest.get("version"),
        time=manifest.get("time"),
        resources=len(live.resources),
        buckets=tuple(_buckets(live)),
        authorizers=tuple(
            Authorizer(
                _urn(r),
                _prop(r, "authorizerType"),
                _prop(r, "jwtConfiguration", "issuer"),
                tuple(_prop(r, "jwtConfiguration", "audiences") or ()),
            )
            for r in live.of("authorizer")
        ),
        routes=tuple(
            Route(_urn(r), _prop(r, "routeKey"), _prop(r, "authorizationType"), _prop(r, "authorizerId"))
            for r in live.of("route")
        ),
        permission_sets=tuple(_permission_sets(live)),
        functions=tuple(Function(_urn(r), _prop(r, "name"), _prop(r, "handler")) for r in live.of("function")),
        schedules=tuple(Schedule(_urn(r), _prop(r, "scheduleExpression")) for r in live.of("schedule")),
        outputs=_unsecret((stack or {}).get("outputs") or {}),
    )


@dataclass(frozen=True)
class _Resources:
    """The live (not pending-delete) resources of an export, by kind of ``TYPE_TOKENS``."""

    resources: list[Mapping[str, Any]]

    def of(self, kind: str) -> list[Mapping[str, Any]]:
        return [r for r in self.resources if r.get("type") in TYPE_TOKENS[kind]]

    def by_bucket(self, kind: str) -> dict[str, Mapping[str, Any]]:
        """The bucket-configuration resources of ``kind``, by the bucket they configure."""
        return {str(_prop(r, "bucket")): r for r in self.of(kind)}


def _urn(resource: Mapping[str, Any]) -> str:
    return str(resource.get("urn", ""))


def _stack_and_project(stack: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """From the stack resource's URN ``urn:pulumi:<stack>::<project>::...``."""
    if stack is None:
        return None, None
    parts = _urn(stack).split("::")
    if len(parts) < 2:
        return None, None
    return parts[0].removeprefix("urn:pulumi:"), parts[1]


def _buckets(live: _Resources) -> list[Bucket]:
    """Every bucket with the Object Lock, lifecycle, encryption and versioning resources naming it."""
    locks, lifecycles, sses, versions = (live.by_bucket(k) for k in ("object_lock", "lifecycle", "sse", "versioning"))
    buckets = []
    for r in live.of("bucket"):
        name = str(_prop(r, "bucket") or r.get("id") or "")
        tags = _prop(r, "tags") or {}
        tags = tags if isinstance(tags, Mapping) else {}
        lock, ver = locks.get(name), versions.get(name)
        current, noncurrent = _expiry_days(lifecycles.get(name))
        sse = sses.get(name)
        default = _default_encryption(sse)
        buckets.append(
            Bucket(
                urn=_urn(r),
                name=name,
                log_class=tags.get(LOG_CLASS_TAG),
                posture=tags.get(POSTURE_TAG),
                workflow=tags.get(WORKFLOW_TAG),
                object_lock_enabled=_prop(r, "objectLockEnabled"),
                lock_config=lock is not None,
                lock_mode=_prop(lock, "rule", "defaultRetention", "mode") if lock else None,
                lock_days=_number(_prop(lock, "rule", "defaultRetention", "days")) if lock else None,
                lock_years=_number(_prop(lock, "rule", "defaultRetention", "years")) if lock else None,
                lifecycle=name in lifecycles,
                current_days=current,
                noncurrent_days=noncurrent,
                sse=sse is not None,
                sse_algorithm=default.get("sseAlgorithm"),
                kms_key=default.get("kmsMasterKeyId"),
                versioning=_prop(ver, "versioningConfiguration", "status") if ver else None,
            )
        )
    return buckets


def _expiry_days(lifecycle: Mapping[str, Any] | None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Days after which the enabled lifecycle rules expire current and noncurrent versions."""
    rules = (_prop(lifecycle, "rules") or []) if lifecycle else []
    enabled = [x for x in rules if isinstance(x, Mapping) and x.get("status", "Enabled") == "Enabled"]
    current = tuple(_number(x["expiration"].get("days")) for x in enabled if isinstance(x.get("expiration"), Mapping))
    noncurrent = tuple(
        _number(x["noncurrentVersionExpiration"].get("noncurrentDays"))
        for x in enabled
        if isinstance(x.get("noncurrentVersionExpiration"), Mapping)
    )
    return current, noncurrent


def _default_encryption(sse: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The first rule's ``applyServerSideEncryptionByDefault`` (algorithm and key), or ``{}``."""
    rules = (_prop(sse, "rules") or []) if sse else []
    default = next((x.get("applyServerSideEncryptionByDefault") for x in rules if isinstance(x, Mapping)), None)
    return default if isinstance(default, Mapping) else {}


def _permission_sets(live: _Resources) -> list[PermissionSet]:
    """Every permission set with its inline policy (matched by ARN; the only one if there is one)."""
    policies = {str(_prop(r, "permissionSetArn")): _prop(r, "inlinePolicy") for r in live.of("permission_set_policy")}
    sets = live.of("permission_set")
    out = []
    for r in sets:
        arn = _prop(r, "arn")
        policy = policies.get(str(arn))
        if policy is None and len(policies) == 1 and len(sets) == 1:
            policy = next(iter(policies.values()))
        out.append(PermissionSet(_urn(r), _prop(r, "name"), arn, _prop(r, "sessionDuration"), policy))
    return out
