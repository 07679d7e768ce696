"""Write the deployer's policy (infra/deployer-policy.json) and its table
(docs/deployer-permissions.md) from the resource types the program creates under the mocks.

    .venv-infra/bin/python -m tests.infra.deployer_export

The program is run with every optional part switched on (an operator group, a separate
Identity Center role, invocation logging managed here), so the policy covers every type it can
create. The committed JSON names the account as ``ACCOUNT_ID`` and the region of the shipped
bundle; ``--account``/``--region`` write one ready to attach.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    import infra_mocks  # the suite's module, so the mocks are set once (conftest imports it)
except ModuleNotFoundError:  # run as ``python -m tests.infra.deployer_export``
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import infra_mocks

PROJECT = infra_mocks.PROJECT
POLICY = PROJECT / "infra" / "deployer-policy.json"
TABLE = PROJECT / "docs" / "deployer-permissions.md"
ACCOUNT_PLACEHOLDER = "ACCOUNT_ID"
FULL = {"operator_group_name": "ai-rollout-operators",
        "identity_center_role_arn": "arn:aws:iam::210987654321:role/ai-rollout-identity-center"}  # fmt: skip
HEADER = """# Deployer permissions (generated)

What the identity that runs `pulumi up`/`destroy` needs, per resource type the program creates.
Generated from the program by `.venv-infra/bin/python -m tests.infra.deployer_export` (which
also writes `infra/deployer-policy.json`); a test fails when either is stale. Scope: `bucket`,
`role`, `function`... are the program's own names (`<workflow id>-*`); `any` is `*` where AWS
allows nothing narrower (creating a key, lookups, the account-wide Bedrock logging settings);
`sso` goes in the Identity Center administrator account's role (`identityCenterRoleArn`).

"""


def program_types(archive: Path) -> set[str]:
    """Every resource type and data source the program uses with every option on."""
    from controller.bundle.models import load_bundle

    bundle = load_bundle(PROJECT / infra_mocks.BUNDLE)
    types: set[str] = set()
    for overrides in ({}, FULL):
        infra_mocks.MOCKS.calls.clear()
        run = infra_mocks.run_program(bundle, infra_mocks.make_config(PROJECT, archive, **overrides))
        types |= {r.type for r in run.resources} | {t for t, _ in infra_mocks.MOCKS.calls}
    return types


def generate(account: str = ACCOUNT_PLACEHOLDER, region: str = infra_mocks.REGION) -> tuple[dict[str, Any], str]:
    from infra.build_archive import build_archive
    from infra.deployer import deployer_policy, markdown_table, missing_types

    with tempfile.TemporaryDirectory(prefix="ai-rollout-deployer-") as tmp:
        archive = Path(tmp) / "lambda.zip"
        build_archive(archive, deps=False)
        types = program_types(archive)
    missing = missing_types(types)
    if missing:
        raise SystemExit(f"infra/deployer.py ACTIONS lists no actions for {missing}")
    policy = deployer_policy(types, workflow_id="internal-docs-qa", account=account, region=region)
    return policy, HEADER + markdown_table(types)


def main(argv: Sequence[str] | None = None) -> int:
    from infra.deployer import dumps

    parser = argparse.ArgumentParser(prog="python -m tests.infra.deployer_export", description=__doc__.split("\n")[0])
    parser.add_argument("--account", default=ACCOUNT_PLACEHOLDER)
    parser.add_argument("--region", default=infra_mocks.REGION)
    parser.add_argument("--out", type=Path, default=POLICY)
    args = parser.parse_args(argv)
    policy, table = generate(args.account, args.region)
    args.out.write_text(dumps(policy), encoding="utf-8")
    if args.account == ACCOUNT_PLACEHOLDER:
        TABLE.write_text(table, encoding="utf-8")
    print(f"wrote {args.out} ({sum(len(d['Statement']) for d in policy.values())} statements)", file=sys.stderr)
    json.loads(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
