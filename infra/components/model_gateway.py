"""``ModelGateway``: the only sanctioned way in -- an HTTP API bound to the corporate IdP.

An API Gateway v2 HTTP API whose every route requires a JWT authorizer with the bundle's IdP
issuer and audience (``sso.idp``), integrated with the gateway Lambda
(``infra/handlers/gateway.py`` -> ``controller.gateway.lambda_handler``), which re-verifies the token and
runs identity -> kill switch -> flags -> boundaries -> model -> audit record. The Lambda's
role may invoke only the sanctioned model ARNs, only through the bundle's guardrail when one
is configured. The stage throttles (stack config) and writes JSON access logs to a log group
kept per the transient posture (they identify callers), encrypted with the stack's log key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components._function import create_function
from infra.components.lambda_code import CodeLocation

__all__ = ["ACCESS_LOG_FORMAT", "ModelGateway", "ModelGatewayArgs"]

HANDLER = "infra.handlers.gateway.handler"

# Who called what and how it ended; never request or response bodies.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "sourceIp": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "subject": "$context.authorizer.claims.sub",
        "authorizerError": "$context.authorizer.error",
        "integrationError": "$context.integrationErrorMessage",
        "latencyMs": "$context.responseLatency",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True)
class ModelGatewayArgs:
    code: CodeLocation
    """The deployment archive's S3 object (``LambdaCode``), shared by every function."""
    workflow_id: str
    workflow_path: str
    """The bundle's directory inside the archive."""
    issuer: str
    """``sso.idp.issuer``: the JWT authorizer accepts tokens from this issuer only."""
    audience: str
    """``sso.idp.audience``: ... minted for this audience only."""
    model_arns: Sequence[str]
    """The sanctioned foundation-model ARNs (``surface.models`` in ``surface.endpoint.region``)."""
    guardrail_arn: pulumi.Input[str] | None
    """``surface.guardrail`` as an ARN, or None when the bundle names no guardrail."""
    guardrail_identifier: pulumi.Input[str] | None
    """``<guardrail ARN>:<version>``: the value ``bedrock:GuardrailIdentifier`` must equal."""
    flag_store_name: pulumi.Input[str]
    flag_store_arn: pulumi.Input[str]
    flag_kms_key_arn: pulumi.Input[str]
    flags_key: str
    store_prefix: str
    audit_bucket_name: pulumi.Input[str]
    audit_bucket_arn: pulumi.Input[str]
    audit_kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    log_kms_key_arn: pulumi.Input[str]
    """The stack's CloudWatch Logs key (``LogEncryptionKey``)."""
    """CloudWatch retention for access and function logs (from the audit posture)."""
    access_log_retention_days: int
    """CloudWatch retention of the API's access logs (from the transient raw posture: they
    identify callers, so they are kept briefly; the request records are the evidence)."""
    throttling_burst_limit: int
    """Stage burst limit (stack config ``gatewayThrottleBurst``)."""
    throttling_rate_limit: float
    """Stage steady-state requests per second (stack config ``gatewayThrottleRate``)."""
    routes: Sequence[str] = ("POST /v1/ask",)
    """Every route key; each one is bound to the JWT authorizer."""
    audit_prefix: str = "requests/"
    """Where the gateway's request records go (``controller.adapters.request_sinks.S3Sink``'s prefix)."""
    memory_size: int = 1024
    timeout: int = 29  # API Gateway's integration timeout


