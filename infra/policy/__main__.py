"""The ai-rollout policy pack: ``pulumi preview --policy-pack infra/policy``.

Loads the workflow bundle (``AI_ROLLOUT_WORKFLOW``, a directory relative to the project root;
default: the only bundle under ``workflows/``) and enforces its rules as mandatory policies
(see ``infra/policy/policies.py``). Constructing ``PolicyPack`` starts the analyzer server the
Pulumi CLI talks to, so this module is only ever run by the CLI.
"""

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from controller.bundle.models import find_bundle, load_bundle  # noqa: E402
from infra.policy.policies import Expectations, make_policies  # noqa: E402

workflow = os.environ.get("AI_ROLLOUT_WORKFLOW")
bundle_dir = find_bundle(PROJECT_ROOT / workflow if workflow else None, cwd=PROJECT_ROOT)
bundle = load_bundle(bundle_dir)

PolicyPack(
    name="ai-rollout",
    description=f"The {bundle.id} bundle's rules as mandatory policy.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=make_policies(Expectations.from_workflow(bundle.workflow)),
)
