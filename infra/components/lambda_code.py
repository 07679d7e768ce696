"""``LambdaCode``: the deployment archive, uploaded once as an S3 object every function runs.

Three functions share one archive. Inline, Pulumi would upload it three times, each through
Lambda's direct-upload limit (50 MB zipped, which the archive approaches); through S3 it is one
upload of one object, named by its sha256 so a new build is a new object and every function is
updated from it (``source_code_hash``). The bucket is a log bucket of class ``lambda_code``:
versioned, SSE-S3, public access blocked, TLS only, server access logs, and kept per the audit
posture -- the code that produced the audit records stays as long as they do, and survives
``pulumi destroy`` with them.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from controller.core.provisioning import BucketRules
from infra import policies
from infra.components._log_bucket import create_log_bucket, kept

__all__ = ["CodeLocation", "LambdaCode", "LambdaCodeArgs"]


@dataclass(frozen=True)
class CodeLocation:
    """Where a function's code is: ``Function(s3_bucket=, s3_key=, source_code_hash=)``."""

    bucket: pulumi.Output[str]
    key: str
    source_code_hash: str
    uploaded: pulumi.Resource
    """The object: functions depend on it (the upload precedes CreateFunction)."""


@dataclass(frozen=True)
class LambdaCodeArgs:
    rules: BucketRules
    """The lambda_code rules (audit posture, SSE-S3, versioned, not locked)."""
    workflow_id: str
    archive_path: Path
    """The built archive (``python -m infra.build_archive``)."""
    access_log_bucket: pulumi.Input[str]


class LambdaCode(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    location: CodeLocation

    def __init__(self, name: str, args: LambdaCodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-rollout:infra:LambdaCode", name, None, opts)
        code = create_log_bucket(
            name, parent=self, rules=args.rules, workflow_id=args.workflow_id, kms_key_arn=None,
            access_log_bucket=args.access_log_bucket,
        )  # fmt: skip
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=code.bucket.id,
            policy=code.bucket.arn.apply(policies.code_bucket_policy),
            opts=kept(args.rules, self, depends_on=[code.public_access_block]),
        )
        digest = hashlib.sha256(args.archive_path.read_bytes()).digest()
        key = f"lambda/{digest.hex()}.zip"
        uploaded = aws.s3.BucketObjectv2(
            f"{name}-archive",
            bucket=code.bucket.id,
            key=key,
            source=pulumi.FileAsset(str(args.archive_path)),
            opts=kept(args.rules, self, depends_on=[code.lifecycle]),
        )
        self.bucket_name = code.bucket.id
        self.bucket_arn = code.bucket.arn
        self.location = CodeLocation(code.bucket.id, key, base64.b64encode(digest).decode(), uploaded)
        self.register_outputs({"bucket_name": self.bucket_name, "key": key})