class ModelGateway(pulumi.ComponentResource):
    api_endpoint: pulumi.Output[str]
    ask_url: pulumi.Output[str]
    function_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    access_log_group: pulumi.Output[str]
    subject_key_secret_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("ai-rollout:infra:ModelGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The key the gateway pseudonymises subjects with (HMAC): generated once by Secrets
        # Manager, never rotated by Pulumi afterwards (rotation would orphan old pseudonyms).
        subject_key = aws.secretsmanager.Secret(
            f"{name}-subject-key",
            description=f"ai-rollout {args.workflow_id}: key for subject pseudonyms in audit records",
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-subject-key-value",
            secret_id=subject_key.id,
            secret_string=pulumi.Output.secret(
                aws.secretsmanager.get_random_password_output(
                    password_length=64, exclude_punctuation=True,
                    opts=pulumi.InvokeOutputOptions(parent=self),
                ).random_password
            ),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
        )  # fmt: skip

        def policy(log_group_arn: pulumi.Output[str]) -> pulumi.Output[str]:
            return pulumi.Output.all(
                args.guardrail_arn,
                args.guardrail_identifier,
                args.flag_store_arn,
                args.flag_kms_key_arn,
                args.audit_bucket_arn,
                args.audit_kms_key_arn,
                subject_key.arn,
                log_group_arn,
            ).apply(
                lambda a: policies.gateway_role_policy(
                    model_arns=args.model_arns,
                    guardrail_arn=a[0],
                    guardrail_identifier=a[1],
                    flag_store_arn=a[2],
                    flags_key=args.flags_key,
                    store_prefix=args.store_prefix,
                    flag_kms_key_arn=a[3],
                    audit_bucket_arn=a[4],
                    audit_prefix=args.audit_prefix,
                    audit_kms_key_arn=a[5],
                    subject_key_secret_arn=a[6],
                    log_group_arn=a[7],
                )
            )

        # The contract of controller.gateway.lambda_handler (see infra/handlers/gateway.py).
        fn = create_function(
            name,
            parent=self,
            code=args.code,
            handler=HANDLER,
            description=f"ai-rollout {args.workflow_id}: the SSO-bound model gateway",
            environment={
                "ROLLOUT_WORKFLOW": args.workflow_path,
                "ROLLOUT_STORE": pulumi.Output.concat(
                    "s3://", args.flag_store_name, "/", args.store_prefix
                ),
                "ROLLOUT_FLAGS_BUCKET": args.flag_store_name,
                "ROLLOUT_FLAGS_KEY": args.flags_key,
                "ROLLOUT_AUDIT_BUCKET": args.audit_bucket_name,
                "ROLLOUT_AUDIT_KMS_KEY": args.audit_kms_key_arn,
                "ROLLOUT_SUBJECT_KEY_SECRET": subject_key.arn,
            },
            log_retention_days=args.log_retention_days,
            log_kms_key_arn=args.log_kms_key_arn,
            policy=policy,
            memory_size=args.memory_size,
            timeout=args.timeout,
        )

        api = aws.apigatewayv2.Api(
            f"{name}-api",
            protocol_type="HTTP",
            description=f"ai-rollout {args.workflow_id}: SSO-bound model gateway",
            opts=child,
        )
        authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-jwt",
            api_id=api.id,
            authorizer_type="JWT",
            identity_sources=["$request.header.Authorization"],
            jwt_configuration={"issuer": args.issuer, "audiences": [args.audience]},
            opts=child,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_uri=fn.function.arn,
            integration_method="POST",
            payload_format_version="2.0",
            timeout_milliseconds=args.timeout * 1000,
            opts=child,
        )
        routes = [
            aws.apigatewayv2.Route(
                f"{name}-route-{_slug(route_key)}",
                api_id=api.id,
                route_key=route_key,
                authorization_type="JWT",
                authorizer_id=authorizer.id,
                target=integration.id.apply(lambda i: f"integrations/{i}"),
                opts=child,
            )
            for route_key in args.routes
        ]
        # Access logs name the caller (source IP, user agent, token subject): kept only as long
        # as the transient posture allows; the audit bucket's request records are the evidence.
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            retention_in_days=args.access_log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            opts=child,
        )
        stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings={
                "throttling_burst_limit": args.throttling_burst_limit,
                "throttling_rate_limit": args.throttling_rate_limit,
            },
            access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
            opts=pulumi.ResourceOptions(parent=self, depends_on=routes),
        )
        # One permission per route: this API may invoke the function for its routes only.
        for route_key in args.routes:
            method, _, path = route_key.partition(" ")
            aws.lambda_.Permission(
                f"{name}-api-invoke-{_slug(route_key)}",
                action="lambda:InvokeFunction",
                function=fn.function.name,
                principal="apigateway.amazonaws.com",
                source_arn=api.execution_arn.apply(lambda arn, m=method, p=path: f"{arn}/*/{m}{p}"),
                opts=child,
            )

        self.api_endpoint = api.api_endpoint
        first_path = args.routes[0].split(" ", 1)[1]
        # The $default stage is served at the API's root: no stage segment in the URL.
        self.ask_url = pulumi.Output.all(api.api_endpoint, stage.id).apply(
            lambda a: f"{a[0].rstrip('/')}{first_path}"
        )
        self.function_name = fn.function.name
        self.role_arn = fn.role.arn
        self.access_log_group = access_logs.name
        self.subject_key_secret_arn = subject_key.arn
        self.register_outputs(
            {
                "api_endpoint": self.api_endpoint,
                "ask_url": self.ask_url,
                "function_name": self.function_name,
                "role_arn": self.role_arn,
                "access_log_group": self.access_log_group,
                "subject_key_secret_arn": self.subject_key_secret_arn,
            }
        )


def _slug(route_key: str) -> str:
    method, _, path = route_key.partition(" ")
    parts = [method.lower(), *(p for p in path.strip("/").split("/") if p)]
    return "-".join(p.replace("{", "").replace("}", "").replace("+", "") for p in parts)
