"""The bundle's rules as mandatory Pulumi policies (importable; no policy server is started).

``make_policies(Expectations.from_workflow(workflow))`` returns plain
``ResourceValidationPolicy`` / ``StackValidationPolicy`` objects; ``infra/policy/__main__.py``
wraps them in a ``PolicyPack`` (which starts the analyzer server). Expected values come from
``controller.core.provisioning`` -- the same functions the program uses -- so the pack and the program cannot
disagree about a retention period or a model ARN.

Resource policies run before a resource is created (``pulumi preview``/``up``); stack policies
see every resource and check what one resource cannot show alone (each log bucket has its
versioning, encryption, lock, lifecycle, public-access block and TLS policy). Buckets are
matched to their configuration resources by bucket name, so stack policies need known names:
during a first preview they are skipped as unknown and run at the end of ``pulumi up``.

Policies (all mandatory):

    buckets-classified                  every bucket declares its log class and posture
    log-buckets-kms-encrypted           default encryption as the class requires (SSE-KMS + key)
    log-buckets-versioned               versioning Enabled (off for the drained raw bucket)
    log-buckets-object-locked           Object Lock enabled, default retention = posture mode/days
    log-buckets-retention               lifecycle: total life = posture days, no fixed dates,
                                        incomplete uploads aborted within a day
    log-buckets-public-access-blocked   all four public-access-block switches on
    log-buckets-tls-only                bucket policy denies aws:SecureTransport = false
    function-roles-no-wildcards         no wildcard actions/resources, no managed policies
    gateway-routes-behind-jwt           every route JWT-authorized; authorizer = bundle's IdP
    model-access-sanctioned-only        bedrock grants only on sanctioned ARNs, via the guardrail
    no-iam-users-or-access-keys         no long-lived credentials
    trust-policies-name-principals      no role assumable by Principal "*" / {"AWS": "*"}
    functions-not-publicly-invocable    no public function URL; permissions name a service + source
    kms-keys-rotate                     enableKeyRotation on every key
    bedrock-invocation-logging-delivers-text  text delivery on, to an S3 bucket
    raw-logs-readable-only-by-redaction the raw bucket's read-deny for everyone but redaction
    locked-buckets-deny-governance-bypass  locked buckets deny s3:BypassGovernanceRetention to all

``function-roles-no-wildcards`` also refuses managed-policy attachments of any kind (role, group,
``PolicyAttachment``) and NotAction/NotResource allows, in roles and permission sets alike;
``log-buckets-kms-encrypted`` refuses the AWS-managed ``alias/aws/s3`` key;
``log-buckets-retention`` refuses fixed-date expiry rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from controller.bundle.models import Workflow
from controller.core import provisioning as derive
from controller.core.provisioning import LOG_CLASS_TAG, POSTURE_TAG, SSE_KMS, BucketRules
from infra.policies import statements_of, wildcard_problems

__all__ = ["Expectations", "make_policies"]

# The deprecated *V2 spellings are the same AWS resources; a policy must not be dodged by them.
BUCKET = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
VERSIONING = {
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
}
ENCRYPTION = {
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
}
OBJECT_LOCK = {
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
}
LIFECYCLE = {
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
}
PUBLIC_ACCESS_BLOCK = {"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"}
BUCKET_POLICY = {"aws:s3/bucketPolicy:BucketPolicy"}
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROLE_POLICY_ATTACHMENTS = "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive"
PERMISSION_SET_INLINE = "aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy"
PERMISSION_SET_ATTACHMENTS = {
    "aws:ssoadmin/managedPolicyAttachment:ManagedPolicyAttachment",
    "aws:ssoadmin/customerManagedPolicyAttachment:CustomerManagedPolicyAttachment",
}
POLICY_ATTACHMENTS = {
    "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
}
KMS_KEY = "aws:kms/key:Key"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
INVOCATION_LOGGING = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"
AWS_MANAGED_S3_KEY = "alias/aws/s3"
ROUTE = "aws:apigatewayv2/route:Route"
AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
API = "aws:apigatewayv2/api:Api"
IAM_CREDENTIALS = {
    "aws:iam/user:User",
    "aws:iam/accessKey:AccessKey",
    "aws:iam/userLoginProfile:UserLoginProfile",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/userGroupMembership:UserGroupMembership",
    "aws:iam/serviceSpecificCredential:ServiceSpecificCredential",
    "aws:iam/signingCertificate:SigningCertificate",
    "aws:iam/sshKey:SshKey",
}
BEDROCK_INVOKE_ACTIONS = {
    "bedrock:invokemodel",
    "bedrock:invokemodelwithresponsestream",
}
BEDROCK_APPLY_GUARDRAIL = "bedrock:applyguardrail"


@dataclass(frozen=True)
class Expectations:
    """What the bundle requires of the stack, computed by ``controller.core.provisioning``."""

    workflow: Workflow
    buckets: Mapping[str, BucketRules]
    """Rules by log class (the value of the ``ai-rollout:log-class`` tag)."""
    model_arns: frozenset[str]
    issuer: str
    audience: str

    @classmethod
    def from_workflow(cls, workflow: Workflow) -> Expectations:
        return cls(
            workflow=workflow,
            buckets={c.value: r for c, r in derive.bucket_rules(workflow).items()},
            model_arns=frozenset(derive.model_arns(workflow)),
            issuer=workflow.sso.idp.issuer,
            audience=workflow.sso.idp.audience,
        )


# --- helpers ---------------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _classified(expect: Expectations, resources: Iterable[Any]) -> list[tuple[Any, BucketRules]]:
    out = []
    for r in resources:
        if r.resource_type in BUCKET:
            rules = expect.buckets.get((r.props.get("tags") or {}).get(LOG_CLASS_TAG, ""))
            if rules is not None:
                out.append((r, rules))
    return out


def _configs(resources: Iterable[Any], types: set[str]) -> dict[str, list[Any]]:
    """Configuration resources of ``types`` by the bucket name they configure."""
    out: dict[str, list[Any]] = {}
    for r in resources:
        if r.resource_type in types:
            out.setdefault(str(r.props.get("bucket")), []).append(r)
    return out


def _bucket_check(
    types: set[str],
    check: Callable[[Any, BucketRules, list[Any]], str | None],
    expect: Expectations,
    args: StackValidationArgs,
    report: ReportViolation,
) -> None:
    configs = _configs(args.resources, types)
    for bucket, rules in _classified(expect, args.resources):
        problem = check(bucket, rules, configs.get(str(bucket.props.get("bucket")), []))
        if problem:
            report(f"{rules.log_class.value} bucket {bucket.name!r}: {problem}", bucket.urn)


def _documents(args: ResourceValidationArgs) -> list[tuple[str, Any]]:
    """(where, parsed policy document) for every IAM document this resource carries."""
    props = args.props
    docs: list[tuple[str, Any]] = []
    if args.resource_type in (ROLE_POLICY, MANAGED_POLICY):
        docs.append(("policy", props.get("policy")))
    elif args.resource_type == ROLE:
        for i, inline in enumerate(_list(props.get("inlinePolicies"))):
            docs.append((f"inlinePolicies[{i}]", (inline or {}).get("policy")))
    elif args.resource_type == PERMISSION_SET_INLINE:
        docs.append(("inlinePolicy", props.get("inlinePolicy")))
    parsed = []
    for where, doc in docs:
        if not doc:
            continue
        parsed.append((where, json.loads(doc) if isinstance(doc, str) else doc))
    return parsed


# --- bucket policies -------------------------------------------------------------------------


def validate_buckets_classified(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type not in BUCKET:
        return
    tags = args.props.get("tags") or {}
    log_class = tags.get(LOG_CLASS_TAG)
    rules = expect.buckets.get(log_class or "")
    if rules is None:
        report(
            f"bucket {args.name!r} has no known {LOG_CLASS_TAG} tag (got {log_class!r}; "
            f"expected one of {sorted(expect.buckets)}): every bucket must declare its rules"
        )
        return
    if tags.get(POSTURE_TAG) != rules.posture:
        report(
            f"bucket {args.name!r}: {POSTURE_TAG} is {tags.get(POSTURE_TAG)!r}, but the bundle "
            f"keeps {log_class} under posture {rules.posture!r}"
        )
    if rules.object_lock_mode and args.props.get("objectLockEnabled") is not True:
        report(f"bucket {args.name!r}: {log_class} buckets must be created with Object Lock enabled")


def _kms_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    for config in configs:
        for rule in _list(config.props.get("rules")):
            default = (rule or {}).get("applyServerSideEncryptionByDefault") or {}
            if default.get("sseAlgorithm") != rules.sse_algorithm:
                continue
            key = str(default.get("kmsMasterKeyId") or "")
            if rules.sse_algorithm == SSE_KMS and not key:
                return "SSE-KMS must name the bucket's dedicated key (kmsMasterKeyId)"
            if rules.sse_algorithm == SSE_KMS and (key == AWS_MANAGED_S3_KEY or key.endswith(f":{AWS_MANAGED_S3_KEY}")):
                return ("SSE-KMS with the AWS-managed alias/aws/s3 key: its policy cannot be restricted "
                        "or audited; name the bucket's dedicated customer-managed key")  # fmt: skip
            return None
    return f"default encryption must be {rules.sse_algorithm}"


def _versioned_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    enabled = any((c.props.get("versioningConfiguration") or {}).get("status") == "Enabled" for c in configs)
    if rules.versioned and not enabled:
        return "versioning must be Enabled"
    if not rules.versioned and enabled:
        return (f"versioning must stay off: a drained {rules.log_class.value} bucket keeps an object "
                f"exactly {rules.days} day(s) only unversioned")  # fmt: skip
    return None


def _lock_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    if rules.object_lock_mode is None:
        return None
    if bucket.props.get("objectLockEnabled") is not True:
        return "Object Lock must be enabled on the bucket"
    want = f"{rules.object_lock_mode} for {rules.days} days (posture {rules.posture})"
    for config in configs:
        retention = ((config.props.get("rule") or {}).get("defaultRetention")) or {}
        days, years = retention.get("days"), retention.get("years")
        if retention.get("mode") == rules.object_lock_mode and days == rules.days and not years:
            return None
        return f"Object Lock default retention is {retention or 'absent'}; must be {want}"
    return f"no Object Lock configuration; default retention must be {want}"


def _retention_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    """Total life == the posture: current + noncurrent expiry as ``rules.expiry`` splits it, no
    fixed-date rule (it would delete everything on that date, whatever its age), and incomplete
    multipart uploads aborted within the expected days."""
    exp = rules.expiry
    current, noncurrent, abort, wrong = False, False, False, []
    for config in configs:
        for rule in _list(config.props.get("rules")):
            if (rule or {}).get("status") != "Enabled":
                continue
            expiration = rule.get("expiration") or {}
            if expiration.get("date"):
                wrong.append(f"{rule.get('id')}: expires everything on the fixed date {expiration['date']}")
            if expiration.get("days") is not None:
                current = current or expiration["days"] == exp.current_days
                if expiration["days"] != exp.current_days:
                    wrong.append(f"{rule.get('id')}: current after {expiration['days']} days")
            older = (rule.get("noncurrentVersionExpiration") or {}).get("noncurrentDays")
            if older is not None:
                noncurrent = noncurrent or older == exp.noncurrent_days
                if older != exp.noncurrent_days:
                    wrong.append(f"{rule.get('id')}: noncurrent after {older} days")
            parts = (rule.get("abortIncompleteMultipartUpload") or {}).get("daysAfterInitiation")
            if parts is not None:
                abort = abort or parts <= exp.abort_multipart_days
                if parts > exp.abort_multipart_days:
                    wrong.append(f"{rule.get('id')}: incomplete uploads kept {parts} days")
    split = f"current {exp.current_days}" + (
        f" + noncurrent {exp.noncurrent_days}" if exp.noncurrent_days is not None else ""
    )
    want = f"{rules.days} days in total ({split}; posture {rules.posture}: {rules.source})"
    if wrong:
        return f"lifecycle expiry differs from {want}: {'; '.join(wrong)}"
    if not current or (exp.noncurrent_days is not None and not noncurrent):
        what = "current and noncurrent versions" if exp.noncurrent_days is not None else "objects"
        return f"lifecycle must expire {what} after {want}"
    if not abort:
        return f"lifecycle must abort incomplete multipart uploads within {exp.abort_multipart_days} day(s)"
    return None


def _public_access_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    switches = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for config in configs:
        off = [s for s in switches if config.props.get(s) is not True]
        return f"public access block leaves {off} off" if off else None
    return "no public access block"


def _denies_insecure_transport(statement: Mapping[str, Any], bucket_arn: str) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal not in ("*", {"AWS": "*"}):
        return False
    if not {"s3:*", "*"} & set(_list(statement.get("Action"))):
        return False
    secure = ((statement.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")
    if str(secure).lower() != "false":
        return False
    return {bucket_arn, f"{bucket_arn}/*"} <= set(_list(statement.get("Resource")))


def _tls_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    arn = bucket.props.get("arn")
    for config in configs:
        if any(_denies_insecure_transport(s, arn) for s in statements_of(config.props.get("policy") or "{}")):
            return None
    return "the bucket policy must deny every request with aws:SecureTransport = false"


def _raw_read_deny_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    """The raw bucket's policy denies object reads to every principal but one role."""
    if rules.log_class.value != "raw_invocation_logs":
        return None
    arn = bucket.props.get("arn")
    for config in configs:
        for st in statements_of(config.props.get("policy") or "{}"):
            actions = {str(a).lower() for a in _list(st.get("Action"))}
            condition = (st.get("Condition") or {}).get("ArnNotEquals") or {}
            reads = {"s3:*", "*"} & actions or {"s3:getobject", "s3:getobjectversion"} <= actions
            if (st.get("Effect") == "Deny" and st.get("Principal") in ("*", {"AWS": "*"}) and reads
                    and f"{arn}/*" in _list(st.get("Resource")) and condition.get("aws:PrincipalArn")):  # fmt: skip
                return None
    return ("the bucket policy must deny s3:GetObject and s3:GetObjectVersion to every principal "
            "but the redaction role (ArnNotEquals aws:PrincipalArn): unredacted prompts are in it")  # fmt: skip


