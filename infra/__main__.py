"""The sanctioned AI workflow on AWS, provisioned from its bundle (``ai-rollout:workflow``).

Deploys, for the one workflow bundle the stack names:

- an audit-log bucket: versioned, Object-Locked (audit posture's mode and days), lifecycle
  expiry from the same posture, SSE-KMS with a dedicated rotating key, public access blocked,
  TLS-only and KMS-only puts, server access logs to a separate access-log bucket;
- a raw Bedrock invocation-log bucket with the raw posture's short expiry, readable only by
  the redaction function, and the account/region Bedrock model-invocation logging into it;
- the redaction Lambda that drains each raw log through the project's own redactor into the
  audit bucket (dead-letter queue for failures);
- the model gateway: an HTTP API whose routes require a JWT authorizer for the bundle's IdP
  issuer and audience, in front of the gateway Lambda, whose role may invoke only the
  sanctioned model ARNs through the bundle's guardrail; throttled stage, access logs;
- IAM Identity Center permission sets -- users: sanctioned models only, assigned to the SSO
  group; operators: the ``rollout`` CLI on the flag store -- optionally through an assume-role
  provider in the Identity Center administrator account;
- the Lambda deployment archive, uploaded once as an S3 object every function runs;
- a rotating KMS key for every CloudWatch log group;
- the flag store: flags, releases, evals, state and the control-plane audit chain in a
  versioned, SSE-KMS, Object-Locked (control-plane posture) bucket;
- a scheduled reconcile Lambda that rolls a failing release back without a person;
- ``pulumi destroy`` keeps the evidence buckets and their keys (``retain_on_delete``);
- stack outputs for auditors: buckets, keys, retention with posture names and sources,
  Object Lock modes, API endpoint, authorizer issuer/audience, permission set, flag store.

Build the Lambda archive first: ``python -m infra.build_archive --out build/lambda.zip``.
"""

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # Pulumi runs this directory, not the package
    sys.path.insert(0, str(PROJECT_ROOT))

import pulumi  # noqa: E402

from controller.bundle.models import load_bundle  # noqa: E402
from infra.config import StackConfig  # noqa: E402
from infra.stack import build  # noqa: E402

config = StackConfig.from_pulumi(PROJECT_ROOT)
bundle = load_bundle(config.workflow_dir)
for name, value in build(bundle, config).items():
    pulumi.export(name, value)
