"""The program under the infra suite's mocks, written as ``pulumi stack export`` would write it.

``tests/fixtures/stack-export.json`` (what ``rollout audit report --stack-export`` is tested on)
is generated here from ``infra.stack.build`` run under ``infra_mocks``, so it cannot drift from
what infra/ provisions (``test_infra_stack_export_fixture.py`` fails when it has). Rewrite it
with::

    cd /work/main && .venv-infra/bin/python -m tests.infra.stack_export --out tests/fixtures/stack-export.json

and add ``--wrong-retention tests/fixtures/stack-export-wrong-retention.json`` to rewrite the
"wrong retention" fixture too (the same document with the audit-log bucket's lifecycle and
Object Lock at ``WRONG_RETENTION_DAYS``).

What a deployment would have and the mocks do not is made up the same way every time, so the
output is byte-for-byte deterministic (sorted keys, resources in URN order):

- stack ``prod`` of project ``ai-rollout``; URNs qualified by the parent component's type;
  a resource's parent is the component whose name is the longest ``<name>-`` prefix of its own
  (the components name their children that way), else the stack;
- physical ids instead of the mocks' ``<name>-id``: ``<name>-<7 hex>`` (auto-naming), a UUID for
  KMS keys, short hex for API Gateway, the bucket name for S3 bucket configurations, the hex
  taken from ``sha256(<name>)``; every mock id inside any string (ARNs, policies, stack
  outputs) is replaced by the physical one;
- the Lambda archive as Pulumi records one, at ``StackConfig``'s default path (not the
  temporary archive the run used, whose contents change with every commit);
- secrets (the mocks keep their plaintext) as Pulumi's encrypted envelope, ciphertext a hash;
- a fixed manifest, timestamps, default provider and secrets provider.

None of the made-up values is read by ``controller.evidence.stack_export.read_stack_export``.
``report_fields`` is what it does read, per resource: the comparison test diffs that.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import importlib.metadata
import json
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

try:
    import infra_mocks  # the suite's module, so the mocks are set once (conftest imports it)
except ModuleNotFoundError:  # run as ``python -m tests.infra.stack_export``
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import infra_mocks

from infra_mocks import BUNDLE, PROJECT, REGION, ProgramRun, Recorded

from controller.core.provisioning import LOG_CLASS_TAG, POSTURE_TAG, WORKFLOW_TAG

__all__ = [
    "FIXTURE",
    "REGENERATE",
    "READ_FIELDS",
    "WRONG_RETENTION_FIXTURE",
    "diff_report_fields",
    "dumps",
    "generate",
    "report_fields",
    "stack_export",
    "wrong_retention",
]

FIXTURE = PROJECT / "tests" / "fixtures" / "stack-export.json"
WRONG_RETENTION_FIXTURE = PROJECT / "tests" / "fixtures" / "stack-export-wrong-retention.json"
REGENERATE = (
    f"cd {PROJECT} && .venv-infra/bin/python -m tests.infra.stack_export --out tests/fixtures/stack-export.json"
    " --wrong-retention tests/fixtures/stack-export-wrong-retention.json"
)
WRONG_RETENTION_DAYS = 30

STACK = "prod"
PROJECT_NAME = "ai-rollout"
STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE = "pulumi:providers:aws"
PROVIDER_ID = "5b1f6c3e-9d0a-4a57-8a43-0c0f6e2d4b19"
TIMESTAMP = "2026-11-20T09:12:44.000000Z"
MANIFEST = {
    "magic": "3be7a505483c0050243c5cbad4700da13925aa4137a55e9e33efd8bc4d05850f",
    "time": "2026-11-20T09:14:02.512873Z",
    "version": "v3.150.0",
}
SECRETS_PROVIDERS = {"state": {"salt": "v1:63479ad69a090b25:v1:dbc4579ae2b3ab293213f42b"}, "type": "passphrase"}
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # pulumi's "special signature" key
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"  # ... whose value marks a secret
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"  # ... and an archive
ARCHIVE_PATH = "build/lambda.zip"  # infra.config.StackConfig.lambda_archive's default

T_BUCKET = "aws:s3/bucket:Bucket"
T_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
T_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
T_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
T_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
T_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
T_AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
T_ROUTE = "aws:apigatewayv2/route:Route"
T_PERMISSION_SET = "aws:ssoadmin/permissionSet:PermissionSet"
T_INLINE_POLICY = "aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy"
T_FUNCTION = "aws:lambda/function:Function"
T_SCHEDULE = "aws:cloudwatch/eventRule:EventRule"
T_KMS_KEY = "aws:kms/key:Key"


# --- ProgramRun -> stack export -------------------------------------------------------------------


def _hex(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _mock_id(r: Recorded) -> str:
    return f"{r.name}-id"  # what infra_mocks answers for every resource


def _bucket_scoped(r: Recorded) -> bool:
    """An S3 bucket configuration: AWS (and pulumi-aws) identify it by the bucket's name."""
    return r.type.startswith("aws:s3/") and r.type != T_BUCKET and "bucket" in r.inputs