def _governance_bypass_problem(bucket: Any, rules: BucketRules, configs: list[Any]) -> str | None:
    """A locked bucket's policy denies ``s3:BypassGovernanceRetention`` to every principal."""
    if rules.object_lock_mode is None:
        return None
    for config in configs:
        for st in statements_of(config.props.get("policy") or "{}"):
            actions = {str(a).lower() for a in _list(st.get("Action"))}
            bypass = actions & {"s3:bypassgovernanceretention", "s3:*", "*"}
            everyone = st.get("Principal") in ("*", {"AWS": "*"})
            if st.get("Effect") == "Deny" and everyone and bypass and not st.get("Condition"):
                return None
    return ("the bucket policy must deny s3:BypassGovernanceRetention to every principal, "
            "unconditionally: otherwise whoever holds it can delete locked records")  # fmt: skip


# --- IAM, gateway, models --------------------------------------------------------------------


def validate_no_wildcards(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type in (ROLE_POLICY_ATTACHMENT, ROLE_POLICY_ATTACHMENTS) or (
        args.resource_type in POLICY_ATTACHMENTS
    ) or (args.resource_type == ROLE and _list(args.props.get("managedPolicyArns"))):
        arn = args.props.get("policyArn") or _list(args.props.get("managedPolicyArns"))
        report(
            f"{args.name!r}: roles get one inline policy (infra/policies.py); a managed policy "
            f"({arn}) cannot be reviewed here for wildcards"
        )
    for where, doc in _documents(args):
        if args.resource_type == PERMISSION_SET_INLINE:
            # People's permission sets: model-access-sanctioned-only covers the grants; an Allow
            # with NotAction/NotResource grants everything else, whoever holds it.
            for i, st in enumerate(statements_of(doc)):
                if st.get("Effect") == "Allow" and ("NotAction" in st or "NotResource" in st):
                    report(f"{args.name!r} {where}: {st.get('Sid') or f'statement {i}'}: "
                           "NotAction/NotResource grant everything else")  # fmt: skip
            continue
        for problem in wildcard_problems(doc):
            report(f"{args.name!r} {where}: {problem}")


def _is_wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in str(v) for value in principal.values() for v in _list(value))
    return False


