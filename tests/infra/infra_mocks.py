"""The infra suite's Pulumi mocks and program runner (imported by conftest before any test).

``pulumi.runtime.set_mocks`` is process-global, so it is called once, when this module is
first imported -- before any test imports the program. ``RecordingMocks`` keeps every
registered resource (type token, logical name, inputs, the outputs it answered) so tests
assert on what would be sent to AWS; ``run_program`` clears the record, runs
``infra.stack.build`` inside ``@pulumi.runtime.test`` and returns the record plus the resolved
stack outputs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

PROJECT = Path(__file__).resolve().parents[2]
BUNDLE = "workflows/internal-docs-qa"
ACCOUNT = "123456789012"
REGION = "eu-west-1"


@dataclass(frozen=True)
class Recorded:
    """One registered resource: what the program sent (inputs) and what the mock answered."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    provider: str | None = None
    """The provider reference (``<provider urn>::<id>``) when not the default provider."""

    @property
    def urn(self) -> str:
        return f"urn:pulumi:stack::project::{self.type}::{self.name}"


@dataclass
class ProgramRun:
    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, token: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == token]

    def one_of_type(self, token: str) -> Recorded:
        (found,) = self.of_type(token)
        return found

    def named(self, name: str) -> Recorded:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"{name}: {len(found)} resources (have {sorted(r.name for r in self.resources)})"
        return found[0]

    def by_name_suffix(self, token: str, suffix: str) -> list[Recorded]:
        return [r for r in self.of_type(token) if r.name.endswith(suffix)]


def _outputs(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A plausible physical id and outputs for each resource type the program creates."""
    rid = f"{name}-id"
    out = dict(inputs)
    service = typ.split(":")[1].split("/")[0]
    out.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{typ.rsplit(':', 1)[1].lower()}/{rid}")
    if typ == "aws:s3/bucket:Bucket":
        out.update(bucket=rid, arn=f"arn:aws:s3:::{rid}")
    elif typ == "aws:iam/role:Role":
        out.update(name=rid, arn=f"arn:aws:iam::{ACCOUNT}:role/{rid}")
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        out.update(name=rid, arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{rid}")
    elif typ == "aws:lambda/function:Function":
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{rid}"
        out.update(name=rid, arn=arn, invokeArn=f"arn:aws:apigateway:{REGION}:lambda:path/{arn}")
    elif typ == "aws:kms/key:Key":
        out.update(keyId=rid, arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{rid}")
    elif typ == "aws:sqs/queue:Queue":
        out.update(url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{rid}",
                   arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{rid}")  # fmt: skip
    elif typ == "aws:apigatewayv2/api:Api":
        out.update(apiEndpoint=f"https://{rid}.execute-api.{REGION}.amazonaws.com",
                   executionArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{rid}")  # fmt: skip
    elif typ == "aws:cloudwatch/eventRule:EventRule":
        out.update(name=rid)
    elif typ == "aws:ssoadmin/permissionSet:PermissionSet":
        out.update(arn=f"arn:aws:sso:::permissionSet/ssoins-0000000000000000/ps-{rid}")
    elif typ == "aws:secretsmanager/secret:Secret":
        out.update(arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{rid}")
    return rid, out


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.calls_with_provider: list[tuple[str, dict[str, Any], str | None]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        rid, out = _outputs(args.typ, args.name, dict(args.inputs))
        self.resources.append(
            Recorded(args.typ, args.name, dict(args.inputs), out, bool(args.custom), args.provider or None)
        )
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        self.calls.append((args.token, dict(args.args)))
        self.calls_with_provider.append((args.token, dict(args.args), args.provider or None))
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
                "userId": "AIDEXAMPLE", "id": ACCOUNT,
            },
            "aws:ssoadmin/getInstances:getInstances": {
                "arns": ["arn:aws:sso:::instance/ssoins-0000000000000000"],
                "identityStoreIds": ["d-0000000000"], "id": REGION,
            },
            "aws:identitystore/getGroup:getGroup": {
                "groupId": "group-ai-pilot", "displayName": "ai-pilot",
                "identityStoreId": "d-0000000000", "id": "group-ai-pilot",
            },
            "aws:secretsmanager/getRandomPassword:getRandomPassword": {
                "randomPassword": "deterministic-test-secret", "id": "x",
            },
        }  # fmt: skip
        if args.token not in answers:
            raise AssertionError(f"unexpected data-source call {args.token}")
        return answers[args.token], []

MOCKS = RecordingMocks()
pulumi.runtime.set_mocks(MOCKS, project="ai-rollout", stack="test", preview=False)


def copy_project(dest: Path) -> Path:
    """The bundle plus what it references (flags, runbooks), under ``dest``; returns the bundle."""
    for part in ("workflows", "flags", "runbooks"):
        shutil.copytree(PROJECT / part, dest / part)
    return dest / BUNDLE



def make_config(project_root: Path, archive: Path, **overrides: Any) -> Any:
    from infra.config import StackConfig

    values: dict[str, Any] = {
        "project_root": project_root,
        "workflow": BUNDLE,
        "region": REGION,
        "lambda_archive": str(archive),
    }
    values.update(overrides)
    return StackConfig(**values)


def run_program(bundle: Any, config: Any) -> ProgramRun:
    """Run ``infra.stack.build`` under the mocks; every resource and the resolved outputs."""
    from infra.stack import build

    MOCKS.resources.clear()
    MOCKS.calls_with_provider.clear()
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> Any:
        return pulumi.Output.from_input(build(bundle, config)).apply(outputs.update)

    program()
    return ProgramRun(list(MOCKS.resources), outputs)
