"""The hardened S3 bucket every log class shares (a helper, not a component of its own).

Children are created under the calling component (``parent``) and named ``f"{name}-..."``:
the bucket (Object Lock enabled at creation when the rules lock it), versioning (unless the
class is drained, not kept), default encryption, public access block, BucketOwnerEnforced
ownership, lifecycle expiry that keeps each object exactly the posture's days in total, the
Object Lock default retention, and server access logging.
The bucket *policy* is the caller's: what it grants differs per log class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from controller.core.provisioning import LOG_CLASS_TAG, POSTURE_TAG, SSE_KMS, WORKFLOW_TAG, BucketRules

__all__ = ["KMS_DELETION_WINDOW_DAYS", "LogBucket", "create_log_bucket", "kept", "lifecycle_rules"]

# If a key is ever deleted after all (retention removed by hand), AWS's longest window applies.
KMS_DELETION_WINDOW_DAYS = 30


def kept(rules: BucketRules, parent: pulumi.Resource, **options: Any) -> pulumi.ResourceOptions:
    """Options for a resource that keeps ``rules``' objects governed or readable (bucket,
    configuration, bucket policy, KMS key): retained on ``pulumi destroy`` when the class is
    evidence (``BucketRules.retained_on_destroy``)."""
    return pulumi.ResourceOptions(parent=parent, retain_on_delete=rules.retained_on_destroy, **options)


@dataclass(frozen=True)
class LogBucket:
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    lifecycle: aws.s3.BucketLifecycleConfiguration
    object_lock: aws.s3.BucketObjectLockConfiguration | None


def lifecycle_rules(rules: BucketRules, *, current_prefix: str | None = None) -> list[dict]:
    """Expire objects so each lives exactly the posture's days in total (``rules.expiry``):
    current versions (under ``current_prefix`` only, when given), then noncurrent ones; abort
    incomplete multipart uploads after a day. Object Lock keeps every version until its
    retention ends anyway, so nothing goes before the posture's days."""
    exp = rules.expiry
    current_filter = {"prefix": current_prefix} if current_prefix else {}
    out: list[dict] = [
        {
            "id": f"expire-current-{rules.posture}",
            "status": "Enabled",
            "filter": current_filter,
            "expiration": {"days": exp.current_days},
        },
    ]
    cleanup: dict = {
        "id": f"expire-noncurrent-{rules.posture}" if exp.noncurrent_days else "abort-incomplete-uploads",
        "status": "Enabled",
        "filter": {},
        "abort_incomplete_multipart_upload": {"days_after_initiation": exp.abort_multipart_days},
    }
    if exp.noncurrent_days is not None:
        cleanup["noncurrent_version_expiration"] = {"noncurrent_days": exp.noncurrent_days}
    out.append(cleanup)
    return out


def create_log_bucket(
    name: str,
    *,
    parent: pulumi.Resource,
    rules: BucketRules,
    workflow_id: str,
    kms_key_arn: pulumi.Input[str] | None,
    access_log_bucket: pulumi.Input[str] | None,
    current_prefix: str | None = None,
) -> LogBucket:
    opts = kept(rules, parent)
    if (kms_key_arn is None) == (rules.sse_algorithm == SSE_KMS):
        raise ValueError(f"{name}: an {rules.sse_algorithm} bucket needs a KMS key iff aws:kms")
    bucket = aws.s3.Bucket(
        f"{name}-bucket",
        object_lock_enabled=rules.object_lock_mode is not None,
        # Not evidence (the raw bucket): destroy may empty it. Evidence buckets are retained.
        force_destroy=not rules.retained_on_destroy,
        tags={
            LOG_CLASS_TAG: rules.log_class.value,
            POSTURE_TAG: rules.posture,
            WORKFLOW_TAG: workflow_id,
        },
        opts=opts,
    )
    on_bucket = kept(rules, parent, depends_on=[bucket])
    versioning = None
    if rules.versioned:
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=on_bucket,
        )
    after_versioning = [versioning] if versioning is not None else [bucket]
    by_default: dict = {"sse_algorithm": rules.sse_algorithm}
    if kms_key_arn is not None:
        by_default["kms_master_key_id"] = kms_key_arn
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": by_default,
                "bucket_key_enabled": kms_key_arn is not None,
            }
        ],
        opts=on_bucket,
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=on_bucket,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=on_bucket,
    )
    # Lifecycle rules on a versioned bucket need versioning in place first.
    lifecycle = aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.id,
        rules=lifecycle_rules(rules, current_prefix=current_prefix),
        opts=kept(rules, parent, depends_on=after_versioning),
    )
    object_lock = None
    if rules.object_lock_mode is not None:
        object_lock = aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=bucket.id,
            object_lock_enabled="Enabled",
            rule={"default_retention": {"days": rules.days, "mode": rules.object_lock_mode}},
            opts=kept(rules, parent, depends_on=after_versioning),
        )
    if access_log_bucket is not None:
        aws.s3.BucketLogging(
            f"{name}-access-logging",
            bucket=bucket.id,
            target_bucket=access_log_bucket,
            target_prefix=f"{rules.log_class.value}/",
            opts=on_bucket,
        )
    return LogBucket(bucket, public_access_block, lifecycle, object_lock)
