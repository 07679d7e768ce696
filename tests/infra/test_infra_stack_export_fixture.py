"""``tests/fixtures/stack-export.json`` is what infra/ provisions, as ``rollout audit report`` reads it.

The report's tests (tests/test_report.py) judge a ``pulumi stack export`` fixture; these tests run
the program under the suite's mocks, convert the run with ``stack_export`` and compare, resource
by resource, every field ``controller.evidence.stack_export.read_stack_export`` reads (S3 buckets and their
Object Lock, lifecycle, encryption and versioning configurations, the public access block, the
JWT authorizer and routes, the SSO permission set and its inline policy, Lambda functions, the
reconcile schedule, the stack's outputs). When infra/ changes any of them the fixture is stale,
and the failure says how to regenerate it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from infra_mocks import PROJECT, ProgramRun, make_config, run_program
from stack_export import (
    FIXTURE,
    READ_FIELDS,
    REGENERATE,
    T_LIFECYCLE,
    T_LOCK,
    WRONG_RETENTION_FIXTURE,
    diff_report_fields,
    dumps,
    report_fields,
    stack_export,
    wrong_retention,
)

from controller.core import provisioning as derive
from controller.evidence import stack_export as report_reader

WF = "internal-docs-qa"
SHOWN = 40  # differences listed in a failure; the rest are counted


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def stale(problems: list[str], what: str = "tests/fixtures/stack-export.json") -> str:
    shown = "\n".join(f"  - {p}" for p in problems[:SHOWN])
    more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return (
        f"{what} no longer matches what infra/ provisions (as `rollout audit report` reads it), "
        f"{len(problems)} difference(s):\n{shown}{more}\n"
        f"Regenerate the fixture (then run tests/test_report.py in the main venv):\n  {REGENERATE}"
    )


def assert_fixture_matches(doc: dict[str, Any]) -> None:
    problems = diff_report_fields(report_fields(_load(FIXTURE)), report_fields(doc))
    assert not problems, stale(problems)


@pytest.fixture(scope="module")
def exported(program: ProgramRun) -> dict[str, Any]:
    return stack_export(program)


def test_the_fixture_has_every_field_the_report_reads_as_the_program_provisions_it(exported):
    assert_fixture_matches(exported)


def test_the_report_reads_the_same_from_the_fixture_and_from_the_program(exported):
    """A catch-all over ``read_stack_export`` itself, should it read a field ``READ_FIELDS`` lacks."""

    def read(doc: dict[str, Any]) -> dict[str, Any]:
        """``Provisioned`` as ``{"buckets[<logical name>].lock_days": 400, ...}``: order is not content."""
        flat: dict[str, Any] = {}
        for k, v in dataclasses.asdict(report_reader.read_stack_export(doc, source="-", sha256="-")).items():
            if isinstance(v, list | tuple) and all(isinstance(x, dict) and "urn" in x for x in v):
                flat[f"{k} (count)"] = len(v)
                for x in v:
                    flat.update({f"{k}[{x['urn'].rsplit('::', 1)[-1]}].{f}": val for f, val in x.items()})
            else:
                flat[k] = v
        return flat

    fixture, program = read(_load(FIXTURE)), read(exported)
    problems = [
        f"read_stack_export(...).{k}: fixture {fixture.get(k, '(absent)')!r}, program {program.get(k, '(absent)')!r}"
        for k in sorted(fixture.keys() | program.keys())
        if fixture.get(k, "(absent)") != program.get(k, "(absent)")
    ]
    assert not problems, stale(problems)


def test_every_resource_type_the_report_reads_is_compared(program, exported):
    # controller.evidence.stack_export.TYPE_TOKENS: the type tokens read_stack_export looks for (pulumi-aws 7 and 6 names)
    read_by_report = {token for tokens in report_reader.TYPE_TOKENS.values() for token in tokens} - {"pulumi:pulumi:Stack"}
    created = {r.type for r in program.resources}
    assert created & read_by_report, "the program creates none of the types the report reads?"
    assert not (created & read_by_report) - READ_FIELDS.keys(), (
        "the report reads these types, which the program creates, but stack_export.READ_FIELDS does not compare "
        f"them: {sorted((created & read_by_report) - READ_FIELDS.keys())}"
    )
    in_fixture = {r["type"] for r in _load(FIXTURE)["deployment"]["resources"]}
    assert READ_FIELDS.keys() <= in_fixture, stale([f"no {t} in the fixture" for t in READ_FIELDS.keys() - in_fixture])
    compared = report_fields(exported)
    assert all(compared[k] for k in compared), "a compared resource with no fields"


def test_a_different_retention_derivation_fails_naming_the_command_to_regenerate(bundle, lambda_archive, monkeypatch):
    real = derive.bucket_rules

    def longer_audit_retention(workflow: Any) -> Any:
        rules = real(workflow)
        audit = rules[derive.LogClass.AUDIT_LOG]
        return {**rules, derive.LogClass.AUDIT_LOG: dataclasses.replace(audit, days=audit.days + 1)}

    monkeypatch.setattr(derive, "bucket_rules", longer_audit_retention)
    doc = stack_export(run_program(bundle, make_config(PROJECT, lambda_archive)))
    with pytest.raises(AssertionError) as failed:
        assert_fixture_matches(doc)
    message = str(failed.value)
    assert (
        REGENERATE in message and "python -m tests.infra.stack_export --out tests/fixtures/stack-export.json" in message
    )
    for line in (
        # Total life 400 -> 401: current versions a day later, noncurrent still a day after that.
        f"{T_LIFECYCLE}::{WF}-audit-log-lifecycle rules[0].expiration.days: fixture 399, program 400",
        f"{T_LOCK}::{WF}-audit-log-object-lock rule.defaultRetention.days: fixture 400, program 401",
    ):
        assert line in message, message
    assert f"{WF}-flag-store" not in message and f"{WF}-raw-invocation-logs" not in message, message  # only what moved


def test_the_wrong_retention_fixture_is_the_fixture_with_the_audit_log_retention_changed():
    expected = wrong_retention(_load(FIXTURE))
    actual = _load(WRONG_RETENTION_FIXTURE)
    problems = diff_report_fields(report_fields(actual), report_fields(expected))
    assert not problems, stale(problems, "tests/fixtures/stack-export-wrong-retention.json")
    assert actual == expected, "the wrong-retention fixture differs from the fixture in more than the retention"


def test_the_export_is_the_same_for_every_run(program, bundle, lambda_archive, exported):
    """Resources register in a different order each run; the export does not change."""
    again = stack_export(run_program(bundle, make_config(PROJECT, lambda_archive)))
    assert dumps(again) == dumps(exported)
    urns = [r["urn"] for r in exported["deployment"]["resources"]]
    assert len(set(urns)) == len(urns)
    assert all(u.startswith("urn:pulumi:prod::ai-rollout::") for u in urns)
    text = dumps(exported)
    assert not [r.name for r in program.resources if f"{r.name}-id" in text]  # every mock id replaced
    assert "deterministic-test-secret" not in text  # secrets stay encrypted