def validate_trust_policies(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    """A role is assumable by named principals only: no ``*`` (anyone, any account)."""
    if args.resource_type != ROLE or not args.props.get("assumeRolePolicy"):
        return
    for i, st in enumerate(statements_of(args.props["assumeRolePolicy"])):
        if st.get("Effect") == "Allow" and (_is_wildcard_principal(st.get("Principal")) or "NotPrincipal" in st):
            report(f"role {args.name!r}: trust statement {st.get('Sid') or i} lets any principal assume it")


def validate_function_invocation(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    """Functions are invoked by named services from named sources, never by the public."""
    props = args.props
    if args.resource_type == FUNCTION_URL and props.get("authorizationType") != "AWS_IAM":
        report(f"function URL {args.name!r} is public (authorizationType {props.get('authorizationType')!r}); "
               "the gateway's JWT-authorized API is the only way in")  # fmt: skip
    if args.resource_type == LAMBDA_PERMISSION:
        principal = str(props.get("principal") or "")
        if "*" in principal or not principal.endswith(".amazonaws.com"):
            report(f"lambda permission {args.name!r}: principal {principal!r}; only an AWS service may invoke")
        elif not props.get("sourceArn"):
            report(f"lambda permission {args.name!r}: {principal} without a sourceArn may invoke from anywhere")
        if props.get("functionUrlAuthType") == "NONE":
            report(f"lambda permission {args.name!r} opens a public function URL")


def validate_kms_rotation(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type == KMS_KEY and args.props.get("enableKeyRotation") is not True:
        report(f"KMS key {args.name!r}: automatic rotation must be on (enableKeyRotation)")


def validate_invocation_logging(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    """Bedrock invocation logging must deliver text (prompts and answers) to S3: that is what
    the redaction function turns into the audit record of direct model use."""
    if args.resource_type != INVOCATION_LOGGING:
        return
    config = args.props.get("loggingConfig") or {}
    if config.get("textDataDeliveryEnabled") is not True:
        report(f"{args.name!r}: textDataDeliveryEnabled must be true (direct model use would go unrecorded)")
    if not (config.get("s3Config") or {}).get("bucketName"):
        report(f"{args.name!r}: invocation logs must be delivered to the raw invocation-log bucket (s3Config)")


def validate_routes_behind_jwt(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    props = args.props
    if args.resource_type == ROUTE:
        if props.get("authorizationType") != "JWT" or not props.get("authorizerId"):
            report(
                f"route {props.get('routeKey')!r} must use the JWT authorizer "
                f"(authorizationType JWT, got {props.get('authorizationType')!r})"
            )
    elif args.resource_type == AUTHORIZER:
        jwt = props.get("jwtConfiguration") or {}
        if props.get("authorizerType") != "JWT":
            report(f"authorizer {args.name!r} must be a JWT authorizer for {expect.issuer}")
        if jwt.get("issuer") != expect.issuer:
            report(f"authorizer {args.name!r} issuer {jwt.get('issuer')!r} is not the bundle's {expect.issuer!r}")
        if set(_list(jwt.get("audiences"))) != {expect.audience}:
            report(
                f"authorizer {args.name!r} audiences {_list(jwt.get('audiences'))} must be exactly "
                f"[{expect.audience!r}]"
            )
    elif args.resource_type == API and (props.get("target") or props.get("routeKey")):
        report(f"API {args.name!r}: quick-create routes (target/routeKey) have no authorizer")


def _model_problems(expect: Expectations, statement: Mapping[str, Any]) -> list[str]:
    actions = {str(a).lower() for a in _list(statement.get("Action"))}
    bedrock = {a for a in actions if a.startswith("bedrock:") or a == "*"}
    if statement.get("Effect") != "Allow" or not bedrock:
        return []
    sid = statement.get("Sid") or "statement"
    resources = [str(r) for r in _list(statement.get("Resource"))]
    problems = []
    unsanctioned = bedrock - BEDROCK_INVOKE_ACTIONS - {BEDROCK_APPLY_GUARDRAIL}
    if unsanctioned:
        problems.append(f"{sid}: bedrock actions beyond invoke/apply-guardrail: {sorted(unsanctioned)}")
    if bedrock & BEDROCK_INVOKE_ACTIONS:
        outside = [r for r in resources if not derive.is_sanctioned_model_arn(expect.workflow, r)]
        if outside:
            problems.append(f"{sid}: model access outside the sanctioned ARNs: {outside}")
        if expect.workflow.surface.guardrail is not None:
            equals = (statement.get("Condition") or {}).get("StringEquals") or {}
            ident = equals.get("bedrock:GuardrailIdentifier")
            if not (isinstance(ident, str) and derive.is_guardrail_arn(expect.workflow, ident, with_version=True)):
                problems.append(f"{sid}: model access must require the bundle's guardrail "
                                "(StringEquals bedrock:GuardrailIdentifier)")  # fmt: skip
    if BEDROCK_APPLY_GUARDRAIL in bedrock:
        outside = [r for r in resources if not derive.is_guardrail_arn(expect.workflow, r)]
        if outside:
            problems.append(f"{sid}: ApplyGuardrail beyond the bundle's guardrail: {outside}")
    return problems


def validate_model_access(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type in PERMISSION_SET_ATTACHMENTS:
        report(f"{args.name!r}: the permission set's only grant must be its inline model policy")
    for where, doc in _documents(args):
        for statement in statements_of(doc):
            for problem in _model_problems(expect, statement):
                report(f"{args.name!r} {where}: {problem}")


def validate_no_iam_users(
    expect: Expectations, args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type in IAM_CREDENTIALS:
        report(
            f"{args.resource_type} {args.name!r}: no IAM users or long-lived keys; people come "
            "through IAM Identity Center, functions through their roles"
        )


# --- the pack ---------------------------------------------------------------------------------


def make_policies(expect: Expectations) -> list[Policy]:
    mandatory = EnforcementLevel.MANDATORY

    def resource(name: str, description: str, fn: Callable[..., None]) -> Policy:
        return ResourceValidationPolicy(name, description, partial(fn, expect), mandatory)

    def buckets(name: str, description: str, types: set[str], check: Callable[..., Any]) -> Policy:
        return StackValidationPolicy(
            name, description, partial(_bucket_check, types, check, expect), mandatory
        )

    wf = expect.workflow.id
    return [
        resource("buckets-classified", f"Every bucket declares its {wf} log class and posture.",
                 validate_buckets_classified),
        buckets("log-buckets-kms-encrypted", "Log buckets are encrypted as their class requires.",
                ENCRYPTION, _kms_problem),
        buckets("log-buckets-versioned", "Log buckets are versioned.", VERSIONING, _versioned_problem),
        buckets("log-buckets-object-locked",
                "Audit and control-plane buckets are Object-Locked with the posture's mode and days.",
                OBJECT_LOCK, _lock_problem),
        buckets("log-buckets-retention", "Log expiry equals the bundle's retention posture.",
                LIFECYCLE, _retention_problem),
        buckets("log-buckets-public-access-blocked", "Log buckets block all public access.",
                PUBLIC_ACCESS_BLOCK, _public_access_problem),
        buckets("log-buckets-tls-only", "Log buckets deny requests without TLS.",
                BUCKET_POLICY, _tls_problem),
        resource("function-roles-no-wildcards",
                 "Function roles grant no wildcard actions or resources.", validate_no_wildcards),
        resource("gateway-routes-behind-jwt",
                 f"Every gateway route requires a JWT from {expect.issuer}.",
                 validate_routes_behind_jwt),
        resource("model-access-sanctioned-only",
                 "Model access is limited to the sanctioned model ARNs, through the guardrail.",
                 validate_model_access),
        resource("no-iam-users-or-access-keys", "No IAM users or access keys.",
                 validate_no_iam_users),
        resource("trust-policies-name-principals", "No role is assumable by a wildcard principal.",
                 validate_trust_policies),
        resource("functions-not-publicly-invocable",
                 "No public function URL; Lambda permissions name an AWS service and a source.",
                 validate_function_invocation),
        resource("kms-keys-rotate", "Every KMS key rotates automatically.", validate_kms_rotation),
        resource("bedrock-invocation-logging-delivers-text",
                 "Bedrock invocation logging delivers text to the raw bucket.",
                 validate_invocation_logging),
        buckets("locked-buckets-deny-governance-bypass",
                "Nobody may bypass the Object Lock retention of audit or control-plane records.",
                BUCKET_POLICY, _governance_bypass_problem),
        buckets("raw-logs-readable-only-by-redaction",
                "Only the redaction role may read raw invocation logs.", BUCKET_POLICY,
                _raw_read_deny_problem),
    ]  # fmt: skip