def _physical_id(r: Recorded) -> str:
    h = _hex(r.name)
    if r.type == T_KMS_KEY:
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    if r.type == "aws:apigatewayv2/api:Api":
        return h[:10]
    if r.type.startswith("aws:apigatewayv2/"):
        return h[:7]
    return f"{r.name}-{h[:7]}"


class _Renamer:
    """Replace the mocks' ids with physical ones inside any string."""

    def __init__(self, ids: Mapping[str, str]):
        self.ids = dict(ids)
        alternatives = "|".join(re.escape(k) for k in sorted(self.ids, key=len, reverse=True))
        self.pattern = re.compile(f"(?:{alternatives})(?![A-Za-z0-9_-])") if self.ids else None

    def __call__(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda m: self.ids[m.group(0)], text)


def _plain(value: Any, rename: _Renamer, where: str) -> Any:
    """JSON as a state file holds it: ids renamed, archives and secrets in Pulumi's envelopes,
    integral numbers as integers (the mocks hand back every number as a float)."""
    if isinstance(value, pulumi.Archive | pulumi.Asset):
        return {ARCHIVE_SIG: ARCHIVE_SIG, "hash": _hex(Path(ARCHIVE_PATH).name), "path": ARCHIVE_PATH}
    if isinstance(value, Mapping):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return {SECRET_SIG: SECRET_VALUE, "ciphertext": f"v1:{_hex(where)[:24]}"}
        return {str(k): _plain(v, rename, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, rename, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return rename(value)
    return value


def _parents(resources: Sequence[Recorded]) -> dict[str, Recorded | None]:
    components = [r for r in resources if not r.custom]
    parents: dict[str, Recorded | None] = {}
    for r in resources:
        owners = [c for c in components if c is not r and r.name.startswith(f"{c.name}-")]
        parents[r.name] = max(owners, key=lambda c: len(c.name)) if owners else None
    return parents


def stack_export(run: ProgramRun, *, stack: str = STACK, project: str = PROJECT_NAME) -> dict[str, Any]:
    """``run`` as the document ``pulumi stack export`` prints (see the module docstring)."""
    resources = list(run.resources)
    names = [r.name for r in resources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"resource names must be unique to derive stable ids: {duplicates}")

    ids = {_mock_id(r): _physical_id(r) for r in resources if r.custom and not _bucket_scoped(r)}
    rename = _Renamer(ids)
    for r in resources:  # a bucket configuration's id is its bucket's (now physical) name
        if r.custom and _bucket_scoped(r):
            ids[_mock_id(r)] = rename(str(r.inputs["bucket"]))
    rename = _Renamer(ids)

    prefix = f"urn:pulumi:{stack}::{project}::"
    stack_urn = f"{prefix}{STACK_TYPE}::{project}-{stack}"
    provider_version = importlib.metadata.version("pulumi_aws")
    provider_urn = f"{prefix}{PROVIDER_TYPE}::default_{provider_version.replace('.', '_')}"
    provider_settings = {
        "region": REGION,
        "skipCredentialsValidation": "false",
        "skipRegionValidation": "true",
        "version": provider_version,
    }
    parents = _parents(resources)

    def qualified(r: Recorded) -> str:
        parent = parents[r.name]
        return f"{qualified(parent)}${r.type}" if parent is not None else r.type

    def urn(r: Recorded) -> str:
        return f"{prefix}{qualified(r)}::{r.name}"

    out: list[dict[str, Any]] = []
    for r in resources:
        parent = parents[r.name]
        entry: dict[str, Any] = {
            "created": TIMESTAMP,
            "custom": r.custom,
            "modified": TIMESTAMP,
            "parent": urn(parent) if parent is not None else stack_urn,
            "type": r.type,
            "urn": urn(r),
        }
        if not r.custom:  # a component: its registered outputs are not recorded by the mocks
            entry["outputs"] = {}
            out.append(entry)
            continue
        rid = ids[_mock_id(r)]
        inputs = _plain(r.inputs, rename, f"{entry['urn']}:inputs")
        outputs = _plain(r.outputs, rename, f"{entry['urn']}:outputs")
        if _bucket_scoped(r):
            outputs.pop("arn", None)  # made up by the mocks; these resources have none
        if r.type == T_BUCKET:  # what the provider computes for a bucket
            outputs.update(
                bucketDomainName=f"{outputs['bucket']}.s3.amazonaws.com",
                forceDestroy=False,
                region=REGION,
                tagsAll=copy.deepcopy(outputs.get("tags") or {}),
            )
        outputs["id"] = rid
        inputs["__defaults"] = []
        entry.update(id=rid, inputs=inputs, outputs=outputs, provider=f"{provider_urn}::{PROVIDER_ID}")
        out.append(entry)

    rank = {False: 2, True: 3}  # the stack, its provider, the components, then custom resources
    out.sort(key=lambda e: (rank[e["custom"]], e["urn"]))
    head = [
        {
            "created": TIMESTAMP,
            "custom": False,
            "modified": TIMESTAMP,
            "outputs": _plain(run.outputs, rename, f"{stack_urn}:outputs"),
            "type": STACK_TYPE,
            "urn": stack_urn,
        },
        {
            "created": TIMESTAMP,
            "custom": True,
            "id": PROVIDER_ID,
            "inputs": {"__internal": {}, **provider_settings},
            "modified": TIMESTAMP,
            "outputs": dict(provider_settings),
            "type": PROVIDER_TYPE,
            "urn": provider_urn,
        },
    ]
    return {
        "deployment": {"manifest": dict(MANIFEST), "resources": head + out, "secrets_providers": SECRETS_PROVIDERS},
        "version": 3,
    }


def dumps(doc: Any) -> str:
    """The bytes written to the fixture: sorted keys, two-space indent, final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, Any]:
    """Build the Lambda archive (no dependencies), run the shipped bundle with the stack config
    the suite uses by default, and return the export."""
    from controller.bundle.models import load_bundle
    from infra.build_archive import build_archive

    with tempfile.TemporaryDirectory(prefix="ai-rollout-stack-export-") as tmp:
        archive = Path(tmp) / "lambda.zip"
        build_archive(archive, deps=False)
        run = infra_mocks.run_program(load_bundle(PROJECT / BUNDLE), infra_mocks.make_config(PROJECT, archive))
    return stack_export(run)


def wrong_retention(doc: Mapping[str, Any], days: int = WRONG_RETENTION_DAYS) -> dict[str, Any]:
    """``doc`` with the audit-log bucket's lifecycle and Object Lock retention set to ``days``
    (and nothing else): what ``tests/fixtures/stack-export-wrong-retention.json`` holds."""
    wrong = copy.deepcopy(dict(doc))
    resources = wrong["deployment"]["resources"]
    (audit,) = [
        r["outputs"]["bucket"]
        for r in resources
        if r["type"] == T_BUCKET and r["outputs"].get("tags", {}).get(LOG_CLASS_TAG) == "audit_log"
    ]
    changed = 0
    for r in resources:
        if r["type"] not in (T_LIFECYCLE, T_LOCK) or r["outputs"].get("bucket") != audit:
            continue
        changed += 1
        for side in ("inputs", "outputs"):
            if r["type"] == T_LOCK:
                r[side]["rule"]["defaultRetention"]["days"] = days
                continue
            for rule in r[side]["rules"]:
                for key, field in (
                    ("expiration", "days"),
                    ("noncurrentVersionExpiration", "noncurrentDays"),
                    ("abortIncompleteMultipartUpload", "daysAfterInitiation"),
                ):
                    if field in (rule.get(key) or {}):
                        rule[key][field] = days
    if changed != 2:
        raise ValueError(f"expected the audit-log bucket's lifecycle and Object Lock, found {changed} resources")
    return wrong


# --- what controller.evidence.stack_export.read_stack_export reads, per resource ---------------------------------

_MISSING = "(absent)"


def _get(resource: Mapping[str, Any], *path: str | int) -> Any:
    """``read_stack_export``'s rule: the outputs' value, else the inputs'."""
    for side in ("outputs", "inputs"):
        value: Any = resource.get(side) or {}
        for part in path:
            if isinstance(part, int):
                value = value[part] if isinstance(value, list) and len(value) > part else None
            else:
                value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return value
    return None


def _bucket(r: Mapping[str, Any]) -> dict[str, Any]:
    tags = _get(r, "tags") or {}
    return {
        "bucket": _get(r, "bucket") or r.get("id"),
        "objectLockEnabled": _get(r, "objectLockEnabled"),
        **{f"tags.{k}": tags.get(k) for k in (LOG_CLASS_TAG, POSTURE_TAG, WORKFLOW_TAG)},
    }


def _lock(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "bucket": _get(r, "bucket"),
        **{f"rule.defaultRetention.{k}": _get(r, "rule", "defaultRetention", k) for k in ("mode", "days", "years")},
    }


def _lifecycle(r: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"bucket": _get(r, "bucket")}
    for i, rule in enumerate(_get(r, "rules") or []):
        rule = rule if isinstance(rule, Mapping) else {}
        fields[f"rules[{i}].status"] = rule.get("status")
        fields[f"rules[{i}].expiration.days"] = (rule.get("expiration") or {}).get("days")
        fields[f"rules[{i}].noncurrentVersionExpiration.noncurrentDays"] = (
            rule.get("noncurrentVersionExpiration") or {}
        ).get("noncurrentDays")
    return fields


def _sse(r: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"bucket": _get(r, "bucket")}
    for i, rule in enumerate(_get(r, "rules") or []):
        default = (rule if isinstance(rule, Mapping) else {}).get("applyServerSideEncryptionByDefault") or {}
        for k in ("sseAlgorithm", "kmsMasterKeyId"):
            fields[f"rules[{i}].applyServerSideEncryptionByDefault.{k}"] = default.get(k)
    return fields


def _fields(*paths: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def read(r: Mapping[str, Any]) -> dict[str, Any]:
        return {p: _get(r, *p.split(".")) for p in paths}

    return read


def _inline_policy(r: Mapping[str, Any]) -> dict[str, Any]:
    policy = _get(r, "inlinePolicy")
    with contextlib.suppress(ValueError):  # the report reads the parsed document, not its whitespace
        policy = json.loads(policy) if isinstance(policy, str) else policy
    return {"permissionSetArn": _get(r, "permissionSetArn"), "inlinePolicy": policy}


READ_FIELDS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    T_BUCKET: _bucket,
    T_LOCK: _lock,
    T_LIFECYCLE: _lifecycle,
    T_SSE: _sse,
    T_VERSIONING: _fields("bucket", "versioningConfiguration.status"),
    # not read by the report today; compared because an auditor reading the export looks for it
    T_PUBLIC_ACCESS: _fields(
        "bucket", "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"
    ),
    T_AUTHORIZER: _fields("authorizerType", "jwtConfiguration.issuer", "jwtConfiguration.audiences"),
    T_ROUTE: _fields("routeKey", "authorizationType", "authorizerId"),
    T_PERMISSION_SET: _fields("name", "arn", "sessionDuration"),
    T_INLINE_POLICY: _inline_policy,
    T_FUNCTION: _fields("name", "handler"),
    T_SCHEDULE: _fields("scheduleExpression"),
}
"""Per resource type, the fields ``controller.evidence.stack_export.read_stack_export`` reads (plus the public
access block), as ``{field path: value}``. Buckets and their configurations are joined on
``bucket``, the permission set and its policy on the permission set's ARN: both are compared."""


def _logical(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def report_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``{"<type>::<logical name>": {field: value}}`` for every resource type in ``READ_FIELDS``,
    plus the stack (its name, project and outputs), the manifest and the live resource count."""
    deployment = doc.get("deployment") or {}
    live = [r for r in deployment.get("resources") or [] if isinstance(r, Mapping) and not r.get("delete")]
    view: dict[str, Any] = {}
    for r in live:
        read = READ_FIELDS.get(str(r.get("type")))
        if read is not None:
            view[f"{r['type']}::{_logical(str(r.get('urn', '')))}"] = read(r)
    stacks = [r for r in live if r.get("type") == STACK_TYPE]
    for r in stacks:
        parts = str(r.get("urn", "")).split("::")
        view[f"{STACK_TYPE}::{_logical(str(r.get('urn', '')))}"] = {
            "stack": parts[0].removeprefix("urn:pulumi:"),
            "project": parts[1] if len(parts) > 1 else None,
            "outputs": r.get("outputs") or {},
        }
    manifest = deployment.get("manifest") or {}
    view["manifest"] = {"version": manifest.get("version"), "time": manifest.get("time")}
    view["resources"] = {"count": len(live)}
    return view


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for k, v in value.items():
            flat.update(_flatten(v, f"{path}.{k}" if path else str(k)))
        return flat
    if isinstance(value, list) and value:
        flat = {}
        for i, v in enumerate(value):
            flat.update(_flatten(v, f"{path}[{i}]"))
        return flat
    return {path: value}


def _same(a: Any, b: Any) -> bool:
    """Equal as the report compares them: ``400`` and ``400.0`` are one number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def diff_report_fields(fixture: Mapping[str, Any], program: Mapping[str, Any]) -> list[str]:
    """One line per resource or field on which ``fixture`` and ``program`` (each a
    ``report_fields`` view) differ."""
    problems = []
    for key in sorted(fixture.keys() | program.keys()):
        if key not in program:
            problems.append(f"{key}: in the fixture, not provisioned by the program")
            continue
        if key not in fixture:
            problems.append(f"{key}: provisioned by the program, missing from the fixture")
            continue
        want, got = _flatten(program[key]), _flatten(fixture[key])
        for field in sorted(want.keys() | got.keys()):
            a, b = got.get(field, _MISSING), want.get(field, _MISSING)
            if not _same(a, b):
                problems.append(f"{key} {field}: fixture {a!r}, program {b!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.infra.stack_export",
        description="Write the `pulumi stack export` of infra/ under the test mocks (the report's fixture).",
    )
    parser.add_argument("--out", type=Path, help="where to write it (default: print it)")
    parser.add_argument(
        "--wrong-retention",
        type=Path,
        metavar="FILE",
        help=f"also write the same export with the audit-log retention at {WRONG_RETENTION_DAYS} days",
    )
    args = parser.parse_args(argv)
    doc = generate()
    if args.out is None:
        sys.stdout.write(dumps(doc))
    else:
        args.out.write_text(dumps(doc), encoding="utf-8")
        print(f"wrote {args.out} ({len(doc['deployment']['resources'])} resources)", file=sys.stderr)
    if args.wrong_retention is not None:
        args.wrong_retention.write_text(dumps(wrong_retention(doc)), encoding="utf-8")
        print(f"wrote {args.wrong_retention}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
