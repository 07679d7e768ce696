"""``FlagStore``: the control plane's bucket -- live flags, releases, evals, state, audit chain.

Layout (one bucket per workflow stack)::

    flags/<workflow>.flagd.json          the live flag document the gateway's flagd provider reads
    control-plane/<workflow>/releases/   content-addressed release snapshots     } controller's
    control-plane/<workflow>/evals/      eval results by release digest          } S3Store
    control-plane/<workflow>/state/      rollout state (conditional writes)      } (prefix
    control-plane/<workflow>/audit/      hash-chained control-plane audit log    }  below)

Versioned, SSE-KMS with its own rotating key, public access blocked, TLS-only and KMS-only
puts, Object Lock with the control_plane posture's mode and days: every version of every flag
document and state object is kept, undeletable, for the posture's days. Current versions
expire only under ``audit/`` (flags, releases and state stay live); noncurrent versions expire
everywhere after the posture's days. See docs/infra.md for why S3 (and not AppConfig or SSM).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from controller.core.provisioning import BucketRules
from infra import policies
from infra.components._log_bucket import KMS_DELETION_WINDOW_DAYS, create_log_bucket, kept

__all__ = ["FlagStore", "FlagStoreArgs"]


@dataclass(frozen=True)
class FlagStoreArgs:
    rules: BucketRules
    """The control_plane posture: Object Lock mode and days, SSE-KMS."""
    workflow_id: str
    """Names the flag document and the store prefix."""
    account_id: pulumi.Input[str]
    """Key administrator."""
    access_log_bucket: pulumi.Input[str]
    """Where this bucket's S3 server access logs go."""


class FlagStore(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    flags_key: str
    store_prefix: str
    flags_uri: pulumi.Output[str]
    store_uri: pulumi.Output[str]

    def __init__(self, name: str, args: FlagStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-rollout:infra:FlagStore", name, None, opts)
        self.flags_key = f"flags/{args.workflow_id}.flagd.json"
        self.store_prefix = f"control-plane/{args.workflow_id}"

        key = aws.kms.Key(
            f"{name}-key",
            description=f"ai-rollout {args.workflow_id}: flags and control-plane state",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            policy=pulumi.Output.from_input(args.account_id).apply(policies.kms_key_policy),
            opts=kept(args.rules, self),
        )
        store = create_log_bucket(
            name,
            parent=self,
            rules=args.rules,
            workflow_id=args.workflow_id,
            kms_key_arn=key.arn,
            access_log_bucket=args.access_log_bucket,
            current_prefix=f"{self.store_prefix}/audit/",
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=store.bucket.id,
            policy=pulumi.Output.all(store.bucket.arn, key.arn).apply(
                lambda a: policies.flag_store_bucket_policy(*a)
            ),
            opts=kept(args.rules, self, depends_on=[store.public_access_block]),
        )

        self.bucket_name = store.bucket.id
        self.bucket_arn = store.bucket.arn
        self.kms_key_arn = key.arn
        self.flags_uri = pulumi.Output.concat("s3://", store.bucket.id, "/", self.flags_key)
        self.store_uri = pulumi.Output.concat("s3://", store.bucket.id, "/", self.store_prefix)
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
                "flags_uri": self.flags_uri,
                "store_uri": self.store_uri,
            }
        )
